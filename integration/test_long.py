"""Long sessions: many breakpoint hits, many packets, many reconnections, and the stub's
memory (RSS) and file descriptors stay flat. `make test` runs shorter sessions than
`make fuzz` (GDBSTUB_FUZZ=1), which runs the full 100 000 hits and 100 000 packets.

RSS is read at the start (after a warm-up, once caches are filled) and at the end; the
allowance is 1 MiB plus 8 bytes per iteration, so a leak of a few dozen bytes per packet
or hit shows at full length. File descriptors must be exactly as many at the end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import harness
import pytest
from harness import ProcessTracker, Server
from rawclient import RawClient, fd_count, rss_kib, symbol_address

FUZZ = bool(os.environ.get("GDBSTUB_FUZZ"))
HITS = 100_000 if FUZZ else 5_000
PACKETS = 100_000 if FUZZ else 20_000
RECONNECTS = 1_000 if FUZZ else 100
COUNTS = harness.ROOT / "build" / "reliability-counts.txt"
LOOP = "loop-nopie"


def report(line: str) -> None:
    COUNTS.parent.mkdir(exist_ok=True)
    with COUNTS.open("a") as f:
        f.write(line + "\n")


@pytest.fixture
def stub(procs: ProcessTracker) -> Callable[..., Server]:
    def run(args: list[str], **kwargs: object) -> Server:
        return harness.start_server(procs, "gdbstub", harness.program(LOOP), args, **kwargs)  # type: ignore[arg-type]

    return run


class Meter:
    """The stub's RSS and fd count at the start and the end of the measured stretch."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rss_start = rss_kib(pid)
        self.fds_start = fd_count(pid)
        self.t_start = time.monotonic()
        self.rss_end = self.fds_end = 0
        self.seconds = 0.0

    def stop(self) -> None:
        self.rss_end = rss_kib(self.pid)
        self.fds_end = fd_count(self.pid)
        self.seconds = time.monotonic() - self.t_start

    def check(self, iterations: int) -> None:
        allowance = 1024 + iterations * 8 // 1024
        grown = self.rss_end - self.rss_start
        assert grown <= allowance, f"RSS grew {grown} KiB over {iterations} iterations"
        assert self.fds_end == self.fds_start, f"fds {self.fds_start} -> {self.fds_end}"

    def line(self, what: str, n: int) -> str:
        return (f"{what}={n} seconds={self.seconds:.1f} rss_kib start={self.rss_start} end={self.rss_end} "
                f"fds start={self.fds_start} end={self.fds_end}")


@pytest.mark.slow
@pytest.mark.timeout(1800 if FUZZ else 300)
def test_many_breakpoint_hits(stub: Callable[..., Server]) -> None:
    warmup = 200
    server = stub([str(HITS + warmup + 10)])
    hot = symbol_address(harness.program(LOOP), "hot")
    with RawClient(server.port, timeout=60) as client:
        assert client.handshake()[:1] == b"T"
        assert client.request(b"Z0,%x,1" % hot) == b"OK"
        for _ in range(warmup):
            assert client.request(b"vCont;c").startswith(b"T05")
        meter = Meter(server.proc.pid)
        for i in range(HITS):
            reply = client.request(b"vCont;c")
            assert reply.startswith(b"T05") and b"swbreak" in reply, (i, reply)
        meter.stop()
        assert client.request(b"z0,%x,1" % hot) == b"OK"
        assert client.request(b"vCont;c") == b"W7;process:%x" % server.inferior_pid
    report("long-session " + meter.line("breakpoint_hits", HITS))
    meter.check(HITS)
    assert server.wait_exit(15) is not None


OPEN = b"vFile:open:2f70726f632f73656c662f6d617073,0,0"  # /proc/self/maps, read-only


def ask(client: RawClient, packet: bytes, fd: list[bytes]) -> bytes:
    """One packet of the mix; FD stands for the descriptor the last vFile:open returned."""
    reply = client.request(packet.replace(b"FD", fd[0]))
    if packet == OPEN:
        assert reply.startswith(b"F") and not reply.startswith(b"F-"), reply
        fd[0] = reply[1:]
    return reply


def packet_mix(exe_hot: int, data: int) -> list[bytes]:
    """What a client asks a stopped program over and over, errors and unknown packets included."""
    return [
        b"g", b"m%x,40" % data, b"m%x,100" % exe_hot, b"p10", b"?", b"qfThreadInfo", b"qsThreadInfo",
        b"qXfer:features:read:target.xml:0,fff", b"qXfer:threads:read::0,fff", b"Z0,%x,1" % exe_hot,
        b"m%x,8" % exe_hot, b"z0,%x,1" % exe_hot, b"m0,4", b"Hgp0.0", b"qC", b"qAttached",
        b"vFile:setfs:0", OPEN, b"vFile:pread:FD,100,0", b"vFile:close:FD",
        b"qUnknownPacket", b"M%x,4:01020304" % data, b"m%x,4" % data, b"T1", b"vCont?",
    ]


@pytest.mark.slow
@pytest.mark.timeout(1800 if FUZZ else 300)
def test_many_packets(stub: Callable[..., Server]) -> None:
    server = stub(["3"])
    exe = harness.program(LOOP)
    mix = packet_mix(symbol_address(exe, "hot"), symbol_address(exe, "table"))
    with RawClient(server.port, timeout=60) as client:
        client.handshake()
        fd = [b"0"]
        for p in mix * 20:
            ask(client, p, fd)
        expected = {p: ask(client, p, fd) for p in mix}  # after warming up; later answers must match
        meter = Meter(server.proc.pid)
        for i in range(PACKETS):
            packet = mix[i % len(mix)]
            reply = ask(client, packet, fd)
            if packet[:1] not in b"qv":  # replies with per-call parts (fds, sizes) compared loosely
                assert reply == expected[packet], (i, packet, reply)
        meter.stop()
        assert client.request(b"vCont;c")[:1] == b"W"
    report("long-session " + meter.line("packets", PACKETS))
    meter.check(PACKETS)
    assert server.wait_exit(15) is not None


@pytest.mark.slow
@pytest.mark.timeout(1800 if FUZZ else 300)
def test_many_reconnections(stub: Callable[..., Server]) -> None:
    """Clients come and go (some mid-packet): the stub's descriptors and memory do not pile up."""
    server = stub(["3"], once=False)
    g32 = symbol_address(harness.program(LOOP), "g32")

    def reconnect(i: int) -> None:
        with RawClient(server.port) as client:
            assert client.handshake(no_ack=i % 2 == 0)[:1] == b"T"
            assert client.request(b"m%x,4" % g32) == b"33333333"
            if i % 3 == 0:
                client.send_raw(b"$m%x,4" % g32)  # and leave mid-packet

    # Each reconnection relaunches the program; the allocator settles over the first hundreds
    # (measured: +1.5 MiB by 900, then flat), so warm up, with the same clients, before measuring.
    for i in range(500 if FUZZ else 100):
        reconnect(i)
    # Measured with one client connected and served (so the stub is done with the ones before).
    with RawClient(server.port) as client:
        client.handshake()
        meter = Meter(server.proc.pid)
    for i in range(RECONNECTS):
        reconnect(i)
    with RawClient(server.port) as client:
        client.handshake()
        meter.stop()
        client.send(b"k")
    report("long-session " + meter.line("reconnections", RECONNECTS))
    meter.check(RECONNECTS)
    assert server.wait_exit(15) is not None
