"""Linux inferiors under ptrace: ``LinuxTarget``, the public entry, and the life of a
process (launch, attach, kill, detach, close). The layers below, each a module:
threads -> registers -> breakpoints -> decode -> stops -> resume -> this; the map of
where things happen is in the package docstring (``gdbstub/target/linux/__init__.py``).
"""

from __future__ import annotations

import errno
import os
import time

from ...hints import TYPE_CHECKING, signal
from ..base import StopKind
from . import ptrace
from .resume import ResumePolicy
from .spawn import DEFAULT_OPTIONS, LaunchError, Spawned, set_options, spawn
from .spawn import attach as spawn_attach
from .stops import STOP_TIMEOUT
from .threads import Process, Thread, ThreadState

if TYPE_CHECKING:
    from ...trace.tracer import Tracer

__all__ = ["LaunchError", "LinuxTarget", "Process", "Thread", "ThreadState"]


class LinuxTarget(ResumePolicy):
    """Every process and thread the stub traces: started, attached, ended here; the
    rest of the Target interface comes from the layers below."""

    def __init__(self) -> None:
        super().__init__()
        self.program_signals: frozenset[int] | None = None  # QProgramSignals: may reach the program
        self.module_state: dict[str, object] = {}  # packet modules' state shared by every session (tls's)

    def _tracer_made(self, tracer: Tracer) -> None:
        from ...trace.stepping import register_snapshot, while_step

        tracer.stepper = lambda tid: while_step(self, tid)  # while-stepping
        tracer.snapshot = lambda tid: register_snapshot(self, tid)  # registers kept raw at a hit

    def launch(self, argv: list[str], env: dict[str, str] | None = None,
               disable_aslr: bool = True, cwd: str | None = None,
               stdio_fds: tuple[int, int, int] | None = None, startup_execs: int = 0) -> int:
        """Start ARGV stopped at its first instruction (``spawn.spawn``) and trace it."""
        pid = spawn(argv, env, disable_aslr, cwd, stdio_fds, startup_execs)
        self._add_process(pid, launched=True)
        return pid

    def adopt(self, spawned: Spawned) -> None:
        """Take over the programs the command line started (each stopped at its first
        instruction) or attached to (its leader thread) before this target existed, and
        the stub listened; SPAWNED is empty afterwards."""
        for pid in spawned.pids:
            self._add_process(pid, launched=True)
        for pid, status in spawned.attached:
            self._adopt_attached(pid, status)
        spawned.pids.clear()
        spawned.attached.clear()

    def attach(self, pid: int) -> None:
        """Attach to every thread of a running process (threads may appear meanwhile)."""
        self._adopt_attached(pid, spawn_attach(pid))

    def _adopt_attached(self, pid: int, status: int | None) -> None:
        """The rest of an attach once the leader is stopped (STATUS, its wait status): the
        process, then every other thread."""
        self._add_process(pid, launched=False)
        self._attached_stop(self.threads[pid], status)
        seen = {pid}
        while True:
            tids = {int(t) for t in os.listdir(f"/proc/{pid}/task")} - seen
            if not tids:
                break
            for tid in sorted(tids):
                seen.add(tid)
                try:
                    ptrace.attach(tid)
                except OSError as exc:
                    if exc.errno != errno.EPERM:
                        continue  # gone meanwhile
                    # EPERM: already ours, a clone of a thread attached above; its
                    # first stop is its own SIGSTOP.
                self.threads[tid] = t = Thread(tid, pid)
                self._attached_stop(t, self._wait_for(tid))
                try:
                    set_options(tid, DEFAULT_OPTIONS & ~ptrace.O_EXITKILL)
                except OSError:
                    pass

    def _attached_stop(self, t: Thread, status: int | None) -> None:
        """The first stop after PTRACE_ATTACH: our SIGSTOP, or a signal that came first
        (delivered again later; the SIGSTOP is then still due)."""
        if status is None or not os.WIFSTOPPED(status):
            return
        if os.WSTOPSIG(status) != signal.SIGSTOP or status >> 16:
            t.sigstop_sent()  # the attach's, still due
            if status >> 16 == 0:
                t.signal_kept(os.WSTOPSIG(status))

    def kill(self, pid: int | None = None) -> None:
        """SIGKILL the process(es) and reap them; no process outlives this."""
        pids = [pid] if pid is not None else list(self.processes)
        for p in pids:
            if p not in self.processes:
                continue
            ptrace.kill_quietly(p)
            self._reap_process(p)

    def _reap_process(self, pid: int) -> None:
        """Collect the wait statuses of a killed process's threads, leader last."""
        deadline = time.monotonic() + STOP_TIMEOUT * 2
        while time.monotonic() < deadline:
            try:
                tid, status = os.waitpid(pid, os.WNOHANG | ptrace.WALL)
            except ChildProcessError:
                break
            if tid and (os.WIFEXITED(status) or os.WIFSIGNALED(status)):
                break
            try:
                others = [int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid]
            except OSError:
                others = []
            for other in others + [t.tid for t in self.threads.values() if t.pid == pid]:
                try:
                    os.waitpid(other, os.WNOHANG | ptrace.WALL)
                except ChildProcessError:
                    pass
            if not tid:
                self._await_child(0.001, deadline)
        self._forget_process(pid)
        self._give_back_sigchld()

    def detach(self, pid: int | None = None) -> None:
        """Leave the process running untraced, our breakpoints removed first and
        the signal it last stopped with delivered (as gdbserver does)."""
        pids = [pid] if pid is not None else list(self.processes)
        for p in pids:
            proc = self.processes.get(p)
            if proc is None:
                continue
            if self.running:
                self._stop_all()
                self._end_resume()
            if self.hw is not None:
                self._clear_hw(p)
            for addr, orig in list(proc.sw_breakpoints.items()):
                try:
                    proc.memory.write(addr, orig)
                except OSError:
                    pass
            proc.sw_breakpoints.clear()
            for t in [t for t in self.threads.values() if t.pid == p]:
                self._flush_sigstop(t)
                try:
                    ptrace.detach(t.tid, self._detach_signal(t))
                except OSError:
                    pass
            if proc.launched:
                ptrace.kill_quietly(p, signal.SIGCONT)
            self._forget_process(p)
            self.running = any(t.resumed for t in self.threads.values())

    def _flush_sigstop(self, t: Thread) -> None:
        """A SIGSTOP of ours still queued would stop the program after we detach:
        let it arrive now (what else arrives first is kept for delivery)."""
        for _ in range(8):
            if not t.expect_sigstop or not t.stopped:
                return
            try:
                ptrace.cont(t.tid, 0)
            except OSError:
                return
            t.released_for_sigstop()
            status = self._wait_for(t.tid)
            if status is None or not os.WIFSTOPPED(status):
                return
            t.stopped_by_event()
            if os.WSTOPSIG(status) == signal.SIGSTOP and status >> 16 == 0:
                t.sigstop_arrived()
            elif status >> 16 == 0 and os.WSTOPSIG(status) != signal.SIGTRAP:
                t.signal_kept(os.WSTOPSIG(status))

    def _detach_signal(self, t: Thread) -> int:
        """The signal the thread stopped with, when the client lets the program have it."""
        if t.deliver:
            return t.deliver
        event = t.pending
        sig = event.signal if event is not None and event.kind is StopKind.SIGNAL else t.stop_signal
        if not sig:
            return 0
        if self.program_signals is not None:
            return sig if sig in self.program_signals else 0
        return 0 if sig in (signal.SIGTRAP, signal.SIGINT, signal.SIGSTOP) else sig

    def close(self) -> None:
        """Called when the stub ends: kill what we launched, detach the rest."""
        for pid in list(self.processes):
            if self.processes[pid].launched:
                self.kill(pid)
            else:
                self.detach(pid)
        self._prune_stat_fds()
