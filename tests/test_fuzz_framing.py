"""Fuzzing the framer: whatever bytes arrive, in whatever chunks, it never raises,
never holds more than one packet's worth of memory, and finds the next good
packet again. `make test` runs a bounded number of examples, `make fuzz` many more."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rsp_corpus import FUZZ, ROOT, client_packets, mutate

from gdbstub.protocol import framing
from gdbstub.protocol.framing import Ack, BadPacket, Framer, Interrupt, Nak, Oversized, Packet

EXAMPLES = 10000 if FUZZ else 300
fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
pytestmark = pytest.mark.timeout(1800 if FUZZ else 120)
COUNTS = ROOT / "build" / "reliability-counts.txt"

SENTINEL = b"qSentinel"
FED = [0]  # inputs fed to a framer, for the counts report


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Iterator[None]:
    yield
    COUNTS.parent.mkdir(exist_ok=True)
    with COUNTS.open("a") as f:
        f.write(f"framing-fuzz inputs={FED[0]}\n")
EVENT_TYPES = (Packet, Ack, Nak, Interrupt, BadPacket, Oversized)


def feed_chunks(framer: Framer, data: bytes, cuts: list[int]) -> list[framing.Event]:
    FED[0] += 1
    events: list[framing.Event] = []
    pos = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}):
        events += framer.feed(data[pos:cut])
        pos = cut
    events += framer.feed(data[pos:])
    return events


def buffered(framer: Framer) -> int:
    """Bytes the framer holds between calls (its only state that can grow)."""
    return len(framer._body) + len(framer._cs)


corpus = st.sampled_from(client_packets())


@fuzz
@given(st.binary(max_size=4096), st.lists(st.integers(0, 5000), max_size=8))
def test_garbage_never_raises(data: bytes, cuts: list[int]) -> None:
    framer = Framer(max_packet=256)
    events = feed_chunks(framer, data, cuts)
    assert all(isinstance(e, EVENT_TYPES) for e in events)
    assert all(len(e.data) <= 256 for e in events if isinstance(e, Packet))
    assert buffered(framer) <= 256 * 2 + 16 + 2
    assert all(len(e.head) <= framing.HEAD for e in events if isinstance(e, Oversized))


@fuzz
@given(st.binary(max_size=2048), st.lists(st.integers(0, 3000), max_size=8))
def test_chunking_does_not_change_events(data: bytes, cuts: list[int]) -> None:
    assert feed_chunks(Framer(), data, cuts) == Framer().feed(data)


@fuzz
@given(st.binary(max_size=framing.MAX_PACKET), st.lists(st.integers(0, 40000), max_size=6))
def test_every_payload_round_trips(payload: bytes, cuts: list[int]) -> None:
    assert feed_chunks(Framer(), framing.encode(payload), cuts) == [Packet(payload)]


@fuzz
@given(corpus, st.integers(0, 2**32), st.integers(1, 6), st.lists(st.integers(0, 2000), max_size=4))
def test_mutated_transcript_packets_then_a_good_one(
    payload: bytes, seed: int, rounds: int, cuts: list[int]
) -> None:
    """A damaged packet costs at most itself: the next well-formed packet always comes through."""
    rng = random.Random(seed)
    damaged = mutate(framing.encode(payload), rng, rounds)
    framer = Framer()
    events = feed_chunks(framer, damaged + framing.encode(SENTINEL), cuts)
    assert all(isinstance(e, EVENT_TYPES) for e in events)
    assert events and events[-1] == Packet(SENTINEL), events


@fuzz
@given(corpus, st.integers(1, 200))
def test_truncated_packet_is_dropped_and_the_next_one_is_read(payload: bytes, keep: int) -> None:
    """Half a packet (a client that died or a retransmission after a lost tail), then a whole one."""
    whole = framing.encode(payload)
    FED[0] += 1
    events = Framer().feed(whole[: min(keep, len(whole) - 1)] + framing.encode(SENTINEL))
    assert events[-1] == Packet(SENTINEL), events
    assert all(not isinstance(e, Packet) or e.data == SENTINEL for e in events)


@fuzz
@given(corpus, st.integers(0, 255))
def test_bad_checksum_is_a_bad_packet(payload: bytes, delta: int) -> None:
    body = framing.escape(payload)
    wrong = (framing.checksum(body) + 1 + delta % 255) & 0xFF
    FED[0] += 1
    events = Framer().feed(b"$" + body + b"#%02x" % wrong + framing.encode(SENTINEL))
    assert isinstance(events[0], BadPacket)
    assert events[-1] == Packet(SENTINEL)


@pytest.mark.parametrize("size", [framing.MAX_PACKET + 1, 1 << 20, 8 << 20])
def test_oversized_packet_memory_stays_bounded(size: int) -> None:
    """Megabytes of packet body: rejected, never buffered beyond the limit, and the stream recovers."""
    framer = Framer()
    chunk = b"a" * 65536
    events = framer.feed(b"$M0,0:")
    peak = 0
    # beyond twice the limit (what the framer buffers while escapes may still halve the body)
    chunks = max(size, 2 * framing.MAX_PACKET) // len(chunk) + 1
    for _ in range(chunks):
        events += framer.feed(chunk)
        peak = max(peak, buffered(framer))
    events += framer.feed(b"#00" + framing.encode(SENTINEL))
    assert peak <= framing.MAX_PACKET * 2 + 16 + len(chunk)
    assert events == [Oversized(b"M0,0:" + b"a" * (framing.HEAD - 5), len(b"M0,0:") + 65536 * chunks),
                      Packet(SENTINEL)]


def test_oversized_after_unescape_is_rejected() -> None:
    """Escapes halve the size: a body under twice the limit that unescapes over it is still too long."""
    payload = b"X0,0:" + b"}" * (framing.MAX_PACKET - 4)
    events = Framer().feed(framing.encode(payload))
    assert events == [Oversized(payload[:framing.HEAD], len(framing.escape(payload)))]


def test_interrupt_and_acks_between_damaged_packets() -> None:
    events = Framer().feed(b"+\x03$g#0-" + framing.encode(b"?") + b"\x03")
    assert events[:2] == [Ack(), Interrupt()]
    assert Packet(b"?") in events and events[-1] == Interrupt()


@fuzz
@given(st.binary(max_size=512))
def test_run_length_decode_never_raises(data: bytes) -> None:
    out = framing.run_length_decode(data)
    assert len(out) <= len(data) * 99


@fuzz
@given(st.binary(max_size=512))
def test_unescape_never_raises(data: bytes) -> None:
    assert len(framing.unescape(data)) <= len(data)


@fuzz
@given(corpus, st.randoms(use_true_random=False), st.integers(0, 3), st.binary(max_size=300), st.booleans())
def test_whole_packet_agrees_with_feed(packet: bytes, rng: random.Random, rounds: int, junk: bytes,
                                       use_junk: bool) -> None:
    """The hot path (one plain packet per read) takes only what feed() takes as that one packet."""
    data = junk if use_junk else mutate(framing.encode(packet), rng, rounds)
    body = Framer().whole_packet(data)
    if body is not None:
        assert Framer().feed(data) == [Packet(body)]


def test_whole_packet_takes_the_usual_read() -> None:
    framer = Framer()
    assert framer.whole_packet(framing.encode(b"vCont;s:p1f.1f")) == b"vCont;s:p1f.1f"
    assert framer.whole_packet(b"$m0,8#ad") is None  # a wrong checksum: feed() answers it
    assert framer.whole_packet(b"$m0,8#2D") is None  # uppercase: feed() takes it
    assert framer.whole_packet(b"$a#61$b#62") is None  # two packets
    assert framer.whole_packet(b"$X0,1:}]#f3") is None  # an escape
    framer.feed(b"$m0")  # in the middle of a packet: everything goes to feed()
    assert framer.whole_packet(b"$g#67") is None


def test_a_remembered_packet_is_taken_again_only_between_packets() -> None:
    """A repeat is one look-up (the same payload object), but not while a packet is in
    progress: then the read is the rest of that one, for feed()."""
    framer = Framer()
    data = framing.encode(b"z0,555555555151,1")
    first = framer.whole_packet(data)
    assert first == b"z0,555555555151,1"
    assert framer.whole_packet(bytes(data)) is first
    framer.feed(b"$m0")
    assert framer.whole_packet(bytes(data)) is None
    assert framer.feed(framing.encode(b"m0,8")[3:]) == [Packet(b"m0,8")]
    assert framer.whole_packet(bytes(data)) is first
