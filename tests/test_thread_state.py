"""Thread states: stored on the thread, changed only by its named transitions, each legal
from the states ``TRANSITIONS`` lists (an illegal one is logged, never raised: the stub
must not die of its own bookkeeping)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from gdbstub.target.base import ResumeAction, StopEvent, StopKind
from gdbstub.target.linux import threads
from gdbstub.target.linux.process import LinuxTarget, Thread, ThreadState

S = ThreadState
PACKAGE = Path(threads.__file__).parent


def test_new_thread_is_stopped_as_the_client_knows() -> None:
    assert Thread(10, 10).state is S.STOPPED


def test_a_new_clone_is_stopping_until_its_first_stop() -> None:
    t = Thread.clone(11, 10, resumed=True, report_create=False)
    assert (t.state, t.stopped, t.expect_sigstop) == (S.STOPPING, False, True)
    t.stopped_by_event()
    t.sigstop_arrived()
    assert (t.state, t.expect_sigstop) == (S.PAUSED, False)


def test_resume_drops_register_caches_and_names_the_resume_kind() -> None:
    t = Thread(10, 10)
    t.user, t.xstate = bytearray(8), bytearray(8)
    t.client_resumed(ResumeAction("c", signal=10))
    assert (t.state, t.resumed, t.deliver) == (S.PAUSED, True, 10)
    assert t.take_signal() == 10 and t.deliver == 0
    t.resumed_running()
    assert (t.stopped, t.user, t.xstate, t.state) == (False, None, None, S.RUNNING)
    t.stopped_by_event()
    t.resumed_stepping()
    assert t.state is S.STEPPING


def test_a_step_over_is_its_own_state_and_ends_at_rest() -> None:
    t = Thread(10, 10)
    t.client_resumed(ResumeAction("c"))
    t.stepping_over_started()
    assert (t.state, t.stepping_over, t.stopped) == (S.STEPPING_OVER, True, False)
    t.user = bytearray(8)
    t.stepping_over_ended()  # its wait status is in hand
    assert (t.state, t.stepping_over, t.stopped, t.user) == (S.PAUSED, False, True, None)


def test_sigstop_sent_to_a_running_thread_is_stopping() -> None:
    t = Thread(10, 10)
    t.resumed_running()
    t.sigstop_sent()
    assert t.state is S.STOPPING
    t.stopped_by_event()
    assert (t.state, t.expect_sigstop) == (S.STOPPED, True)
    t.sigstop_arrived()
    assert t.expect_sigstop is False


def test_kept_event_then_taken_then_reported() -> None:
    t = Thread(10, 10)
    t.client_resumed(ResumeAction("c"))
    event = StopEvent(StopKind.SIGNAL, 10, 10, signal=5)
    t.event_kept(event, 3)
    assert (t.state, t.pending_seq) == (S.STOPPED_PENDING, 3)
    assert t.event_taken() is event and t.pending is None
    assert t.state is S.PAUSED  # the client still thinks it runs
    t.stop_requested()
    t.reported()
    assert (t.state, t.resumed, t.client_stop) == (S.STOPPED, False, False)


def test_an_illegal_transition_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    t = Thread(10, 10)
    t.resumed_running()
    with caplog.at_level(logging.ERROR, logger="gdbstub.target"):
        t.resumed_running()  # a thread that already runs cannot be resumed again
        t.reported()
    assert [r.getMessage() for r in caplog.records] == [
        "thread 10: resumed_running from running is not a legal transition",
        "thread 10: reported from running is not a legal transition",
    ]


def test_every_transition_method_has_its_row_and_every_row_its_method() -> None:
    methods = {m.group(1) for m in re.finditer(r'_(?:illegal|set_going)\("(\w+)"', _source(threads.__file__))}
    assert methods == set(threads.TRANSITIONS)
    for name in threads.TRANSITIONS:
        assert callable(getattr(Thread, name))
        assert threads.TRANSITIONS[name] <= threads.EVERY and threads.TRANSITIONS[name]


STATE_FIELDS = ("stopped", "resumed", "pending", "pending_seq", "expect_sigstop", "deliver", "action",
                "client_stop", "report_create", "stepping_over", "state")


def test_no_module_but_threads_assigns_a_thread_state_field() -> None:
    """The transitions are the one place a thread's state changes: grep the package."""
    assign = re.compile(r"\b\w+\.(" + "|".join(STATE_FIELDS) + r")\s*(=|\+=|-=)(?!=)")
    found = []
    for path in PACKAGE.glob("*.py"):
        if path.name == "threads.py":
            continue
        for n, line in enumerate(_source(str(path)).splitlines(), 1):
            if assign.search(line.split("#")[0]):
                found.append(f"{path.name}:{n}: {line.strip()}")
    assert found == []


def _source(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


def test_layers_build_one_target_with_every_setting() -> None:
    """Each layer initialises its own part; the public class has them all."""
    t = LinuxTarget()
    assert (t.processes, t.threads, t.running, t.non_stop) == ({}, {}, False, False)
    assert t.hw is not None and t.conditions.table == {}
    assert (t.pass_signals, t.catch_syscalls, t.report_no_resumed, t.program_signals) == (
        frozenset(), None, False, None)
