"""The table of traced processes and threads, and each thread's state.

Owns ``processes``/``threads``, the flags that say what a thread is doing and the
one place those flags change together (``Thread.stop``/``Thread.run``). Knows
nothing of registers' meaning, breakpoints, events or the resume policy.
"""

from __future__ import annotations

import enum
import errno
import os
import time
from dataclasses import dataclass, field

from ...arch import detect_arch, without_xml
from ...arch.regs import Arch
from ..base import ResumeAction, StopEvent
from . import ptrace
from .memory import ProcessMemory


class ThreadState(enum.Enum):
    """What a thread is doing, derived from its flags (``Thread.state``): for logs and readers."""

    RUNNING = "running"  # continuing (PTRACE_CONT or PTRACE_SYSCALL)
    STEPPING = "stepping"  # single-stepping for the client (a step or a range step)
    STEPPING_OVER = "stepping-over"  # single-stepping off one of our breakpoints, its int3 lifted
    STOPPING = "stopping"  # running, a SIGSTOP of ours on its way
    PAUSED = "paused"  # stopped by us while the client thinks it runs (all-stop collection, a step-over)
    STOPPED_PENDING = "stopped-pending"  # stopped with an event kept for a later resume
    STOPPED = "stopped"  # stopped, as the client knows


@dataclass
class Thread:
    """One traced thread. Its flags change together only through ``stop``/``run`` (and
    the SIGSTOP bookkeeping of the stop engine); ``state`` names what they add up to."""

    tid: int
    pid: int
    stopped: bool = True  # in a ptrace-stop we have seen (False: running, or a new clone not stopped yet)
    resumed: bool = False  # the client wants it running (until the next reported stop)
    pending: StopEvent | None = None  # seen while stopping all, reported on a later resume
    pending_seq: int = 0  # the order pending events were seen in
    expect_sigstop: bool = False  # a SIGSTOP we sent (or a new clone's first) is still due
    deliver: int = 0  # a signal to deliver when it next runs
    action: ResumeAction = field(default_factory=lambda: ResumeAction("c"))
    user: bytearray | None = None  # register caches, dropped on resume
    xstate: bytearray | None = None
    stop_signal: int = 0  # the signal of the last reported stop
    in_syscall: bool = False  # between a syscall-entry stop and its exit stop
    report_create: bool = False  # QThreadEvents: its first stop is reported as 'create'
    client_stop: bool = False  # non-stop vCont;t: report the SIGSTOP as a stop with signal 0
    stepping_over: bool = False  # single-stepping off a breakpoint of ours, its int3 lifted
    options: int = 0  # QThreadOptions: THREAD_OPTION_CLONE | THREAD_OPTION_EXIT (a clone starts with none)

    def stop(self) -> None:
        """A ptrace-stop seen: the register caches are read afresh when next needed."""
        self.stopped = True
        self.user = None
        self.xstate = None

    def run(self) -> None:
        """Set going by a PTRACE_CONT/SINGLESTEP/SYSCALL (issued, or refused: its next wait
        status tells what became of it)."""
        self.user = None
        self.xstate = None
        self.stopped = False

    @property
    def state(self) -> ThreadState:
        if not self.stopped:
            if self.stepping_over:
                return ThreadState.STEPPING_OVER
            if self.expect_sigstop:
                return ThreadState.STOPPING
            return ThreadState.STEPPING if self.action.kind in ("s", "r") else ThreadState.RUNNING
        if self.pending is not None:
            return ThreadState.STOPPED_PENDING
        return ThreadState.PAUSED if self.resumed else ThreadState.STOPPED
@dataclass
class Process:
    pid: int
    arch: Arch
    memory: ProcessMemory
    launched: bool
    sw_breakpoints: dict[int, bytes] = field(default_factory=dict)  # addr -> original byte
    # Breakpoints removed (non-stop: while threads ran): a hit already in flight is rewound.
    removed: set[int] = field(default_factory=set)
    exited: bool = False


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
        try:
            with open(f"/proc/{pid}/task/{tid}/comm", encoding="utf-8", errors="replace") as f:
                return f.read().rstrip("\n")
        except OSError:
            return ""

    def thread_core(self, pid: int, tid: int) -> int | None:
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
            return int(stat[stat.rindex(b")") + 2 :].split()[36])
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

    def _wait_for_dying(self, t: Thread) -> int | None:
        """Wait for T after a step that delivers a signal, which may kill the whole process.

        A leader that died with its process reports only once its other threads are
        reaped, so a blocking wait on it would never return: while T is a zombie, reap
        the others (their exits go with the process's, reported through T)."""
        while True:
            try:
                got, status = os.waitpid(t.tid, os.WNOHANG | ptrace.WALL)
            except ChildProcessError:
                return None
            if got:
                return status
            if task_state(t.pid, t.tid) == "Z":
                for other in [o.tid for o in self.threads.values() if o.pid == t.pid and o.tid != t.tid]:
                    try:
                        os.waitpid(other, os.WNOHANG | ptrace.WALL)
                    except ChildProcessError:
                        pass
            time.sleep(0.0001)

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
