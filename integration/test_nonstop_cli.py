"""Non-stop mode from gdb's own command line (on a pseudo-terminal, as a user types it),
against gdbserver and gdbstub alike: `continue -a &`, a breakpoint in one thread while
the others run, `info threads`, `thread N`, `interrupt -a`, `continue -a &` again.
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import shutil
import signal
import time
from collections.abc import Iterator

import pytest
from harness import ProcessTracker, Server, pid_alive, program, read_proc, start_server, wait_until
from rawclient import tracer_of

NTHREADS = 4  # spinners in nonstop.c (plus main)
TIMEOUT = 30.0
PROMPT = "(gdb) "


class Cli:
    """gdb on a pty: type a line, wait (bounded) for what it prints."""

    def __init__(self, procs: ProcessTracker) -> None:
        master, slave = pty.openpty()
        env = dict(os.environ, LANG="C.UTF-8", TERM="dumb")
        env.pop("DEBUGINFOD_URLS", None)
        self.proc = procs.spawn([shutil.which("gdb") or "gdb", "-nx", "-q"],
                                stdin=slave, stdout=slave, stderr=slave, env=env)
        os.close(slave)
        self.fd = master
        self.out = ""

    def _read(self, deadline: float) -> None:
        import select

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"gdb printed nothing expected in time; last output:\n{self.out[-3000:]}")
        ready, _, _ = select.select([self.fd], [], [], min(remaining, 0.5))
        if ready:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                data = b""
            if not data:
                raise AssertionError(f"gdb exited; output:\n{self.out[-3000:]}")
            self.out += data.decode("utf-8", "replace").replace("\r", "")

    def expect(self, pattern: str, since: int = 0, timeout: float = TIMEOUT) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern, re.M)
        while True:
            found = regex.search(self.out, since)
            if found:
                return found
            self._read(deadline)

    def cmd(self, line: str, timeout: float = TIMEOUT) -> str:
        """Type LINE; return what it printed up to the next prompt."""
        start = len(self.out)
        os.write(self.fd, line.encode() + b"\n")
        echo = self.expect(re.escape(line) + r"\n", start, timeout)
        end = self.expect(re.escape(PROMPT), echo.end(), timeout)
        return self.out[echo.end():end.start()]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self.fd, b"kill\nquit\n")
        try:
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()
            self.proc.wait(timeout=5)
        os.close(self.fd)


@pytest.fixture
def cli(request: pytest.FixtureRequest, procs: ProcessTracker, kind: str) -> Iterator[tuple[Cli, Server]]:
    name = request.param
    srv = start_server(procs, kind, program(name))
    gdb = Cli(procs)
    try:
        gdb.expect(re.escape(PROMPT))
        for line in ("set confirm off", "set pagination off", "set width 0", "set height 0",
                     "set style enabled off", "set non-stop on", "set sysroot /", f"file {program(name)}"):
            gdb.cmd(line)
        gdb.cmd(f"target remote {srv.address}", timeout=60)
        yield gdb, srv
    finally:
        gdb.close()
        srv.stop()


def _threads(text: str) -> dict[int, str]:
    """`info threads` rows: gdb thread number -> the rest of the row."""
    rows = {}
    for line in text.splitlines():
        found = re.match(r"[* ] +(\d+) +Thread \S+ (.*)", line)
        if found:
            rows[int(found.group(1))] = found.group(2)
    return rows


def _counter(gdb: Cli, index: int) -> int:
    return int(gdb.cmd(f"print counters[{index}]").split("=")[-1])


def _counters_move(gdb: Cli, indices: range, before: list[int], timeout: float = TIMEOUT) -> list[int]:
    """counters[INDICES] read again until each is past BEFORE, or TIMEOUT passes (a bound: a
    running thread on a loaded machine may wait a while for the CPU); the caller asserts."""
    deadline = time.monotonic() + timeout
    while True:
        after = [_counter(gdb, i) for i in indices]
        if all(a > b for a, b in zip(after, before, strict=True)) or time.monotonic() > deadline:
            return after
        time.sleep(0.1)


NONSTOP = pytest.mark.parametrize("cli", ["nonstop", "nonstop-32"], indirect=True)
THREADLIFE = pytest.mark.parametrize("cli", ["threadlife", "threadlife-32"], indirect=True)


@NONSTOP
@pytest.mark.timeout(150)
def test_cli_session(cli: tuple[Cli, Server]) -> None:
    gdb, _ = cli
    gdb.cmd("break marker")
    mark = len(gdb.out)
    gdb.cmd("continue -a &")
    hit = gdb.expect(r'Thread (\d+) "[^"]*" hit Breakpoint 1, marker', mark)
    stopped = int(hit.group(1))
    gdb.expect(r"\n[^\n]*\n", hit.end())  # its source line too
    rows = _threads(gdb.cmd("info threads"))
    assert len(rows) == NTHREADS + 1, rows
    assert sum("(running)" in r for r in rows.values()) == NTHREADS, rows
    assert "marker (id=0)" in rows[stopped], rows
    # The others count on while thread `stopped` waits.
    before = [_counter(gdb, 1)]
    after = _counters_move(gdb, range(1, 2), before)
    assert after[0] > before[0], (before, after)
    # thread N: its registers and stack, while the others run.
    assert f"Switching to thread {stopped}" in gdb.cmd(f"thread {stopped}")
    bt = gdb.cmd("bt")
    assert re.search(r"#0 .*marker", bt) and re.search(r"#1 .*spin", bt), bt
    assert re.search(r"^rip|^eip", gdb.cmd("info registers"), re.M)
    gdb.cmd("delete")
    # interrupt -a: each running thread reports once, then nothing runs.
    mark = len(gdb.out)
    gdb.cmd("interrupt -a")
    for _ in range(NTHREADS):
        found = gdb.expect(r'Thread (\d+) "[^"]*" stopped\.', mark)
        mark = found.end()
    time.sleep(0.5)
    rows = _threads(gdb.cmd("info threads"))
    assert not any("(running)" in r for r in rows.values()), rows
    # continue -a &: every thread runs again (thread 0 too, off the breakpoint it sat at).
    counts = [_counter(gdb, i) for i in range(NTHREADS)]
    gdb.cmd("continue -a &")
    rows = _threads(gdb.cmd("info threads"))
    assert all("(running)" in r for r in rows.values()), rows
    after = _counters_move(gdb, range(NTHREADS), counts)
    assert all(a > b for a, b in zip(after, counts, strict=True)), (counts, after)
    # One thread stopped alone, then continued alone: every thread's stop printed first.
    mark = len(gdb.out)
    gdb.cmd("interrupt -a")
    for _ in range(NTHREADS + 1):
        mark = gdb.expect(r'Thread \d+ "[^"]*" stopped\.', mark).end()
    gdb.cmd(f"thread {stopped}")
    gdb.cmd("continue &")
    rows = _threads(gdb.cmd("info threads"))
    assert [n for n, r in rows.items() if "(running)" in r] == [stopped], rows


@THREADLIFE
@pytest.mark.timeout(120)
def test_cli_threads_come_and_go(cli: tuple[Cli, Server]) -> None:
    """Threads created and exiting while main runs: `info threads` follows them."""
    gdb, _ = cli
    gdb.cmd("break checkpoint")
    counts = []
    for n in (1, 2, 3):
        mark = len(gdb.out)
        gdb.cmd("continue -a &" if n == 1 else "continue &")
        hit = gdb.expect(rf"hit Breakpoint 1, checkpoint \(n={n}\)", mark)
        gdb.expect(r"\n[^\n]*\n", hit.end())
        rows = _threads(gdb.cmd("info threads"))
        assert f"checkpoint (n={n})" in rows[1], rows
        counts.append(len(rows))
        assert sum("(running)" in r for r in rows.values()) == len(rows) - 1, rows
    assert counts == [2, 2, 1]
    mark = len(gdb.out)
    gdb.cmd("continue &")
    gdb.expect(r"\[Inferior 1 \(process \d+\) exited normally\]", mark)


@NONSTOP
@pytest.mark.timeout(120)
def test_cli_detach_while_running(cli: tuple[Cli, Server], procs: ProcessTracker) -> None:
    """detach while every thread runs (one sat at a breakpoint): the program runs on untraced."""
    gdb, srv = cli
    pid = srv.inferior_pid
    assert pid is not None
    gdb.cmd("break tick")
    mark = len(gdb.out)
    gdb.cmd("continue -a &")
    gdb.expect(r"hit Breakpoint 1, tick", mark)
    assert "Detaching from program" in gdb.cmd("detach") + gdb.out[mark:]
    try:
        assert wait_until(lambda: tracer_of(pid) == 0, 10)
        time.sleep(0.5)
        assert pid_alive(pid)
        assert read_proc(pid) is not None and read_proc(pid).state in "RS"  # type: ignore[union-attr]
    finally:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), 10)


@NONSTOP
@pytest.mark.timeout(120)
def test_cli_kill_while_running(cli: tuple[Cli, Server]) -> None:
    gdb, srv = cli
    pid = srv.inferior_pid
    assert pid is not None
    gdb.cmd("continue -a &")
    time.sleep(0.3)
    out = gdb.cmd("kill")
    assert wait_until(lambda: not pid_alive(pid), 10), out
    assert "No threads." in gdb.cmd("info threads")


@pytest.mark.parametrize("bits", ["", "-32"])
@pytest.mark.timeout(120)
def test_all_stop_on_top_of_non_stop(debug, bits: str) -> None:  # type: ignore[no-untyped-def]
    """`maint set target-non-stop on` with the all-stop UI: gdb speaks non-stop (vCont;t to
    stop the others after each event, QThreadEvents while it does) and shows all-stop.
    Each thread's hit of hit() is reported once; then a breakpoint, next, kill."""
    session = debug(
        "nonstop" + bits,
        commands=["break hit", *["continue"] * 4, "info threads", "delete", "break marker", "continue",
                  "next", "bt 1", "kill"],
        before=["maint set target-non-stop on", "set sysroot /"],
    )
    out = session.output
    ids = sorted(int(i) for i in re.findall(r"hit Breakpoint 1, hit \(id=(\d)\)", out))
    assert ids == list(range(NTHREADS)), session.describe()
    rows = _threads(out)
    assert len(rows) == NTHREADS + 1 and not any("(running)" in r for r in rows.values()), rows
    assert re.search(r"hit Breakpoint 2, marker \(id=0\)", out), session.describe()
    assert re.search(r"#0 +spin \(arg=0x0\)", out), session.describe()
    assert re.search(r"\[Inferior 1 \(process \d+\) killed\]", out), session.describe()


@NONSTOP
@pytest.mark.timeout(120)
def test_cli_step_one_thread_while_others_run(cli: tuple[Cli, Server]) -> None:
    """next / step / finish in the stopped thread while the others count (and hit a
    breakpoint of their own meanwhile, reported on its own)."""
    gdb, _ = cli
    gdb.cmd("break marker")
    mark = len(gdb.out)
    gdb.cmd("continue -a &")
    hit = gdb.expect(r'Thread (\d+) "[^"]*" hit Breakpoint 1, marker', mark)
    stopped = int(hit.group(1))
    gdb.expect(r"\n[^\n]*\n", hit.end())
    gdb.cmd(f"thread {stopped}")
    gdb.cmd("delete")
    mark = len(gdb.out)
    gdb.cmd("finish")
    back = gdb.expect(r"Run till exit from .*\n(?:.*\n)*?.*spin \(arg=0x0\)", mark)
    gdb.expect(r"\n[^\n]*\n", back.end())
    lines = []
    for _ in range(4):
        mark = len(gdb.out)
        gdb.cmd("next")
        found = gdb.expect(r"^(\d+)\t", mark)
        lines.append(int(found.group(1)))
    assert len(set(lines)) > 1, lines  # it moved through the loop
    rows = _threads(gdb.cmd("info threads"))
    assert [n for n, r in rows.items() if "(running)" not in r] == [stopped], rows
    assert "spin (arg=0x0)" in rows[stopped], rows
    before = [_counter(gdb, i) for i in range(1, NTHREADS)]
    after = _counters_move(gdb, range(1, NTHREADS), before)
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after, gdb.out[-3000:])
    # A breakpoint the others hit while this thread steps: each hit reported on its own.
    mark = len(gdb.out)
    gdb.cmd("break tick")
    gdb.cmd("next")
    gdb.expect(r'Thread (\d+) "[^"]*" hit Breakpoint \d+, tick', mark)


@pytest.mark.parametrize("cli", ["threadsig", "threadsig-32"], indirect=True)
@pytest.mark.timeout(120)
def test_cli_signal_stops_one_thread(cli: tuple[Cli, Server]) -> None:
    """A SIGUSR1 sent to one thread stops that thread alone; continued, it gets the signal."""
    gdb, srv = cli
    mark = len(gdb.out)
    gdb.cmd("continue -a &")
    got = gdb.expect(r'Thread (\d+) "sig-target" received signal SIGUSR1', mark)
    rows = _threads(gdb.cmd("info threads"))
    assert [n for n, r in rows.items() if "(running)" in r] == [1], rows  # main waits on, running
    gdb.cmd(f"thread {got.group(1)}")
    mark = len(gdb.out)
    gdb.cmd("continue &")
    gdb.expect(r"\[Inferior 1 \(process \d+\) exited normally\]", mark)
    assert wait_until(lambda: "hits=1" in srv.stdout.text, 10), srv.stdout.text


@NONSTOP
@pytest.mark.timeout(120)
def test_cli_watchpoint_set_while_running(cli: tuple[Cli, Server]) -> None:
    """A hardware watchpoint set while every thread runs takes effect in the running
    threads too (their debug registers change under them, as gdbserver does it)."""
    gdb, _ = cli
    gdb.cmd("break marker")
    mark = len(gdb.out)
    gdb.cmd("continue -a &")
    hit = gdb.expect(r'Thread (\d+) "[^"]*" hit Breakpoint 1, marker', mark)
    gdb.expect(r"\n[^\n]*\n", hit.end())
    gdb.cmd(f"thread {hit.group(1)}")  # gdb sets watchpoints from a stopped thread
    gdb.cmd("delete")
    mark = len(gdb.out)
    gdb.cmd("watch counters[1]")
    gdb.expect(r'Thread \d+ "spin-1" hit Hardware watchpoint \d+: counters\[1\]', mark, timeout=20)
