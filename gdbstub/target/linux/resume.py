"""The resume policy: which threads run and how. All-stop: a kept event is reported
before anything runs, threads on a breakpoint step off it one at a time with every
other thread stopped (``_step_over``), then the resumed threads run. Non-stop: others
are paused around a step-over and restarted after (``_step_over_non_stop``,
``_restart_paused``), and vCont;t stops threads. Every PTRACE_CONT/SINGLESTEP/SYSCALL
is issued here, after the thread's debug registers are synced.
"""

from __future__ import annotations

import os

from ...hints import signal
from ...logs import get_logger
from ..base import STOP_SIGNAL, ResumeAction, StopEvent, StopKind
from . import ptrace
from .breakpoints import INT3
from .stops import StopEngine
from .threads import Thread

log = get_logger("gdbstub.target")


class ResumePolicy(StopEngine):
    """Resuming threads, stepping over breakpoints, stopping threads on request."""

    def resume(self, actions: dict[int, ResumeAction]) -> None:
        """Resume the threads named in ``actions``; the rest stay stopped.

        All-stop: an event kept pending from the last stop is reported first and
        nothing runs; otherwise threads sitting on a breakpoint step off it (one at
        a time, all others stopped) and then every named thread runs.
        """
        threads = self.threads
        if len(threads) == 1 and not self.non_stop and not self.ready and not self._deferred:
            (alone,) = threads.values()
            if alone.pending is None:
                # All-stop with one thread and nothing kept (no event pending or queued, so no
                # clone held back either): without the walks over the thread table below. The
                # step-off, when there is one, is the same, and so is the walk after it (a
                # thread the step-off created may be there by then).
                act = actions.get(alone.tid)
                if act is not None:
                    alone.client_resumed(act)
                self.running = True
                if not (alone.resumed and alone.stopped):
                    return
                # No PC to step over from, the usual resume: without _needs_step_over's call.
                if alone.swallowed_pc is not None or alone.collected_pc is not None:
                    if self._needs_step_over(alone):
                        event = self._step_over(alone, alone.take_signal())
                        if event is not None:
                            self.ready.append(event)
                        else:
                            self._resume_stopped()
                        return
                self._ptrace_resume(alone, alone.take_signal())
                return
        held = self._unreported_clones()
        for tid, action in actions.items():
            t = self.threads.get(tid)
            if t is not None and tid not in held:
                t.client_resumed(action)
        self.running = True
        if self.non_stop:
            self._resume_non_stop()
            return
        event = self._take_pending()
        if event is None:
            event = self._step_off_breakpoints()
        if event is not None:
            self.ready.append(event)
            return
        self._resume_stopped()

    def _resume_stopped(self) -> None:
        """All-stop, past the step-offs: every resumed, stopped thread runs."""
        for t in list(self.threads.values()):
            if self.ready:
                break  # a step-off ended in an event: everything is stopped again
            if t.resumed and t.stopped and t.tid in self.threads:
                self._resume_one(t, t.take_signal())

    def _unreported_clones(self) -> set[int]:
        """The new threads of clone events not reported yet: they stay stopped whatever the
        client resumes (it cannot know them yet), as gdbserver keeps them."""
        events = [*self.ready, *(t.pending for t in self.threads.values() if t.pending is not None)]
        return {e.child_tid for e in events if e.kind is StopKind.THREAD_CLONED}

    def _resume_non_stop(self) -> None:
        """Non-stop: a thread with a kept event reports it and stays stopped; the others run."""
        self._restart_paused(None)
        self.running = any(t.resumed for t in self.threads.values())
        self._wake_if_ready()

    def stop_threads(self, tids: list[int]) -> None:
        """vCont;t: stop running threads; each is reported with signal 0."""
        for tid in tids:
            t = self.threads.get(tid)
            if t is None or not t.resumed:
                continue
            t.stop_requested()
            if t.stopped:  # stopped for us already (a step-over, a new thread): report now
                t.reported()
                self.ready.append(StopEvent(STOP_SIGNAL, t.pid, t.tid, signal=0))
            elif not t.expect_sigstop:
                try:
                    ptrace.tgkill(t.pid, t.tid, signal.SIGSTOP)
                    t.sigstop_sent()
                except OSError:
                    continue
        self.running = any(x.resumed for x in self.threads.values())
        self._wake_if_ready()

    def debug_registers_changed(self, pid: int) -> None:
        """Non-stop: a running thread has the old debug registers until it next resumes, so
        stop each with a SIGSTOP of ours; it goes on at once with the new ones (gdbserver
        stops them too). All-stop: nothing runs while the client changes them."""
        if not self.non_stop:
            return
        for t in self.threads.values():
            if t.pid == pid and not t.stopped and not t.expect_sigstop:
                try:
                    ptrace.tgkill(t.pid, t.tid, signal.SIGSTOP)
                except OSError:
                    continue
                t.sigstop_sent()

    def _step_off_breakpoints(self) -> StopEvent | None:
        for t in list(self.threads.values()):
            if not (t.resumed and t.stopped and t.tid in self.threads and self._needs_step_over(t)):
                continue
            event = self._step_over(t, t.take_signal())
            if event is not None:
                return event
        return None

    def _resume_one(self, t: Thread, sig: int) -> None:
        """Set one stopped thread going per its action (stepping off a breakpoint first)."""
        if self._needs_step_over(t):
            event = self._step_over_non_stop(t, sig) if self.non_stop else self._step_over(t, sig)
            if event is not None:
                self.ready.append(event)
                if not self.non_stop:
                    self._stop_all()
                return
            if not t.stopped or t.tid not in self.threads:
                return
            sig = 0
        self._ptrace_resume(t, sig)

    def _needs_step_over(self, t: Thread) -> bool:
        """gdbserver's rule: step over a breakpoint only when the thread is still where the
        stub swallowed a hit of it (false condition, agent dprintf, a tracepoint), or where
        the trace collected at the last stop and the int3 is the trace's alone now (a step
        onto a tracepoint, a client's breakpoint there that gdb lifted to step off).
        Any other breakpoint at the PC is one the client wants hit now: a `jump` onto a
        tbreak, a step-resume breakpoint; gdb and lldb step off their own themselves."""
        if t.swallowed_pc is None and t.collected_pc is None:  # no PC can match: the usual resume
            return False
        if not self._on_breakpoint(t):
            return False
        try:
            pc = self.get_pc(t)
        except OSError:
            return False
        return pc == t.swallowed_pc or (pc == t.collected_pc and not self.int3_owners.owns(t.pid, pc))

    def _step_over(self, t: Thread, sig: int) -> StopEvent | None:
        """Single-step one thread past the breakpoint at its PC while every other
        thread stays stopped, then put the breakpoint back.

        Returns an event to report (the step itself when the client asked for a
        step, or whatever else stopped the thread); None when the thread is past
        the breakpoint, stopped, and should go on per its action.
        """
        proc = self.processes[t.pid]
        pc = self.get_pc(t)
        orig = proc.sw_breakpoints.get(pc)  # None: no int3 here (a tracepoint's while-stepping moved it)
        if orig is not None:
            proc.memory.write(pc, orig)
        try:
            while True:
                try:
                    if self.hw is not None:
                        self.hw.sync(t.pid, t.tid)
                    ptrace.singlestep(t.tid, sig)
                except OSError:
                    return None
                t.stepping_over_started()
                # A step may end the whole process (a fatal signal, exit_group): a leader
                # reports that only once its other threads are reaped.
                dying = sig != 0 or (len(self.threads) > 1  # no generator when T is all there is
                                     and any(o.pid == t.pid and o is not t for o in self.threads.values()))
                status = self._wait_for_dying(t) if dying else self._wait_for(t.tid)
                sig = 0
                if status is None:
                    self._forget_thread(t)
                    return None
                swallowed = (os.WIFSTOPPED(status) and os.WSTOPSIG(status) == signal.SIGSTOP
                             and t.expect_sigstop and status >> 16 == 0)
                if not swallowed:
                    break
                t.stopped_by_event()  # our old SIGSTOP came first: step again
                t.sigstop_arrived()
        finally:
            t.stepping_over_ended()
            if orig is not None and pc in proc.sw_breakpoints and t.pid in self.processes:
                try:
                    proc.memory.write(pc, INT3)
                except OSError:  # the step ended the process (a fatal signal, exit_group)
                    pass
        plain_trap = (os.WIFSTOPPED(status) and os.WSTOPSIG(status) == signal.SIGTRAP
                      and status >> 16 == 0)
        if plain_trap and not (self.hw is not None and self.hw.fired(t.tid)):
            t.stopped_by_event()
            if t.action.kind == "s":
                t.stop_signal = signal.SIGTRAP
                return StopEvent(STOP_SIGNAL, t.pid, t.tid, signal=signal.SIGTRAP)
            if t.action.kind == "r" and not self._in_range(t):
                t.stop_signal = signal.SIGTRAP
                return StopEvent(STOP_SIGNAL, t.pid, t.tid, signal=signal.SIGTRAP)
            if self._on_breakpoint(t):
                # Landed on the next breakpoint: that is a hit, as if its int3 had run.
                if not self._hit_wanted(t, "swbreak"):
                    return self._step_over(t, 0)  # a tracepoint's (collected now): over it too
                t.stop_signal = signal.SIGTRAP
                return StopEvent(STOP_SIGNAL, t.pid, t.tid, signal=signal.SIGTRAP, reason="swbreak")
            return None
        return self._on_status(t.tid, status, collecting=True)

    def _step_over_non_stop(self, t: Thread, sig: int) -> StopEvent | None:
        """Non-stop: the other threads pause (unseen by the client) while the int3 is
        out, as gdbserver's step-over does: one running meanwhile could pass the
        lifted breakpoint and its hit would be lost. They go on afterwards."""
        paused = any(x is not t and not x.stopped for x in self.threads.values())
        if paused:
            self._stop_all()
        event = self._step_over(t, sig)
        if paused:
            self._restart_paused(t)
        self.running = any(x.resumed for x in self.threads.values())
        return event

    def _restart_paused(self, skip: Thread | None) -> None:
        """Non-stop, on a resume and after a step-over (SKIP, the stepped thread): events
        seen while pausing are queued for the client (their threads stay stopped), the
        other resumed threads run on."""
        self.ready.extend(self._deferred)
        self._deferred.clear()
        for x in list(self.threads.values()):
            if x is skip or not (x.resumed and x.stopped) or x.tid not in self.threads:
                continue
            if x.pending is not None:
                event = x.event_taken()
                if self._still_valid(x, event):
                    self.ready.append(event)
                    x.reported()
                    continue
            if x.client_stop and not x.expect_sigstop:  # its vCont;t SIGSTOP came meanwhile
                self.ready.append(StopEvent(STOP_SIGNAL, x.pid, x.tid, signal=0))
                x.reported()
                continue
            self._resume_one(x, x.take_signal())

    def _step_over_alone(self, t: Thread) -> StopEvent | None:
        """A breakpoint hit nobody wants (false condition) while other threads run: stop
        them before lifting the int3, or one could run through the breakpoint unseen."""
        if any(x is not t and not x.stopped for x in self.threads.values()):
            self._stop_all()
            self.running = True
        event = self._step_over(t, t.take_signal())
        if (event is None and len(self.threads) == 1 and not self._deferred and t.pending is None
                and t.stopped and t.resumed and t.tid in self.threads and not self._needs_step_over(t)):
            # The one thread, past the breakpoint, nothing kept: the walks below would
            # find nothing else to report, step off or resume.
            self._ptrace_resume(t, t.take_signal())
            return None
        event = event or self._take_pending() or self._step_off_breakpoints()
        if event is not None:
            return event  # reported as usual: everything is stopped already
        for x in list(self.threads.values()):
            if x.resumed and x.stopped and x.tid in self.threads:
                self._resume_one(x, x.take_signal())
        return None

    def _ptrace_resume(self, t: Thread, sig: int, step_from: int | None = None) -> None:
        """STEP_FROM: the PC a range step starts from, when the caller knows it or the stop's
        registers are read already (the decoder then needs no siginfo to tell the step's trap
        from an int3's)."""
        kind = t.action.kind  # _stepping(t), on every resume
        if kind == "s" or kind == "r":  # even when refused: not in a ptrace-stop after all
            if kind == "r":
                if step_from is None and t.user is not None:
                    step_from = self.get_pc(t)  # from the stop's registers: no siginfo for the first step
                t.range_from = step_from
                self.range_stepper = t  # poll awaits its step (and the next, while in range)
                self.step_unseen = len(self.threads) == 1 and not self.non_stop
            t.resumed_stepping()
            request = ptrace.SINGLESTEP
        else:
            t.resumed_running()
            request = ptrace.CONT if self.catch_syscalls is None else ptrace.SYSCALL
        try:
            hw = self.hw
            if hw is not None and (hw.procs or hw.applied):  # none wanted, none set: no call (sync's first test)
                hw.sync(t.pid, t.tid)
            ptrace.resume(request, t.tid, sig)
        except OSError as exc:
            # Not in a ptrace-stop after all (dying, or blocked in vfork): its next
            # wait status tells what became of it.
            log.debug("resume %d failed: %s", t.tid, exc)

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to the program's process group, as gdbserver does, also while
        it is stopped (gdb sends it when the user types it as a stop is reported): the
        signal waits in the program and the next resume reports it."""
        pid = self.pid
        if pid not in self.processes:
            return
        try:
            os.killpg(pid, signal.SIGINT)
        except OSError:  # an attached program that leads no process group
            ptrace.kill_quietly(pid, signal.SIGINT)
