"""qXfer:siginfo:read/write: the current thread's siginfo, so `p $_siginfo`
works and gdb can change the signal a thread will receive.

A 64-bit tracer gets the kernel's 64-bit siginfo for every tracee
(PTRACE_GETSIGINFO); gdb reads an i386 program's $_siginfo in the 32-bit
layout, so for i386 the union is converted field by field, as the kernel's
compat code does for a 32-bit process (which member is live follows the
kernel's siginfo_layout()). Both layouts are declared with construct.
"""

from __future__ import annotations

from ..hints import TYPE_CHECKING, Any, Callable, cache, signal
from .session import Feature, XferObject

if TYPE_CHECKING:
    from construct import Struct

    from .session import Session

SIGINFO_SIZE = 128
SI_USER, SI_KERNEL, SI_QUEUE, SI_TIMER, SI_MESGQ, SI_ASYNCIO, SI_SIGIO = 0, 0x80, -1, -2, -3, -4, -5

# Each union member: (field, kind); "w" is a C long/pointer (8 or 4 bytes),
# "sw" the same but signed, "i" a 32-bit int, "h" a 16-bit one.
MEMBERS: dict[str, list[tuple[str, str]]] = {
    "kill": [("pid", "i"), ("uid", "i")],
    "timer": [("tid", "i"), ("overrun", "i"), ("sigval", "w")],
    "rt": [("pid", "i"), ("uid", "i"), ("sigval", "w")],
    "chld": [("pid", "i"), ("uid", "i"), ("status", "i"), ("utime", "sw"), ("stime", "sw")],
    "fault": [("addr", "w"), ("addr_lsb", "h"), ("lower", "w"), ("upper", "w")],
    "poll": [("band", "sw"), ("fd", "i")],
    "sys": [("call_addr", "w"), ("syscall", "i"), ("arch", "i")],
}
_SIZES = {"i": 4, "h": 2}


def _member(fields: list[tuple[str, str]], word: int) -> Struct:
    """A union member as construct, with C's natural alignment padding."""
    from construct import Construct, Int16ul, Int32ul, Int64ul, Padding, Struct

    forms = {2: Int16ul, 4: Int32ul, 8: Int64ul}
    parts: list[Construct] = []
    pos = 0
    for name, kind in fields:
        size = _SIZES.get(kind, word)
        if pos % size:
            parts.append(Padding(size - pos % size))
            pos += size - pos % size
        parts.append(name / forms[size])
        pos += size
    return Struct(*parts)


def header(word: int) -> Struct:
    """signo, errno, code, then the union (8-byte aligned on 64-bit)."""
    from construct import Int32ul, Padding, Struct

    pad = [Padding(4)] if word == 8 else []
    return Struct("signo" / Int32ul, "errno" / Int32ul, "code" / Int32ul, *pad)


@cache
def _structs() -> tuple[dict[int, Struct], dict[int, dict[str, Struct]]]:
    """The headers and union members for both word sizes, built on the first $_siginfo
    (construct costs more to import than the stub's whole start-up)."""
    headers = {8: header(8), 4: header(4)}
    unions = {word: {k: _member(v, word) for k, v in MEMBERS.items()} for word in (8, 4)}
    return headers, unions

# Highest si_code with a signal-specific layout (the kernel's NSIG* limits).
_SPECIFIC: dict[int, tuple[str, int]] = {
    signal.SIGILL: ("fault", 11), signal.SIGFPE: ("fault", 15), signal.SIGSEGV: ("fault", 10),
    signal.SIGBUS: ("fault", 5), signal.SIGTRAP: ("fault", 6), signal.SIGCHLD: ("chld", 6),
    signal.SIGPOLL: ("poll", 6), signal.SIGSYS: ("sys", 2),
}


def layout(signo: int, code: int) -> str:
    """Which union member is live (the kernel's siginfo_layout())."""
    if SI_USER < code < SI_KERNEL:
        member, limit = _SPECIFIC.get(signo, ("", 0))
        if member and code <= limit:
            return member
        return "poll" if code <= 6 else "kill"
    if code == SI_TIMER:
        return "timer"
    if code == SI_SIGIO:
        return "poll"
    return "rt" if code < 0 else "kill"


def _signed32(value: int) -> int:
    return value - (1 << 32) if value & 0x80000000 else value


def convert(raw: bytes, from_word: int, to_word: int) -> bytes:
    """Re-lay a siginfo between the 64-bit (8) and 32-bit (4) forms."""
    HEADER, UNIONS = _structs()
    head = HEADER[from_word].parse(raw)
    code = _signed32(head.code)
    member = layout(head.signo, code)
    fields = UNIONS[from_word][member].parse(raw[HEADER[from_word].sizeof() :])
    values: dict[str, Any] = {}
    for name, kind in MEMBERS[member]:
        value = int(fields[name])
        if kind in ("w", "sw") and to_word == 4:
            value &= 0xFFFFFFFF
        elif kind == "sw" and from_word == 4:
            value = _signed32(value) & 0xFFFFFFFFFFFFFFFF
        values[name] = value
    out = bytes(HEADER[to_word].build({"signo": head.signo, "errno": head.errno, "code": head.code}))
    out += bytes(UNIONS[to_word][member].build(values))
    return out.ljust(SIGINFO_SIZE, b"\0")


def _thread(s: Session) -> tuple[int, int]:
    tid = s.current_tid()
    pid = s.target.pid_of(tid)
    if pid is None:
        raise KeyError(tid)
    return pid, tid


def _accessor(s: Session, name: str) -> Callable[..., Any]:
    func = getattr(s.target, name, None)
    if func is None:
        raise KeyError(name)
    return func  # type: ignore[no-any-return]


def read(s: Session, annex: str) -> bytes:
    if annex:
        raise KeyError(annex)
    pid, tid = _thread(s)
    raw = bytes(_accessor(s, "siginfo")(tid))
    if s.target.arch(pid).word == 4:
        return convert(raw, 8, 4)
    return raw


def write(s: Session, annex: str, offset: int, data: bytes) -> int:
    """Patch DATA at OFFSET into the thread's siginfo (in the program's layout)."""
    if annex or offset < 0 or offset + len(data) > SIGINFO_SIZE:
        raise KeyError("siginfo window out of range")
    pid, tid = _thread(s)
    word = s.target.arch(pid).word
    raw = bytes(_accessor(s, "siginfo")(tid))
    mine = bytearray(convert(raw, 8, 4) if word == 4 else raw)
    mine[offset : offset + len(data)] = data
    new = convert(bytes(mine), 4, 8) if word == 4 else bytes(mine)
    if len(new) != SIGINFO_SIZE:
        raise ValueError("siginfo is 128 bytes")
    _accessor(s, "set_siginfo")(tid, new)
    return len(data)


def _available(s: Session) -> bool:
    return hasattr(s.target, "siginfo") and hasattr(s.target, "set_siginfo")


OBJECTS: dict[str, XferObject] = {"siginfo": XferObject(read, _available, write)}
FEATURES: list[Feature] = [
    ("qXfer:siginfo:read+", _available),
    ("qXfer:siginfo:write+", _available),
]
