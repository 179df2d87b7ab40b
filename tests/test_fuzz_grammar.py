"""A million packets against live ptraced programs: 500 000 to a 64-bit one and 500 000 to a
32-bit one in `make fuzz` (`make test` sends 20 000 to each).

Grammar-aware: each packet is one a client could send, built from its grammar (name, fields,
separators), with hostile arguments: addresses at page edges, unmapped, in the kernel or past
64 bits; lengths of zero, one past PacketSize, 2**64-1; thread ids that never existed; odd-length
and non-hex data; signals past 255. Random bytes only reach the framer's fuzzer; here every
packet gets past the framing and into a handler, where the bugs would be.

Checked, in batches: the session answers '?', no handler bug reached handle()'s last line of
defence, the kernel's threads are the ones the target knows, and the process's descriptors and
memory do not grow. The program's registers (every thread) and memory (a 4 KiB buffer and the
code of ready()) must stay as they were after the last packet allowed to change them: they are
compared before every packet that may write and at the end of each batch, and taken again only
after a write that succeeded or a resume.
"""

from __future__ import annotations

import os
import random
import resource
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rsp_corpus import FUZZ, ROOT, allowed
from test_fuzz_session import Live, build_program, symbol

from gdbstub.protocol import hostio
from gdbstub.protocol.session import SessionEnd, packet_name
from gdbstub.target.base import StopEvent, StopKind
from gdbstub.target.linux.threads import task_state

TOTAL = 500_000 if FUZZ else 20_000  # packets per word size
BATCH = 1000
WARMUP_BATCHES = 20  # caches fill and the allocator settles before memory is measured
COUNTS = ROOT / "build" / "reliability-counts.txt"
PAGE = resource.getpagesize()

Gen = Callable[["Grammar"], bytes]


class Grammar:
    """Packets in the shapes clients send, with arguments picked to hurt."""

    def __init__(self, rng: random.Random, live: Live) -> None:
        self.rng = rng
        self.live = live

    # --- fields -------------------------------------------------------------------

    def pick(self, *options: bytes) -> bytes:
        return self.rng.choice(options)

    def hexnum(self, value: int) -> bytes:
        r = self.rng.random()
        if r < 0.85:
            return b"%x" % value
        if r < 0.92:
            return b"%X" % value
        return b"%040x" % value

    def junk(self) -> bytes:
        return self.pick(b"", b"-1", b"zz", b"0x10", b" 1", b"1 ", b"+1", b"\xff", b"1.5", b"1" * 70, b"-")

    def number(self, values: list[int]) -> bytes:
        if self.rng.random() < 0.08:
            return self.junk()
        return self.hexnum(self.rng.choice(values) if self.rng.random() < 0.9 else self.rng.getrandbits(64))

    def addr(self) -> bytes:
        buf, ready = self.live.buffer, self.live.ready
        return self.number([buf, buf + 1, buf + 4095, buf + 4096, buf | (PAGE - 1), ready, ready + 1,
                            0, 1, 0x1000, 0x7FFFFFFFFFFF, 0x800000000000, 0xFFFFFFFFFFFFFFFF,
                            0xFFFFFFFFFFFFF000, 0xFFFFFFFF, 1 << 32, 1 << 64, 10**40])

    def length(self) -> bytes:
        return self.number([0, 1, 2, 4, 8, 0x40, 0x1000, 0x23FF, 0x47FF, 0x4800, 0x8FFF, 0x10000,
                            0x7FFFFFFF, 0xFFFFFFFF, (1 << 64) - 1, 1 << 64])

    def regnum(self) -> bytes:
        return self.number([0, 7, 16, 17, 23, 24, 39, 40, 56, 57, 72, 73, 80, 120, 159, 160, 200, 0xFFFF,
                            0xFFFFFFFF])

    def tid(self) -> bytes:
        t = self.live.target
        pid = t.pid if t.processes else 1
        tids = sorted(t.threads) or [1]
        tid = self.rng.choice(tids)
        return self.pick(b"p%x.%x" % (pid, tid), b"%x" % tid, b"-1", b"0", b"p-1.-1", b"p%x.-1" % pid,
                         b"p%x.0" % pid, b"p0.%x" % tid, b"p7ffffff0.1", b"p1.1", b"pzz.1", b"p%x." % pid,
                         b"p", b"p.", b"p-2.-2", b"fffffffffffffffff", self.junk())

    def data(self, size: int | None = None) -> bytes:
        n = self.rng.choice([0, 1, 2, 4, 8, 16, 64, 300]) if size is None else size
        raw = self.rng.randbytes(n).hex().encode()
        r = self.rng.random()
        if r < 0.1:
            return raw[:-1]  # odd length
        if r < 0.15:
            return raw + b"zz"
        return raw

    def binary(self) -> bytes:
        return self.rng.randbytes(self.rng.choice([0, 1, 4, 16, 100]))

    def signal(self) -> bytes:
        return self.pick(b"00", b"05", b"0e", b"11", b"1f", b"20", b"40", b"7f", b"ff", b"100", b"zz", b"")

    def hexpath(self) -> bytes:
        path = self.pick(b"/proc/self/maps", b"/proc/%d/mem" % (self.live.target.pid or 1), b"/etc/passwd",
                         b"/nonexistent", b"", b"/", b"a" * 5000, b"/proc/self/fd/0", b"../../../etc/shadow")
        return path.hex().encode() if self.rng.random() < 0.95 else path

    def fd(self) -> bytes:
        return self.number([0, 1, 2, 3, 100, 1023, 1024, 0x7FFFFFFF])


R = Grammar
READS: list[tuple[int, Gen]] = [
    (12, lambda g: b"m" + g.addr() + b"," + g.length()),
    (4, lambda g: b"x" + g.addr() + b"," + g.length()),
    (3, lambda g: b"g" + g.pick(b"", b"", b"zz", b";thread:" + g.tid() + b";")),
    (6, lambda g: b"p" + g.regnum() + g.pick(b"", b"", b";thread:" + g.tid() + b";")),
    (8, lambda g: b"qXfer:" + g.pick(b"features", b"auxv", b"threads", b"exec-file", b"libraries-svr4",
                                    b"siginfo", b"osdata", b"nope", b"")
        + b":read:" + g.pick(b"", b"target.xml", b"i386-64bit.xml", b"64bit-sse.xml", b"types",
                              b"%x" % (g.live.target.pid or 1), b"..", b"x" * 200)
        + b":" + g.number([0, 1, 0x100, 0xFFF, 0x10000, (1 << 64) - 1]) + b"," + g.length()),
    (2, lambda g: b"qSearch:memory:" + g.addr() + b";" + g.length() + b";" + g.data()),
    (3, lambda g: b"T" + g.tid()),
    (4, lambda g: b"H" + g.pick(b"g", b"c", b"s", b"m", b"") + g.tid()),
    (2, lambda g: g.pick(b"qC", b"qfThreadInfo", b"qsThreadInfo", b"qOffsets", b"qTStatus", b"vCont?",
                         b"vMustReplyEmpty", b"qHostInfo", b"qProcessInfo", b"jThreadsInfo", b"qShlibInfoAddr",
                         b"?", b"qWatchpointSupportInfo", b"qWatchpointSupportInfo:", b"qSymbol::",
                         b"QThreadSuffixSupported", b"QListThreadsInStopReply", b"QStartNoAckMode")),
    (2, lambda g: b"qAttached" + g.pick(b"", b":" + g.number([1, 0, g.live.target.pid or 1]))),
    (2, lambda g: b"qGetTLSAddr:" + g.tid() + b"," + g.addr() + b"," + g.addr()),
    (2, lambda g: b"qMemoryRegionInfo" + g.pick(b":", b"") + g.addr()),
    (1, lambda g: b"qSymbol:" + g.data() + b":" + g.data()),
    (3, lambda g: b"qSupported" + g.pick(b"", b":", b":multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386",
                                         b":xmlRegisters=" + g.junk(), b":" + b";".join(
                                             g.binary().hex().encode() + g.pick(b"+", b"-", b"?", b"=1")
                                             for _ in range(g.rng.randrange(5))))),
    (3, lambda g: g.pick(b"QPassSignals:", b"QProgramSignals:", b"QCatchSyscalls:1;", b"QCatchSyscalls:")
        + b";".join(g.signal() for _ in range(g.rng.randrange(6)))),
    (1, lambda g: b"QCatchSyscalls:0"),
    (2, lambda g: g.pick(b"QThreadEvents:", b"QDisableRandomization:", b"QStartupWithShell:")
        + g.pick(b"0", b"1", b"2", b"", b"zz")),
    (2, lambda g: g.pick(b"QEnvironmentHexEncoded:", b"QEnvironmentUnset:", b"QSetWorkingDir:") + g.data()),
    (1, lambda g: b"QEnvironmentReset"),
    (2, lambda g: b"qRcmd," + g.pick(b"help", b"info", b"", b"set debug", b"info " + g.binary())
        .hex().encode()),
    (1, lambda g: b"vFile:setfs:" + g.number([0, g.live.target.pid or 1, 1, 0x7FFFFFFF])),
    (2, lambda g: b"vFile:open:" + g.hexpath() + b",0," + g.number([0, 0o600, 0o777, 0xFFFFFFFF])),
    (3, lambda g: b"vFile:pread:" + g.fd() + b"," + g.length() + b"," + g.number([0, 1, 1 << 63, 0xFFFF])),
    (1, lambda g: b"vFile:" + g.pick(b"close:", b"fstat:") + g.fd()),
    (1, lambda g: b"vFile:" + g.pick(b"stat:", b"readlink:") + g.hexpath()),
    (1, lambda g: b"vKill" + g.pick(b";", b"") + g.pick(b"0", b"zz", b"-1", b"7ffffff0")),  # none of ours
    (1, lambda g: b"D;" + g.pick(b"0", b"zz", b"7ffffff0", b"")),  # none of ours either
]
WRITES: list[tuple[int, Gen]] = [
    (6, lambda g: b"M" + g.addr() + b"," + g.length() + b":" + g.data()),
    (3, lambda g: (lambda n: b"M%x,%x:" % (g.live.buffer + g.rng.randrange(4096 - n + 1), n)
                   + g.data(n))(g.rng.randrange(1, 65))),  # well-formed, into the buffer
    (4, lambda g: b"X" + g.addr() + b"," + g.length() + b":" + g.binary()),
    (4, lambda g: b"P" + g.regnum() + b"=" + g.data(g.rng.choice([1, 2, 4, 8, 10, 16, 32, 64]))
        + g.pick(b"", b";thread:" + g.tid() + b";")),
    (2, lambda g: b"G" + g.data(g.rng.choice([0, 8, 100, 560, 2000]))),
    (4, lambda g: g.pick(b"Z", b"z") + g.pick(b"0", b"1", b"2", b"3", b"4", b"5", b"zz", b"")
        + b"," + g.addr() + b"," + g.number([0, 1, 2, 4, 8, 3, 16, 0xFFFFFFFF])
        + g.pick(b"", b";X2,0501", b";X" + g.data(), b";cmds:0,X1,00")),
    (1, lambda g: b"qXfer:siginfo:write::" + g.number([0, 1, 0x80, 0xFFFF]) + b":" + g.binary()),
    (1, lambda g: b"QSaveRegisterState" + g.pick(b"", b";thread:" + g.tid() + b";")),
    (1, lambda g: b"QRestoreRegisterState:" + g.number([0, 1, 2, 0xFFFFFFFF])),
]
RESUMES: list[tuple[int, Gen]] = [
    (5, lambda g: b"vCont;s" + g.pick(b"", b":" + g.tid()) + g.pick(b"", b";c")),
    (3, lambda g: g.pick(b"s", b"S") + g.pick(b"", b"05", b"00") + g.pick(b"", b";" + g.addr())),
    (2, lambda g: b"vCont;r" + g.addr() + b"," + g.addr() + g.pick(b"", b":" + g.tid())),
    (1, lambda g: g.pick(b"C", b"S", b"vCont;C", b"vCont;S") + g.signal()),
    (1, lambda g: b"vCont;c" + g.pick(b"", b":" + g.tid())),
    (1, lambda g: b"vCtrlC"),
]
FAMILIES: list[tuple[str, list[tuple[int, Gen]], int]] = [("read", READS, 900), ("write", WRITES, 97),
                                                          ("resume", RESUMES, 3)]


def generator(rng: random.Random, live: Live) -> Iterator[tuple[str, bytes]]:
    grammar = Grammar(rng, live)
    kinds = [k for k, _, w in FAMILIES for _ in range(w)]
    tables = {k: ([gen for w, gen in table for _ in range(w)]) for k, table, _ in FAMILIES}
    while True:
        kind = rng.choice(kinds)
        packet = rng.choice(tables[kind])(grammar)
        if allowed(packet):
            yield kind, packet


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def fd_targets() -> list[str]:
    """What each open descriptor is (for the message when the count changed)."""
    out = []
    for fd in sorted(os.listdir("/proc/self/fd"), key=int):
        try:
            out.append(f"{fd}->{os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            pass
    return out


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE // 1024


class Run:
    """The packets sent and what came back, counted for the report."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.tally: Counter[str] = Counter()
        self.baseline = live.snapshot()
        self.recent: deque[tuple[bytes, bytes | None]] = deque(maxlen=40)  # for a failure's message

    def history(self) -> str:
        return "the packets since the last check:\n  " + "\n  ".join(
            f"{p[:100]!r} -> {r[:40] if r else r!r}" for p, r in self.recent)

    def snapshot(self) -> tuple[bytes, ...]:
        try:
            return self.live.snapshot()
        except (OSError, KeyError) as exc:
            raise AssertionError(f"the program cannot be read ({exc!r}); {self.history()}") from exc

    def settle(self, event: StopEvent) -> None:
        """After a resume: a program the resume killed may report a thread's exit ('w', with
        QThreadEvents) before its own end, and stay readable for a moment. Take its events
        until it is gone, or until every thread left is in its ptrace-stop (a program that
        lost a thread and lives on: in all-stop, nothing of it runs after a report)."""
        live, s = self.live, self.live.session
        assert s is not None
        if event.kind is not StopKind.THREAD_EXITED:
            return
        deadline = time.monotonic() + 30  # only a bound: the end of a killed program is waited for
        while live.alive() and self.ending() and time.monotonic() < deadline:
            event = live.target.poll()
            if event is None:
                time.sleep(0.001)
                continue
            self.recent.append((b"(then: %s %d)" % (event.kind.value.encode(), event.tid), s.on_stop(event)))
        self.tally["deaths_after_a_thread_exit" if not live.alive() else "thread_exits"] += 1

    def ending(self) -> bool:
        """Some thread of the program has left its ptrace-stop: the kernel's SIGKILL of an
        exit_group or a fatal signal, its end still to be reported."""
        return any(task_state(t.pid, t.tid) not in ("t", "T") for t in self.live.target.threads.values())

    def check_unchanged(self, why: str) -> None:
        if self.snapshot() != self.baseline:
            raise AssertionError(f"the program changed without a successful write: {why}; {self.history()}")
        self.recent.clear()

    def send(self, kind: str, packet: bytes) -> None:
        live, s = self.live, self.live.session
        assert s is not None
        renegotiates = packet.startswith(b"qSupported")  # the register layout (xmlRegisters) may change
        if kind != "read" or renegotiates:
            self.check_unchanged(f"before {packet[:80]!r}")
        errors = s.internal_errors
        try:
            reply = s.handle(packet)
        except SessionEnd:
            reply = b"OK"
        self.tally["packets"] += 1
        self.recent.append((packet, reply))
        assert s.internal_errors == errors, f"handler bug on {packet[:200]!r} (traceback in the log)"
        assert reply is None or isinstance(reply, bytes), packet
        if s.status.running or live.target.running:
            event = live.wait_stop()
            assert event is not None, f"no stop after {packet[:80]!r}"
            self.recent.append((b"(stop: %s %d sig %d)" % (event.kind.value.encode(), event.tid, event.signal),
                                s.on_stop(event)))
            self.tally["resumes"] += 1
            kind = "resume"
            self.settle(event)
        if not live.alive():  # killed, or a resume after a hostile register write crashed it
            self.tally["relaunches"] += 1
            s.close()  # as the server does when its client goes: the session's files are released
            live.close()
            live.start()
            self.baseline = self.snapshot()
            return
        if reply is None:
            self.tally["no_reply"] += 1
        elif reply == b"":
            self.tally["empty"] += 1
        elif reply[:1] == b"E" and (len(reply) == 3 or reply[1:2] == b"."):
            self.tally["errors"] += 1
        else:
            self.tally["answered"] += 1
        if renegotiates:
            self.baseline = self.snapshot()
        elif kind == "resume" or (kind == "write" and reply and reply[:1] != b"E"):
            self.baseline = self.snapshot()
            self.tally["changes"] += 1
        elif kind == "write":
            self.check_unchanged(f"{packet[:80]!r} answered {reply!r}")

    def end_batch(self) -> None:
        live, s = self.live, self.live.session
        assert s is not None
        self.check_unchanged("at the end of a batch")
        status = s.handle(b"?")
        assert status is not None and status[:1] in (b"T", b"S", b"w"), status  # w: a thread's exit
        live.tasks_known()
        for fd in sorted(hostio.state(s).fds):  # what the fuzz opened, closed as a client would
            assert s.handle(b"vFile:close:%x" % fd) == b"F0"
        assert s.handle(b"vFile:setfs:0") == b"F0"
        # The thread list keeps each thread's /proc stat file open: have it open for every thread.
        assert s.handle(b"qXfer:threads:read::0,fff")[:1] in (b"m", b"l")
        self.tally["batches"] += 1


@pytest.fixture(scope="module", params=["64", "32"], ids=["x86_64", "i386"])
def program(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    return request.param, build_program(tmp_path_factory.mktemp("grammar"), request.param)


@pytest.mark.timeout(1500 if FUZZ else 300)
def test_a_million_packets(program: tuple[str, Path]) -> None:
    bits, exe = program
    live = Live(exe, buffer=symbol(exe, "buffer"), ready=symbol(exe, "ready"))
    live.start()
    try:
        run = Run(live)
        packets = generator(random.Random(int(os.environ.get("GDBSTUB_FUZZ_SEED", "18"))), live)
        fds_start = rss_start = 0
        fds_at_start: list[str] = []
        start = time.monotonic()
        for batch in range(TOTAL // BATCH):
            for _ in range(BATCH):
                kind, packet = next(packets)
                run.tally[kind] += 1
                run.tally["name:" + packet_name(packet)] += 1
                run.send(kind, packet)
            run.end_batch()
            if batch == min(WARMUP_BATCHES, TOTAL // BATCH // 4):
                fds_start, rss_start = fd_count(), rss_kib()
                fds_at_start = fd_targets()
        seconds = time.monotonic() - start
        fds_end, rss_end = fd_count(), rss_kib()
        fds_at_end = fd_targets()
    finally:
        live.close()
    t = run.tally
    names = sum(1 for k in t if k.startswith("name:"))
    line = (f"grammar-fuzz[{bits}] packets={t['packets']} batches={t['batches']} read={t['read']} "
            f"write={t['write']} resume={t['resume']} answered={t['answered']} errors={t['errors']} "
            f"empty={t['empty']} changes={t['changes']} resumes={t['resumes']} relaunches={t['relaunches']} "
            f"packet_names={names} seconds={seconds:.0f} packets_per_s={t['packets'] / seconds:.0f} "
            f"rss_kib start={rss_start} end={rss_end} fds start={fds_start} end={fds_end}")
    print(line)
    COUNTS.parent.mkdir(exist_ok=True)
    with COUNTS.open("a") as f:
        f.write(line + "\n")
    assert t["packets"] == TOTAL
    assert fds_end == fds_start, f"{line}\nfds at start: {fds_at_start}\nfds at end: {fds_at_end}"
    assert rss_end - rss_start <= 1024 + TOTAL * 8 // 1024, line
    assert t["errors"] and t["answered"] and t["empty"] and t["changes"], line  # every path was taken


@pytest.mark.timeout(60)
def test_fatal_signal_while_stepping_over_a_breakpoint(tmp_path: Path) -> None:
    """Found by this fuzzer: the leader sits on a breakpoint and gets 'S05' (SIGTRAP, which
    kills). The step over the breakpoint ends the process; the leader reports only once the
    other thread is reaped, so a blocking wait on it hung the stub. Now: X05."""
    exe = build_program(tmp_path)
    live = Live(exe, buffer=symbol(exe, "buffer"), ready=symbol(exe, "ready"))
    live.start()
    try:
        s = live.session
        assert s is not None
        pid = live.target.pid
        assert len(live.target.threads) == 2
        assert s.handle(b"Hcp%x.%x" % (pid, pid)) == b"OK"
        pc = live.target.get_pc(live.target.threads[pid])
        assert s.handle(b"Z0,%x,1" % pc) == b"OK"
        assert s.handle(b"S05") is None
        event = live.wait_stop()
        assert event is not None
        reply = s.on_stop(event)
        while live.alive():  # a thread's exit may come first
            event = live.wait_stop()
            assert event is not None
            reply = s.on_stop(event)
        assert reply is not None and reply.startswith(b"X5;"), reply
    finally:
        live.close()
