"""Packet argument grammars, including malformed input."""

from __future__ import annotations

from typing import Any

import construct
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdbstub.protocol import grammar as g


def test_read_memory() -> None:
    req = g.parse(g.ReadMemory, b"7fffffffe000,40")
    assert (req.addr, req.length) == (0x7FFFFFFFE000, 0x40)


@pytest.mark.parametrize("bad", [b"", b",", b"12", b"zz,1", b"1,", b"1,zz", b"1" * 40 + b",1"])
def test_read_memory_malformed(bad: bytes) -> None:
    with pytest.raises(g.ParseError):
        g.parse(g.ReadMemory, bad)


def test_write_memory() -> None:
    req = g.parse(g.WriteMemory, b"1000,2:abcd")
    assert (req.addr, req.length, req.data) == (0x1000, 2, b"\xab\xcd")


@pytest.mark.parametrize("bad", [b"1000,2", b"1000,2:abc", b"1000:2,ab", b"x,2:ab"])
def test_write_memory_malformed(bad: bytes) -> None:
    with pytest.raises(g.ParseError):
        g.parse(g.WriteMemory, bad)


def test_write_binary_keeps_raw_bytes() -> None:
    req = g.parse(g.WriteBinary, b"10,3:\x00:\xff")
    assert req.data == b"\x00:\xff"


def test_breakpoint() -> None:
    req = g.parse(g.Breakpoint, b"0,401136,1")
    assert (req.type, req.addr, req.kind) == (0, 0x401136, 1)


def test_register_packets() -> None:
    assert g.parse(g.ReadRegister, b"10").regnum == 16
    req = g.parse(g.WriteRegister, b"0=0100000000000000")
    assert (req.regnum, req.value) == (0, b"\x01" + b"\0" * 7)


@pytest.mark.parametrize(
    ("text", "pid", "tid"),
    [
        (b"p1f.20", 0x1F, 0x20), (b"p1f", 0x1F, -1), (b"p-1.-1", -1, -1),
        (b"-1", -1, -1), (b"0", 0, 0), (b"2a", 7, 0x2A),
    ],
)
def test_thread_ids(text: bytes, pid: int, tid: int) -> None:
    assert g.parse_thread_id(text, 7) == g.ThreadId(pid, tid)


@pytest.mark.parametrize("bad", [b"", b"p", b"pzz", b"q1", b"p1.", b"1" * 20])
def test_thread_ids_malformed(bad: bytes) -> None:
    with pytest.raises(ValueError):
        g.parse_thread_id(bad, 7)


def test_vcont() -> None:
    acts = g.parse_vcont(b";s:p1.2;C0b:3;r1000,1010:p1.2;c", 1)
    assert [a.kind for a in acts] == ["s", "C", "r", "c"]
    assert acts[1].signal == 0xB and acts[1].thread == g.ThreadId(1, 3)
    assert (acts[2].start, acts[2].end) == (0x1000, 0x1010)
    assert acts[3].thread is None


@pytest.mark.parametrize("bad", [b"", b";", b";x", b";cc", b";C", b";rzz", b";s:pq"])
def test_vcont_malformed(bad: bytes) -> None:
    with pytest.raises(ValueError):
        g.parse_vcont(bad, 1)


GRAMMARS = [g.ReadMemory, g.WriteMemory, g.WriteBinary, g.Breakpoint, g.ReadRegister,
            g.WriteRegister, g.XferWindow]


@settings(max_examples=300)
@given(st.sampled_from(GRAMMARS), st.binary(max_size=40) | st.from_regex(rb"\A[0-9a-f,:=]{0,30}\Z"))
def test_compiled_parser_agrees_with_declaration(grammar: Any, data: bytes) -> None:
    """The fast parser built from a declaration gives construct's answer, or both reject."""
    try:
        want = g.as_construct(grammar).parse(data)
    except (*g.ParseError, construct.ConstructError):
        want = None
    try:
        got = g.compile_grammar(grammar)(data)
    except g.ParseError:
        got = None
    if want is None or got is None:
        assert want is None and got is None
    else:
        assert got._asdict() == {k: v for k, v in want.items() if not k.startswith("_")}
