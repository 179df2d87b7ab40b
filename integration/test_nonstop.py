"""Non-stop mode (issue 11) through gdb/MI, against gdbserver and gdbstub alike.

One thread stops at a breakpoint while the others keep counting; interrupting
all threads reports each exactly once; a breakpoint hit by every thread is
reported once per thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from harness import ProcessTracker, Server, program, start_server
from pygdbmi.gdbcontroller import GdbController

NTHREADS = 4  # spin threads in nonstop.c
Record = dict[str, Any]


class Mi:
    """A gdb/MI session driven through pygdbmi, keeping every record it saw."""

    def __init__(self, procs: ProcessTracker) -> None:
        self.gdb = GdbController(
            command=["gdb", "-nx", "-q", "--interpreter=mi3"], time_to_check_for_additional_output_sec=0.05
        )
        procs.track_pid(self.gdb.gdb_process.pid)
        self.records: list[Record] = []

    def read(self, timeout: float = 0.3) -> list[Record]:
        out: list[Record] = self.gdb.get_gdb_response(timeout_sec=timeout, raise_error_on_timeout=False)
        self.records += out
        return out

    def cmd(self, command: str, timeout: float = 20) -> Record:
        """Send COMMAND and return its ^result record (stop records that arrive are kept)."""
        self.gdb.write(command, read_response=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rec in self.read():
                if rec["type"] == "result":
                    return rec
        raise AssertionError(f"no result for {command!r}; saw {self.records[-10:]}")

    def stops(self) -> list[Record]:
        return [r for r in self.records if r["type"] == "notify" and r["message"] == "stopped"]

    def mark(self) -> int:
        """A point to count later stops from (take it before the command that resumes)."""
        return len(self.stops())

    def wait_stops(self, count: int, since: int, timeout: float = 20) -> list[Record]:
        """Wait until COUNT *stopped records have arrived after the mark SINCE."""
        start = since
        deadline = time.monotonic() + timeout
        while len(self.stops()) - start < count and time.monotonic() < deadline:
            self.read()
        got = self.stops()[start:]
        assert len(got) >= count, f"expected {count} stops, got {len(got)}: {got}"
        return got

    def value(self, expression: str) -> int:
        rec = self.cmd(f"-data-evaluate-expression {expression}")
        assert rec["message"] == "done", rec
        return int(rec["payload"]["value"])

    def threads(self) -> list[Record]:
        rec = self.cmd("-thread-info")
        return list(rec["payload"]["threads"])

    def exit(self) -> None:
        self.gdb.exit()


@pytest.fixture
def session(procs: ProcessTracker, kind: str, request: pytest.FixtureRequest) -> Iterator[tuple[Mi, Server]]:
    name = getattr(request, "param", "nonstop")
    srv = start_server(procs, kind, program(name))
    mi = Mi(procs)
    try:
        assert mi.cmd("-gdb-set non-stop on")["message"] == "done"
        # As IDEs do: execution commands run in the background and gdb keeps reading commands.
        assert mi.cmd("-gdb-set mi-async on")["message"] == "done"
        # Local libraries: fetching libc's separate debug info through the remote
        # protocol takes seconds with either server and is not what these tests are about.
        assert mi.cmd("-gdb-set sysroot /")["message"] == "done"
        assert mi.cmd(f"-file-exec-and-symbols {program(name)}")["message"] == "done"
        assert mi.cmd(f"-target-select remote {srv.address}", timeout=30)["message"] == "connected"
        yield mi, srv
    finally:
        mi.exit()
        srv.stop()


BITS = pytest.mark.parametrize("session", ["nonstop", "nonstop-32"], indirect=True)


def _counters_after(mi: Mi, indices: range, before: list[int], done: Any = all, timeout: float = 20) -> list[int]:
    """Read counters[INDICES] again until DONE (all/any) of them are past BEFORE or TIMEOUT passes.

    A bounded wait instead of one fixed sleep: on a loaded machine a running thread may not get
    the CPU for a while; the callers assert on the values returned."""
    deadline = time.monotonic() + timeout
    time.sleep(0.3)
    while True:
        after = [mi.value(f"counters[{i}]") for i in indices]
        if done(a > b for a, b in zip(after, before, strict=True)) or time.monotonic() > deadline:
            return after
        time.sleep(0.1)


@BITS
@pytest.mark.timeout(120)
def test_breakpoint_in_one_thread_others_keep_running(session: tuple[Mi, Server]) -> None:
    mi, _ = session
    assert mi.cmd("-break-insert marker")["message"] == "done"
    mark = mi.mark()
    assert mi.cmd("-exec-continue --all")["message"] == "running"
    (stop,) = mi.wait_stops(1, mark)
    assert stop["payload"]["reason"] == "breakpoint-hit"
    assert stop["payload"]["frame"]["func"] == "marker"
    stopped_thread = stop["payload"]["thread-id"]
    states = {t["id"]: t.get("state") for t in mi.threads()}
    assert states[stopped_thread] == "stopped"
    running = [tid for tid, state in states.items() if state == "running"]
    assert len(running) == NTHREADS  # main and the other three spinners
    # The others still count while thread 0 sits at the breakpoint.
    before = [mi.value(f"counters[{i}]") for i in range(1, NTHREADS)]
    after = _counters_after(mi, range(1, NTHREADS), before)
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)
    # The CLI's view, as a user typing `info threads` sees it.
    start = len(mi.records)
    assert mi.cmd('-interpreter-exec console "info threads"')["message"] == "done"
    text = "".join(str(r["payload"]) for r in mi.records[start:] if r["type"] == "console")
    assert text.count("(running)") == NTHREADS, text
    assert "marker (id=0)" in text, text
    stopped_counter = mi.value("counters[0]")
    time.sleep(0.1)
    assert mi.value("counters[0]") == stopped_counter
    # Registers and a backtrace of the stopped thread while the others run.
    assert mi.cmd(f"-thread-select {stopped_thread}")["message"] == "done"
    frames = mi.cmd("-stack-list-frames")["payload"]["stack"]
    assert [f["func"] for f in frames[:2]] == ["marker", "spin"]
    assert mi.cmd("-data-list-register-values x 16")["message"] == "done"


@BITS
@pytest.mark.timeout(120)
def test_interrupt_all_reports_each_thread_once(session: tuple[Mi, Server]) -> None:
    mi, _ = session
    _all_threads_at_hit(mi)
    assert mi.cmd("-exec-continue --all")["message"] == "running"
    time.sleep(0.3)
    mark = mi.mark()
    assert mi.cmd("-exec-interrupt --all")["message"] == "done"
    mi.wait_stops(NTHREADS + 1, mark)
    time.sleep(0.5)
    mi.read()
    stops = mi.stops()[mark:]
    ids = [s["payload"]["thread-id"] for s in stops]
    assert len(ids) == len(set(ids)) == NTHREADS + 1, ids
    assert all(s["payload"]["signal-name"] == "0" for s in stops)
    assert all(t.get("state") != "running" for t in mi.threads())
    # And they run again: `continue -a &` as typed at the CLI, then every counter moves.
    before = [mi.value(f"counters[{i}]") for i in range(NTHREADS)]
    assert mi.cmd('-interpreter-exec console "continue -a &"')["message"] in ("done", "running")
    after = _counters_after(mi, range(NTHREADS), before)
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)


def _all_threads_at_hit(mi: Mi) -> None:
    """Run until every spinner exists and sits in hit(), then drop the breakpoint."""
    assert mi.cmd("-break-insert hit")["message"] == "done"
    mark = mi.mark()
    assert mi.cmd("-exec-continue --all")["message"] == "running"
    mi.wait_stops(NTHREADS, mark)
    assert mi.cmd("-break-delete")["message"] == "done"


@BITS
@pytest.mark.timeout(120)
def test_breakpoint_hit_by_every_thread_reported_once_each(session: tuple[Mi, Server]) -> None:
    mi, _ = session
    assert mi.cmd("-break-insert hit")["message"] == "done"
    mark = mi.mark()
    assert mi.cmd("-exec-continue --all")["message"] == "running"
    stops = mi.wait_stops(NTHREADS, mark)
    time.sleep(0.5)
    mi.read()
    hits = [s for s in mi.stops() if s["payload"].get("reason") == "breakpoint-hit"]
    ids = [s["payload"]["thread-id"] for s in hits]
    assert len(ids) == len(set(ids)) == NTHREADS, (ids, stops)
    args = sorted(int(s["payload"]["frame"]["args"][0]["value"]) for s in hits)
    assert args == list(range(NTHREADS))


@BITS
@pytest.mark.timeout(120)
def test_single_thread_resumed_while_others_stay(session: tuple[Mi, Server]) -> None:
    mi, _ = session
    _all_threads_at_hit(mi)
    spinners = [t for t in mi.threads() if t.get("name", "").startswith("spin-")]
    first = spinners[0]["id"]
    before = [mi.value(f"counters[{i}]") for i in range(NTHREADS)]
    assert mi.cmd(f"-exec-continue --thread {first}")["message"] == "running"
    after = _counters_after(mi, range(NTHREADS), before, done=any)
    moved = [i for i in range(NTHREADS) if after[i] != before[i]]
    assert len(moved) == 1, (before, after)
    states = {t["id"]: t.get("state") for t in mi.threads()}
    assert states[first] == "running"
    # The three other spinners stay at hit(); main, never stopped, still runs (in pthread_join).
    assert sum(1 for s in states.values() if s == "stopped") == NTHREADS - 1
    mark = mi.mark()
    assert mi.cmd(f"-exec-interrupt --thread {first}")["message"] == "done"
    (stop,) = mi.wait_stops(1, mark)
    assert stop["payload"]["thread-id"] == first


@BITS
@pytest.mark.timeout(120)
def test_breakpoint_inserted_and_removed_while_threads_run(session: tuple[Mi, Server]) -> None:
    """The code changes under running threads: hits are reported, none is lost or corrupts."""
    mi, _ = session
    _all_threads_at_hit(mi)
    assert mi.cmd("-exec-continue --all")["message"] == "running"
    time.sleep(0.2)
    mark = mi.mark()
    assert mi.cmd("-break-insert tick")["message"] == "done"  # inserted while all run
    stops = mi.wait_stops(NTHREADS, mark)
    assert all(s["payload"]["frame"]["func"] == "tick" for s in stops), stops
    # Remove it while nothing is running, then run again: counting goes on without a stray trap.
    assert mi.cmd("-break-delete")["message"] == "done"
    mark = mi.mark()
    assert mi.cmd("-exec-continue --all")["message"] == "running"
    for _ in range(3):
        # Insert and remove repeatedly under running threads.
        assert mi.cmd("-break-insert tick")["message"] == "done"
        time.sleep(0.05)
        assert mi.cmd("-break-delete")["message"] == "done"
        time.sleep(0.05)
        mi.read()
        for stop in mi.stops()[mark:]:
            assert stop["payload"].get("reason") != "signal-received", stop  # no stray SIGTRAP
            if stop["payload"].get("reason") == "breakpoint-hit":
                assert mi.cmd(f"-exec-continue --thread {stop['payload']['thread-id']}")["message"] in (
                    "running", "error")
        mark = mi.mark()
    before = [mi.value(f"counters[{i}]") for i in range(NTHREADS)]
    after = _counters_after(mi, range(NTHREADS), before)
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)
    mi.read()
    assert not [s for s in mi.stops()[mark:] if s["payload"].get("reason") == "signal-received"]


HAMMER = pytest.mark.parametrize("session", ["nshammer", "nshammer-32"], indirect=True)


@HAMMER
@pytest.mark.timeout(120)
def test_false_condition_step_overs_lose_no_hit(session: tuple[Mi, Server]) -> None:
    """count() is hit all the time by four threads; only thread 0's hits are wanted
    (the condition is evaluated in the server), so the server steps the others over
    the breakpoint constantly. While it does, thread 0 must never run past the lifted
    int3: each resume of thread 0 stops at its very next call."""
    mi, _ = session
    assert mi.cmd('-break-insert -c "id == 0" count')["message"] == "done"
    start = mark = mi.mark()
    assert mi.cmd("-exec-continue --all")["message"] == "running"
    (stop,) = mi.wait_stops(1, mark)
    assert stop["payload"]["frame"]["args"][0]["value"] == "0", stop
    first = stop["payload"]["thread-id"]
    others_before = [mi.value(f"calls[{i}]") for i in range(1, NTHREADS)]
    for expected in range(15):
        assert mi.value("calls[0]") == expected
        mark = mi.mark()
        assert mi.cmd(f"-exec-continue --thread {first}")["message"] == "running"
        (stop,) = mi.wait_stops(1, mark)
        assert stop["payload"]["thread-id"] == first, stop
        assert stop["payload"]["reason"] == "breakpoint-hit", stop
    assert mi.value("calls[0]") == 15
    # The other threads ran all along (through the breakpoint, unreported).
    others_after = [mi.value(f"calls[{i}]") for i in range(1, NTHREADS)]
    assert all(a > b for a, b in zip(others_after, others_before, strict=True)), (others_before, others_after)
    mi.read()
    assert len(mi.stops()[start:]) == 16, mi.stops()[start:]
