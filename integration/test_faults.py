"""Faults and bad input against the real stub over its socket.

Nothing a client sends may crash or hang the stub or change the program it holds;
clients may vanish at any moment; the program may die or fork/exec under it; the
stub may be told to end by a signal or be killed. Each case checks the program
afterwards through the stub (registers, memory, '?') or through /proc, and the
process tracker fails any test that leaves a process behind.
"""

from __future__ import annotations

import errno
import os
import random
import re
import resource
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import harness
import pytest
from extutil import spawn_server
from harness import ProcessTracker, Server, pid_alive, wait_until
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rawclient import (
    ProtocolTimeout,
    RawClient,
    allowed,
    client_packets,
    line_address,
    load_bias,
    mutate,
    read_mem,
    rss_kib,
    symbol_address,
    tracer_of,
)

from gdbstub.protocol import framing
from gdbstub.protocol.session import packet_name

FUZZ = bool(os.environ.get("GDBSTUB_FUZZ"))
EXAMPLES = 1000 if FUZZ else 40
COUNTS = harness.ROOT / "build" / "reliability-counts.txt"

LOOP = "loop-nopie"  # fixed addresses: the globals can be read without a load bias
GLOBALS = ("g8", "g16", "g32", "g64", "message", "table", "hot")

# Packets the live fuzzer must not send even by accident: they resume, end or leave the program
# (tested on their own below), or reach outside it (see rsp_corpus.allowed).
RESUMING = {"c", "C", "s", "S", "vCont", "k", "vKill", "D", "R", "vRun", "vAttach", "!", "vCtrlC",
            "QNonStop", "vStopped", "i", "I", "t", "r"}
STATE_CHANGING = {"M", "X", "G", "P", "Z", "z", "QRestoreRegisterState", "_M", "_m", "qXfer"}
# Renegotiation changes what the session offers, not the program: a later qSupported may add
# features (it never turns off what gdb relies on, such as target.xml's 'g' layout).
RENEGOTIATING = {"qSupported"}


def continue_to_exit(sock: socket.socket) -> bytes:
    """Send `vCont;c` (no-ack not negotiated: the stub's `+` comes too) and read until the `W`
    reply (bounded by a 20 s timeout per read); return everything read."""
    sock.settimeout(20)
    sock.sendall(framing.encode(b"vCont;c"))
    got = b""
    while b"$W" not in got:
        data = sock.recv(4096)
        assert data, got
        got += data
    return got


def count(line: str) -> None:
    COUNTS.parent.mkdir(exist_ok=True)
    with COUNTS.open("a") as f:
        f.write(line + "\n")


# --------------------------------------------------------------------------- fixtures


def start(procs: ProcessTracker, prog: str, args: list[str] | None = None, *, once: bool = True,
          extra: list[str] | None = None) -> Server:
    return harness.start_server(procs, "gdbstub", harness.program(prog), args or [], once=once,
                                extra=extra or [])


@pytest.fixture
def stub(procs: ProcessTracker) -> Callable[..., Server]:
    def run(prog: str = LOOP, args: list[str] | None = None, **kwargs: object) -> Server:
        return start(procs, prog, args if args is not None else ["1000000"], **kwargs)  # type: ignore[arg-type]

    return run


def snapshot(client: RawClient, exe: Path) -> tuple[bytes, ...]:
    """What a bad packet must not change: every register and the program's globals and code."""
    parts = [client.request(b"g")]
    for name in GLOBALS:
        parts.append(client.request(b"m%x,40" % symbol_address(exe, name)))
    assert not any(p.startswith(b"E") for p in parts), parts
    return tuple(parts)


def differences(before: tuple[bytes, ...], after: tuple[bytes, ...]) -> list[tuple[int, int, bytes, bytes]]:
    """(part, byte offset, old, new) of each changed byte run, for a readable failure."""
    out = []
    for part, (a, b) in enumerate(zip(before, after, strict=True)):
        if a != b:
            first = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
            out.append((part, first // 2, a[first:first + 16], b[first:first + 16]))
    return out


def stop_reply_ok(reply: bytes) -> bool:
    return reply[:1] in (b"T", b"S") and len(reply) >= 3


def assert_clean_exit(server: Server, inferior: int | None) -> None:
    """The stub ended and took the program it launched with it."""
    assert server.wait_exit(15) is not None, f"stub did not exit\n{server.describe()}"
    if inferior is not None:
        assert wait_until(lambda: not harness.pid_alive(inferior), 10), "program outlived the stub"


# --------------------------------------------------------------------------- live fuzzing


def bad_inputs() -> st.SearchStrategy[bytes]:
    corpus = st.sampled_from(client_packets())
    sizes = [framing.MAX_PACKET + 1, 1 << 16, 1 << 20] if not FUZZ else [framing.MAX_PACKET + 1, 1 << 20,
                                                                          4 << 20]

    def bad_checksum(p: bytes) -> bytes:
        body = framing.escape(p)
        return b"$" + body + b"#%02x" % ((framing.checksum(body) + 1) & 0xFF)

    return st.one_of(
        corpus.map(bad_checksum),
        st.builds(lambda n, c: b"$" + bytes([c]) * n + b"#00", st.sampled_from(sizes),
                  st.sampled_from(b"0aM$}")),
        st.builds(lambda p, k: framing.encode(p)[: max(1, k % len(framing.encode(p)))], corpus,
                  st.integers(1, 10000)),
        st.binary(min_size=1, max_size=2048),
        st.builds(lambda p, seed, n: mutate(framing.encode(p), random.Random(seed), n), corpus,
                  st.integers(0, 2**32), st.integers(1, 5)),
        corpus.map(framing.encode),
    )


def run_live_fuzz(client: RawClient, exe: Path, examples: int, tally: dict[str, int]) -> None:
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    @given(bad_inputs())
    def one(data: bytes) -> None:
        # What the stub will make of it: the same framer, from the idle state it is in now.
        events = framing.Framer().feed(data)
        packets = [e.data for e in events if isinstance(e, framing.Packet)]
        assume(all(allowed(p) and packet_name(p) not in RESUMING for p in packets))
        assume(client.no_ack or b"QStartNoAckMode" not in packets)  # the client must know
        retransmits = 0 if client.no_ack else sum(isinstance(e, framing.Nak) for e in events)
        before = snapshot(client, exe)
        client.send_raw(data)
        tally["packets"] += 1
        refused = sum(isinstance(e, framing.Oversized) for e in events)  # each gets its own reply
        replies = [client.receive() for _ in range(len(packets) + refused + retransmits)]
        changed = any(packet_name(p) in STATE_CHANGING for p in packets) and not all(
            r.startswith(b"E") or r == b"" for r in replies)
        changed |= any(packet_name(p) in RENEGOTIATING for p in packets)
        status = client.request(b"?")
        assert stop_reply_ok(status), (data[:200], status)
        if not changed:
            after = snapshot(client, exe)
            assert after == before, f"{data[:200]!r} changed the program: {differences(before, after)}"

    one()


@pytest.mark.timeout(3600 if FUZZ else 300)
@pytest.mark.parametrize(("no_ack", "prog"), [(False, LOOP), (True, "loop-32-nopie")],
                         ids=["ack-x86_64", "noack-i386"])
def test_live_fuzz_bad_packets(stub: Callable[..., Server], no_ack: bool, prog: str) -> None:
    """Bad checksums, oversized, truncated, garbage and mutated transcript packets over the socket:
    after each the stub answers '?' and the program's registers and memory are as they were."""
    server = stub(prog)
    exe = harness.program(prog)
    tally = {"packets": 0}
    with RawClient(server.port) as client:
        assert stop_reply_ok(client.handshake(no_ack=no_ack))
        rss_start = rss_kib(server.proc.pid)
        run_live_fuzz(client, exe, EXAMPLES, tally)
        rss_end = rss_kib(server.proc.pid)
        # Fuzzed packets may have left breakpoints or changed registers, legitimately: end it with k.
        client.send(b"k")
    count(f"live-fuzz[{'noack-i386' if no_ack else 'ack-x86_64'}] inputs={tally['packets']} "
          f"stub_rss_kib start={rss_start} end={rss_end}")
    assert_clean_exit(server, server.inferior_pid)


@pytest.mark.parametrize("size", [framing.MAX_PACKET + 1, 1 << 20, 16 << 20])
def test_oversized_packet_is_refused_and_memory_stays_flat(stub: Callable[..., Server], size: int) -> None:
    server = stub()
    with RawClient(server.port) as client:
        first = client.handshake(no_ack=False)
        rss_before = rss_kib(server.proc.pid)
        chunk = b"M0,0:" + b"00" * 32768
        client.send_raw(b"$")
        for _ in range(size // len(chunk) + 1):
            client.send_raw(chunk)
        client.send_raw(b"#00")
        assert isinstance(client.next_event(), framing.Ack)  # never a NAK: that brings it back
        assert client.receive() == b"E01"
        assert client.request(b"?") == first
        grown = rss_kib(server.proc.pid) - rss_before
        assert grown < 8 * 1024, f"stub grew by {grown} KiB for a {size}-byte packet"


def test_truncated_packet_then_a_good_one(stub: Callable[..., Server]) -> None:
    server = stub()
    with RawClient(server.port) as client:
        first = client.handshake(no_ack=True)
        client.send_raw(b"$m%x,4" % symbol_address(harness.program(LOOP), "g32"))
        assert client.request(b"?") == first
        client.send_raw(b"$g#6")  # cut inside the checksum
        assert client.request(b"?") == first


def test_binary_garbage(stub: Callable[..., Server]) -> None:
    server = stub()
    exe = harness.program(LOOP)
    rng = random.Random(1234)
    with RawClient(server.port) as client:
        first = client.handshake(no_ack=True)
        before = snapshot(client, exe)
        for _ in range(20):
            garbage = rng.randbytes(65536).replace(b"$", b"").replace(b"\x03", b"")
            client.send_raw(garbage)
            assert client.request(b"?") == first
        assert snapshot(client, exe) == before


def test_client_that_stalls_keeps_the_program(stub: Callable[..., Server]) -> None:
    """A client that sends nothing, then half a packet, and waits: the stub waits too, program intact."""
    server = stub()
    inferior = server.inferior_pid
    assert inferior is not None
    with RawClient(server.port) as client:
        time.sleep(3)  # connected, silent
        client.send_raw(b"$qSupported:multipro")
        time.sleep(3)  # half a packet
        assert harness.pid_alive(inferior) and server.proc.poll() is None
        rest = b"cess+;swbreak+"
        whole = b"qSupported:multiprocess+;swbreak+"
        client.send_raw(rest + b"#%02x" % framing.checksum(whole))
        assert b"PacketSize" in client.receive()
        assert stop_reply_ok(client.request(b"?"))
        assert client.request(b"vCont;c")[:1] == b"W"
    assert_clean_exit(server, inferior)


def test_second_client_is_refused_and_never_mixed_in(stub: Callable[..., Server]) -> None:
    server = stub()
    exe = harness.program(LOOP)
    with RawClient(server.port) as first:
        stop = first.handshake(no_ack=False)
        before = snapshot(first, exe)
        second = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        try:
            try:
                second.sendall(framing.encode(b"M%x,4:deadbeef" % symbol_address(exe, "g32")))
                second.sendall(framing.encode(b"k"))
                second.settimeout(5)
                got = second.recv(4096)  # refused: closed at once; or queued: nothing while we are here
            except (TimeoutError, ConnectionResetError, BrokenPipeError):
                got = b""
            assert got == b"", f"second client was served: {got!r}"
            # The first client's stream carries only its own replies, the program is untouched.
            assert first.request(b"?") == stop
            assert snapshot(first, exe) == before
            assert first.drain() == []
        finally:
            second.close()
        assert first.request(b"?") == stop


def task_states(pid: int) -> dict[int, str]:
    states = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            states[int(tid)] = f.read().rsplit(")", 1)[1].split()[0]
    return states


def test_packets_while_the_program_runs(stub: Callable[..., Server]) -> None:
    """gdb sends only Ctrl-C while an all-stop program runs; a client that sends anything else
    gets answers or errors, and the program still ends up stopped under the stub, then runs on."""
    server = stub("busy", [])
    inferior = server.inferior_pid
    assert inferior is not None
    exe = harness.program("busy")
    with RawClient(server.port) as client:
        client.handshake()
        bias = load_bias(inferior, exe)
        main, spins = bias + symbol_address(exe, "main"), bias + symbol_address(exe, "spins")
        client.send(b"vCont;c")
        time.sleep(0.1)
        for packet in (b"g", b"p10", b"m%x,8" % spins, b"?", b"qfThreadInfo", b"Hg0", b"T%x" % inferior,
                       b"Z0,%x,1" % main, b"z0,%x,1" % main, b"vCont;c", b"c", b"vCont;s", b"s",
                       b"M%x,8:0000000000000000" % spins, b"qXfer:threads:read::0,fff", b"vCont?"):
            client.send(packet)
        client.drain(0.5)
        for _ in range(10):  # stop it: Ctrl-C while it runs, '?' tells once it is stopped
            client.send_raw(b"\x03")
            client.drain(0.3)
            if all(state == "t" for state in task_states(inferior).values()):
                break
        assert all(state == "t" for state in task_states(inferior).values()), task_states(inferior)
        assert tracer_of(inferior) == server.proc.pid
        assert stop_reply_ok(client.request(b"?"))
        assert not client.request(b"g").startswith(b"E")
        before = int.from_bytes(bytes.fromhex(client.request(b"m%x,8" % spins).decode()), "little")
        client.send(b"vCont;c")
        assert counting(inferior, spins, before), "the program never ran"
        client.send_raw(b"\x03")
        assert stop_reply_ok(client.receive())
        after = int.from_bytes(bytes.fromhex(client.request(b"m%x,8" % spins).decode()), "little")
        assert after > before
        client.send(b"k")
    assert_clean_exit(server, inferior)


def test_client_that_floods_without_reading_then_leaves(stub: Callable[..., Server]) -> None:
    """Megabytes of replies nobody reads: the stub blocks on that client only until it goes."""
    server = stub(once=False)
    exe = harness.program(LOOP)
    hot = symbol_address(exe, "hot")
    with RawClient(server.port) as client:
        stop = client.handshake()
        client.send_raw(framing.encode(b"m%x,2000" % hot) * 4000)  # 64 MiB of hex replies
        time.sleep(0.5)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with reconnect(server) as client:  # closed with a reset: the stub's blocked send fails, it moves on
        assert stop_reply_ok(client.handshake()), stop  # a fresh launch of the program
        assert client.request(b"m%x,4" % symbol_address(exe, "g32")) == b"33333333"
    server.stop()


def test_stub_blocked_on_a_client_that_does_not_read_still_ends_on_sigterm(
        stub: Callable[..., Server]) -> None:
    server = stub("busy", [])
    inferior = server.inferior_pid
    exe = harness.program("busy")
    with RawClient(server.port) as client:
        client.handshake()
        assert inferior is not None
        main = load_bias(inferior, exe) + symbol_address(exe, "main")
        client.send_raw(framing.encode(b"m%x,2000" % main) * 4000)
        time.sleep(0.5)
        assert server.proc.poll() is None
        os.kill(server.proc.pid, signal.SIGTERM)
        assert_clean_exit(server, inferior)


def test_client_that_exhausts_file_descriptors(stub: Callable[..., Server]) -> None:
    """vFile:open until the stub runs out of descriptors: the program is still served, and the
    files are released when the client leaves, so the next client can connect."""
    server = stub(once=False)
    exe = harness.program(LOOP)
    hot = symbol_address(exe, "hot")
    path = b"/proc/self/maps".hex().encode()
    # A lower limit than the usual thousands keeps the test short; the behaviour at it is the same.
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (256, 256))
    with RawClient(server.port) as client:
        stop = client.handshake()
        opened = 0
        for _ in range(70000):
            reply = client.request(b"vFile:open:%s,0,0" % path)
            if reply.startswith(b"F-1"):
                break
            opened += 1
        else:
            pytest.skip("no descriptor limit reached")
        assert client.request(b"?") == stop
        assert not client.request(b"g").startswith(b"E")
        assert client.request(b"Z0,%x,1" % hot) == b"OK"
        assert client.request(b"vCont;c").startswith(b"T05")
        assert not client.request(b"qXfer:threads:read::0,fff").startswith(b"E")
    with reconnect(server) as client:
        assert stop_reply_ok(client.handshake())
        assert client.request(b"vFile:open:%s,0,0" % path)[:1] == b"F"
        assert not client.request(b"vFile:open:%s,0,0" % path).startswith(b"F-1")
    count(f"fd-exhaustion opened={opened}")
    server.stop()


# --------------------------------------------------------------------------- clients that vanish


def reconnect(server: Server) -> RawClient:
    deadline = time.monotonic() + 15
    while True:
        try:
            return RawClient(server.port)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def counting(pid: int, spins: int, before: int) -> bool:
    """Wait (bounded) until the running program's spin counter, read from its memory directly,
    is past BEFORE: a fixed sleep may give it no CPU at all on a loaded machine."""
    return wait_until(lambda: int.from_bytes(read_mem(pid, spins, 8), "little") > before, 60, 0.01)


def test_client_vanishes_while_stopped_then_another_gets_a_fresh_program(stub: Callable[..., Server]) -> None:
    """Issue 2: a launched program does not outlive its client; the next client debugs a fresh
    launch (gdbserver would keep the old process)."""
    server = stub(once=False)
    first = server.inferior_pid
    exe = harness.program(LOOP)
    g32 = symbol_address(exe, "g32")
    with RawClient(server.port) as client:
        client.handshake()
        assert client.request(b"M%x,4:78563412" % g32) == b"OK"
        assert client.request(b"Z0,%x,1" % symbol_address(exe, "hot")) == b"OK"
    with reconnect(server) as client:
        assert stop_reply_ok(client.handshake())
        assert first is not None and wait_until(lambda: not pid_alive(first), 10)
        assert client.request(b"m%x,4" % g32) == b"33333333"  # the write died with the old one
        reply = client.request(b"vCont;c")
        assert reply.startswith(b"W7;"), reply  # no breakpoint left over: runs to its end
    server.stop()


def test_client_vanishes_while_running(stub: Callable[..., Server]) -> None:
    """The program a vanished client left running is killed, never left running; the next client
    gets a fresh one, stopped at its first instruction, that runs under it."""
    server = stub("busy", [], once=False)
    inferior = server.inferior_pid
    with RawClient(server.port) as client:
        client.handshake()
        client.send(b"vCont;c")
        time.sleep(0.3)
    with reconnect(server) as client:
        reply = client.handshake()
        assert stop_reply_ok(reply), reply
        assert inferior is not None and wait_until(lambda: not pid_alive(inferior), 10)
        fresh = int(re.findall(r"created; pid = (\d+)", server.stderr.text)[-1])
        assert fresh != inferior
        assert client.request(b"qfThreadInfo")[:1] == b"m"
        assert len(client.request(b"g")) > 100
        spins = symbol_address(harness.program("busy"), "spins") + load_bias(fresh, harness.program("busy"))
        first = int.from_bytes(bytes.fromhex(client.request(b"m%x,8" % spins).decode()), "little")
        assert first == 0  # fresh: not run yet
        client.send(b"vCont;c")
        assert counting(fresh, spins, first), "the program never ran"
        client.send_raw(b"\x03")
        assert stop_reply_ok(client.receive())
        later = int.from_bytes(bytes.fromhex(client.request(b"m%x,8" % spins).decode()), "little")
        assert later > first  # and runs under the new client
    server.stop()


@pytest.mark.parametrize("when", ["stopped", "running", "mid-packet"])
def test_client_vanishes_with_once_the_program_goes_too(stub: Callable[..., Server], when: str) -> None:
    server = stub("busy", [])
    inferior = server.inferior_pid
    client = RawClient(server.port)
    client.handshake()
    if when == "running":
        client.send(b"vCont;c")
        time.sleep(0.2)
    elif when == "mid-packet":
        client.send_raw(b"$m0,4")
    client.sock.shutdown(socket.SHUT_RDWR)
    client.close()
    assert_clean_exit(server, inferior)


def test_client_vanishes_mid_packet_then_another_is_served(stub: Callable[..., Server]) -> None:
    server = stub(once=False)
    with RawClient(server.port) as client:
        stop = client.handshake()
        client.send_raw(b"$M%x,4:1122" % symbol_address(harness.program(LOOP), "g32"))
    with reconnect(server) as client:
        assert stop_reply_ok(client.handshake()), stop  # a fresh launch
        assert client.request(b"m%x,4" % symbol_address(harness.program(LOOP), "g32")) == b"33333333"
    server.stop()


# --------------------------------------------------------------------------- the program dies or forks


@pytest.mark.parametrize("when", ["running", "stopped"])
def test_program_killed_from_outside(stub: Callable[..., Server], when: str) -> None:
    server = stub("busy", [])
    inferior = server.inferior_pid
    assert inferior is not None
    with RawClient(server.port) as client:
        client.handshake()
        if when == "running":
            client.send(b"vCont;c")
            time.sleep(0.2)
            os.kill(inferior, signal.SIGKILL)
            reply = client.receive()
        else:
            os.kill(inferior, signal.SIGKILL)
            time.sleep(0.2)
            assert client.request(b"?")  # some answer, whatever the stub knows yet
            client.request(b"g")
            reply = client.request(b"vCont;c")
        assert reply.startswith(b"X9;"), reply
        assert client.request(b"?").startswith(b"X9;")
    assert_clean_exit(server, inferior)


@pytest.mark.parametrize("events", [False, True], ids=["plain", "fork-exec-events"])
def test_fork_and_exec_race_with_packets(procs: ProcessTracker, events: bool) -> None:
    """The program forks and execs all the time while the client interrupts, reads and resumes:
    whichever of a process event and a packet comes first, both are handled."""
    server = start(procs, "churn", ["300", "/bin/true", "exec"])
    rng = random.Random(7)
    stops = 0
    with RawClient(server.port) as client:
        if events:
            client.handshake()
        else:
            client.request(b"qSupported:multiprocess+;swbreak+")
            client.request(b"QStartNoAckMode")
            client.no_ack = True
            client.request(b"?")
        reply = b""
        for _ in range(2000):
            client.send(b"vCont;c")
            # Ctrl-C only while no stop has come yet, as gdb: one that crosses a stop is kept
            # by the stub (gdbserver's SIGINT) and stops the next resume at once.
            try:
                reply = client.receive(timeout=rng.random() * 0.003)
            except ProtocolTimeout:
                client.send_raw(b"\x03")
                reply = client.receive()
            if reply[:1] in (b"W", b"X"):
                break
            stops += 1
            assert stop_reply_ok(reply), reply
            if b"fork:" in reply:  # gdb's detach-on-fork: let the child go
                child = reply.split(b"fork:")[1].split(b";")[0]
                pid = child[1:].split(b".")[0] if child.startswith(b"p") else child
                assert client.request(b"D;%s" % pid) == b"OK"
            assert stop_reply_ok(client.request(b"?"))
            assert not client.request(b"g").startswith(b"E")
            assert client.request(b"qfThreadInfo")[:1] == b"m"
        assert reply.startswith(b"W0;"), reply
    count(f"fork-exec-race[{'events' if events else 'plain'}] stops={stops}")
    assert_clean_exit(server, None)


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


@pytest.mark.timeout(1800 if FUZZ else 300)
def test_kills_from_outside_race_with_fork_events(procs: ProcessTracker) -> None:
    """SIGKILL the program or the child it just forked at random moments while fork events are
    reported and the client interrupts: every run ends with W or X, the stub with it, no traceback."""
    rng = random.Random(99)
    rounds = 60 if FUZZ else 6
    kills = 0
    for _ in range(rounds):
        server = start(procs, "churn", ["100000", "/bin/true"])
        inferior = server.inferior_pid
        assert inferior is not None
        end = b""
        with RawClient(server.port) as client:
            client.handshake()
            for _ in range(300):
                client.send(b"vCont;c")
                time.sleep(rng.random() * 0.01)
                if rng.random() < 0.2:
                    victims = children_of(inferior) if rng.random() < 0.5 else []
                    try:
                        os.kill(rng.choice(victims) if victims else inferior, signal.SIGKILL)
                        kills += 1
                    except ProcessLookupError:
                        pass
                client.send_raw(b"\x03")
                reply = client.receive()
                if reply[:1] in (b"W", b"X"):
                    end = reply
                    break
                assert stop_reply_ok(reply), reply
                if b"fork:" in reply:  # detach-on-fork, as gdb does
                    child = reply.split(b"fork:")[1].split(b";")[0]
                    assert client.request(b"D;%s" % child[1:].split(b".")[0]) == b"OK"
            assert end[:1] in (b"W", b"X"), "the program never ended"
        assert_clean_exit(server, inferior)
        server.stderr.join(2)
        assert "Traceback" not in server.stderr.text and "internal error" not in server.stderr.text, \
            server.describe()
    count(f"kill-fork-race rounds={rounds} kills={kills}")


# --------------------------------------------------------------------------- the stub is told to end


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
@pytest.mark.parametrize("running", [False, True], ids=["stopped", "running"])
def test_signal_kills_a_launched_program(stub: Callable[..., Server], sig: signal.Signals,
                                         running: bool) -> None:
    server = stub("busy", [])
    inferior = server.inferior_pid
    with RawClient(server.port) as client:
        client.handshake()
        if running:
            client.send(b"vCont;c")
            time.sleep(0.2)
        os.kill(server.proc.pid, sig)
        assert_clean_exit(server, inferior)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_signal_while_the_stub_loads_kills_the_launched_program(stub: Callable[..., Server],
                                                                sig: signal.Signals) -> None:
    """The stub listens before it loads its target and packet handlers (cli): a signal sent
    at once, before any client, waits for the stub's handlers and ends it the clean way (exit
    status 0), taking its program along."""
    server = stub("busy", [])
    inferior = server.inferior_pid
    os.kill(server.proc.pid, sig)
    assert server.wait_exit(15) == 0, server.describe()
    assert_clean_exit(server, inferior)
    server.stderr.join(2)
    assert "Traceback" not in server.stderr.text, server.describe()


@pytest.fixture
def free_busy(procs: ProcessTracker) -> Iterator[int]:
    """A busy program not started by the stub (to attach to); killed at the end."""
    proc = procs.spawn([str(harness.program("busy"))])
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("busy pid"), line
    yield proc.pid
    proc.kill()
    proc.wait(5)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, None],
                         ids=lambda s: s.name if s else "client-leaves")
@pytest.mark.parametrize("running", [False, True], ids=["stopped", "running"])
def test_signal_detaches_an_attached_program(procs: ProcessTracker, free_busy: int,
                                             sig: signal.Signals | None, running: bool) -> None:
    """When the stub ends (a signal, or its --once client leaves), an attached program is detached:
    breakpoints come out of its memory first, then it runs on untraced (an int3 left in its hot
    loop would kill it with SIGTRAP)."""
    exe = harness.program("busy")
    server = harness.start_server(procs, "gdbstub", str(free_busy), extra=["--attach"])
    bias = load_bias(free_busy, exe)
    loop = bias + line_address(exe, harness.source_line("spin", "busy"))
    main = bias + symbol_address(exe, "main")  # run once, long ago: its breakpoint stays in while running
    original = {addr: read_mem(free_busy, addr, 1) for addr in (loop, main)}
    with RawClient(server.port) as client:
        client.handshake()
        assert client.request(b"Z0,%x,1" % main) == b"OK"
        assert client.request(b"Z0,%x,1" % loop) == b"OK"
        reply = client.request(b"vCont;c")
        assert reply.startswith(b"T05"), reply  # the breakpoint is there and works
        assert read_mem(free_busy, main, 1) == b"\xcc"
        if running:
            assert client.request(b"z0,%x,1" % loop) == b"OK"
            client.send(b"vCont;c")
            time.sleep(0.1)
        if sig is None:
            client.close()
        else:
            os.kill(server.proc.pid, sig)
        assert server.wait_exit(15) is not None, server.describe()
    assert wait_until(lambda: tracer_of(free_busy) == 0, 5), "still traced"
    for addr, byte in original.items():
        assert read_mem(free_busy, addr, 1) == byte, hex(addr)
    spins = bias + symbol_address(exe, "spins")
    first = int.from_bytes(read_mem(free_busy, spins, 8), "little")
    assert wait_until(lambda: int.from_bytes(read_mem(free_busy, spins, 8), "little") > first, 5)
    assert harness.pid_alive(free_busy)


@pytest.mark.parametrize("running", [False, True], ids=["stopped", "running"])
def test_sigkill_of_the_stub_takes_the_launched_program(stub: Callable[..., Server], running: bool) -> None:
    server = stub("busy", [])
    inferior = server.inferior_pid
    assert inferior is not None
    with RawClient(server.port) as client:
        client.handshake()
        if running:
            client.send(b"vCont;c")
            time.sleep(0.2)
        os.kill(server.proc.pid, signal.SIGKILL)
        assert server.wait_exit(10) is not None
    assert wait_until(lambda: not harness.pid_alive(inferior), 10), "PTRACE_O_EXITKILL did not kill it"


# --------------------------------------------------------------------------- security


def test_listens_on_loopback_by_default(procs: ProcessTracker) -> None:
    """`gdbstub :0 PROG` (no host) binds 127.0.0.1, as gdbserver's `:PORT` means localhost."""
    argv = [*harness.server_command("gdbstub", harness.program(LOOP), address=":0")]
    proc = procs.spawn(argv, env=harness.server_env())
    err = harness.OutputReader(proc.stderr)
    found = err.wait_for(harness.LISTENING_RE, harness.START_TIMEOUT)
    assert found, err.text
    port = int(found.group(1))
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.split(":")[1], 16) == port:
                    listening.append(local.split(":")[0])
    assert listening == ["0100007F"], listening  # 127.0.0.1, nothing else
    proc.kill()
    proc.wait(5)


def test_debug_log_shows_only_a_prefix_of_written_memory(procs: ProcessTracker) -> None:
    exe = harness.program(LOOP)
    server = harness.start_server(procs, "gdbstub", exe, ["3"], extra=["--debug"])
    secret = bytes(range(0x41, 0x41 + 26)) * 10  # 260 bytes, all distinct runs
    where = symbol_address(exe, "message")
    with RawClient(server.port) as client:
        client.handshake(no_ack=False)
        assert client.request(b"M%x,%x:%s" % (where, 32, secret[:32].hex().encode())) == b"OK"
        assert client.request(b"X%x,%x:%s" % (where, 32, framing.escape(secret[32:64]))) == b"OK"
        big = secret[:200]
        assert client.request(b"M%x,%x:%s" % (where, len(big), big.hex().encode()))[:1] in (b"O", b"E")
        assert client.request(b"vCont;c")[:1] == b"W"
    assert server.wait_exit(15) is not None
    server.stderr.join(2)
    log = server.stderr.text
    assert "<- " in log and "-> " in log, "no packet log with --debug"
    # Of each write, the address, the length and at most 16 characters of data.
    assert secret[:32].hex()[:17] not in log
    assert secret[32:64].decode()[:17] not in log
    assert secret[:32].hex()[:16] in log  # the prefix itself is there: the test sees the log


# --------------------------------------------------------------------------- oversized packets


def send_huge(client: RawClient, head: bytes, size: int) -> None:
    """One packet of SIZE payload bytes (HEAD, then hex digits), written as it is made."""
    client.send_raw(b"$" + head)
    chunk = b"00" * 32768
    for _ in range(size // len(chunk)):
        client.send_raw(chunk)
    client.send_raw(b"#00")  # the checksum is not even looked at: the packet is refused whole


@pytest.mark.parametrize("no_ack", [False, True], ids=["ack", "noack"])
def test_one_mebibyte_packet_is_refused_and_the_session_stays_in_step(
        stub: Callable[..., Server], no_ack: bool) -> None:
    """Issue 18 item 2. A 1 MiB `M` gets '+' and E01, a 1 MiB unknown packet '+' and the empty
    reply; the packets after them get their own replies and the program runs to its exit.
    (gdbserver 13 dies of SIGSEGV on such a packet: see the next test.)"""
    server = stub(LOOP, ["3"])
    exe = harness.program(LOOP)
    g32 = symbol_address(exe, "g32")
    with RawClient(server.port) as client:
        first = client.handshake(no_ack=no_ack)
        send_huge(client, b"M%x,80000:" % g32, 1 << 20)
        if not no_ack:
            assert isinstance(client.next_event(), framing.Ack)
        assert client.receive() == b"E01"
        send_huge(client, b"qNoSuchPacket:", 1 << 20)
        if not no_ack:
            assert isinstance(client.next_event(), framing.Ack)
        assert client.receive() == b""
        assert client.request(b"m%x,4" % g32) == b"33333333"  # unchanged, and its own reply
        assert client.request(b"?") == first
        assert client.request(b"vCont;c").startswith(b"W7;")
        assert client.drain() == []  # nothing left over: the stream was in step all along
    assert_clean_exit(server, server.inferior_pid)


def test_gdbserver_dies_on_a_packet_over_its_buffer(procs: ProcessTracker) -> None:
    """The reference: gdbserver 13 has no bound on a packet's length and is killed by SIGSEGV
    (or, on another build, answers out of step). gdbstub's answer is the test above."""
    server = harness.start_server(procs, "gdbserver", harness.program(LOOP), ["3"])
    with RawClient(server.port) as client:
        client.handshake(no_ack=False)
        try:
            send_huge(client, b"M%x,80000:" % symbol_address(harness.program(LOOP), "g32"), 1 << 20)
            reply = client.receive(5)
        except (OSError, ConnectionError, AssertionError):
            reply = None
    status = server.wait_exit(10)
    server.stop()  # gdbserver's program is left behind when it dies
    assert status == -signal.SIGSEGV or reply != b"E01", (status, reply)


# --------------------------------------------------------------------------- clients that stop reading


def flood(client: RawClient, exe: Path, bias: int = 0, count: int = 1000) -> None:
    """COUNT requests of 8 KiB of memory each: 16 MiB of hex replies, four times what the
    kernel's socket buffers hold, so that the stub must wait for the client to read."""
    client.send_raw(framing.encode(b"m%x,2000" % (bias + symbol_address(exe, "main"))) * count)


@pytest.mark.parametrize("mode", ["once", "next-client", "attached"])
def test_client_that_stops_reading_is_dropped(procs: ProcessTracker, free_busy: int, mode: str) -> None:
    """Issue 18 item 1: the client asks for 16 MiB and reads none of it. After --send-timeout
    (2 s here, 30 by default) without progress the client counts as gone: a launched program is
    killed (with --once the stub exits; without, the next client gets a fresh launch), an
    attached one detached. gdbserver blocks in write() for ever, the program with it."""
    if mode == "attached":
        exe = harness.program("busy")
        server = harness.start_server(procs, "gdbstub", str(free_busy), extra=["--attach", "--send-timeout=2"])
        inferior: int | None = free_busy
        bias = load_bias(free_busy, exe)
    else:
        exe = harness.program(LOOP)
        server = start(procs, LOOP, ["1000000"], once=mode == "once", extra=["--send-timeout=2"])
        inferior, bias = server.inferior_pid, 0
    assert inferior is not None
    client = RawClient(server.port)
    client.handshake()
    flood(client, exe, bias)
    try:
        if mode == "next-client":
            assert harness.wait_until(lambda: "client stopped reading" in server.stderr.text, 60), \
                server.describe()
            assert wait_until(lambda: not pid_alive(inferior), 10), "the launched program outlived its client"
            with reconnect(server) as second:
                assert stop_reply_ok(second.handshake())
                assert second.request(b"vCont;c").startswith(b"W")  # a fresh launch, served in full
            server.stop()
        elif mode == "once":
            assert server.wait_exit(60) is not None, server.describe()
            assert wait_until(lambda: not pid_alive(inferior), 10), "the launched program outlived the stub"
        else:
            assert server.wait_exit(60) is not None, server.describe()
            assert wait_until(lambda: tracer_of(free_busy) == 0, 10), "still traced"
            assert pid_alive(free_busy)
    finally:
        client.close()
    server.stderr.join(2)
    assert server.stderr.text.count("client stopped reading") == 1, server.describe()


def test_slow_reader_is_never_dropped(stub: Callable[..., Server]) -> None:
    """A client that reads its 16 MiB of replies in 512 KiB sips with pauses (each well under the
    2 s bound, the whole far over it) gets every reply and keeps its program."""
    server = stub(LOOP, ["3"], extra=["--send-timeout=2"])
    exe = harness.program(LOOP)
    with RawClient(server.port, timeout=60) as client:
        client.handshake()
        expected = client.request(b"m%x,2000" % symbol_address(exe, "main"))
        flood(client, exe)
        got = 0
        while got < 1000:
            time.sleep(0.3)
            deadline = time.monotonic() + 60
            sip = 0
            while sip < 512 * 1024 and got < 1000:
                before = len(client.events)
                client._fill(deadline)
                sip += sum(len(e.data) + 4 for e in client.events[before:] if isinstance(e, framing.Packet))
                while client.events:
                    event = client.events.pop(0)
                    assert isinstance(event, framing.Packet) and framing.run_length_decode(event.data) == expected
                    got += 1
        assert client.request(b"vCont;c").startswith(b"W7;")
    assert_clean_exit(server, server.inferior_pid)
    assert "client stopped reading" not in server.stderr.text


# --------------------------------------------------------------------------- other users


NOBODY = 65534
# Run as nobody: connect, ask '?', and say what came back (no project code: nobody may not read it).
PROBE = r"""
import socket, sys
kind, where = sys.argv[1], sys.argv[2]
try:
    if kind == "unix":
        s = socket.socket(socket.AF_UNIX)
        s.connect(where)
    else:
        host, port = where.rsplit(":", 1)
        s = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
except OSError as e:
    print("connect-error", e.errno)
    sys.exit()
s.settimeout(10)
got = b""
try:
    s.sendall(b"$?#3f")
    while b"#" not in got[2:] or len(got) < got.index(b"#", 2) + 3:
        data = s.recv(4096)
        if not data:
            break
        got += data
except (ConnectionResetError, BrokenPipeError):
    print("reset")
except TimeoutError:
    print("timeout")
print("got", repr(got))
"""


def as_nobody(kind: str, where: str) -> str:
    """What a client run by another user (nobody) gets from the server at WHERE."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a client as another user")
    done = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                           "/usr/bin/python3", "-c", PROBE, kind, where],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def refused(probe: str) -> bool:
    """Closed with nothing sent: EOF (or a reset, as the '?' it sent was never read)."""
    return probe.strip().endswith("got b''")


def served(probe: str) -> bool:
    return "$T05" in probe or "$S05" in probe


def refusal_lines(server: Server) -> list[str]:
    server.stderr.join(2) if server.proc.poll() is not None else time.sleep(0.2)
    return [line for line in server.stderr.text.splitlines() if line.startswith("Refused")]


@pytest.mark.parametrize("address", ["127.0.0.1:0", "[::1]:0"], ids=["ipv4", "ipv6"])
def test_other_user_is_refused_over_loopback(procs: ProcessTracker, address: str) -> None:
    """Issue 18 item 3: nobody connects to root's stub on loopback and is closed at once, named by
    uid in one line; the stub (--once) goes on serving its owner. gdbserver serves nobody: below."""
    exe = harness.program(LOOP)
    server = spawn_server(procs, "gdbstub", ["--once", address, str(exe), "3"])
    host = address.rsplit(":", 1)[0]
    probe = as_nobody("tcp", f"{host}:{server.port}")
    assert refused(probe), probe
    lines = refusal_lines(server)
    assert len(lines) == 1 and f"uid {NOBODY}" in lines[0], server.describe()
    assert server.proc.poll() is None and server.inferior_pid is not None
    assert tracer_of(server.inferior_pid) == server.proc.pid
    family = socket.AF_INET6 if host.startswith("[") else socket.AF_INET
    sock = socket.socket(family)
    sock.connect((host.strip("[]"), server.port))
    with sock:
        got = continue_to_exit(sock)
        assert b"$W07" in got, got
    assert_clean_exit(server, server.inferior_pid)


def test_gdbserver_serves_any_local_user(procs: ProcessTracker) -> None:
    """The reference: gdbserver on loopback hands its (root) session to nobody."""
    server = harness.start_server(procs, "gdbserver", harness.program(LOOP), ["3"])
    probe = as_nobody("tcp", f"127.0.0.1:{server.port}")
    server.stop()
    assert served(probe), probe


def test_allow_any_user_serves_another_user(procs: ProcessTracker) -> None:
    server = start(procs, LOOP, ["3"], extra=["--allow-any-user"])
    probe = as_nobody("tcp", f"127.0.0.1:{server.port}")
    assert served(probe), probe
    assert not refusal_lines(server)
    server.stop()


def test_non_loopback_address_warns_and_still_checks_local_users(procs: ProcessTracker) -> None:
    """0.0.0.0: a host elsewhere cannot be checked (the warning says so), but a local user's
    socket is in /proc/net/tcp whichever address it used, and is refused."""
    server = spawn_server(procs, "gdbstub", ["--once", "0.0.0.0:0", str(harness.program(LOOP)), "3"])
    assert re.search(r"warning: .*cannot be checked", server.stderr.text), server.describe()
    assert refused(as_nobody("tcp", f"127.0.0.1:{server.port}"))
    assert len(refusal_lines(server)) == 1
    with RawClient(server.port) as client:
        assert stop_reply_ok(client.handshake())
        client.send(b"k")
    assert_clean_exit(server, server.inferior_pid)


def test_unix_socket_is_owner_only_and_checks_the_peer(procs: ProcessTracker) -> None:
    """The socket file is created 0600, so nobody cannot even connect. Opened up by hand (0666),
    nobody connects and SO_PEERCRED refuses it; the owner is served."""
    directory = Path(tempfile.mkdtemp(prefix="gdbstub-unix-"))
    try:
        directory.chmod(0o755)
        path = directory / "stub.sock"
        server = spawn_server(procs, "gdbstub", ["--once", f"unix:{path}", str(harness.program(LOOP)), "3"],
                              wait=re.compile(r"Listening on Unix socket (\S+)"))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert as_nobody("unix", str(path)).startswith(f"connect-error {errno.EACCES}")
        path.chmod(0o666)
        assert refused(as_nobody("unix", str(path)))
        lines = refusal_lines(server)
        assert len(lines) == 1 and f"uid {NOBODY}" in lines[0], server.describe()
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(path))
            continue_to_exit(sock)
        assert_clean_exit(server, server.inferior_pid)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
