"""When the target steps over a breakpoint (gdbserver's rule, issue 14 item 1), and that a
wait status the decoder fails on is still reported (item 2). No process: the PC and the
decoder are stand-ins."""

from __future__ import annotations

import signal

import pytest

from gdbstub.arch.x86_64 import X86_64
from gdbstub.target.base import StopKind
from gdbstub.target.linux import stops
from gdbstub.target.linux.process import LinuxTarget, Process, Thread

PID = 4242
BP = 0x1000


class NoMemory:
    def close(self) -> None:
        pass


def target_at(monkeypatch: pytest.MonkeyPatch, pc: int) -> tuple[LinuxTarget, Thread]:
    target = LinuxTarget()
    target.hw = None
    target.processes[PID] = Process(PID, X86_64, NoMemory(), True, {BP: b"\x90", BP + 4: b"\x90"})  # type: ignore[arg-type]
    t = target.threads[PID] = Thread(PID, PID)
    monkeypatch.setattr(target, "get_pc", lambda thread: pc)
    return target, t


def test_a_breakpoint_at_the_pc_is_not_stepped_over_unless_swallowed_there(monkeypatch: pytest.MonkeyPatch) -> None:
    target, t = target_at(monkeypatch, BP)
    assert not target._needs_step_over(t)  # jump/P onto it, a reported stop: the client wants the hit
    t.swallowed_pc = BP
    assert target._needs_step_over(t)  # a false condition the stub swallowed here
    target.processes[PID].sw_breakpoints.pop(BP)
    assert not target._needs_step_over(t)  # removed meanwhile: nothing to step over


def test_a_pc_moved_since_the_swallowed_hit_cancels_the_step_over(monkeypatch: pytest.MonkeyPatch) -> None:
    target, t = target_at(monkeypatch, BP + 4)
    t.swallowed_pc = BP
    assert not target._needs_step_over(t)


@pytest.mark.parametrize("resume", ["resumed_running", "resumed_stepping", "stepping_over_started"])
def test_any_resume_ends_the_swallowed_hit(resume: str) -> None:
    t = Thread(PID, PID, swallowed_pc=BP, collected_pc=BP)
    getattr(t, resume)()
    assert t.swallowed_pc is None and t.collected_pc is None


def _failing_decoder(monkeypatch: pytest.MonkeyPatch, status: int) -> LinuxTarget:
    """A target whose next wait status is STATUS of PID, and whose decoder fails on it."""
    target, _ = target_at(monkeypatch, BP)
    monkeypatch.setattr(stops, "_waitpid", lambda pid, options: (PID, status))

    def broken(tid: int, status: int, collecting: bool) -> None:
        raise OSError(5, "short write")

    monkeypatch.setattr(target, "_on_status", broken)
    return target


def test_an_exit_the_decoder_fails_on_is_still_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    target = _failing_decoder(monkeypatch, 0)  # exited, code 0
    event = target.poll()
    assert event is not None and (event.kind, event.pid, event.status) == (StopKind.EXITED, PID, 0)
    assert PID not in target.processes


def test_a_stop_the_decoder_fails_on_is_still_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    target = _failing_decoder(monkeypatch, (signal.SIGUSR1 << 8) | 0x7F)  # stopped by SIGUSR1
    target.threads[PID].stopped = False
    event = target.poll()
    assert event is not None and (event.kind, event.tid, event.signal) == (StopKind.SIGNAL, PID, signal.SIGUSR1)
    assert target.threads[PID].stopped


def test_a_collected_tracepoint_is_stepped_over_once_the_client_lets_go(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop at a tracepoint (collected there) that is also a client's breakpoint: while the client
    owns the int3 it wants the hit; once gdb lifts its own (z0) to step off, the trace's is stepped over."""
    target, t = target_at(monkeypatch, BP)
    target.tracer.own(PID, BP, "client")
    target.tracer.own(PID, BP, "trace")
    t.collected_pc = BP
    assert not target._needs_step_over(t)
    assert target.tracer.still_owned(PID, BP, "client")  # z0: the trace keeps the int3
    assert target._needs_step_over(t)
    t.stepping_over_started()
    assert t.collected_pc is None
