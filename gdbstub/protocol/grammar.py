"""Packet argument grammars, declared with construct.

Each declaration turns a packet's argument bytes into a typed request; a
construct error (or a ValueError from a field) means a malformed packet and
gets an error reply. Thread ids follow the multiprocess form ``pPID.TID``.
"""

from __future__ import annotations

from collections.abc import Callable
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

Parser = Callable[[bytes], Any]


def _field_parser(sub: cs.Construct) -> tuple[bytes | None, Callable[[bytes], Any]]:
    """(terminator or None for 'the rest', converter) for one declared field."""
    if isinstance(sub, _Hex):
        inner = sub.subcon
        term = inner.term if isinstance(inner, cs.NullTerminated) else None
        return term, _hex_value
    if isinstance(sub, _HexBytes):
        return None, _hex_bytes
    if sub is cs.GreedyBytes:
        return None, bytes
    raise TypeError(f"no fast form for {sub!r}")


def _hex_value(text: bytes) -> int:
    if not text or len(text) > 32:
        raise ValueError("bad hex number")
    return int(text, 16)


def _hex_bytes(text: bytes) -> bytes:
    return bytes.fromhex(text.decode("ascii"))


def compile_grammar(grammar: cs.Struct) -> Parser:
    """A fast parser built from a Struct declaration of hex fields.

    construct's generic parse costs tens of microseconds per packet, too much
    on the hot path (m, Z, vCont); this walks the same declaration once and
    returns a closure that splits and converts, so the declaration stays the
    single source of truth (tests check both give the same results).
    """
    fields = []
    for sub in grammar.subcons:
        term, conv = _field_parser(sub.subcon)
        fields.append((sub.name, term, conv))

    def parse_fast(data: bytes) -> cs.Container:
        out = cs.Container()
        rest = data
        for name, term, conv in fields:
            if term is None:
                piece, rest = rest, b""
            else:
                i = rest.find(term)
                if i < 0:
                    raise ValueError(f"missing {term!r}")
                piece, rest = rest[:i], rest[i + len(term):]
            out[name] = conv(piece)
        return out

    return parse_fast


_COMPILED: dict[int, Parser] = {}


def parse(grammar: cs.Construct, data: bytes) -> Any:
    """Parse with a declared grammar; malformed input raises one of ParseError."""
    fast = _COMPILED.get(id(grammar))
    if fast is None:
        try:
            fast = compile_grammar(grammar)
        except TypeError:
            fast = grammar.parse
        _COMPILED[id(grammar)] = fast
    return fast(data)


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


_VCONT_SEEN: dict[tuple[bytes, int], tuple[VContAction, ...]] = {}  # gdb repeats the same few


def parse_vcont(args: bytes, default_pid: int) -> list[VContAction]:
    """``;ACTION[:TID]...`` of vCont (the actions are immutable, so parses are remembered)."""
    key = (args, default_pid)
    seen = _VCONT_SEEN.get(key)
    if seen is not None:
        return list(seen)
    actions = _parse_vcont(args, default_pid)
    if len(_VCONT_SEEN) >= 64:
        _VCONT_SEEN.clear()
    _VCONT_SEEN[key] = tuple(actions)
    return actions


def _parse_vcont(args: bytes, default_pid: int) -> list[VContAction]:
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
