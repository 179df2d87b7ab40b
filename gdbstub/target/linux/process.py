"""Linux inferiors under ptrace: launch, attach, resume, wait, threads.

All-stop: when one thread reports an event every other thread is stopped with
SIGSTOP; events those threads had meanwhile are kept pending and reported on a
later resume, never lost. Every ptrace call happens on the calling thread,
which must be the thread that launched or attached (the server's event loop).
"""

from __future__ import annotations

import errno
import logging
import os
import signal
from dataclasses import dataclass, field

from ...arch import detect_arch
from ...arch.regs import Arch, RegBuffers
from ..base import Breakpoints, ResumeAction, StopEvent, StopKind
from . import ptrace
from .memory import ProcessMemory

log = logging.getLogger("gdbstub.target")

SI_KERNEL = 0x80
TRAP_BRKPT = 1
TRAP_TRACE = 2
TRAP_HWBKPT = 4
XSTATE_MAX = 4096
INT3 = b"\xcc"

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


@dataclass
class Thread:
    tid: int
    pid: int
    running: bool = False  # resumed with ptrace and no stop seen since
    resume_requested: bool = False  # the client wants it running
    pending: int | None = None  # a wait status seen while stopping all, not yet handled
    expect_sigstop: bool = False  # a SIGSTOP we sent (or the clone's initial one) is due
    action: ResumeAction = field(default_factory=lambda: ResumeAction("c"))
    user: bytearray | None = None  # register caches, dropped on resume
    xstate: bytearray | None = None
    stop_signal: int = 0  # the signal of the last reported stop
    step_over: int | None = None  # breakpoint address being stepped over


@dataclass
class Process:
    pid: int
    arch: Arch
    memory: ProcessMemory
    launched: bool
    sw_breakpoints: dict[int, bytes] = field(default_factory=dict)  # addr -> original byte
    exited: bool = False


class LinuxTarget:
    """Every process and thread the stub traces, and the all-stop state machine."""

    def __init__(self) -> None:
        self.processes: dict[int, Process] = {}
        self.threads: dict[int, Thread] = {}
        self.running = False
        self.pass_signals: frozenset[int] = frozenset()
        self.report_fork = False
        self.report_vfork = False
        self.report_exec = False
        self.catch_syscalls: frozenset[int] | None = None  # None: off, empty: all
        self._pending_events: list[StopEvent] = []
        self._orphans: dict[int, int] = {}  # tid -> status of threads seen before their clone event
        self._first_pid = 0
        self.hw: Breakpoints | None = None

    # --- starting and ending ---------------------------------------------------

    def launch(self, argv: list[str], env: dict[str, str] | None = None,
               disable_aslr: bool = True, cwd: str | None = None,
               stdio_fds: tuple[int, int, int] | None = None, startup_execs: int = 0) -> int:
        """fork + PTRACE_TRACEME + exec; the program stops at its first instruction.

        ``startup_execs``: how many more execs come before the program itself (a shell
        running ``exec PROG``, a wrapper): the stub runs through them first."""
        path = argv[0]
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # child
            try:
                os.close(err_r)
                ptrace.traceme()
                os.setpgid(0, 0)
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
        failure = os.read(err_r, 64)
        os.close(err_r)
        _, status = os.waitpid(pid, ptrace.WALL)
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
        _, status = os.waitpid(pid, ptrace.WALL)
        ptrace.set_options(pid, DEFAULT_OPTIONS & ~ptrace.O_EXITKILL)
        proc = self._add_process(pid, launched=False)
        seen = {pid}
        while True:
            tids = {int(t) for t in os.listdir(f"/proc/{pid}/task")} - seen
            if not tids:
                break
            for tid in sorted(tids):
                seen.add(tid)
                try:
                    ptrace.attach(tid)
                    os.waitpid(tid, ptrace.WALL)
                    ptrace.set_options(tid, DEFAULT_OPTIONS & ~ptrace.O_EXITKILL)
                except OSError:
                    continue
                self.threads[tid] = Thread(tid, pid)
        del proc, status

    def _add_process(self, pid: int, launched: bool) -> Process:
        arch = detect_arch(pid)
        proc = Process(pid, arch, ProcessMemory(pid), launched)
        self.processes[pid] = proc
        self.threads[pid] = Thread(pid, pid)
        if not self._first_pid:
            self._first_pid = pid
        return proc

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
        return proc.arch

    def kill(self, pid: int | None = None) -> None:
        """SIGKILL the process(es) and reap them; no process outlives this."""
        pids = [pid] if pid is not None else list(self.processes)
        for p in pids:
            if p not in self.processes:
                continue
            ptrace.kill_quietly(p)
            self._reap_process(p)

    def _reap_process(self, pid: int) -> None:
        tids = [t.tid for t in self.threads.values() if t.pid == pid]
        for tid in tids:
            if tid == pid:
                continue
            try:
                os.waitpid(tid, ptrace.WALL)
            except ChildProcessError:
                pass
        try:
            while True:
                _, status = os.waitpid(pid, ptrace.WALL)
                if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                    break
        except ChildProcessError:
            pass
        self._forget_process(pid)

    def _forget_process(self, pid: int) -> None:
        proc = self.processes.pop(pid, None)
        if proc is not None:
            proc.memory.close()
        for tid in [t.tid for t in self.threads.values() if t.pid == pid]:
            del self.threads[tid]
        if not self.processes:
            self.running = False

    def detach(self, pid: int | None = None) -> None:
        """Leave the process running untraced, our breakpoints removed first."""
        pids = [pid] if pid is not None else list(self.processes)
        for p in pids:
            proc = self.processes.get(p)
            if proc is None:
                continue
            if self.running:
                self._stop_all()
            if self.hw is not None:
                self._clear_hw(p)
            for addr, orig in list(proc.sw_breakpoints.items()):
                proc.memory.write(addr, orig)
            proc.sw_breakpoints.clear()
            for t in [t for t in self.threads.values() if t.pid == p]:
                sig = 0
                if t.pending is not None and os.WIFSTOPPED(t.pending):
                    s = os.WSTOPSIG(t.pending)
                    if s not in (signal.SIGSTOP, signal.SIGTRAP) and (t.pending >> 16) == 0:
                        sig = s
                try:
                    ptrace.detach(t.tid, sig)
                except OSError:
                    pass
            if proc.launched:
                ptrace.kill_quietly(p, signal.SIGCONT)
            self._forget_process(p)
            self.running = any(t.running for t in self.threads.values())

    def _clear_hw(self, pid: int) -> None:
        clear = getattr(self.hw, "clear_process", None)
        if clear is not None:
            clear(pid)

    def close(self) -> None:
        """Called when the stub ends: kill what we launched, detach the rest."""
        for pid in list(self.processes):
            if self.processes[pid].launched:
                self.kill(pid)
            else:
                self.detach(pid)

    # --- threads -----------------------------------------------------------------

    def thread_ids(self) -> list[tuple[int, int]]:
        return sorted(((t.pid, t.tid) for t in self.threads.values()),
                      key=lambda pt: (pt[0] != self.pid, pt[0], pt[1] != pt[0], pt[1]))

    def thread_name(self, pid: int, tid: int) -> str:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm", encoding="utf-8", errors="replace") as f:
                return f.read().rstrip("\n")
        except OSError:
            return ""

    def thread_core(self, pid: int, tid: int) -> int | None:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                stat = f.read()
            return int(stat[stat.rindex(b")") + 2 :].split()[36])
        except (OSError, ValueError, IndexError):
            return None

    def pid_of(self, tid: int) -> int | None:
        t = self.threads.get(tid)
        return t.pid if t else None

    # --- registers -----------------------------------------------------------------

    def _thread(self, tid: int) -> Thread:
        t = self.threads.get(tid)
        if t is None:
            raise OSError(errno.ESRCH, "no such thread")
        return t

    def _buffers(self, t: Thread, need_xstate: bool) -> RegBuffers:
        if t.user is None:
            t.user = ptrace.getregs(t.tid)
        if need_xstate and t.xstate is None:
            t.xstate = ptrace.getregset(t.tid, ptrace.NT_X86_XSTATE, XSTATE_MAX)
        return RegBuffers(t.user, t.xstate if t.xstate is not None else bytearray(4096))

    def _flush(self, t: Thread, user: bool, xstate: bool, rollback: bool = False) -> None:
        """Write the edited caches back. The kernel applies SETREGS field by field
        and stops at a bad one (a null segment selector, say): with ``rollback``
        the registers are put back as they were, so a refused write changes
        nothing; either way the caches are dropped and later reads are true."""
        saved = ptrace.getregs(t.tid) if rollback and user and t.user is not None else None
        try:
            if user and t.user is not None:
                ptrace.setregs(t.tid, t.user)
            if xstate and t.xstate is not None:
                ptrace.setregset(t.tid, ptrace.NT_X86_XSTATE, t.xstate)
        except OSError:
            t.user = None
            t.xstate = None
            if saved is not None:
                try:
                    ptrace.setregs(t.tid, saved)
                except OSError:
                    pass
            raise

    def read_registers(self, tid: int) -> bytes:
        t = self._thread(tid)
        arch = self.arch(t.pid)
        return arch.read_all(self._buffers(t, True))

    def write_registers(self, tid: int, data: bytes) -> None:
        t = self._thread(tid)
        arch = self.arch(t.pid)
        bufs = self._buffers(t, True)
        arch.write_all(bufs, data)
        self._flush(t, True, True, rollback=True)

    def read_register(self, tid: int, regnum: int) -> bytes | None:
        t = self._thread(tid)
        arch = self.arch(t.pid)
        reg = arch.by_num(regnum)
        if reg is None:
            return None
        return arch.read(reg, self._buffers(t, reg.buffer == "xstate"))

    def write_register(self, tid: int, regnum: int, data: bytes) -> bool:
        t = self._thread(tid)
        arch = self.arch(t.pid)
        reg = arch.by_num(regnum)
        if reg is None or len(data) != reg.size:
            return False
        bufs = self._buffers(t, reg.buffer == "xstate")
        arch.write(reg, bufs, data)
        self._flush(t, reg.buffer == "user", reg.buffer == "xstate", rollback=True)
        return True

    def get_pc(self, t: Thread) -> int:
        arch = self.arch(t.pid)
        raw = arch.read(arch.by_name(arch.pc), self._buffers(t, False))
        return int.from_bytes(raw, "little")

    def set_pc(self, t: Thread, pc: int) -> None:
        arch = self.arch(t.pid)
        bufs = self._buffers(t, False)
        arch.write(arch.by_name(arch.pc), bufs, pc.to_bytes(arch.word, "little"))
        self._flush(t, True, False)

    def expedite(self, tid: int) -> list[tuple[int, bytes]]:
        t = self._thread(tid)
        arch = self.arch(t.pid)
        bufs = self._buffers(t, False)
        return [(arch.by_name(n).regnum, arch.read(arch.by_name(n), bufs)) for n in arch.expedite]

    # --- memory and software breakpoints -------------------------------------------

    def read_memory(self, pid: int, addr: int, length: int) -> bytes:
        proc = self.processes[pid]
        data = proc.memory.read(addr, length)
        if proc.sw_breakpoints and data:
            end = addr + len(data)
            patched = None
            for bp, orig in proc.sw_breakpoints.items():
                if addr <= bp < end:
                    if patched is None:
                        patched = bytearray(data)
                    patched[bp - addr] = orig[0]
            if patched is not None:
                return bytes(patched)
        return data

    def write_memory(self, pid: int, addr: int, data: bytes) -> None:
        proc = self.processes[pid]
        if proc.sw_breakpoints:
            end = addr + len(data)
            hits = [bp for bp in proc.sw_breakpoints if addr <= bp < end]
            if hits:
                buf = bytearray(data)
                for bp in hits:
                    proc.sw_breakpoints[bp] = bytes((buf[bp - addr],))
                    buf[bp - addr] = INT3[0]
                data = bytes(buf)
        proc.memory.write(addr, data)

    def insert_sw_breakpoint(self, pid: int, addr: int) -> bool:
        proc = self.processes.get(pid)
        if proc is None:
            return False
        if addr in proc.sw_breakpoints:
            return True
        try:
            orig = proc.memory.read(addr, 1)
            if len(orig) != 1:
                return False
            proc.memory.write(addr, INT3)
        except OSError:
            return False
        proc.sw_breakpoints[addr] = orig
        return True

    def remove_sw_breakpoint(self, pid: int, addr: int) -> bool:
        proc = self.processes.get(pid)
        if proc is None:
            return False
        orig = proc.sw_breakpoints.pop(addr, None)
        if orig is None:
            return True
        try:
            proc.memory.write(addr, orig)
        except OSError:
            return False
        return True

    def auxv(self, pid: int) -> bytes:
        with open(f"/proc/{pid}/auxv", "rb") as f:
            return f.read()

    def exec_file(self, pid: int) -> str:
        return os.readlink(f"/proc/{pid}/exe")

    def breakpoints(self) -> Breakpoints | None:
        return self.hw

    # --- resuming ------------------------------------------------------------------

    def resume(self, actions: dict[int, ResumeAction]) -> None:
        """Resume the threads named in ``actions``; the rest stay stopped."""
        for tid, action in actions.items():
            t = self.threads.get(tid)
            if t is not None:
                t.action = action
                t.resume_requested = True
        self.running = True
        # Events kept pending from the last stop come first (all-stop: report one, run none).
        for t in list(self.threads.values()):
            if t.resume_requested and t.pending is not None:
                status, t.pending = t.pending, None
                event = self._handle_status(t.tid, status)
                if event is not None:
                    self._stop_all()
                    self._pending_events.append(event)
                    return
        if self._pending_events:
            return
        # Threads sitting on a breakpoint step off it first, while no other thread runs.
        first = [t for t in self.threads.values() if t.resume_requested and self._on_breakpoint(t)]
        rest = [t for t in self.threads.values() if t.resume_requested and t not in first]
        for t in first + rest:
            if t.tid in self.threads and not t.running and not self._pending_events:
                self._resume_thread(t, t.action.signal)

    def _on_breakpoint(self, t: Thread) -> bool:
        proc = self.processes.get(t.pid)
        if proc is None or not proc.sw_breakpoints or t.expect_sigstop:
            return False
        try:
            return self.get_pc(t) in proc.sw_breakpoints
        except OSError:
            return False

    def _resume_thread(self, t: Thread, sig: int) -> None:
        """Set a thread going according to its action, stepping off a breakpoint first."""
        if t.expect_sigstop and t.pending is None:
            t.running = True  # it still owes us its SIGSTOP; it runs once that arrives
            return
        try:
            if self._on_breakpoint(t):
                self._step_over(t, self.processes[t.pid], self.get_pc(t), sig)
                return
            self._ptrace_resume(t, sig)
        except OSError as exc:
            log.debug("resume %d failed: %s", t.tid, exc)

    def _ptrace_resume(self, t: Thread, sig: int) -> None:
        t.running = True
        t.user = None
        t.xstate = None
        if t.action.kind in ("s", "r"):
            ptrace.singlestep(t.tid, sig)
        elif self.catch_syscalls is not None:
            ptrace.syscall(t.tid, sig)
        else:
            ptrace.cont(t.tid, sig)

    def _step_over(self, t: Thread, proc: Process, pc: int, sig: int) -> None:
        """Step one thread past the breakpoint at its PC while the others wait."""
        orig = proc.sw_breakpoints[pc]
        proc.memory.write(pc, orig)
        t.step_over = pc
        t.user = None
        t.xstate = None
        ptrace.singlestep(t.tid, sig)
        t.running = True
        # The step ends at once; wait for it here so no other thread can run past the hole.
        status = self._wait_for(t.tid)
        if pc in proc.sw_breakpoints and t.pid in self.processes:
            proc.memory.write(pc, INT3)
        t.step_over = None
        if status is None:
            return
        plain_trap = (os.WIFSTOPPED(status) and os.WSTOPSIG(status) == signal.SIGTRAP
                      and status >> 16 == 0)
        if plain_trap and t.action.kind == "c":
            t.running = False
            self._ptrace_resume(t, 0)
            return
        event = self._handle_status(t.tid, status)
        if event is not None:
            self._pending_events.append(event)

    def _wait_for(self, tid: int) -> int | None:
        while True:
            try:
                _, status = os.waitpid(tid, ptrace.WALL)
                return status
            except ChildProcessError:
                return None
            except InterruptedError:
                continue

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to the program, as gdbserver does."""
        if not self.running:
            return
        pid = self.pid
        if pid in self.processes:
            ptrace.kill_quietly(pid, signal.SIGINT)

    # --- waiting -------------------------------------------------------------------

    def poll(self) -> StopEvent | None:
        """Reap every wait status ready now; return a stop to report, if any."""
        if self._pending_events:
            return self._pending_events.pop(0)
        while True:
            try:
                tid, status = os.waitpid(-1, os.WNOHANG | ptrace.WALL)
            except ChildProcessError:
                return None
            if tid == 0:
                return None
            event = self._handle_status(tid, status)
            if event is not None:
                if event.kind not in (StopKind.EXITED, StopKind.TERMINATED) or self.processes:
                    self._stop_all()
                self.running = False
                return event

    def _stop_all(self) -> None:
        """Bring every running thread to a stop, keeping their other events pending."""
        self.running = False
        waiting: list[Thread] = []
        for t in list(self.threads.values()):
            if not t.running:
                continue
            t.running = False
            if not t.expect_sigstop:
                try:
                    ptrace.tgkill(t.pid, t.tid, signal.SIGSTOP)
                    t.expect_sigstop = True
                except OSError:
                    continue
            waiting.append(t)
        while waiting:
            t = waiting.pop(0)
            if t.tid not in self.threads:
                continue
            status = self._wait_for(t.tid)
            if status is None:
                continue
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                gone = self._thread_gone(t, status)
                if gone is not None:
                    self._pending_events.append(gone)
                continue
            sig = os.WSTOPSIG(status)
            event = status >> 16
            if event == ptrace.EVENT_CLONE:
                new = self._new_thread(t, ptrace.geteventmsg(t.tid))
                if new is not None:
                    waiting.append(new)
                t.pending = None
                # The parent's own SIGSTOP is still due.
                waiting.append(t)
                continue
            if sig == signal.SIGSTOP and t.expect_sigstop and event == 0:
                t.expect_sigstop = False
                continue
            if t.pending is None:
                t.pending = status
            else:  # should not happen: keep the first
                log.debug("dropping second pending status of %d", t.tid)
        for t in self.threads.values():
            t.running = False
            t.resume_requested = False

    def _thread_gone(self, t: Thread, status: int) -> StopEvent | None:
        if t.tid == t.pid:
            # The leader's exit is the process's exit (all other threads are gone by then).
            pid = t.pid
            self._forget_process(pid)
            if os.WIFEXITED(status):
                return StopEvent(StopKind.EXITED, pid, pid, status=os.WEXITSTATUS(status))
            return StopEvent(StopKind.TERMINATED, pid, pid, signal=os.WTERMSIG(status))
        self.threads.pop(t.tid, None)
        return None

    def _new_thread(self, parent: Thread, tid: int) -> Thread | None:
        t = Thread(tid, parent.pid, expect_sigstop=True,
                   resume_requested=parent.resume_requested)
        self.threads[tid] = t
        if self._orphans.pop(tid, None) is not None:
            t.expect_sigstop = False  # its initial stop was already seen
            if self.running and t.resume_requested:
                self._ptrace_resume(t, 0)
            return None
        t.running = True  # not stopped for us yet: its SIGSTOP is still to come
        return t

    def _handle_status(self, tid: int, status: int) -> StopEvent | None:
        """Turn one wait status into a reportable event, or act on it silently."""
        t = self.threads.get(tid)
        if t is None:
            if os.WIFSTOPPED(status):
                self._orphans[tid] = status  # a new thread ahead of its clone event
            return None
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            return self._thread_gone(t, status)
        t.running = False
        t.user = None
        t.xstate = None
        sig = os.WSTOPSIG(status)
        event = status >> 16
        if event:
            return self._handle_ptrace_event(t, event)
        if sig == signal.SIGSTOP and t.expect_sigstop:
            t.expect_sigstop = False
            if self.running and t.resume_requested:
                self._resume_thread(t, 0)
            return None
        if sig == (signal.SIGTRAP | 0x80):
            return self._syscall_stop(t)
        if sig == signal.SIGTRAP:
            return self._sigtrap(t)
        if sig in self.pass_signals and t.action.kind == "c" and t.resume_requested:
            self._resume_thread(t, sig)
            return None
        t.stop_signal = sig
        return StopEvent(StopKind.SIGNAL, t.pid, t.tid, signal=sig)

    def _sigtrap(self, t: Thread) -> StopEvent | None:
        proc = self.processes[t.pid]
        try:
            info = ptrace.getsiginfo(t.tid)
        except OSError:
            info = b"\0" * 128
        code = int.from_bytes(info[8:12], "little", signed=True)
        reason: str | None = None
        address = 0
        hw = self.hw
        if hw is not None:
            check = getattr(hw, "stop_reason", None)
            if check is not None:
                found = check(t.tid)
                if found is not None:
                    reason, address = found
        if reason is None and code in (SI_KERNEL, TRAP_BRKPT):
            pc = self.get_pc(t)
            if pc - 1 in proc.sw_breakpoints:
                self.set_pc(t, pc - 1)
                reason = "swbreak"
        if reason is None and t.action.kind == "r" and code != SI_KERNEL:
            pc = self.get_pc(t)
            if t.action.start <= pc < t.action.end:
                self._ptrace_resume(t, 0)
                return None
        t.stop_signal = signal.SIGTRAP
        return StopEvent(StopKind.SIGNAL, t.pid, t.tid, signal=signal.SIGTRAP,
                         reason=reason, address=address)

    def _syscall_stop(self, t: Thread) -> StopEvent | None:
        handler = getattr(self, "on_syscall_stop", None)
        if handler is not None:
            result: StopEvent | None = handler(t)
            return result
        self._resume_if_wanted(t)
        return None

    def _handle_ptrace_event(self, t: Thread, event: int) -> StopEvent | None:
        if event == ptrace.EVENT_CLONE:
            self._new_thread(t, ptrace.geteventmsg(t.tid))
            self._resume_if_wanted(t)
            return None
        if event == ptrace.EVENT_EXEC:
            return self._exec_event(t)
        if event in (ptrace.EVENT_FORK, ptrace.EVENT_VFORK):
            return self._fork_event(t, event)
        if event == ptrace.EVENT_VFORK_DONE:
            if self.report_vfork:
                return StopEvent(StopKind.VFORK_DONE, t.pid, t.tid)
            self._resume_if_wanted(t)
            return None
        self._resume_if_wanted(t)
        return None

    def _resume_if_wanted(self, t: Thread) -> None:
        if self.running and t.resume_requested:
            self._resume_thread(t, 0)

    def _exec_event(self, t: Thread) -> StopEvent | None:
        pid = t.pid
        proc = self.processes[pid]
        # After exec only the leader remains (the exec'ing thread took its tid).
        for tid in [x.tid for x in self.threads.values() if x.pid == pid and x.tid != pid]:
            del self.threads[tid]
        leader = self.threads.setdefault(pid, Thread(pid, pid))
        leader.running = False
        leader.expect_sigstop = False
        leader.pending = None
        leader.user = None
        leader.xstate = None
        proc.memory.reopen()
        proc.sw_breakpoints.clear()
        proc.arch = detect_arch(pid)
        path = self.exec_file(pid)
        if self.report_exec:
            return StopEvent(StopKind.EXEC, pid, pid, exec_path=path)
        leader.stop_signal = signal.SIGTRAP
        return StopEvent(StopKind.SIGNAL, pid, pid, signal=signal.SIGTRAP)

    def _fork_event(self, t: Thread, event: int) -> StopEvent | None:
        child = ptrace.geteventmsg(t.tid)
        # The child starts with a SIGSTOP (it may already be waiting for us).
        status = self._orphans.pop(child, None)
        if status is None:
            status = self._wait_for(child)
        parent = self.processes[t.pid]
        report = self.report_vfork if event == ptrace.EVENT_VFORK else self.report_fork
        if report:
            proc = Process(child, parent.arch, ProcessMemory(child), parent.launched,
                           dict(parent.sw_breakpoints))
            self.processes[child] = proc
            self.threads[child] = Thread(child, child)
            kind = StopKind.VFORK if event == ptrace.EVENT_VFORK else StopKind.FORK
            return StopEvent(kind, t.pid, t.tid, child_pid=child, child_tid=child)
        # Not followed: take our breakpoints out of the child's copy and let it go.
        if parent.sw_breakpoints:
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
        self._resume_if_wanted(t)
        return None
