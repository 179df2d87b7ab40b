"""The framer under arbitrary chunking, escapes, checksums and NAKs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gdbstub.protocol import framing
from gdbstub.protocol.framing import Ack, BadPacket, Framer, Interrupt, Nak, Oversized, Packet


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


def test_oversized_packet_is_refused_by_name_and_stream_recovers() -> None:
    """Not a BadPacket (that one is NAKed, and a NAK brings the same packet back for ever)."""
    framer = Framer(max_packet=100)
    big = framing.encode(b"M1000,2000:" + b"0" * 5000)
    events = framer.feed(big + framing.encode(b"?"))
    assert events == [Oversized(b"M1000,2000:" + b"0" * (framing.HEAD - 11), len(big) - 4),
                      Packet(b"?")]


def test_oversized_packet_with_a_bad_checksum_is_still_refused_not_naked() -> None:
    events = Framer(max_packet=100).feed(b"$qFoo:" + b"a" * 500 + b"#zz" + framing.encode(b"g"))
    assert events == [Oversized(b"qFoo:" + b"a" * (framing.HEAD - 5), 505), Packet(b"g")]


def test_oversized_head_is_unescaped_and_a_cut_escape_dropped() -> None:
    payload = b"X0,10:" + b"}" * 200  # each '}' is sent as '}]': the head ends inside an escape
    (event,) = Framer(max_packet=100).feed(framing.encode(payload))
    assert isinstance(event, Oversized)
    assert event.head == b"X0,10:" + b"}" * ((framing.HEAD - 6) // 2)


def test_oversized_only_after_unescaping() -> None:
    """Under twice the limit on the wire (kept whole), over it once unescaped: refused too."""
    payload = b"X0,0:" + b"#" * 60
    (event,) = Framer(max_packet=60).feed(framing.encode(payload))
    assert event == Oversized(payload[:framing.HEAD], len(framing.escape(payload)))


def test_oversized_body_in_any_chunks_keeps_memory_flat() -> None:
    """One byte at a time or a megabyte at once: the framer holds the head, never the body."""
    framer = Framer(max_packet=100)
    events = framer.feed(b"$m0,")
    for _ in range(64):
        events += framer.feed(b"1" * 16384)
        assert len(framer._body) <= 2 * 100 + 16  # the head is all it keeps
    events += framer.feed(b"#00")
    for byte in framing.encode(b"?"):
        events += framer.feed(bytes([byte]))
    assert events == [Oversized(b"m0," + b"1" * (framing.HEAD - 3), 3 + 64 * 16384), Packet(b"?")]


def test_a_new_packet_cuts_an_oversized_one_short() -> None:
    """A '$' inside the skipped body: the client died mid-packet; the next packet is served."""
    framer = Framer(max_packet=100)
    events = framer.feed(b"$M0,1:" + b"0" * 1000 + framing.encode(b"g"))
    assert events == [Packet(b"g")] and framer.dropped == 1


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


@settings(deadline=None)  # no timing here: a loaded machine must not fail it
@given(st.binary(max_size=2000), st.integers(min_value=0, max_value=2000))
def test_checksum_is_the_byte_sum(data: bytes, cut: int) -> None:
    """Adler-32 chunks, any size and content; ASCII with its step given as the hex path does."""
    assert framing.checksum(data) == sum(data) & 0xFF
    text = data.hex().encode()[:cut]
    assert framing.checksum(text, 512) == sum(text) & 0xFF


@settings(deadline=None)
@given(st.binary(max_size=3000))
def test_a_ready_hex_reply_is_framed_as_plain_hex(data: bytes) -> None:
    text = data.hex().encode()
    reply = framing.ready_reply(b"", text, text, ascii=True)
    assert reply == text
    assert framing.encode(reply) == framing.encode(bytes(bytearray(text)))
