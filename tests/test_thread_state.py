"""Thread states: the names the flags add up to, and the two transitions that change
the flags together (a ptrace-stop seen drops the register caches, so a stale PC is
never read after the thread ran)."""

from __future__ import annotations

from gdbstub.target.base import ResumeAction, StopEvent, StopKind
from gdbstub.target.linux.process import LinuxTarget, Thread, ThreadState


def test_new_thread_is_stopped_as_the_client_knows() -> None:
    assert Thread(10, 10).state is ThreadState.STOPPED


def test_run_drops_register_caches_and_names_the_resume_kind() -> None:
    t = Thread(10, 10, user=bytearray(8), xstate=bytearray(8))
    t.resumed = True
    t.run()
    assert (t.stopped, t.user, t.xstate) == (False, None, None)
    assert t.state is ThreadState.RUNNING
    t.action = ResumeAction("s")
    assert t.state is ThreadState.STEPPING
    t.action = ResumeAction("r", start=0x1000, end=0x1010)
    assert t.state is ThreadState.STEPPING
    t.stepping_over = True
    assert t.state is ThreadState.STEPPING_OVER


def test_sigstop_on_its_way_is_stopping() -> None:
    t = Thread(10, 10, stopped=False, expect_sigstop=True)
    assert t.state is ThreadState.STOPPING


def test_stop_drops_caches_paused_or_pending() -> None:
    t = Thread(10, 10, stopped=False, resumed=True)
    t.user = bytearray(8)
    t.stop()
    assert (t.stopped, t.user, t.xstate) == (True, None, None)
    assert t.state is ThreadState.PAUSED  # the client still thinks it runs
    t.pending = StopEvent(StopKind.SIGNAL, 10, 10, signal=5)
    assert t.state is ThreadState.STOPPED_PENDING


def test_layers_build_one_target_with_every_setting() -> None:
    """Each layer initialises its own part; the public class has them all."""
    t = LinuxTarget()
    assert (t.processes, t.threads, t.running, t.non_stop) == ({}, {}, False, False)
    assert t.hw is not None and t.conditions.table == {}
    assert (t.pass_signals, t.catch_syscalls, t.report_no_resumed, t.program_signals) == (
        frozenset(), None, False, None)
