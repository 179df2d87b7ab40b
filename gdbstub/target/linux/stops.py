"""The stop engine: reaps wait statuses (``poll``), stops every thread for an
all-stop report (``_stop_all``), keeps the events other threads had meanwhile
pending and picks which to report first. Decoding is the decoder's (decode.py);
when and how threads run again is the resume policy's (resume.py, above this).
"""

from __future__ import annotations

import os
import time

from ...hints import signal
from ...logs import get_logger
from ..base import STOP_SIGNAL, StopEvent, StopKind
from . import ptrace
from .childsignal import take_sigchld
from .decode import _SIGTRAP, STEP_TRAP, StatusDecoder, moved_past_traps
from .registers import _LAYOUTS
from .threads import Thread, task_state

log = get_logger("gdbstub.target")

STOP_TIMEOUT = 2.0  # how long stopping all threads waits for one that will not stop
# A range step's instruction is done in microseconds; one that takes longer than this (a
# system call that blocks, a page fault on a slow file) is left to the event loop.
RANGE_STEP_WAIT = 0.005
# Range steps awaited in one poll before it returns to the event loop all the same: a `next`
# over a line that loops in itself (`while (!done);`) reads the client's ^C between batches.
RANGE_STEP_BATCH = 64
_waitpid = os.waitpid
_WNOHANG_WALL = os.WNOHANG | ptrace.WALL


class StopEngine(StatusDecoder):
    """Collecting stops: the ready queue, pending events, stopping all threads."""

    def __init__(self) -> None:
        super().__init__()
        self.report_no_resumed = False  # no-resumed+: 'N' when no resumed thread is left
        self.ready: list[StopEvent] = []  # to report at the next poll, all threads stopped (never replaced)
        self._deferred: list[StopEvent] = []  # exits seen while stopping all
        self._seq = 0
        # With SIGCHLD blocked (ThreadTable.sigchld_blocked) a range step is awaited right here
        # with sigtimedwait instead of a round trip through the event loop.
        self.range_stepper: Thread | None = None  # the thread whose range step is under way
        # All-stop, the range stepper is the only thread and was just resumed (every status
        # reaped): the next SIGCHLD is its step's, so poll awaits it before asking waitpid,
        # which would find nothing yet. (A SIGCHLD left over only costs a turn of the loop.)
        self.step_unseen = False
        self.range_waits = 0  # range steps awaited in this poll (RANGE_STEP_BATCH at most)

    def poll(self) -> StopEvent | None:
        """Reap every wait status ready now; return a stop to report, if any."""
        ready = self.ready
        event: StopEvent | None
        self.range_waits = 0
        while True:
            if ready:
                event = ready.pop(0)
                if self.non_stop:
                    self._reported(event)
                else:
                    self._end_resume()
                break
            if self.step_unseen:
                self.step_unseen = False
                if self.range_waits < RANGE_STEP_BATCH and self._await_range_step():
                    self.range_waits += 1
            try:
                tid, status = _waitpid(-1, _WNOHANG_WALL)
            except ChildProcessError:
                tid = 0
            if tid == 0:
                if (self.range_stepper is not None and self.range_waits < RANGE_STEP_BATCH
                        and self._await_range_step()):
                    self.range_waits += 1
                    continue
                event = self._no_resumed()
                break
            stepper = self.range_stepper
            try:
                if status != STEP_TRAP:
                    found = self._on_status(tid, status, False)
                elif stepper is not None and tid == stepper.tid:
                    found = self._range_step_trapped(stepper)
                else:
                    found = self._plain_trap(tid)
            except Exception:
                found = self._decode_failed(tid, status)
            if found is not None:
                threads = self.threads
                if len(threads) == 1 and not self.non_stop:
                    (alone,) = threads.values()
                    if alone.stopped and alone.pending is None:  # nothing to stop, nothing to choose
                        self.running = False
                        alone.reported()
                        event = found
                        break
                event = self._report(found)
                break
        if event is not None and self.made_tracer is not None and self.made_tracer.sites:
            from ...trace.stepping import stepped_onto_tracepoint

            stepped_onto_tracepoint(self, event)  # a step ending at a tracepoint is its hit
        return event

    def _range_step_trapped(self, t: Thread) -> StopEvent | None:
        """``_on_status`` of a plain SIGTRAP (STEP_TRAP) of the thread whose range step is
        under way, the status every instruction of a `next` ends in, without the decoder's
        general tests: one GETREGS, then the next step or the step's stop, as ``_sigtrap``
        gives them for a step's own trap (no debug register set, the PC moved past any trap:
        see ``moved_past_traps``); anything else goes through ``_sigtrap``, given the
        registers read here. All-stop with one thread, the steps are awaited here, in a
        loop, until the range is left or something else comes (handed to ``_on_status``)."""
        hw = self.hw
        proc = self.processes.get(t.pid)
        layout = _LAYOUTS.get(proc.arch) if proc is not None else None
        if (t.stopped or not t.resumed or not self.running or t.action.kind != "r" or layout is None
                or self.threads.get(t.tid) is not t
                or layout.pc < 0 or (hw is not None and (hw.procs or hw.applied))):
            return self._on_status(t.tid, STEP_TRAP, False)
        # Nothing of these changes while the loop runs: no client packet is handled meanwhile.
        tid, action, at, pc_from = t.tid, t.action, layout.pc, layout.pc_from
        low, high = action.start, action.end
        alone = self.sigchld_blocked and not self.non_stop and len(self.threads) == 1
        getregs, resume = ptrace.getregs, ptrace.resume
        while True:
            user = getregs(tid)
            pc = pc_from(user, at)[0]
            if not moved_past_traps(t.range_from, pc):
                t.stopped_by_event()
                t.user = user  # a trap the siginfo tells apart: _sigtrap's own path, without a second read
                return self._sigtrap(t, False)
            if not low <= pc < high:
                t.stopped_by_event()
                t.user = user
                t.stop_signal = _SIGTRAP
                return StopEvent(STOP_SIGNAL, t.pid, tid, _SIGTRAP, 0, None, 0)
            # Still in range: step on. The thread's state is what stopped_by_event then
            # resumed_stepping would leave (stepping, no caches).
            t.range_from = pc
            try:
                resume(ptrace.SINGLESTEP, tid, 0)
            except OSError as exc:  # as _ptrace_resume: its next wait status tells
                log.debug("resume %d failed: %s", tid, exc)
                return None
            if not alone or self.range_waits >= RANGE_STEP_BATCH:
                return None  # poll waits (or goes back to the event loop)
            if not take_sigchld(RANGE_STEP_WAIT):
                self.range_stepper = None  # blocked in a system call: the event loop's now
                return None
            self.range_waits += 1
            try:
                got, status = _waitpid(tid, _WNOHANG_WALL)
            except ChildProcessError:
                return None
            if got == 0:
                return None  # a SIGCHLD left over: poll waits on
            if status != STEP_TRAP:
                return self._decode_safely(tid, status)

    def _await_range_step(self) -> bool:
        """Wait (briefly) for the SIGCHLD of a range step under way; whether one came.

        A range step goes on while the PC stays in range: awaited here, each step costs a
        SIGCHLD taken by sigtimedwait instead of an epoll wake-up, a signalfd read and the
        loop's dispatch. Whatever status comes is decoded as the event loop would (the
        stepped thread's or another's: a signal, an exit, a clone, a breakpoint); taking the
        SIGCHLD loses nothing, since poll reaps until waitpid finds nothing. A step still
        not done after RANGE_STEP_WAIT (blocked in a system call) is left to the event
        loop, which also hears the client's ^C meanwhile."""
        t = self.range_stepper
        if t is None or t.stopped or not self.sigchld_blocked or t.action.kind != "r":
            self.range_stepper = None
            return False
        if not take_sigchld(RANGE_STEP_WAIT):
            self.range_stepper = None  # not again for this step
            return False
        return True

    def _decode_safely(self, tid: int, status: int) -> StopEvent | None:
        """``_on_status``, or ``_decode_failed`` when it fails."""
        try:
            return self._on_status(tid, status, False)
        except Exception:
            return self._decode_failed(tid, status)

    def _decode_failed(self, tid: int, status: int) -> StopEvent | None:
        """A status ``_on_status`` failed on (a ptrace race, a bug) is still reported: once
        reaped it is never seen again, and a lost exit leaves the client waiting forever."""
        log.exception("while decoding wait status %#x of %d", status, tid)
        t = self.threads.get(tid)
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            if tid not in self.processes:
                if t is not None:
                    self._forget_thread(t)
                return None
            return self._thread_gone(t or Thread(tid, tid), status)
        if t is None:
            return None
        t.stopped_by_event()
        sig = signal.SIGTRAP if status >> 16 else os.WSTOPSIG(status)
        t.stop_signal = sig
        return StopEvent(STOP_SIGNAL, t.pid, t.tid, signal=sig)

    def _no_resumed(self) -> StopEvent | None:
        """Nothing left running (the resumed threads exited): gdb's 'N' stop."""
        if not self.running or not self.report_no_resumed or not self.processes:
            return None
        for t in self.threads.values():  # no generator: a poll right after a resume ends here
            if not t.stopped:
                return None
        self._end_resume()
        return StopEvent(StopKind.NO_RESUMED, self.pid, 0)

    def _report(self, event: StopEvent) -> StopEvent:
        """All-stop: stop every other thread, then report the stepping thread's event
        before any other (as gdbserver does), keeping the rest pending."""
        if self.non_stop:
            self._reported(event)
            return event
        known = len(self.threads)  # (one thread, stopped, nothing kept: poll reported it itself)
        waited = self._stop_all()
        if len(self.threads) < known or self._deferred or not waited:
            event = self._unless_ending(event)
        trigger = self.threads.get(event.tid)
        if trigger is not None and not self._stepping(trigger):
            steppers = [t for t in self.threads.values()
                        if t.pending is not None and t.resumed and self._stepping(t)]
            if steppers:
                chosen = min(steppers, key=lambda t: t.pending_seq)
                self._keep_pending(trigger, event)
                event = chosen.event_taken()
        self._end_resume()
        return event

    def _unless_ending(self, event: StopEvent) -> StopEvent:
        """Threads went while stopping all, or there was no thread to stop (so nothing would
        have shown an end: gdb's scheduler-locking, a SIGKILL from outside). When their process
        is ending (exit_group, a fatal signal: the kernel's SIGKILL takes every thread out of its
        ptrace-stop), the stop reaped just before is stale and its thread's registers are gone:
        report the end."""
        t = self.threads.get(event.tid)
        if t is None or task_state(t.pid, t.tid) in ("t", "T"):
            return event
        return self._process_end(t.pid) or event

    def _process_end(self, pid: int) -> StopEvent | None:
        """Reap an ending process's threads until its exit (the leader reports last); None
        if it does not come (bounded: the exit is only inferred from a thread left its stop)."""
        deadline = time.monotonic() + 5 * STOP_TIMEOUT
        while True:
            for i, gone in enumerate(self._deferred):
                if gone.pid == pid and gone.kind in (StopKind.EXITED, StopKind.TERMINATED):
                    self._give_back_sigchld()
                    return self._deferred.pop(i)
            if pid not in self.processes or time.monotonic() > deadline:
                break
            try:
                tid, status = _waitpid(-1, _WNOHANG_WALL)
            except ChildProcessError:
                break
            if tid == 0:
                self._await_child(0.0005, deadline)
            elif os.WIFSTOPPED(status) and self.pid_of(tid) == pid:
                continue  # a stop on its way out: nothing of it can be read any more
            else:
                self._collect(tid, status)
        self._give_back_sigchld()
        return None

    def _end_resume(self) -> None:
        self.running = False
        for t in self.threads.values():
            t.reported()

    def poll_first(self) -> bool:
        """Whether the event loop, waiting for a stop, should poll before it waits for a
        SIGCHLD: a stop is queued already (kept from the last one, a step-off's), or a range
        step is under way (poll awaits its steps itself)."""
        return bool(self.ready) or self.range_stepper is not None

    def _keep_pending(self, t: Thread, event: StopEvent) -> None:
        self._seq += 1
        if t.pending is not None:
            log.debug("thread %d: second pending event %s dropped", t.tid, event.kind)
            return
        t.event_kept(event, self._seq)

    def _take_pending(self) -> StopEvent | None:
        """The next still-valid event kept from an earlier stop (exits first: a thread's
        only when the request continues threads, not just steps one)."""
        if self._deferred:
            continuing = any(t.resumed and not self._stepping(t) for t in self.threads.values())
            for i, gone in enumerate(self._deferred):
                if gone.kind is not StopKind.THREAD_EXITED or continuing:
                    return self._deferred.pop(i)
        candidates = [t for t in self.threads.values() if t.resumed and t.pending is not None]
        if not candidates:
            return None
        candidates.sort(key=lambda t: t.pending_seq)
        chosen: StopEvent | None = None
        for t in candidates:
            event = t.pending
            assert event is not None
            if not self._still_valid(t, event):
                t.event_taken()  # dropped
                continue
            if chosen is None or (self._stepping(t) and not self._stepping(self.threads[chosen.tid])):
                chosen = event
        if chosen is not None:
            self.threads[chosen.tid].event_taken()
        return chosen

    def pending_event(self, tid: int) -> StopEvent | None:
        """Read-only: the event a stopped thread keeps for a later resume (all-stop reports
        one thread's at a time). lldb is told of them all at once, as lldb-server does.
        None when there is none or it no longer counts (its breakpoint was removed)."""
        t = self.threads.get(tid)
        if t is None or t.pending is None or not self._still_valid(t, t.pending):
            return None
        return t.pending

    def _stop_all(self) -> bool:
        """Bring every thread to a stop; the events they had meanwhile are kept pending.
        False when every thread was stopped already (nothing waited for)."""
        start = time.monotonic()
        deadline = start + STOP_TIMEOUT
        zombies_checked = False
        waited = False
        while True:
            waiting = [t for t in self.threads.values() if not t.stopped]
            if not waiting:
                break
            waited = True
            for t in waiting:
                if not t.expect_sigstop:
                    try:
                        ptrace.tgkill(t.pid, t.tid, signal.SIGSTOP)
                    except OSError:
                        pass
                    t.sigstop_sent()
            try:
                tid, status = os.waitpid(-1, os.WNOHANG | ptrace.WALL)
            except ChildProcessError:
                for t in waiting:
                    self._forget_thread(t)
                break
            if tid == 0:
                if not zombies_checked and time.monotonic() - start > 0.02:
                    # A leader that called pthread_exit is a zombie until the last thread
                    # goes: it never stops again (nor reports its exit before then).
                    zombies_checked = True
                    for t in waiting:
                        if task_state(t.pid, t.tid) in ("Z", "X", ""):
                            t.treated_as_stopped()
                            if t.tid == t.pid and any(x.pid == t.pid and x.tid != t.tid
                                                      for x in self.threads.values()):
                                self._forget_thread(t)  # gone from the list, as gdbserver does
                    continue
                if time.monotonic() > deadline:
                    # A thread that will not stop (blocked in vfork, say): treat it as
                    # stopped; its SIGSTOP is still due and is swallowed when it comes.
                    for t in waiting:
                        log.debug("thread %d did not stop", t.tid)
                        t.treated_as_stopped()
                    break
                self._await_child(0.0005, deadline if zombies_checked else min(deadline, start + 0.02))
                continue
            self._collect(tid, status)
        self.running = False
        self._give_back_sigchld()
        return waited

    def _collect(self, tid: int, status: int) -> None:
        event = self._on_status(tid, status, collecting=True)
        if event is None:
            return
        t = self.threads.get(event.tid)
        if t is None or event.kind in (StopKind.EXITED, StopKind.TERMINATED):
            self._deferred.append(event)
        else:
            self._keep_pending(t, event)

    def set_non_stop(self, on: bool) -> None:
        """Entering all-stop stops every thread (the manual's rule for QNonStop:0)."""
        self.non_stop = on
        if not on and self.running:
            self._stop_all()
            self._end_resume()

    def _reported(self, event: StopEvent) -> None:
        """Non-stop: the reporting thread alone is stopped now."""
        t = self.threads.get(event.tid)
        if t is not None:
            t.reported()
        self.running = any(x.resumed for x in self.threads.values())

    def is_running(self, tid: int) -> bool:
        """As the client sees it: resumed and no stop reported since."""
        t = self.threads.get(tid)
        return bool(t and t.resumed)

    def _wake_if_ready(self) -> None:
        """Non-stop: events queued while handling a request (vCont, vCont;t) are not
        followed by a SIGCHLD of their own; send one, so the event loop polls for them
        instead of waiting for some other thread's stop."""
        if self.ready:
            os.kill(os.getpid(), signal.SIGCHLD)
