"""Packet argument grammars, declared with construct.

Each declaration turns a packet's argument bytes into a typed request; a
construct error (or a ValueError from a field) means a malformed packet and
gets an error reply. Thread ids follow the multiprocess form ``pPID.TID``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import construct as cs


class _Hex(cs.Adapter):  # type: ignore[misc]
    """ASCII hex digits <-> int."""

    def _decode(self, obj: bytes, context: Any, path: Any) -> int:
        if not obj or len(obj) > 32:
            raise cs.ValidationError("bad hex number")
        return int(obj, 16)

    def _encode(self, obj: int, context: Any, path: Any) -> bytes:
        return b"%x" % obj


class _HexBytes(cs.Adapter):  # type: ignore[misc]
    """Hex-encoded bytes <-> bytes."""

    def _decode(self, obj: bytes, context: Any, path: Any) -> bytes:
        return bytes.fromhex(obj.decode("ascii"))

    def _encode(self, obj: bytes, context: Any, path: Any) -> bytes:
        return obj.hex().encode()


def hex_until(term: bytes) -> cs.Construct:
    return _Hex(cs.NullTerminated(cs.GreedyBytes, term=term))


HexRest = _Hex(cs.GreedyBytes)
HexData = _HexBytes(cs.GreedyBytes)

# m ADDR,LENGTH
ReadMemory = cs.Struct("addr" / hex_until(b","), "length" / HexRest)
# M ADDR,LENGTH:HEX
WriteMemory = cs.Struct("addr" / hex_until(b","), "length" / hex_until(b":"), "data" / HexData)
# X ADDR,LENGTH:BINARY (already unescaped by the framer)
WriteBinary = cs.Struct("addr" / hex_until(b","), "length" / hex_until(b":"), "data" / cs.GreedyBytes)
# Z TYPE,ADDR,KIND (conditions after ';' are split off first)
Breakpoint = cs.Struct("type" / hex_until(b","), "addr" / hex_until(b","), "kind" / HexRest)
# p N
ReadRegister = cs.Struct("regnum" / HexRest)
# P N=HEX
WriteRegister = cs.Struct("regnum" / hex_until(b"="), "value" / HexData)
# qXfer ... :OFFSET,LENGTH
XferWindow = cs.Struct("offset" / hex_until(b","), "length" / HexRest)
# qRcmd,HEX
HexPayload = cs.Struct("data" / HexData)

ParseError = (cs.ConstructError, ValueError, UnicodeDecodeError)


def parse(grammar: cs.Construct, data: bytes) -> Any:
    """Parse with a declared grammar; malformed input raises one of ParseError."""
    return grammar.parse(data)


@dataclass(frozen=True)
class ThreadId:
    """A ptid: pid/tid of -1 mean all, 0 means any."""

    pid: int
    tid: int


def parse_thread_id(text: bytes, default_pid: int) -> ThreadId:
    """``pPID.TID``, ``pPID``, ``TID``, ``-1``, ``0`` (hex) -> ThreadId."""

    def num(part: bytes) -> int:
        if part == b"-1":
            return -1
        if not part or len(part) > 16:
            raise ValueError("bad thread id")
        return int(part, 16)

    if text.startswith(b"p"):
        pid_s, dot, tid_s = text[1:].partition(b".")
        pid = num(pid_s)
        return ThreadId(pid, num(tid_s) if dot else -1)
    tid = num(text)
    return ThreadId(default_pid if tid > 0 else tid, tid)


@dataclass(frozen=True)
class VContAction:
    kind: str  # c C s S t r
    signal: int
    start: int
    end: int
    thread: ThreadId | None  # None: every thread not named otherwise


def parse_vcont(args: bytes, default_pid: int) -> list[VContAction]:
    """``;ACTION[:TID]...`` of vCont."""
    if not args.startswith(b";"):
        raise ValueError("vCont needs actions")
    actions = []
    for part in args[1:].split(b";"):
        act, colon, tid = part.partition(b":")
        if not act:
            raise ValueError("empty vCont action")
        kind = chr(act[0])
        sig = start = end = 0
        if kind in "CS":
            sig = int(act[1:], 16)
        elif kind == "r":
            lo, _, hi = act[1:].partition(b",")
            start, end = int(lo, 16), int(hi, 16)
        elif kind not in "cst" or len(act) != 1:
            raise ValueError("unknown vCont action")
        thread = parse_thread_id(tid, default_pid) if colon else None
        actions.append(VContAction(kind, sig, start, end, thread))
    return actions
