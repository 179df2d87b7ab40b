"""ctypes bindings for ptrace(2) and friends; errors raise OSError.

Every call must come from the thread that attached to the tracee (the kernel
answers ESRCH otherwise), so the whole stub drives ptrace from one thread.
"""

from __future__ import annotations

import os
from _signal import SIGKILL  # not signal: it imports enum

from ... import ffi as ctypes  # ctypes names without the ctypes package
from .ptrace_abi import *  # noqa: F403  (the numbers, as ptrace.CONT and the like)
from .ptrace_abi import (
    ATTACH,
    CONT,
    DETACH,
    GETEVENTMSG,
    GETREGS,
    GETREGSET,
    GETSIGINFO,
    NT_X86_XSTATE,
    PEEKDATA,
    PEEKUSER,
    POKEDATA,
    POKEUSER,
    SETREGS,
    SETREGSET,
    SETSIGINFO,
    SINGLESTEP,
    SYS_TGKILL,
    SYSCALL,
)

TYPE_CHECKING = False  # not ..hints: only the modules test_startup allows load before Listening
if TYPE_CHECKING:
    from typing import NoReturn

_libc = ctypes.CDLL(None, use_errno=True)
_ptrace = _libc.ptrace
_ptrace.restype = ctypes.c_long
_ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
# The requests every stop makes (CONT, SINGLESTEP, SYSCALL, GETREGS) go through a second
# handle on ptrace without argtypes: ctypes then converts each argument by its own type
# (small ints, which libffi widens to the 64-bit register; the register buffer itself, passed
# by address), about half the cost of a call through the prototype above. It is PyDLL's: the
# GIL stays held (those requests never block, and one thread makes them all), which saves
# its release and retake (a mutex and a condition variable) per call.
_ptrace_plain = ctypes.PyDLL(None, use_errno=True)["ptrace"]
_ptrace_plain.restype = ctypes.c_long
_c_ulong = ctypes.c_ulong
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


class IoVec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))


def _check(result: int) -> int:
    if result == -1:
        err = ctypes.get_errno()
        if err:
            raise OSError(err, os.strerror(err))
    return result


def ptrace(request: int, pid: int, addr: int = 0, data: int = 0) -> int:
    """A request whose -1 is always an error: errno is the call's own, so not reset first
    (the PEEKs, whose -1 may be data, go through ``_peek``)."""
    result: int = _ptrace(request, pid, addr, data)
    if result == -1:
        _raise_errno()
    return result


def _raise_errno() -> NoReturn:
    """A request returned -1: its errno as OSError."""
    err = ctypes.get_errno()
    raise OSError(err, os.strerror(err))


def _peek(request: int, pid: int, addr: int) -> int:
    ctypes.set_errno(0)
    return _check(_ptrace(request, pid, addr, 0))



def resume(request: int, tid: int, sig: int) -> None:
    """CONT, SINGLESTEP or SYSCALL: every argument a small int (see ``_ptrace_plain``)."""
    if _ptrace_plain(request, tid, 0, sig) == -1:
        _raise_errno()


def cont(tid: int, sig: int = 0) -> None:
    resume(CONT, tid, sig)


def singlestep(tid: int, sig: int = 0) -> None:
    resume(SINGLESTEP, tid, sig)


def syscall(tid: int, sig: int = 0) -> None:
    resume(SYSCALL, tid, sig)


def attach(pid: int) -> None:
    ptrace(ATTACH, pid)


def detach(tid: int, sig: int = 0) -> None:
    ptrace(DETACH, tid, 0, sig)


def geteventmsg(tid: int) -> int:
    msg = ctypes.c_ulong(0)
    ptrace(GETEVENTMSG, tid, 0, ctypes.addressof(msg))
    return msg.value


USER_REGS_SIZE = 216  # sizeof(struct user_regs_struct), 64-bit (32-bit tracees too)

# Buffers reused by every call (one thread makes them all): a stop's GETREGS is one
# system call and one copy, without a ctypes buffer built for it.
_user_regs = ctypes.create_string_buffer(USER_REGS_SIZE)
_user_regs_at = ctypes.addressof(_user_regs)
_iov = IoVec()
_iov_at = ctypes.addressof(_iov)


def getregs(tid: int) -> bytearray:
    if _ptrace_plain(GETREGS, tid, 0, _user_regs) == -1:
        _raise_errno()
    return bytearray(_user_regs)


def setregs(tid: int, data: bytes | bytearray) -> None:
    ctypes.memmove(_user_regs_at, bytes(data), min(len(data), USER_REGS_SIZE))
    ptrace(SETREGS, tid, 0, _user_regs_at)


def getregset(tid: int, nt: int, size: int) -> bytearray:
    """Read a regset; the kernel shrinks the iovec to what it filled."""
    buf = ctypes.create_string_buffer(size)
    _iov.base, _iov.len = ctypes.addressof(buf), size
    ptrace(GETREGSET, tid, nt, _iov_at)
    return bytearray(buf.raw[: _iov.len])


_xstate_size = 0  # NT_X86_XSTATE's size on this kernel and CPU, learned from the first read


def getxstate(tid: int) -> bytearray:
    """The whole XSAVE area. The kernel refuses a SETREGSET of any size but its own (11008 bytes
    on a CPU with AMX, 2696 without), so the size is learned once from a read into a large buffer."""
    global _xstate_size
    if not _xstate_size:
        data = getregset(tid, NT_X86_XSTATE, 1 << 16)
        _xstate_size = len(data)
        return data
    return getregset(tid, NT_X86_XSTATE, _xstate_size)


def setregset(tid: int, nt: int, data: bytes | bytearray) -> None:
    buf = ctypes.create_string_buffer(bytes(data), len(data))
    _iov.base, _iov.len = ctypes.addressof(buf), len(data)
    ptrace(SETREGSET, tid, nt, _iov_at)


_siginfo = ctypes.create_string_buffer(128)  # reused, as _user_regs (a range step reads it per step)


def getsiginfo(tid: int) -> bytes:
    if _ptrace_plain(GETSIGINFO, tid, 0, _siginfo) == -1:
        _raise_errno()
    return _siginfo.raw


def setsiginfo(tid: int, data: bytes) -> None:
    buf = ctypes.create_string_buffer(bytes(data).ljust(128, b"\0"), 128)
    ptrace(SETSIGINFO, tid, 0, ctypes.addressof(buf))


def peekuser(tid: int, offset: int) -> int:
    return _peek(PEEKUSER, tid, offset) & 0xFFFFFFFFFFFFFFFF


def pokeuser(tid: int, offset: int, value: int) -> None:
    """Through the plain handle (a breakpoint hit rewinds the PC with one): the word as a
    c_ulong, which the handle would otherwise pass as a 32-bit int."""
    if _ptrace_plain(POKEUSER, tid, offset, _c_ulong(value)) == -1:
        _raise_errno()


def peekdata(tid: int, addr: int) -> int:
    return _peek(PEEKDATA, tid, addr) & 0xFFFFFFFFFFFFFFFF


def pokedata(tid: int, addr: int, value: int) -> None:
    ptrace(POKEDATA, tid, addr, ctypes.c_long(value if value < 1 << 63 else value - (1 << 64)).value)


def tgkill(tgid: int, tid: int, sig: int) -> None:
    _check(_syscall(SYS_TGKILL, tgid, tid, sig))


def kill_quietly(pid: int, sig: int = SIGKILL) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass
