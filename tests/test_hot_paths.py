"""The hot-path shortcuts give exactly what the plain code gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gdbstub.protocol import framing
from gdbstub.protocol import grammar as g


@settings(max_examples=300)
@given(st.binary(min_size=0, max_size=40000))
def test_checksum_is_the_byte_sum(data: bytes) -> None:
    assert framing.checksum(data) == sum(data) & 0xFF


def test_checksum_of_large_replies() -> None:
    for size in (255, 256, 257, 511, 512, 513, 1023, 1024, 1025, 16383, 0x4000, 0x9000, 0x20100):
        for fill in (0x00, 0x7F, 0xFF):
            data = bytes([fill]) * size
            assert framing.checksum(data) == sum(data) & 0xFF


@given(st.sampled_from([b";s:p10.10;c:p10.-1", b";c:p10.-1", b";r1000,1010:p10.10;c", b";C05:10", b";t"]),
       st.integers(min_value=1, max_value=1 << 22))
def test_vcont_parses_are_remembered_not_shared(args: bytes, pid: int) -> None:
    first = g.parse_vcont(args, pid)
    first.append(first[0])  # a caller changing its list does not change the next parse
    again = g.parse_vcont(args, pid)
    assert again == g._parse_vcont(args, pid)
    assert len(again) == len(first) - 1


def test_new_event_is_the_named_tuple() -> None:
    """The hot sites build StopEvents with tuple.__new__ and every field in order: a field
    added to StopEvent must be added there too (decode.py's step and hit event)."""
    from gdbstub.target.base import STOP_SIGNAL, StopEvent, new_event

    assert len(StopEvent._fields) == 11
    made = new_event(StopEvent, (STOP_SIGNAL, 7, 8, 5, 0, "swbreak", 0, 0, 0, "", 0))
    assert made == StopEvent(STOP_SIGNAL, 7, 8, signal=5, reason="swbreak")
    assert type(made) is StopEvent and made.reason == "swbreak" and made.syscall == 0
