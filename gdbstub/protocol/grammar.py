"""Packet argument grammars: each is declared as its fields (name, kind, terminator).

Each declaration turns a packet's argument bytes into a typed request; a
ValueError (or UnicodeDecodeError) means a malformed packet and gets an error
reply. The parser is compiled from the declaration once; ``as_construct`` gives
the same declaration as a construct Struct (the project's declaration tool),
which a test checks gives the same answers. construct itself is not imported
here: it costs more than the stub's whole start-up. Thread ids follow the
multiprocess form ``pPID.TID``.
"""

from __future__ import annotations

from ..hints import TYPE_CHECKING, Any, Callable, NamedTuple, cache

if TYPE_CHECKING:
    import construct as cs

HEX = "hex"  # hex digits -> int
HEX_BYTES = "hexbytes"  # hex-encoded bytes -> bytes
BYTES = "bytes"  # raw bytes (X packets, already unescaped by the framer)


class Field(NamedTuple):
    name: str
    kind: str  # HEX, HEX_BYTES or BYTES
    term: bytes | None = None  # what ends the field; None: the rest of the packet


Grammar = tuple[Field, ...]

# m ADDR,LENGTH
ReadMemory: Grammar = (Field("addr", HEX, b","), Field("length", HEX))
# M ADDR,LENGTH:HEX
WriteMemory: Grammar = (Field("addr", HEX, b","), Field("length", HEX, b":"), Field("data", HEX_BYTES))
# X ADDR,LENGTH:BINARY (already unescaped by the framer)
WriteBinary: Grammar = (Field("addr", HEX, b","), Field("length", HEX, b":"), Field("data", BYTES))
# Z TYPE,ADDR,KIND (conditions after ';' are split off first)
Breakpoint: Grammar = (Field("type", HEX, b","), Field("addr", HEX, b","), Field("kind", HEX))
# p N
ReadRegister: Grammar = (Field("regnum", HEX),)
# P N=HEX
WriteRegister: Grammar = (Field("regnum", HEX, b"="), Field("value", HEX_BYTES))
# qXfer ... :OFFSET,LENGTH
XferWindow: Grammar = (Field("offset", HEX, b","), Field("length", HEX))
# qRcmd,HEX
HexPayload: Grammar = (Field("data", HEX_BYTES),)

ParseError = (ValueError, UnicodeDecodeError)

Parser = Callable[[bytes], Any]


def _hex_value(text: bytes) -> int:
    if not text or len(text) > 32:
        raise ValueError("bad hex number")
    return int(text, 16)


def _hex_bytes(text: bytes) -> bytes:
    return bytes.fromhex(text.decode("ascii"))


_CONVERT: dict[str, Callable[[bytes], Any]] = {HEX: _hex_value, HEX_BYTES: _hex_bytes, BYTES: bytes}


def compile_grammar(grammar: Grammar) -> Parser:
    """A parser for a declaration: splits at each field's terminator and converts, into a
    named tuple of the fields (``req.addr``; ``_asdict()`` for the dict).

    construct's generic parse costs tens of microseconds per packet, too much on the
    hot path (m, Z, vCont); this walks the declaration once and returns a closure.
    A tuple, not a dict with __getattr__: each field read was a Python call."""
    record = NamedTuple("Request", [(f.name, Any) for f in grammar])  # type: ignore[misc]
    fields = tuple((f.term, _CONVERT[f.kind]) for f in grammar)
    make = tuple.__new__

    def parse_fast(data: bytes) -> Any:
        values = []
        rest = data
        for term, conv in fields:
            if term is None:
                piece, rest = rest, b""
            else:
                piece, found, rest = rest.partition(term)
                if not found:
                    raise ValueError(f"missing {term!r}")
            values.append(conv(piece))
        return make(record, values)

    return parse_fast


# id(grammar) -> (the grammar, kept so the id stays its own; its parser; its recent short
# packets' results). Looked up by id, not by the grammar tuple (hashed afresh at every look-up).
_COMPILED: dict[int, tuple[Grammar, Parser | None, dict[bytes, Any]]] = {}
REMEMBERED = 64  # packets up to this long have their results kept: gdb sends the same again and
# again (the Z0/z0 around every step off a hit, the `m` of the same stack words at every step)


def parse(grammar: Grammar, data: bytes) -> Any:
    """Parse with a declared grammar; malformed input raises one of ParseError. The results
    are immutable (named tuples of ints and bytes), so a repeated packet gets the same one."""
    entry = _COMPILED.get(id(grammar))
    parser = entry[1] if entry is not None and entry[0] is grammar else None
    if entry is None or parser is None:
        parser = compile_grammar(grammar)
        entry = _COMPILED[id(grammar)] = (grammar, parser, results_of(grammar))
    results = entry[2]
    found = results.get(data)
    if found is None:
        found = parser(data)
        if len(data) <= REMEMBERED:
            if len(results) >= 256:
                results.clear()
            results[data] = found
    return found


def prepare(grammar: Grammar) -> None:
    """Compile GRAMMAR's parser ahead of its first packet (``parse`` would, ~50 us: a class),
    keeping its results dict (handlers hold it: ``results_of``)."""
    entry = _COMPILED.get(id(grammar))
    if entry is None or entry[0] is not grammar or entry[1] is None:
        _COMPILED[id(grammar)] = (grammar, compile_grammar(grammar), results_of(grammar))


def results_of(grammar: Grammar) -> dict[bytes, Any]:
    """The results ``parse`` keeps for GRAMMAR's recent short packets, by packet (one dict for
    good: parse clears it when full), for a handler that looks its packet up there before it
    calls parse (the z0/Z0 of every hit, gdb's `m` at every step). Compiles nothing yet."""
    entry = _COMPILED.get(id(grammar))
    if entry is None or entry[0] is not grammar:
        entry = _COMPILED[id(grammar)] = (grammar, None, {})
    return entry[2]


@cache
def _adapters() -> tuple[type, type]:
    import construct as cs

    class HexAdapter(cs.Adapter):  # type: ignore[misc]
        """ASCII hex digits <-> int."""

        def _decode(self, obj: bytes, context: Any, path: Any) -> int:
            if not obj or len(obj) > 32:
                raise cs.ValidationError("bad hex number")
            return int(obj, 16)

        def _encode(self, obj: int, context: Any, path: Any) -> bytes:
            return b"%x" % obj

    class HexBytesAdapter(cs.Adapter):  # type: ignore[misc]
        """Hex-encoded bytes <-> bytes."""

        def _decode(self, obj: bytes, context: Any, path: Any) -> bytes:
            return bytes.fromhex(obj.decode("ascii"))

        def _encode(self, obj: bytes, context: Any, path: Any) -> bytes:
            return obj.hex().encode()

    return HexAdapter, HexBytesAdapter


def as_construct(grammar: Grammar) -> cs.Struct:
    """The declaration as a construct Struct (for tests and tools; imports construct)."""
    import construct as cs

    hex_adapter, hex_bytes_adapter = _adapters()
    subcons = []
    for f in grammar:
        raw = cs.GreedyBytes if f.term is None else cs.NullTerminated(cs.GreedyBytes, term=f.term)
        if f.kind == HEX:
            raw = hex_adapter(raw)
        elif f.kind == HEX_BYTES:
            raw = hex_bytes_adapter(raw)
        subcons.append(f.name / raw)
    return cs.Struct(*subcons)


class ThreadId(NamedTuple):
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


class VContAction(NamedTuple):
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
