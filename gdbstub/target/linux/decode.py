"""The status decoder: one wait status (a signal, a ptrace event, an exit) becomes a
StopEvent to report, or is handled here silently (our SIGSTOPs, clones, passed
signals, unwanted hits, uncaught syscalls, range steps still in range).

``_sigtrap`` is where a SIGTRAP becomes a breakpoint hit, a watchpoint, a step done
or nothing (a removed breakpoint, a false condition). It owns no queue: the stop
engine (stops.py) queues what it returns; how a silent stop goes on is the resume
policy's (resume.py), reached through the hooks declared at the end.
"""

from __future__ import annotations

import os

from ... import ffi as ctypes  # ctypes names without the ctypes package
from ...arch import detect_arch
from ...hints import signal
from ..base import STOP_SIGNAL, StopEvent, StopKind, new_event
from . import ptrace
from .breakpoints import MemoryAndBreakpoints
from .debugregs import SILENT
from .memory import ProcessMemory
from .registers import _LAYOUTS, ORIG_RAX_OFFSET
from .threads import Process, Thread

SI_KERNEL = 0x80
TRAP_BRKPT = 1
TRAP_TRACE = 2
PTRACE_GET_SYSCALL_INFO = 0x420E
SYSCALL_ENTRY = 1
SYSCALL_EXIT = 2
GLIBC_INTERNAL_SIGNALS = frozenset({32, 33})  # SIGCANCEL, SIGSETXID
THREAD_OPTION_CLONE = 1  # QThreadOptions (gdb 14+): report this thread's clones ('clone' stop)
THREAD_OPTION_EXIT = 2  # ... and its exit ('w')
_SIGTRAP = int(signal.SIGTRAP)  # plain ints: compared on every stop
_SIGSTOP = int(signal.SIGSTOP)
STEP_TRAP = _SIGTRAP << 8 | 0x7F  # the wait status of a plain SIGTRAP stop (a step's, an int3's)


def moved_past_traps(start: int | None, pc: int) -> bool:
    """Whether a range step's SIGTRAP can only be the step's own: the PC moved by other than
    1 or 2 bytes from START, where the step began, so the instruction was no int3 (cc, cd 03),
    no int1 (f1) and no system call (0f 05, cd 80, 0f 34), the ones that trap with SI_KERNEL or
    TRAP_BRKPT. Unknown start (the range's first step): no."""
    return start is not None and not 0 < pc - start < 3


class StatusDecoder(MemoryAndBreakpoints):
    """Wait statuses and ptrace events to StopEvents, per what the client asked to hear."""

    def __init__(self) -> None:
        super().__init__()
        self.pass_signals: frozenset[int] = frozenset()
        self.report_fork = False
        self.report_vfork = False
        self.report_exec = False
        self.catch_syscalls: frozenset[int] | None = None  # None: off, empty: all
        self.thread_events = False  # QThreadEvents: report thread exits ('w')
        # The QThreadOptions this target implements (qSupported announces them).
        self.thread_options_supported = THREAD_OPTION_CLONE | THREAD_OPTION_EXIT

    def _on_status(self, tid: int, status: int, collecting: bool) -> StopEvent | None:
        """One wait status: a reportable event, or None when handled here.

        ``collecting``: seen while stopping all threads, so nothing is resumed.
        """
        t = self.threads.get(tid)
        if t is None:
            if os.WIFSTOPPED(status):
                self._orphans[tid] = status  # a new thread or child ahead of its parent's event
            elif tid in self.processes:  # a zombie leader dropped from the list: the process exit
                return self._thread_gone(Thread(tid, tid), status)
            return None
        if status & 0xFF != 0x7F and (os.WIFEXITED(status) or os.WIFSIGNALED(status)):  # not a stop
            return self._thread_gone(t, status)
        t.stopped_by_event()
        sig = (status >> 8) & 0xFF  # WSTOPSIG without a call
        event = status >> 16
        if event:
            return self._ptrace_event(t, event, collecting)
        if sig == _SIGTRAP:
            return self._sigtrap(t, collecting)
        if sig == _SIGSTOP and t.expect_sigstop:
            t.sigstop_arrived()
            if t.report_create:
                t.creation_reported()
                return StopEvent(StopKind.THREAD_CREATED, t.pid, t.tid)
            if t.client_stop and not collecting:  # non-stop vCont;t asked for this stop
                return StopEvent(StopKind.SIGNAL, t.pid, t.tid, signal=0)
            self._go_on(t, collecting)
            return None
        if sig == _SIGTRAP | 0x80:
            return self._syscall_stop(t, collecting)
        if self._pass_silently(t, sig):
            if collecting:
                t.signal_kept(sig)
            else:
                self._ptrace_resume(t, sig)
            return None
        t.stop_signal = sig
        return StopEvent(STOP_SIGNAL, t.pid, t.tid, signal=sig)

    def _plain_trap(self, tid: int) -> StopEvent | None:
        """``_on_status`` of a plain SIGTRAP (STEP_TRAP), not collecting: a stepi or the step
        off a hit done, or a continue onto one of our int3s, each decided here as ``_sigtrap``
        decides it (no debug register set anywhere, no trace, no conditions, and for a step
        no int3 of ours, present or removed, just behind the PC), in one call and with no
        GETSIGINFO; anything else is ``_sigtrap``'s."""
        t = self.threads.get(tid)
        if t is None:
            return self._on_status(tid, STEP_TRAP, False)
        t.stopped_by_event()
        kind = t.action.kind
        proc = self.processes.get(t.pid)
        hw, tracer, store = self.hw, self.made_tracer, self.made_conditions
        if ((kind != "s" and kind != "c") or proc is None or (hw is not None and hw.applied)
                or (tracer is not None and tracer.sites) or (store is not None and store.table)):
            return self._sigtrap(t, False)
        try:  # get_pc, without its call when the process's table has a plain PC slot
            user = t.user
            if user is None:
                user = t.user = ptrace.getregs(tid)
            layout = _LAYOUTS.get(proc.arch)
            pc = layout.pc_from(user, layout.pc)[0] if layout is not None and layout.pc >= 0 else self.get_pc(t)
        except OSError:  # no registers: _sigtrap's ways with that
            return self._sigtrap(t, False)
        if kind == "s":
            # An int3 of ours may have trapped (the siginfo tells): one in place behind the PC,
            # or a removed one, which a thread can have run before its removal only while others
            # ran on (non-stop) or had their stops kept (all-stop, several threads). One thread
            # in all-stop was stopped and reaped at every z0: the step off a hit (a one-byte
            # instruction where the int3 was) ran the original instruction, no GETSIGINFO.
            if pc - 1 in proc.sw_breakpoints or (pc - 1 in proc.removed
                                                 and (self.non_stop or len(self.threads) > 1)):
                return self._sigtrap(t, False)
            reason = None
        elif pc - 1 in proc.sw_breakpoints:
            self.set_pc(t, pc - 1)  # our int3: the hit, wanted (no condition, no tracepoint)
            reason = "swbreak"
        else:
            return self._sigtrap(t, False)
        t.stop_signal = _SIGTRAP
        return new_event(StopEvent, (STOP_SIGNAL, t.pid, tid, _SIGTRAP, 0, reason, 0, 0, 0, "", 0))

    def _pass_silently(self, t: Thread, sig: int) -> bool:
        """QPassSignals (and glibc's internal SIGCANCEL/SIGSETXID, as gdbserver with
        libthread_db passes them), except while stepping."""
        if self._stepping(t) and t.resumed:
            return False
        return sig in self.pass_signals or sig in GLIBC_INTERNAL_SIGNALS

    def _go_on(self, t: Thread, collecting: bool) -> None:
        """A stop the client never sees: let the thread go on if it should be running."""
        if not collecting and self.running and t.resumed:
            self._resume_one(t, t.take_signal())

    def _thread_gone(self, t: Thread, status: int) -> StopEvent | None:
        exited = os.WIFEXITED(status)
        if t.tid != t.pid:
            self._forget_thread(t)
            if self.thread_events or t.options & THREAD_OPTION_EXIT:
                return StopEvent(StopKind.THREAD_EXITED, t.pid, t.tid,
                                 status=os.WEXITSTATUS(status) if exited else 0)
            return None
        # The leader's exit is the process's exit (the kernel reports it last).
        pid = t.pid
        if pid in self.processes:
            if self.hw is not None:
                self._clear_hw(pid)
            self._forget_process(pid)
        if exited:
            return StopEvent(StopKind.EXITED, pid, pid, status=os.WEXITSTATUS(status))
        return StopEvent(StopKind.TERMINATED, pid, pid, signal=os.WTERMSIG(status))

    def _new_thread(self, parent: Thread, tid: int, collecting: bool) -> StopEvent | None:
        """A clone: the new thread runs as its parent does, or (QThreadEvents) stops
        and is reported with 'create', as gdbserver does."""
        t = Thread.clone(tid, parent.pid, parent.resumed, self.thread_events)
        self.threads[tid] = t
        if self.hw is not None:
            self.hw.forget_thread(tid)  # it starts with no debug registers: set before it runs
        status = self._orphans.pop(tid, None)
        if status is None and self.non_stop and t.report_create:
            # Non-stop: report it now, in order with its parent's progress, as gdbserver
            # does (its first stop comes as soon as it is scheduled; it may take a while
            # on a busy machine, and meanwhile the parent would run on unseen).
            status = self._wait_for(tid)
            if status is None or not os.WIFSTOPPED(status):
                self._forget_thread(t)  # gone already (the process is exiting)
                return None
        if status is None:
            return None
        # Its first stop came before the parent's event.
        t.stopped_by_event()
        t.sigstop_arrived()
        if os.WIFSTOPPED(status) and os.WSTOPSIG(status) != signal.SIGSTOP:
            t.signal_kept(os.WSTOPSIG(status))
        if t.report_create:
            t.creation_reported()
            return StopEvent(StopKind.THREAD_CREATED, t.pid, t.tid)
        self._go_on(t, collecting)
        return None

    def _clone_event(self, parent: Thread, tid: int, collecting: bool) -> StopEvent | None:
        """QThreadOptions CLONE: the parent stops with 'clone' and the child is held at its
        first stop until the client resumes it, as gdbserver 14+ does (gdb then fixes up
        a displaced step's child before it runs)."""
        child = Thread.clone(tid, parent.pid, resumed=False, report_create=False)
        self.threads[tid] = child
        if self.hw is not None:
            self.hw.forget_thread(tid)
        status = self._orphans.pop(tid, None)
        if status is None:
            status = self._wait_for(tid)
        if status is None or not os.WIFSTOPPED(status):
            self._forget_thread(child)  # gone already (the process is exiting)
            self._go_on(parent, collecting)
            return None
        child.stopped_by_event()
        child.sigstop_arrived()
        if os.WSTOPSIG(status) != signal.SIGSTOP:
            child.signal_kept(os.WSTOPSIG(status))
        parent.stop_signal = signal.SIGTRAP
        return StopEvent(StopKind.THREAD_CLONED, parent.pid, parent.tid, child_pid=parent.pid, child_tid=tid)

    def _sigtrap(self, t: Thread, collecting: bool) -> StopEvent | None:
        proc = self.processes[t.pid]
        reason: str | None = None
        address = 0
        code = SI_KERNEL
        hw = self.hw
        armed = hw is not None and bool(hw.applied) and hw.armed(t.tid)  # no call while no slot is set anywhere
        kind = t.action.kind
        if kind == "c" and not armed and proc.sw_breakpoints:
            # Continuing, so no step trap: PC just past one of ours is our int3
            # (skips a GETSIGINFO per breakpoint hit).
            pc = self.get_pc(t)
            if pc - 1 in proc.sw_breakpoints:
                self.set_pc(t, pc - 1)
                reason = "swbreak"
        if reason is None and kind != "r" and not armed and not self._after_our_int3(t, proc):
            pass  # the reason would stay None whatever the siginfo says: skip GETSIGINFO
        elif reason is None and kind == "r" and not armed and moved_past_traps(t.range_from, self.get_pc(t)):
            code = TRAP_TRACE  # the step's own trap: no GETSIGINFO per step of a range
        elif reason is None:
            try:
                info = ptrace.getsiginfo(t.tid)
            except OSError:
                info = b"\0" * 128
            code = int.from_bytes(info[8:12], "little", signed=True)
            if armed and self.hw is not None:
                found = self.hw.stop_reason(t.tid)
                if found is not None:
                    reason, address = found
            if reason is None and code in (SI_KERNEL, TRAP_BRKPT):
                pc = self.get_pc(t)
                if pc - 1 in proc.sw_breakpoints:
                    self.set_pc(t, pc - 1)
                    reason = "swbreak"
                elif pc - 1 in proc.removed:
                    # The int3 of a breakpoint removed after this thread ran it (non-stop):
                    # back to the original instruction, and the hit is nobody's.
                    self.set_pc(t, pc - 1)
                    reason = SILENT
        if reason is not None and not self._hit_wanted(t, reason):
            if kind != "s" or not t.resumed:
                if reason == "swbreak":
                    t.swallowed_pc = self.get_pc(t)  # the resume steps over it (and only it)
                    if not collecting and self.running and not self.non_stop:
                        return self._step_over_alone(t)
                # Goes on (or, while stopping all, stays).
                self._go_on(t, collecting)
                return None
            reason, address = None, 0  # the step itself is done: report that
        if reason is None and kind == "r" and t.resumed and code not in (SI_KERNEL, TRAP_BRKPT):
            action = t.action
            pc = self.get_pc(t)
            if action.start <= pc < action.end:  # _in_range, inlined: every step of a range
                # Still inside the range: step on (or, while stopping all, just stay).
                if not collecting and self.running:
                    self._ptrace_resume(t, 0, pc)
                return None
        t.stop_signal = _SIGTRAP
        return new_event(StopEvent, (STOP_SIGNAL, t.pid, t.tid, _SIGTRAP, 0, reason, address, 0, 0, "", 0))

    def _hit_wanted(self, t: Thread, reason: str) -> bool:
        """False for a hit the client asked not to hear about: a breakpoint whose condition
        is false (or whose dprintf ran here), a write caught by a read watchpoint's slot."""
        if reason == SILENT:
            return False
        tracer = self.made_tracer
        if reason == "swbreak" and tracer is not None and tracer.sites:
            t.collected_pc = pc = self.get_pc(t)
            if not tracer.hit(t.pid, t.tid, pc):
                return False
        store = self.made_conditions
        if reason in ("swbreak", "hwbreak") and store is not None and store.table:
            ztype = 0 if reason == "swbreak" else 1
            return store.should_report(self, t.pid, t.tid, ztype, self.get_pc(t))
        return True

    def _syscall_stop(self, t: Thread, collecting: bool) -> StopEvent | None:
        """A PTRACE_SYSCALL stop: reported when QCatchSyscalls names the call."""
        op, number = self._syscall_info(t)
        catch = self.catch_syscalls
        if catch is not None and (not catch or number in catch):
            kind = StopKind.SYSCALL_ENTRY if op == SYSCALL_ENTRY else StopKind.SYSCALL_RETURN
            t.stop_signal = signal.SIGTRAP
            return StopEvent(kind, t.pid, t.tid, syscall=number)
        self._go_on(t, collecting)
        return None

    def _syscall_info(self, t: Thread) -> tuple[int, int]:
        """(entry or exit, syscall number) of a syscall stop; PTRACE_GET_SYSCALL_INFO
        tells entry from exit even when catching began inside a blocking call."""
        buf = ctypes.create_string_buffer(88)
        try:
            ptrace.ptrace(PTRACE_GET_SYSCALL_INFO, t.tid, len(buf), ctypes.addressof(buf))
            op = buf.raw[0]
        except OSError:
            op = SYSCALL_EXIT if t.in_syscall else SYSCALL_ENTRY
        t.in_syscall = op == SYSCALL_ENTRY
        user = self._buffers(t, False).user
        number = int.from_bytes(user[ORIG_RAX_OFFSET:ORIG_RAX_OFFSET + 8], "little", signed=True)
        if self.arch(t.pid).word == 4:
            number &= 0xFFFFFFFF
        return op, number

    def _ptrace_event(self, t: Thread, event: int, collecting: bool) -> StopEvent | None:
        if event == ptrace.EVENT_CLONE and t.options & THREAD_OPTION_CLONE:
            return self._clone_event(t, ptrace.geteventmsg(t.tid), collecting)
        if event == ptrace.EVENT_CLONE:
            created = self._new_thread(t, ptrace.geteventmsg(t.tid), collecting)
            if created is None or self.non_stop:
                self._go_on(t, collecting)
            return created
        if event == ptrace.EVENT_EXEC:
            return self._exec_event(t)
        if event in (ptrace.EVENT_FORK, ptrace.EVENT_VFORK):
            return self._fork_event(t, event, collecting)
        if event == ptrace.EVENT_VFORK_DONE and self.report_vfork:
            t.stop_signal = signal.SIGTRAP
            return StopEvent(StopKind.VFORK_DONE, t.pid, t.tid)
        self._go_on(t, collecting)
        return None

    def _exec_event(self, t: Thread) -> StopEvent:
        pid = t.pid
        proc = self.processes[pid]
        # Only the leader survives an exec (a non-leader that exec'd took its tid).
        for other in [x for x in self.threads.values() if x.pid == pid]:
            self._forget_thread(other)
        leader = Thread.exec_leader(pid, t)
        self.threads[pid] = leader
        proc.memory.reopen()
        proc.sw_breakpoints.clear()
        proc.removed.clear()
        self._forget_breakpoint_owners(pid)
        if self.hw is not None:
            self.hw.exec_process(pid)
        proc.arch = detect_arch(pid)  # a 64-bit program may exec a 32-bit one
        if self.report_exec:
            return StopEvent(StopKind.EXEC, pid, pid, exec_path=self.exec_file(pid))
        return StopEvent(StopKind.SIGNAL, pid, pid, signal=signal.SIGTRAP)

    def _fork_event(self, t: Thread, event: int, collecting: bool) -> StopEvent | None:
        child = ptrace.geteventmsg(t.tid)
        # The child starts stopped with a SIGSTOP (it may already be waiting for us).
        status = self._orphans.pop(child, None)
        if status is None:
            status = self._wait_for(child)
        parent = self.processes[t.pid]
        vfork = event == ptrace.EVENT_VFORK
        if self.report_vfork if vfork else self.report_fork:
            proc = Process(child, parent.arch, ProcessMemory(child), parent.launched,
                           dict(parent.sw_breakpoints))
            self.processes[child] = proc
            thread = Thread(child, child, stopped=True)
            if status is not None and os.WIFSTOPPED(status) and os.WSTOPSIG(status) != signal.SIGSTOP:
                thread.signal_kept(os.WSTOPSIG(status))
            self.threads[child] = thread
            t.stop_signal = signal.SIGTRAP
            kind = StopKind.VFORK if vfork else StopKind.FORK
            return StopEvent(kind, t.pid, t.tid, child_pid=child, child_tid=child)
        # Not followed: take our breakpoints out of the child's copy and let it go.
        if parent.sw_breakpoints and not vfork:
            mem = ProcessMemory(child)
            try:
                for addr, orig in parent.sw_breakpoints.items():
                    mem.write(addr, orig)
            except OSError:
                pass
            mem.close()
        if self.hw is not None:
            self._clear_hw(child)
        try:
            ptrace.detach(child, 0)
        except OSError:
            pass
        self._go_on(t, collecting)
        return None

    # --- implemented by the resume policy (resume.py) -------------------------------

    def _resume_one(self, t: Thread, sig: int) -> None:
        raise NotImplementedError

    def _ptrace_resume(self, t: Thread, sig: int, step_from: int | None = None) -> None:
        raise NotImplementedError

    def _step_over_alone(self, t: Thread) -> StopEvent | None:
        raise NotImplementedError
