"""Fuzzing the session over a real stopped process: every registered packet with
random and mutated arguments. After each packet the session still answers '?',
no handler bug reached handle()'s last line of defence, and a packet answered
with an error or the empty reply changed neither registers nor memory.

The target is real (a small two-thread C program built here, under ptrace), so
handlers run their real ptrace and /proc paths. `make fuzz` runs many more examples.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rsp_corpus import FUZZ, ROOT, allowed, client_packets, mutate

from gdbstub.protocol.registry import new_session
from gdbstub.protocol.session import Session, SessionEnd
from gdbstub.target.base import StopEvent
from gdbstub.target.linux.process import LinuxTarget

WALL = 0x40000000

EXAMPLES = 5000 if FUZZ else 150
STARTUP_LIMIT = 60.0  # seconds for the program to reach ready() (a loaded machine may take a while)
fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
COUNTS = ROOT / "build" / "reliability-counts.txt"

PROGRAM = r"""
#include <pthread.h>
#include <unistd.h>
volatile unsigned long spins;
unsigned char buffer[4096] = "gdbstub fuzz target: these bytes must only change on a successful write";
__attribute__((noinline)) void ready(void) { spins++; }
static void *worker(void *arg) { for (;;) { spins++; usleep(500); } return arg; }
int main(void)
{
    pthread_t t;
    pthread_create(&t, 0, worker, 0);
    usleep(1000);
    ready();
    for (;;) { spins++; usleep(500); }
}
"""

def build_program(directory: Path, bits: str = "64", source: str = PROGRAM, name: str = "fuzz_target") -> Path:
    """SOURCE (the fuzz target unless told) built as a BITS-bit program in DIRECTORY."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is needed to build the fuzz target")
    src = directory / f"{name}.c"
    src.write_text(source)
    exe = directory / f"{name}-{bits}"
    flags = ["-m32"] if bits == "32" else []
    done = subprocess.run([gcc, *flags, "-g", "-O0", "-no-pie", "-pthread", "-o", str(exe), str(src)],
                          capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot build a {bits}-bit program: {done.stderr.decode()[-200:]}")
    return exe


def symbol(exe: Path, name: str) -> int:
    from elftools.elf.elffile import ELFFile

    with exe.open("rb") as f:
        sym = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)
    return int(sym[0]["st_value"])


@dataclass
class Live:
    """The real target, its session, and what a reply-less or error packet must leave alone."""

    exe: Path
    target: LinuxTarget = field(default_factory=LinuxTarget)
    session: Session | None = None
    launched: list[int] = field(default_factory=list)
    packets: int = 0
    relaunches: int = 0
    buffer: int = 0
    ready: int = 0

    def start(self) -> None:
        self.target = LinuxTarget()
        pid = self.target.launch([str(self.exe)])
        self.launched.append(pid)
        s = new_session(self.target)
        self.session = s
        s.handle(b"qSupported:multiprocess+;swbreak+;hwbreak+;fork-events+;vfork-events+;exec-events+")
        # Run to ready(): both threads exist, the program is in its steady state.
        assert s.handle(b"Z0,%x,1" % self.ready) == b"OK"
        assert s.handle(b"vCont;c") is None
        # No interrupt here (wait_stop's would stop a program still loading on a busy machine,
        # before main even made its second thread): the stop must be the one at ready().
        event = self.wait_stop(quiet=STARTUP_LIMIT, limit=STARTUP_LIMIT)
        assert event is not None, "fuzz target never reached ready()"
        s.on_stop(event)
        stopped = self.target.threads.get(event.tid)
        assert stopped is not None and self.target.get_pc(stopped) == self.ready, event
        assert len(self.target.threads) == 2, self.target.threads
        assert s.handle(b"z0,%x,1" % self.ready) == b"OK"

    def wait_stop(self, quiet: float = 0.02, limit: float = 10.0) -> StopEvent | None:
        """Poll for the stop after a resume; interrupt a program that keeps running."""
        start = time.monotonic()
        interrupted = False
        while time.monotonic() - start < limit:
            event = self.target.poll()
            if event is not None:
                return event
            if not interrupted and time.monotonic() - start > quiet:
                self.target.interrupt()
                interrupted = True
            time.sleep(0.0005)
        return None

    def alive(self) -> bool:
        return bool(self.target.processes)

    def snapshot(self) -> tuple[bytes, ...]:
        t = self.target
        regs = tuple(t.read_registers(tid) for tid in sorted(t.threads))
        pid = t.pid
        return (*regs, t.read_memory(pid, self.buffer, 4096), t.read_memory(pid, self.ready, 64))

    def close(self) -> None:
        self.target.close()
        end_programs(self.launched)
        self.launched.clear()

    def tasks_known(self) -> None:
        """Every thread the kernel has for the program is one the target knows (and no other)."""
        pid = self.target.pid
        tasks = {int(t) for t in os.listdir(f"/proc/{pid}/task")}
        known = {tid for tid, t in self.target.threads.items() if t.pid == pid}
        assert tasks == known, (tasks, known)


def end_programs(pids: list[int]) -> None:
    """Kill PIDS (a detached program runs free) and reap every task, threads included (a
    traced thread's exit is ours to collect, or the leader can never be reaped); bounded,
    so a stuck task fails the test instead of hanging it."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            got, _ = os.waitpid(-1, os.WNOHANG | WALL)
        except ChildProcessError:
            return
        if got == 0:
            time.sleep(0.005)
    raise AssertionError("launched programs could not be reaped")


@pytest.fixture(scope="module", params=["64", "32"], ids=["x86_64", "i386"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    exe = build_program(tmp_path_factory.mktemp("fuzz"), request.param)
    state = Live(exe, buffer=symbol(exe, "buffer"), ready=symbol(exe, "ready"))
    state.start()
    yield state
    state.close()
    COUNTS.parent.mkdir(exist_ok=True)
    with COUNTS.open("a") as f:
        f.write(f"session-fuzz[{request.param}] packets={state.packets} relaunches={state.relaunches}\n")


def send(live: Live, packet: bytes) -> None:
    """One packet through the session, then the checks; relaunch when the packet ended the program."""
    s = live.session
    assert s is not None
    stopped = live.alive() and not s.status.running
    before = live.snapshot() if stopped else None
    errors = s.internal_errors
    live.packets += 1
    try:
        reply = s.handle(packet)
    except SessionEnd:
        reply = b"OK"
    assert s.internal_errors == errors, f"handler bug on {packet!r} (traceback in the log)"
    assert reply is None or isinstance(reply, bytes)
    if s.status.running or live.target.running:
        event = live.wait_stop()
        assert event is not None, f"no stop after {packet!r}"
        s.on_stop(event)
        before = None
    if not live.alive():
        live.relaunches += 1
        live.close()
        live.start()
        return
    if reply is not None and (reply == b"" or reply.startswith(b"E")) and before is not None:
        assert live.snapshot() == before, f"{packet!r} answered {reply!r} but changed the program"
    status = s.handle(b"?")
    assert status is not None and status[:1] in (b"T", b"S", b"W", b"X"), (packet, status)
    live.tasks_known()


# --- strategies ------------------------------------------------------------------

NUMBERS = [b"0", b"1", b"-1", b"10", b"ffffffff", b"ffffffffffffffff", b"1" + b"0" * 40, b"zz", b"",
           b"p1.1", b"p-1.-1", b"p0.0", b"-", b"0x10", b" 1", b"\x00", b"1;2", b"10000"]


@st.composite
def packet_args(draw: st.DrawFn, names: list[str], addresses: list[int]) -> bytes:
    """NAME then fields in the shapes packets use (hex numbers, addresses, thread ids, separators)."""
    name = draw(st.sampled_from(names)).encode()
    numbers = NUMBERS + [b"%x" % a for a in addresses]
    fields = draw(st.lists(st.one_of(st.sampled_from(numbers), st.binary(max_size=12),
                                     st.text("0123456789abcdef", max_size=24).map(str.encode)),
                           max_size=5))
    seps = draw(st.lists(st.sampled_from([b",", b":", b";", b"=", b".", b""]),
                         min_size=len(fields), max_size=len(fields)))
    lead = draw(st.sampled_from([b"", b":", b",", b";"]))
    return name + lead + b"".join(sep + f for f, sep in zip(fields, seps, strict=True))


def strategy(live: Live) -> st.SearchStrategy[list[bytes]]:
    assert live.session is not None
    names = sorted(live.session.tables.handlers)
    corpus = client_packets()
    addresses = [live.buffer, live.ready, 0, 0xFFFFFFFFFFFFF000]
    mutated = st.builds(lambda p, seed, rounds: mutate(p, random.Random(seed), rounds),
                        st.sampled_from(corpus), st.integers(0, 2**32), st.integers(1, 4))
    one = st.one_of(packet_args(names, addresses), st.sampled_from(corpus), mutated,
                    st.binary(max_size=64))
    return st.lists(one.filter(allowed), min_size=1, max_size=4)


@pytest.mark.timeout(3600 if FUZZ else 300)
def test_fuzz_every_packet(live: Live) -> None:
    @fuzz
    @given(strategy(live))
    def run(packets: list[bytes]) -> None:
        for packet in packets:
            send(live, packet)

    run()


@pytest.mark.parametrize("name_only", [True, False])
def test_every_handler_with_empty_and_junk_arguments(live: Live, name_only: bool) -> None:
    """Each registered packet name alone and with a junk tail: a reply, never an exception."""
    assert live.session is not None
    for name in sorted(live.session.tables.handlers):
        for tail in ([b""] if name_only else [b":", b",", b";", b"\xff\xfe", b"zz,zz:zz", b"0" * 300]):
            packet = name.encode() + tail
            if allowed(packet):
                send(live, packet)
                assert live.session is not None


def test_oversized_arguments(live: Live) -> None:
    """Lengths and counts far beyond PacketSize are capped or refused, not allocated."""
    for packet in (b"m%x,ffffffffffffffff" % live.buffer, b"x%x,7fffffff" % live.buffer,
                   b"M%x,ffffffff:00" % live.buffer, b"qXfer:features:read:target.xml:0,ffffffffffff",
                   b"vFile:pread:0,ffffffff,0", b"G" + b"00" * 100000, b"P0=" + b"00" * 50000):
        send(live, packet)


def test_every_packet_with_no_process_left(tmp_path: Path) -> None:
    """After the program is gone (killed, exited) a client may still send anything."""
    exe = build_program(tmp_path)
    target = LinuxTarget()
    pid = target.launch([str(exe)])
    session = new_session(target)
    session.handle(b"qSupported:multiprocess+;swbreak+")
    target.kill()
    assert pid not in target.processes
    tails = [b"", b":", b",", b";", b"1,1", b"0,0:00", b"\xff", b"p1.1"]
    packets = [name.encode() + tail for name in sorted(session.tables.handlers) for tail in tails]
    for packet in [*packets, *client_packets()]:
        if not allowed(packet):
            continue
        try:
            reply = session.handle(packet)
        except SessionEnd:
            continue
        assert session.internal_errors == 0, f"handler bug on {packet!r} (traceback in the log)"
        assert reply is None or isinstance(reply, bytes)
        assert not target.running and not target.processes, packet
