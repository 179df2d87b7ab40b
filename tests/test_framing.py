"""The framer under arbitrary chunking, escapes, checksums and NAKs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gdbstub.protocol import framing
from gdbstub.protocol.framing import Ack, BadPacket, Framer, Interrupt, Nak, Packet


def feed_chunks(data: bytes, cuts: list[int]) -> list[framing.Event]:
    framer = Framer()
    events: list[framing.Event] = []
    pos = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}):
        events += framer.feed(data[pos:cut])
        pos = cut
    events += framer.feed(data[pos:])
    return events


def test_simple_packet() -> None:
    assert Framer().feed(b"$g#67") == [Packet(b"g")]


def test_acks_naks_interrupt() -> None:
    assert Framer().feed(b"+-\x03") == [Ack(), Nak(), Interrupt()]


def test_bad_checksum() -> None:
    events = Framer().feed(b"$g#00")
    assert len(events) == 1 and isinstance(events[0], BadPacket)


def test_malformed_checksum_digits() -> None:
    events = Framer().feed(b"$g#zz$g#67")
    assert isinstance(events[0], BadPacket)
    assert events[1] == Packet(b"g")


def test_escape_roundtrip() -> None:
    raw = b"a$b#c}d*e"
    encoded = framing.encode(raw)
    assert b"}" in encoded[1:-3]
    assert Framer().feed(encoded) == [Packet(raw)]


def test_oversized_packet_is_rejected_and_stream_recovers() -> None:
    framer = Framer(max_packet=100)
    big = framing.encode(b"M" + b"0" * 5000)
    events = framer.feed(big + framing.encode(b"?"))
    assert isinstance(events[0], BadPacket)
    assert events[1] == Packet(b"?")


def test_noise_between_packets_is_ignored() -> None:
    assert Framer().feed(b"garbage$?#3f") == [Packet(b"?")]


def test_run_length_decode() -> None:
    assert framing.run_length_decode(b"0* ") == b"0" * 4


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=5), st.lists(st.integers(0, 2000)))
def test_any_chunking_gives_same_packets(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(framing.encode(p) for p in payloads)
    assert feed_chunks(stream, cuts) == [Packet(p) for p in payloads]


@given(st.binary(max_size=500))
def test_escape_unescape_inverse(data: bytes) -> None:
    assert framing.unescape(framing.escape(data)) == data
    assert not any(c in framing.escape(data) for c in b"$#*") or b"}" in framing.escape(data)
