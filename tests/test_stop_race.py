"""All-stop races with a process that ends while a stop of one of its threads is being
reported, made wide on purpose so they happen every run.

Found by test_fuzz_grammar under CPU starvation: `S05` kept SIGTRAP for a thread whose event
was reported first; the next `vCont;s:0;c` stepped it with the signal, which kills the whole
process, and the other thread's SIGTRAP stop was reaped just before the kernel's SIGKILL took
it out of its ptrace-stop. The stub reported that stale stop, and the client's register read
got ESRCH. Here the process's end comes from its own exit_group, at the same point: after the
trigger's stop is reaped, before the other threads are stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_fuzz_session import build_program, end_programs, symbol

from gdbstub.protocol.registry import new_session
from gdbstub.protocol.session import Session
from gdbstub.target.base import StopEvent, StopKind
from gdbstub.target.linux import threads
from gdbstub.target.linux.process import LinuxTarget

PROGRAM = r"""
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
volatile unsigned long hits;
__attribute__((noinline)) void ready(void) { hits++; }
__attribute__((noinline)) void hit(void) { hits++; }
/* Blocks until the test writes to its stdin, then ends the whole process: exit_group, or
   a fatal signal (SIGKILL: ptrace stops no thread for it). */
static void *ender(void *arg)
{
    char c;
    if (read(0, &c, 1) == 1) {
        if (c == 'k')
            kill(getpid(), SIGKILL);
        _exit(7);
    }
    return arg;
}
int main(void)
{
    pthread_t t;
    pthread_create(&t, 0, ender, 0);
    usleep(1000);
    ready();
    for (;;) hit();
}
"""


def wait_stop(target: LinuxTarget, limit: float = 30.0) -> StopEvent:
    """The next stop, without interrupting the program (bounded)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        event = target.poll()
        if event is not None:
            return event
        time.sleep(0.0005)
    raise AssertionError("no stop reported")


def run_to(target: LinuxTarget, addr: int) -> Session:
    """A new session's continue to ADDR (a breakpoint there, removed again): the session."""
    s = new_session(target)
    s.handle(b"qSupported:multiprocess+;swbreak+;hwbreak+")
    assert s.handle(b"Z0,%x,1" % addr) == b"OK"
    assert s.handle(b"vCont;c") is None
    s.on_stop(wait_stop(target))
    assert s.handle(b"z0,%x,1" % addr) == b"OK"
    return s


@contextlib.contextmanager
def at_hit(tmp_path: Path, bits: str) -> Iterator[tuple[LinuxTarget, Session, int, int]]:
    """The program stopped at `ready` with both threads, a breakpoint on `hit` instead:
    (target, session, pid, the write end of its stdin)."""
    exe = build_program(tmp_path, bits, PROGRAM, "ender")
    stdin_r, stdin_w = os.pipe()
    target = LinuxTarget()
    pid = target.launch([str(exe)], stdio_fds=(stdin_r, 1, 2))
    os.close(stdin_r)
    try:
        s = run_to(target, symbol(exe, "ready"))
        assert len(target.threads) == 2
        assert s.handle(b"Z0,%x,1" % symbol(exe, "hit")) == b"OK"
        yield target, s, pid, stdin_w
    finally:
        os.close(stdin_w)
        target.close()
        end_programs([pid])


def leader_left_its_stop(pid: int) -> None:
    deadline = time.monotonic() + 30
    while threads.task_state(pid, pid) in ("t", "T") and time.monotonic() < deadline:
        time.sleep(0.001)
    assert threads.task_state(pid, pid) not in ("t", "T"), "the leader never left its stop"


def first_in_stop_all(target: LinuxTarget, pid: int, act: Callable[[], object]) -> list[bool]:
    """Make the stop-all of the next report do ACT first (once), then wait until the leader has
    left its ptrace-stop; the list returned is non-empty once that happened."""
    stop_all = target._stop_all
    done: list[bool] = []

    def act_first() -> bool:
        if not done:
            done.append(True)
            act()
            leader_left_its_stop(pid)
        return stop_all()

    target._stop_all = act_first  # type: ignore[method-assign]
    return done


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("bits", "how", "end"), [("64", b"x", b"W7;"), ("32", b"x", b"W7;"), ("64", b"k", b"X9;")],
                         ids=["exit-64", "exit-32", "signal-64"])
def test_process_ends_while_a_stop_is_reported(tmp_path: Path, bits: str, how: bytes, end: bytes) -> None:
    with at_hit(tmp_path, bits) as (target, s, pid, stdin_w):
        # The race, made wide: the leader's breakpoint stop is reaped; before the stub stops
        # the other thread, that thread ends the process, and the kernel's SIGKILL takes the
        # leader out of its ptrace-stop.
        ended = first_in_stop_all(target, pid, lambda: os.write(stdin_w, how))
        assert s.handle(b"vCont;c") is None
        event = wait_stop(target)
        reply = s.on_stop(event)
        assert ended, "the leader's stop did not come first"
        # The process's end, not a stop of a thread whose registers cannot be read any more.
        assert event.kind in (StopKind.EXITED, StopKind.TERMINATED), (event, reply)
        assert reply is not None and reply.startswith(end), reply
        assert not target.processes


@pytest.mark.timeout(120)
@pytest.mark.parametrize("bits", ["64", "32"])
def test_process_killed_while_the_other_threads_are_stopped(tmp_path: Path, bits: str) -> None:
    """A SIGKILL from outside while only the leader runs (the ender thread stays stopped: gdb's
    scheduler-locking): the leader's breakpoint stop is reaped, then the kill takes it out of
    its ptrace-stop; stopping all has no thread to wait for, so nothing showed the end before."""
    with at_hit(tmp_path, bits) as (target, s, pid, _stdin):
        def kill() -> None:
            assert all(t.stopped for t in target.threads.values())
            os.kill(pid, signal.SIGKILL)

        killed = first_in_stop_all(target, pid, kill)
        assert s.handle(b"vCont;c:p%x.%x" % (pid, pid)) is None  # the leader alone runs
        event = wait_stop(target)
        reply = s.on_stop(event)
        assert killed, "the leader's stop did not come first"
        assert event.kind is StopKind.TERMINATED, (event, reply)
        assert reply is not None and reply.startswith(b"X9;"), reply
        assert not target.processes
