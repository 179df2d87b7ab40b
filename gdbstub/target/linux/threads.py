"""The table of traced processes and threads, and each thread's state.

Owns ``processes``/``threads`` and every thread's state: a stored ``ThreadState`` and the
facts behind it (stopped, resumed, a kept event, a SIGSTOP due...), changed only by the
named transition methods of ``Thread``, legal as ``TRANSITIONS`` lists. Knows nothing of
registers' meaning, breakpoints, events or the resume policy.
"""

from __future__ import annotations

import errno
import os
import time

from ...arch import detect_arch, without_xml
from ...arch.regs import Arch
from ...hints import StrEnum, signal
from ...logs import get_logger
from ..base import ResumeAction, StopEvent
from . import ptrace
from .childsignal import take_sigchld
from .memory import ProcessMemory

log = get_logger("gdbstub.target")
# The longest one wait for a SIGCHLD lasts: every change these waits await sends one, so this
# only bounds a wait for something that never signals (the loops poll /proc as well).
CHILD_WAIT_MAX = 0.005
_FIELDS_AFTER_CORE = 0  # fields after 'processor' in /proc/PID/task/TID/stat (this kernel's, once read)


class ThreadState(StrEnum):
    """What a thread is doing. Stored on the thread and changed only by its transition
    methods (``Thread.stopped_by_event`` and the rest), as ``TRANSITIONS`` allows."""

    RUNNING = "running"  # continuing (PTRACE_CONT or PTRACE_SYSCALL)
    STEPPING = "stepping"  # single-stepping for the client (a step or a range step)
    STEPPING_OVER = "stepping-over"  # single-stepping off one of our breakpoints, its int3 lifted
    STOPPING = "stopping"  # running, a SIGSTOP of ours on its way
    PAUSED = "paused"  # stopped by us while the client thinks it runs (all-stop collection, a step-over)
    STOPPED_PENDING = "stopped-pending"  # stopped with an event kept for a later resume
    STOPPED = "stopped"  # stopped, as the client knows


# The members as plain module names: reading one through the class costs a lookup on the
# enum's metaclass, too slow for every stop.
RUNNING, STEPPING, STEPPING_OVER, STOPPING = (ThreadState.RUNNING, ThreadState.STEPPING,
                                              ThreadState.STEPPING_OVER, ThreadState.STOPPING)
PAUSED, STOPPED_PENDING, STOPPED = ThreadState.PAUSED, ThreadState.STOPPED_PENDING, ThreadState.STOPPED
AT_REST = frozenset({STOPPED, PAUSED, STOPPED_PENDING})  # in a ptrace-stop (``Thread.stopped``)
MOVING = frozenset({RUNNING, STEPPING, STEPPING_OVER, STOPPING})
EVERY = AT_REST | MOVING

# The one table of legal transitions: each transition method of Thread, and the states it
# may start from (where it ends is the method's to say). Anything else is a bug, logged.
TRANSITIONS: dict[str, frozenset[ThreadState]] = {
    # A ptrace-stop seen. From a resting state too: a thread given up on while stopping
    # all (``treated_as_stopped``) or a new clone whose stop came early reports it later.
    "stopped_by_event": EVERY,
    "treated_as_stopped": MOVING,  # a zombie, or a thread that would not stop in time
    "resumed_running": AT_REST - {STOPPED_PENDING},  # PTRACE_CONT/SYSCALL issued
    "resumed_stepping": AT_REST - {STOPPED_PENDING},  # PTRACE_SINGLESTEP for the client
    "stepping_over_started": AT_REST - {STOPPED_PENDING},  # PTRACE_SINGLESTEP off our int3
    "stepping_over_ended": AT_REST | {STEPPING_OVER},  # its stop seen (or the step refused)
    "sigstop_sent": AT_REST | {RUNNING, STEPPING},  # at rest: still due from an attach
    "sigstop_arrived": AT_REST,  # (after ``stopped_by_event``) or swallowed by a step
    "released_for_sigstop": AT_REST,  # detaching: let a SIGSTOP still due arrive first
    "client_resumed": EVERY,  # vCont/c/s named it (running ones keep running)
    "stop_requested": EVERY,  # non-stop vCont;t
    "reported": AT_REST,  # the client has heard of its stop (or of another's, all-stop)
    "event_kept": AT_REST,
    "event_taken": frozenset({STOPPED_PENDING}),
    "creation_reported": AT_REST,
}

# The rows the transitions of every stop test, as names (no table look-up per call).
_FROM_STOPPED_BY_EVENT = TRANSITIONS["stopped_by_event"]
_FROM_RESUMED_RUNNING = TRANSITIONS["resumed_running"]
_FROM_RESUMED_STEPPING = TRANSITIONS["resumed_stepping"]
_FROM_CLIENT_RESUMED = TRANSITIONS["client_resumed"]
_FROM_REPORTED = TRANSITIONS["reported"]

CONTINUE = ResumeAction("c")


class Thread:
    """One traced thread: its state (``state``, a ThreadState) and the facts behind it.
    Only the transition methods below change them, so the stop engine and the resume
    policy read plain attributes (``stopped``, ``resumed``...) but never assign them.
    A slotted class (compared by identity), not a dataclass: no code generated at
    start-up, and faster attribute access on the stop path."""

    __slots__ = ("action", "client_stop", "collected_pc", "deliver", "expect_sigstop", "in_syscall",
                 "options", "pending", "pending_seq", "pid", "range_from", "report_create", "resumed", "state",
                 "stepping_over", "stop_signal", "stopped", "swallowed_pc", "tid", "user", "xstate")

    def __init__(self, tid: int, pid: int, stopped: bool = True, resumed: bool = False,
                 expect_sigstop: bool = False, action: ResumeAction = CONTINUE,
                 report_create: bool = False, stop_signal: int = 0,
                 swallowed_pc: int | None = None, collected_pc: int | None = None) -> None:
        self.tid = tid
        self.pid = pid
        self.stopped = stopped  # in a ptrace-stop we have seen (False: running, or a new clone not stopped yet)
        self.resumed = resumed  # the client wants it running (until the next reported stop)
        self.pending: StopEvent | None = None  # seen while stopping all, reported on a later resume
        self.pending_seq = 0  # the order pending events were seen in
        self.expect_sigstop = expect_sigstop  # a SIGSTOP we sent (or a new clone's first) is still due
        self.deliver = 0  # a signal to deliver when it next runs
        self.action = action
        self.user: bytearray | None = None  # register caches, dropped on resume
        self.xstate: bytearray | None = None
        self.stop_signal = stop_signal  # the signal of the last reported stop (a record, not a state)
        self.in_syscall = False  # between a syscall-entry stop and its exit stop (the decoder's record)
        self.report_create = report_create  # QThreadEvents: its first stop is reported as 'create'
        self.client_stop = False  # non-stop vCont;t: report the SIGSTOP as a stop with signal 0
        self.stepping_over = False  # single-stepping off a breakpoint of ours, its int3 lifted
        self.options = 0  # QThreadOptions: THREAD_OPTION_CLONE | THREAD_OPTION_EXIT (a clone starts with none)
        # The PC of a breakpoint hit the stub swallowed (false condition, agent dprintf): the next
        # resume steps over it there, as gdbserver does; any other breakpoint at the PC is a hit.
        # Every resume forgets them (the decision to step over was made before).
        self.swallowed_pc = swallowed_pc
        self.collected_pc = collected_pc  # the trace collected here: stepped over once it alone owns the int3
        self.range_from: int | None = None  # the PC a range step under way started from (None: unknown)
        self.state: ThreadState = self._at_rest() if stopped else self._moving()

    def __repr__(self) -> str:
        return f"Thread({self.tid}, {self.pid}, {self.state.value})"

    @classmethod
    def clone(cls, tid: int, pid: int, resumed: bool, report_create: bool) -> Thread:
        """A new clone: running (as far as we know) with the kernel's SIGSTOP due."""
        return cls(tid, pid, stopped=False, expect_sigstop=True, resumed=resumed,
                   report_create=report_create)

    @classmethod
    def exec_leader(cls, pid: int, before: Thread) -> Thread:
        """The one thread left after an exec, stopped, resumed as the exec'ing thread was."""
        return cls(pid, pid, stopped=True, resumed=before.resumed, action=before.action,
                   stop_signal=signal.SIGTRAP)

    def _at_rest(self) -> ThreadState:
        if self.pending is not None:
            return STOPPED_PENDING
        return PAUSED if self.resumed else STOPPED

    def _moving(self) -> ThreadState:
        if self.stepping_over:
            return STEPPING_OVER
        if self.expect_sigstop:
            return STOPPING
        return STEPPING if self.action.kind in ("s", "r") else RUNNING

    def _illegal(self, name: str) -> None:
        """A transition from a state its row does not list: a bug of ours, logged (the
        stub goes on; the facts are set as asked)."""
        log.error("thread %d: %s from %s is not a legal transition", self.tid, name, self.state.value)

    # --- what the kernel tells of it, or what we do to it ------------------------------

    def stopped_by_event(self) -> None:
        """A ptrace-stop seen: the register caches are read afresh when next needed."""
        if self.state not in _FROM_STOPPED_BY_EVENT:
            self._illegal("stopped_by_event")
        self.stopped = True
        self.user = None
        self.xstate = None
        # _at_rest() inlined: this and the resumes are on every stop's path.
        self.state = STOPPED_PENDING if self.pending is not None else PAUSED if self.resumed else STOPPED

    def treated_as_stopped(self) -> None:
        """Stopping all gave up on it (a zombie, or blocked where it cannot stop); any
        SIGSTOP of ours still due is swallowed when it comes."""
        if self.state not in TRANSITIONS["treated_as_stopped"]:
            self._illegal("treated_as_stopped")
        self.stopped = True
        self.state = self._at_rest()

    # The resumes hold even when the kernel refuses them: not in a ptrace-stop after all,
    # and its next wait status tells what became of it.

    def resumed_running(self) -> None:
        """PTRACE_CONT or PTRACE_SYSCALL issued."""
        if self.state not in _FROM_RESUMED_RUNNING:
            self._illegal("resumed_running")
        self.swallowed_pc = self.collected_pc = None
        self.user = None
        self.xstate = None
        self.stopped = False
        self.state = STOPPING if self.expect_sigstop else RUNNING

    def resumed_stepping(self) -> None:
        """PTRACE_SINGLESTEP issued for the client's step or range step (``_set_going``,
        inlined: every stepi and every step off a hit)."""
        if self.state not in _FROM_RESUMED_STEPPING:
            self._illegal("resumed_stepping")
        self.swallowed_pc = self.collected_pc = None
        self.user = None
        self.xstate = None
        self.stopped = False
        self.state = STOPPING if self.expect_sigstop else STEPPING

    def _set_going(self, name: str, state: ThreadState) -> None:
        """The other resumes (``resumed_running``, the commonest, is this inlined)."""
        if self.state not in TRANSITIONS[name]:
            self._illegal(name)
        self.swallowed_pc = self.collected_pc = None
        self.user = None
        self.xstate = None
        self.stopped = False
        self.state = state

    def stepping_over_started(self) -> None:
        """PTRACE_SINGLESTEP issued off our breakpoint, its int3 lifted."""
        self.stepping_over = True
        self._set_going("stepping_over_started", STEPPING_OVER)

    def stepping_over_ended(self) -> None:
        """The step off our breakpoint is over: its wait status is in hand (the decoder
        has yet to look at it), or the step was refused."""
        if self.state not in TRANSITIONS["stepping_over_ended"]:
            self._illegal("stepping_over_ended")
        self.stepping_over = False
        if not self.stopped:
            self.stopped = True
            self.user = None
            self.xstate = None
        self.state = self._at_rest()

    def sigstop_sent(self) -> None:
        """A SIGSTOP of ours is on its way (or, at rest, still due from an attach)."""
        if self.state not in TRANSITIONS["sigstop_sent"]:
            self._illegal("sigstop_sent")
        self.expect_sigstop = True
        if not self.stopped:
            self.state = STOPPING

    def released_for_sigstop(self) -> None:
        """Continued only so that a SIGSTOP of ours still due arrives before we detach
        (a kept event stays: the detach signal is read from it)."""
        self._set_going("released_for_sigstop", STOPPING)

    def sigstop_arrived(self) -> None:
        """Our SIGSTOP came (its stop already seen) or a step swallowed it."""
        if self.state not in TRANSITIONS["sigstop_arrived"]:
            self._illegal("sigstop_arrived")
        self.expect_sigstop = False

    def signal_kept(self, sig: int) -> None:
        """A signal to deliver when it next runs."""
        self.deliver = sig

    def take_signal(self) -> int:
        """The signal to deliver now that it runs (0: none)."""
        sig, self.deliver = self.deliver, 0
        return sig

    # --- what the client asks and hears ------------------------------------------------

    def client_resumed(self, action: ResumeAction) -> None:
        """Named by a resume request: it is to run per ``action`` until a stop is reported."""
        if self.state not in _FROM_CLIENT_RESUMED:
            self._illegal("client_resumed")
        self.action = action
        self.resumed = True
        if action.signal:
            self.deliver = action.signal  # kept until the thread really runs
        if self.stopped:  # _at_rest(), inlined: every resume
            self.state = STOPPED_PENDING if self.pending is not None else PAUSED

    def stop_requested(self) -> None:
        """Non-stop vCont;t: its coming SIGSTOP is reported as a stop with signal 0."""
        if self.state not in TRANSITIONS["stop_requested"]:
            self._illegal("stop_requested")
        self.client_stop = True

    def reported(self) -> None:
        """The client has heard of its stop (all-stop: of some thread's): no longer resumed."""
        if self.state not in _FROM_REPORTED:
            self._illegal("reported")
        self.resumed = False
        self.client_stop = False
        self.state = STOPPED if self.pending is None else STOPPED_PENDING

    def event_kept(self, event: StopEvent, seq: int) -> None:
        """An event seen while it was being stopped, kept for a later resume."""
        if self.state not in TRANSITIONS["event_kept"]:
            self._illegal("event_kept")
        self.pending = event
        self.pending_seq = seq
        self.state = STOPPED_PENDING

    def event_taken(self) -> StopEvent:
        """Its kept event, now reported or dropped."""
        if self.state not in TRANSITIONS["event_taken"]:
            self._illegal("event_taken")
        event = self.pending
        assert event is not None
        self.pending = None
        self.state = self._at_rest()
        return event

    def creation_reported(self) -> None:
        """QThreadEvents: its 'create' stop is reported."""
        if self.state not in TRANSITIONS["creation_reported"]:
            self._illegal("creation_reported")
        self.report_create = False


class Process:
    """One traced process: its register table, memory and software breakpoints."""

    __slots__ = ("arch", "launched", "memory", "pid", "removed", "sw_breakpoints")

    def __init__(self, pid: int, arch: Arch, memory: ProcessMemory, launched: bool,
                 sw_breakpoints: dict[int, bytes] | None = None) -> None:
        self.pid = pid
        self.arch = arch
        self.memory = memory
        self.launched = launched
        # addr -> the original byte under our int3
        self.sw_breakpoints: dict[int, bytes] = {} if sw_breakpoints is None else sw_breakpoints
        # Breakpoints removed (non-stop: while threads ran): a hit already in flight is rewound.
        self.removed: set[int] = set()


class ThreadTable:
    """Every process and thread the stub traces, and what /proc says about them."""

    def __init__(self) -> None:
        self.processes: dict[int, Process] = {}
        self.threads: dict[int, Thread] = {}
        self.running = False  # some thread runs for the client (between resume and the stop reported)
        self.non_stop = False
        self.xml_registers = True  # the client reads target.xml (qSupported xmlRegisters=i386)
        self._orphans: dict[int, int] = {}  # tid -> status of threads seen before their clone event
        self._first_pid = 0
        self._stat_fds: dict[int, int] = {}  # tid -> open /proc/PID/task/TID/stat
        # SIGCHLD is blocked (the event loop reads it from a signalfd), so a change of a
        # thread's state can be awaited with sigtimedwait instead of a sleep-and-poll.
        self.sigchld_blocked = False
        self._sigchld_taken = False  # _await_child took one: the event loop must get it back

    @property
    def pid(self) -> int:
        if self._first_pid in self.processes:
            return self._first_pid
        return next(iter(self.processes), self._first_pid)

    def alive(self) -> bool:
        return bool(self.processes)

    def launched(self) -> bool:
        return any(p.launched for p in self.processes.values())

    def is_launched(self, pid: int) -> bool:
        proc = self.processes.get(pid)
        return bool(proc and proc.launched)

    def arch(self, pid: int) -> Arch:
        proc = self.processes.get(pid)
        if proc is None:
            from ...arch.x86_64 import X86_64

            return X86_64
        return proc.arch if self.xml_registers else without_xml(proc.arch)

    def _add_process(self, pid: int, launched: bool) -> Process:
        arch = detect_arch(pid)
        proc = Process(pid, arch, ProcessMemory(pid), launched)
        self.processes[pid] = proc
        self.threads[pid] = Thread(pid, pid)
        if not self._first_pid:
            self._first_pid = pid
        return proc

    def _forget_process(self, pid: int) -> None:
        proc = self.processes.pop(pid, None)
        if proc is not None:
            proc.memory.close()
        for t in [t for t in self.threads.values() if t.pid == pid]:
            self._forget_thread(t)
        if not self.processes:
            self.running = False

    def _forget_thread(self, t: Thread) -> None:
        self.threads.pop(t.tid, None)
        fd = self._stat_fds.pop(t.tid, None)
        if fd is not None:
            os.close(fd)

    def thread_ids(self) -> list[tuple[int, int]]:
        """Every thread, in the order they appeared (gdbserver's order, so gdb numbers
        threads the same way)."""
        return [(t.pid, t.tid) for t in self.threads.values()]

    def thread_name(self, pid: int, tid: int) -> str:
        # os.open and one read: a text-mode open builds a buffer and a decoder for 16 bytes.
        try:
            fd = os.open(f"/proc/{pid}/task/{tid}/comm", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return ""
        try:
            return os.read(fd, 64).decode("utf-8", "replace").rstrip("\n")
        except OSError:
            return ""
        finally:
            os.close(fd)

    def thread_core(self, pid: int, tid: int) -> int | None:
        text = self.thread_core_text(pid, tid)
        try:
            return None if text is None else int(text)
        except ValueError:
            return None

    def thread_core_text(self, pid: int, tid: int) -> bytes | None:
        """The thread's core in decimal, as /proc writes it: a stop reply's field is looked up
        by it (no int() per stop)."""
        # Every stop reply carries the core: keep each thread's stat file open and
        # pread it (one system call instead of three).
        fd = self._stat_fds.get(tid)
        try:
            if fd is None:
                if len(self._stat_fds) > len(self.threads) + 16:
                    self._prune_stat_fds()
                fd = os.open(f"/proc/{pid}/task/{tid}/stat", os.O_RDONLY | os.O_CLOEXEC)
                self._stat_fds[tid] = fd
            stat = os.pread(fd, 4096, 0)
            global _FIELDS_AFTER_CORE
            if not _FIELDS_AFTER_CORE:
                # 'processor' is the 37th field after the name; counted from the end (as
                # many fields follow it on every line of this kernel), it is split out of
                # the line without cutting the name off or splitting the 36 before it.
                _FIELDS_AFTER_CORE = len(stat[stat.rindex(b")") + 2 :].split()) - 37
            return stat.rsplit(None, _FIELDS_AFTER_CORE + 1)[1]
        except (OSError, ValueError, IndexError):
            if fd is not None:
                os.close(self._stat_fds.pop(tid))
            return None

    def _prune_stat_fds(self) -> None:
        for tid in [t for t in self._stat_fds if t not in self.threads]:
            os.close(self._stat_fds.pop(tid))

    def pid_of(self, tid: int) -> int | None:
        t = self.threads.get(tid)
        return t.pid if t else None

    def _thread(self, tid: int) -> Thread:
        t = self.threads.get(tid)
        if t is None:
            raise OSError(errno.ESRCH, "no such thread")
        return t

    @staticmethod
    def _stepping(t: Thread) -> bool:
        return t.action.kind in ("s", "r")

    def _await_child(self, nap: float, deadline: float) -> None:
        """Wait until a child's state may have changed, for a loop that polls waitpid(WNOHANG).

        With SIGCHLD blocked: until the next SIGCHLD (one already pending returns at once,
        so nothing that came since the last waitpid is missed), DEADLINE (a monotonic time)
        or CHILD_WAIT_MAX; the wait ends as the change comes, where a sleep ended up to NAP
        later. The SIGCHLD taken is one the event loop's signalfd will not wake for:
        ``_give_back_sigchld`` posts another once the caller is done. Otherwise, a sleep of NAP."""
        if not self.sigchld_blocked:
            time.sleep(nap)
        elif take_sigchld(max(0.0, min(deadline - time.monotonic(), CHILD_WAIT_MAX))):
            self._sigchld_taken = True

    def _give_back_sigchld(self) -> None:
        """After ``_await_child``: a SIGCHLD it took may also have stood for a status the caller
        did not reap (another process's, under --multi or in non-stop): while anything is
        traced, post one to ourselves, so the event loop wakes and polls as it would have."""
        if self._sigchld_taken:
            self._sigchld_taken = False
            if self.threads:
                os.kill(os.getpid(), signal.SIGCHLD)

    def _wait_for_dying(self, t: Thread) -> int | None:
        """Wait for T after a step that delivers a signal, which may kill the whole process.

        A leader that died with its process reports only once its other threads are
        reaped, so a blocking wait on it would never return: while T is a zombie, reap
        the others (their exits go with the process's, reported through T)."""
        while True:
            try:
                got, status = os.waitpid(t.tid, os.WNOHANG | ptrace.WALL)
            except ChildProcessError:
                break
            if got:
                self._give_back_sigchld()
                return status
            if task_state(t.pid, t.tid) == "Z":
                for other in [o.tid for o in self.threads.values() if o.pid == t.pid and o.tid != t.tid]:
                    try:
                        os.waitpid(other, os.WNOHANG | ptrace.WALL)
                    except ChildProcessError:
                        pass
            self._await_child(0.0001, time.monotonic() + CHILD_WAIT_MAX)
        self._give_back_sigchld()
        return None

    def _wait_for(self, tid: int) -> int | None:
        """Block until this one thread's next wait status; None once it is gone."""
        while True:
            try:
                _, status = os.waitpid(tid, ptrace.WALL)
                return status
            except ChildProcessError:
                return None
            except InterruptedError:
                continue


def task_state(pid: int, tid: int) -> str:
    """The state letter of /proc/PID/task/TID/stat ("" when the thread is gone)."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:].split()[0].decode()
    except (OSError, ValueError, IndexError):
        return ""
