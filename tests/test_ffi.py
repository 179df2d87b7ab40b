"""gdbstub.ffi: ctypes' names made from _ctypes behave as ctypes' own, for what the stub does
with them (libc calls with errno, buffers, structures, a function at an address)."""

from __future__ import annotations

import ctypes as real
import errno
import os

import pytest

from gdbstub import ffi


@pytest.mark.parametrize("name", ["c_long", "c_int", "c_ulong", "c_uint32", "c_char", "c_char_p", "c_void_p",
                                  "c_size_t"])
def test_simple_types_match_ctypes(name: str):
    mine, theirs = getattr(ffi, name), getattr(real, name)
    assert mine._type_ == theirs._type_ and real.sizeof(mine) == real.sizeof(theirs)
    assert getattr(ffi, name) is mine  # made once


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError):
        ffi.c_wchar  # noqa: B018  (not one the stub uses)


def test_libc_call_keeps_errno_and_returns_int():
    libc = ffi.CDLL(None, use_errno=True)
    assert libc.getpid() == os.getpid()
    assert libc.close(-1) == -1 and ffi.get_errno() == errno.EBADF
    ffi.set_errno(0)
    assert ffi.get_errno() == 0
    assert getattr(libc, "no_such_function_in_libc", None) is None  # hostio's test for mallopt


def test_restype_and_pydll():
    libc = ffi.PyDLL(None)
    labs = libc.labs
    labs.restype = ffi.c_long
    labs.argtypes = [ffi.c_long]
    assert labs(-(1 << 40)) == 1 << 40


def test_string_buffers_as_ctypes():
    for init, size in ((b"abc", None), (b"a\0b", 3), (b"xy", 8)):
        mine = ffi.create_string_buffer(init, size)
        theirs = real.create_string_buffer(init, size)
        assert mine.raw == theirs.raw and len(mine) == len(theirs)
    assert ffi.create_string_buffer(5).raw == b"\0" * 5
    with pytest.raises(ValueError):
        ffi.create_string_buffer(b"toolong", 3)
    with pytest.raises(TypeError):
        ffi.create_string_buffer("text")


def test_structure_memmove_and_function_at_an_address():
    class IoVec(ffi.Structure):
        _fields_ = (("base", ffi.c_void_p), ("len", ffi.c_size_t))

    buf = ffi.create_string_buffer(8)
    iov = IoVec(ffi.addressof(buf), 8)
    assert iov.len == 8 and iov.base == ffi.addressof(buf)
    ffi.memmove(iov.base, b"12345678", 8)
    assert buf.raw == b"12345678"
    strlen = ffi.CFUNCTYPE(ffi.c_size_t, ffi.c_char_p)(real.cast(real.CDLL(None).strlen, real.c_void_p).value)
    assert strlen(b"four") == 4
    assert ffi.CFUNCTYPE(ffi.c_size_t, ffi.c_char_p) is ffi.CFUNCTYPE(ffi.c_size_t, ffi.c_char_p)  # made once
    words = (ffi.c_ulong * 2)()
    assert ffi.byref(words) is not None and len(bytes(words)) == 16
