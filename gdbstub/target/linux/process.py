"""Linux inferiors under ptrace: ``LinuxTarget``, the public entry, and the life of a
process (launch, attach, kill, detach, close). The layers below, each a module:
threads -> registers -> breakpoints -> decode -> stops -> resume -> this; the map of
where things happen is in the package docstring (``gdbstub/target/linux/__init__.py``).
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import time

from ...trace.stepping import register_snapshot, while_step
from ..base import StopKind
from . import ptrace
from .childsignal import unblock_in_child
from .resume import ResumePolicy
from .stops import STOP_TIMEOUT
from .threads import Process, Thread, ThreadState

__all__ = ["LaunchError", "LinuxTarget", "Process", "Thread", "ThreadState"]

PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl

DEFAULT_OPTIONS = (
    ptrace.O_EXITKILL
    | ptrace.O_TRACECLONE
    | ptrace.O_TRACEEXEC
    | ptrace.O_TRACEFORK
    | ptrace.O_TRACEVFORK
    | ptrace.O_TRACEVFORKDONE
    | ptrace.O_TRACESYSGOOD
)


class LaunchError(Exception):
    """The program could not be started (the message says why, gdbserver-style)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class LinuxTarget(ResumePolicy):
    """Every process and thread the stub traces: started, attached, ended here; the
    rest of the Target interface comes from the layers below."""

    def __init__(self) -> None:
        super().__init__()
        self.program_signals: frozenset[int] | None = None  # QProgramSignals: may reach the program
        self.tracer.stepper = lambda tid: while_step(self, tid)  # while-stepping
        self.tracer.snapshot = lambda tid: register_snapshot(self, tid)  # registers kept raw at a hit

    def launch(self, argv: list[str], env: dict[str, str] | None = None,
               disable_aslr: bool = True, cwd: str | None = None,
               stdio_fds: tuple[int, int, int] | None = None, startup_execs: int = 0) -> int:
        """fork + PTRACE_TRACEME + exec; the program stops at its first instruction.

        ``startup_execs``: how many more execs come before the program itself (a shell
        running ``exec PROG``, a wrapper): the stub runs through them first."""
        path = argv[0]
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        stub = os.getpid()
        pid = os.fork()
        if pid == 0:  # child
            try:
                os.close(err_r)
                unblock_in_child()  # the stub reads SIGCHLD from a signalfd; the program must not inherit that
                # Until the stub has set PTRACE_O_EXITKILL (while this child stops below),
                # die with it: a stub killed mid-launch must not leave the program running.
                _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                if os.getppid() != stub:
                    os._exit(127)
                ptrace.traceme()
                os.setpgid(0, 0)
                os.kill(os.getpid(), signal.SIGSTOP)
                _prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0)  # EXITKILL from here; a detached program lives on
                if disable_aslr:
                    ptrace.disable_aslr()
                if stdio_fds is not None:
                    for target_fd, fd in enumerate(stdio_fds):
                        os.dup2(fd, target_fd)
                if cwd:
                    os.chdir(cwd)
                os.execve(path, argv, env if env is not None else os.environ)
            except OSError as exc:
                os.write(err_w, f"{exc.errno}".encode())
            except BaseException:
                pass
            os._exit(127)
        os.close(err_w)
        _, status = os.waitpid(pid, ptrace.WALL)
        if os.WIFSTOPPED(status):  # the SIGSTOP before exec
            # EXITKILL only: with TRACEEXEC the stop would come inside execve (rax -ENOSYS),
            # not at the first instruction with the registers gdbserver shows there.
            ptrace.set_options(pid, ptrace.O_EXITKILL)
            ptrace.cont(pid, 0)
            _, status = os.waitpid(pid, ptrace.WALL)
        while os.WIFSTOPPED(status) and os.WSTOPSIG(status) != signal.SIGTRAP:  # the SIGTRAP after exec
            sig = os.WSTOPSIG(status)
            ptrace.cont(pid, 0 if sig == signal.SIGSTOP else sig)
            _, status = os.waitpid(pid, ptrace.WALL)
        failure = os.read(err_r, 64)  # the exec's errno; EOF once exec closed the pipe
        os.close(err_r)
        if failure or not os.WIFSTOPPED(status):
            if os.WIFSTOPPED(status):
                ptrace.kill_quietly(pid)
                os.waitpid(pid, ptrace.WALL)
                code = 127
            else:
                code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128
            err = int(failure or b"0") or errno.ENOENT
            raise LaunchError(f"Cannot exec {path}: {os.strerror(err)}.", code)
        if startup_execs:
            self._run_startup_execs(pid, startup_execs)
        ptrace.set_options(pid, DEFAULT_OPTIONS)
        self._add_process(pid, launched=True)
        return pid

    def _run_startup_execs(self, pid: int, count: int) -> None:
        """Let a shell or wrapper run until it has exec'd the real program (extended: CLI)."""
        ptrace.set_options(pid, ptrace.O_EXITKILL | ptrace.O_TRACEEXEC)
        sig = 0
        while count:
            ptrace.cont(pid, sig)
            sig = 0
            _, status = os.waitpid(pid, ptrace.WALL)
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
                raise LaunchError("", code)
            if status >> 16 == ptrace.EVENT_EXEC:
                count -= 1
            elif os.WSTOPSIG(status) != signal.SIGTRAP:
                sig = os.WSTOPSIG(status)

    def attach(self, pid: int) -> None:
        """Attach to every thread of a running process (threads may appear meanwhile)."""
        ptrace.attach(pid)
        status = self._wait_for(pid)
        ptrace.set_options(pid, DEFAULT_OPTIONS & ~ptrace.O_EXITKILL)
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
                    ptrace.set_options(tid, DEFAULT_OPTIONS & ~ptrace.O_EXITKILL)
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
                time.sleep(0.001)
        self._forget_process(pid)

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
