"""The ctypes names the stub uses, made from ``_ctypes`` (ctypes' C half) as ctypes makes them,
without importing the ctypes package: its ``__init__`` builds some 40 types, function classes
and libraries the stub never uses, 9 M instructions of every session (a third of a bare
start of the interpreter). Modules read ``from .. import ffi as ctypes`` and use the names as
ctypes'; mypy sees ctypes' own (the TYPE_CHECKING branch), so they are checked against the
real ones. A type is made at its first use (module ``__getattr__``): the command line's start,
before ``Listening``, makes the two its libc calls need.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ctypes import CDLL as CDLL
    from ctypes import CFUNCTYPE as CFUNCTYPE
    from ctypes import POINTER as POINTER
    from ctypes import PyDLL as PyDLL
    from ctypes import Structure as Structure
    from ctypes import addressof as addressof
    from ctypes import byref as byref
    from ctypes import c_char as c_char
    from ctypes import c_char_p as c_char_p
    from ctypes import c_int as c_int
    from ctypes import c_long as c_long
    from ctypes import c_size_t as c_size_t
    from ctypes import c_uint32 as c_uint32
    from ctypes import c_ulong as c_ulong
    from ctypes import c_void_p as c_void_p
    from ctypes import create_string_buffer as create_string_buffer
    from ctypes import get_errno as get_errno
    from ctypes import memmove as memmove
    from ctypes import pointer as pointer
    from ctypes import set_errno as set_errno
else:
    import _ctypes
    from _ctypes import POINTER as POINTER
    from _ctypes import Structure as Structure
    from _ctypes import addressof as addressof
    from _ctypes import byref as byref
    from _ctypes import get_errno as get_errno
    from _ctypes import pointer as pointer
    from _ctypes import set_errno as set_errno

    # ctypes' simple types by their struct codes (LP64: size_t is unsigned long, uint32 unsigned int)
    _SIMPLE = {"c_long": "l", "c_int": "i", "c_ulong": "L", "c_uint32": "I", "c_char": "c", "c_char_p": "z",
               "c_void_p": "P"}
    _ALIASES = {"c_size_t": "c_ulong"}
    _SimpleType = type(_ctypes._SimpleCData)
    _FunctionType = type(_ctypes.CFuncPtr)

    def __getattr__(name):
        """A simple type or ``memmove``, made once, at its first use."""
        if name in _ALIASES:
            made = __getattr__(_ALIASES[name])
        elif name in _SIMPLE:
            made = _SimpleType(name, (_ctypes._SimpleCData,), {"_type_": _SIMPLE[name], "__module__": __name__})
        elif name == "memmove":
            made = CFUNCTYPE(__getattr__("c_void_p"), __getattr__("c_void_p"), __getattr__("c_void_p"),
                             __getattr__("c_size_t"))(_ctypes._memmove_addr)
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = made
        return made

    _function_types = {}

    def CFUNCTYPE(restype, *argtypes):
        """ctypes.CFUNCTYPE (no errno kept): one class per prototype, as ctypes caches them."""
        key = (restype, argtypes)
        made = _function_types.get(key)
        if made is None:
            made = _function_types[key] = _FunctionType("CFunctionType", (_ctypes.CFuncPtr,), {
                "_argtypes_": argtypes, "_restype_": restype, "_flags_": _ctypes.FUNCFLAG_CDECL})
        return made

    def create_string_buffer(init, size=None):
        """ctypes.create_string_buffer: a c_char array, zeroed or holding INIT."""
        if isinstance(init, int):
            return (__getattr__("c_char") * init)()
        if not isinstance(init, bytes):
            raise TypeError(init)
        buf = (__getattr__("c_char") * (len(init) + 1 if size is None else size))()
        buf.value = init
        return buf

    class CDLL:
        """ctypes.CDLL: a shared object (None: the program and what it loaded) whose functions
        are its attributes (made once, returning a C int until told otherwise)."""

        _flags_ = _ctypes.FUNCFLAG_CDECL

        def __init__(self, name, use_errno=False):
            self._name = name
            self._handle = _ctypes.dlopen(name, 0)  # RTLD_LOCAL, ctypes' default mode here
            flags = self._flags_ | (_ctypes.FUNCFLAG_USE_ERRNO if use_errno else 0)
            self._FuncPtr = _FunctionType("_FuncPtr", (_ctypes.CFuncPtr,),
                                          {"_flags_": flags, "_restype_": __getattr__("c_int")})

        def __getattr__(self, name):
            if name.startswith("__") and name.endswith("__"):
                raise AttributeError(name)
            func = self[name]
            setattr(self, name, func)
            return func

        def __getitem__(self, name):
            func = self._FuncPtr((name, self))
            func.__name__ = name
            return func

    class PyDLL(CDLL):
        """ctypes.PyDLL: calls that keep the GIL (and see Python's error state)."""

        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_PYTHONAPI
