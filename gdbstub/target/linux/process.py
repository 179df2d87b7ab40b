"""Linux inferiors under ptrace: launch, attach, resume, wait, threads.

All-stop: when one thread reports an event every other thread is stopped with
SIGSTOP; events those threads had meanwhile are kept pending and reported on a
later resume, never lost. Every ptrace call happens on the calling thread,
which must be the thread that launched or attached (the server's event loop).

Each thread is ``stopped`` (in a ptrace-stop we have seen) or not, and
``resumed`` (the client wants it running) or not. A wait status becomes a
StopEvent, or is handled silently (our SIGSTOPs, clones, passed signals,
uncaught syscalls, range steps still in range). A breakpoint hit is rewound at
once, so a pending one whose breakpoint gdb removed meanwhile is just dropped.
On resume a pending event of a resumed thread is reported before anything runs
(the stepping thread's first, as gdbserver does); otherwise threads on a
breakpoint step off it one at a time with every other thread stopped, then all
resumed threads run.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import signal
import time
from dataclasses import dataclass, field

from ...agent import BreakpointConditions
from ...arch import detect_arch, without_xml
from ...arch.regs import Arch, RegBuffers
from ...trace.stepping import register_snapshot, stepped_onto_tracepoint, while_step
from ...trace.tracer import CLIENT, Tracer
from ..base import Breakpoints, ResumeAction, StopEvent, StopKind
from . import ptrace
from .debugregs import SILENT, DebugRegisters
from .memory import ProcessMemory

log = logging.getLogger("gdbstub.target")

SI_KERNEL = 0x80
TRAP_BRKPT = 1
TRAP_TRACE = 2
TRAP_HWBKPT = 4
INT3 = b"\xcc"
STOP_TIMEOUT = 2.0  # how long stopping all threads waits for one that will not stop
PTRACE_GET_SYSCALL_INFO = 0x420E
SYSCALL_ENTRY = 1
SYSCALL_EXIT = 2
ORIG_RAX_OFFSET = 120  # in the 64-bit user_regs_struct (32-bit tracees too)
FS_BASE_OFFSET = 168
GS_BASE_OFFSET = 176
GLIBC_INTERNAL_SIGNALS = frozenset({32, 33})  # SIGCANCEL, SIGSETXID
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


@dataclass
class Thread:
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
        self.xml_registers = True  # the client reads target.xml (qSupported xmlRegisters=i386)
        self.catch_syscalls: frozenset[int] | None = None  # None: off, empty: all
        self.program_signals: frozenset[int] | None = None  # QProgramSignals: may reach the program
        self.thread_events = False  # QThreadEvents: report thread exits ('w')
        self.report_no_resumed = False  # no-resumed+: 'N' when no resumed thread is left
        self._ready: list[StopEvent] = []  # to report at the next poll, all threads stopped
        self._deferred: list[StopEvent] = []  # exits seen while stopping all
        self._seq = 0
        self._orphans: dict[int, int] = {}  # tid -> status of threads seen before their clone event
        self._first_pid = 0
        self.hw: DebugRegisters | None = DebugRegisters(self)  # Z1-Z4 in DR0-DR7
        self.conditions = BreakpointConditions()  # Z0/Z1 conditions evaluated at the hit
        self.tracer = Tracer(self, stepper=lambda tid: while_step(self, tid),  # tracepoints, collected at the hit
                             snapshot=lambda tid: register_snapshot(self, tid))
        self._stat_fds: dict[int, int] = {}  # tid -> open /proc/PID/task/TID/stat
        self.non_stop = False

    # --- starting and ending ---------------------------------------------------

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
            t.expect_sigstop = True
            if status >> 16 == 0:
                t.deliver = os.WSTOPSIG(status)

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
        return proc.arch if self.xml_registers else without_xml(proc.arch)

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

    def _forget_process(self, pid: int) -> None:
        self.tracer.forget_process(pid)
        proc = self.processes.pop(pid, None)
        if proc is not None:
            proc.memory.close()
        for t in [t for t in self.threads.values() if t.pid == pid]:
            self._forget_thread(t)
        if not self.processes:
            self.running = False

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
            status = self._wait_for(t.tid)
            if status is None or not os.WIFSTOPPED(status):
                t.stopped = False
                return
            if os.WSTOPSIG(status) == signal.SIGSTOP and status >> 16 == 0:
                t.expect_sigstop = False
            elif status >> 16 == 0 and os.WSTOPSIG(status) != signal.SIGTRAP:
                t.deliver = os.WSTOPSIG(status)

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
        self._prune_stat_fds()

    # --- threads -----------------------------------------------------------------

    def thread_ids(self) -> list[tuple[int, int]]:
        """Every thread, in the order they appeared (gdbserver's order, so gdb numbers
        threads the same way)."""
        return [(t.pid, t.tid) for t in self.threads.values()]

    def thread_handle(self, pid: int, tid: int) -> bytes | None:
        """libthread_db's handle, the pthread_t: the thread pointer, which is fs_base
        on x86_64 and the %gs segment base on i386. None before libc set it up."""
        t = self.threads.get(tid)
        if t is None:
            return None
        try:
            user = self._buffers(t, False).user
        except OSError:
            return None
        word = self.arch(pid).word
        offset = FS_BASE_OFFSET if word == 8 else GS_BASE_OFFSET
        value = int.from_bytes(user[offset:offset + 8], "little")
        if not value:
            return None
        return value.to_bytes(8, "little")

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
            t.xstate = ptrace.getxstate(t.tid)
        return RegBuffers(t.user, t.xstate if t.xstate is not None else bytearray(4096))

    def _flush(self, t: Thread, user: bool, xstate: bool, rollback: bool = False) -> None:
        """Write the edited caches back. The kernel applies SETREGS field by field
        and stops at a bad one (a null segment selector, say): with ``rollback``
        (a client's write) the registers are put back as they were, so a refused
        write changes nothing, and after an accepted one the caches are dropped
        too, since the kernel may have adjusted what it took (eflags' fixed bits):
        later reads show the registers as they are."""
        saved = ptrace.getregs(t.tid) if rollback and user and t.user is not None else None
        try:
            if user and t.user is not None:
                ptrace.setregs(t.tid, t.user)
            if xstate and t.xstate is not None:
                ptrace.setregset(t.tid, ptrace.NT_X86_XSTATE, t.xstate)
            if rollback:
                t.user = None
                t.xstate = None
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

    def siginfo(self, tid: int) -> bytes:
        """The stopped thread's siginfo, in the kernel's 64-bit layout (qXfer:siginfo)."""
        return ptrace.getsiginfo(self._thread(tid).tid)

    def set_siginfo(self, tid: int, data: bytes) -> None:
        ptrace.setsiginfo(self._thread(tid).tid, data)

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

    def insert_sw_breakpoint(self, pid: int, addr: int, owner: str = CLIENT) -> bool:
        proc = self.processes.get(pid)
        if proc is None:
            return False
        self.tracer.own(pid, addr, owner)  # the client and the trace may share one int3
        try:
            if addr in proc.sw_breakpoints:
                # Written again: a vfork child sharing our memory may have taken it out.
                proc.memory.write(addr, INT3)
                return True
            orig = proc.memory.read(addr, 1)
            if len(orig) != 1:
                return False
            proc.memory.write(addr, INT3)
        except OSError:
            return False
        proc.sw_breakpoints[addr] = orig
        proc.removed.discard(addr)
        return True

    def remove_sw_breakpoint(self, pid: int, addr: int, owner: str = CLIENT) -> bool:
        proc = self.processes.get(pid)
        if proc is None or self.tracer.still_owned(pid, addr, owner):
            return proc is not None
        orig = proc.sw_breakpoints.pop(addr, None)
        if orig is None:
            return True
        try:
            proc.memory.write(addr, orig)
        except OSError:
            return False
        proc.removed.add(addr)
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
        """Resume the threads named in ``actions``; the rest stay stopped.

        All-stop: an event kept pending from the last stop is reported first and
        nothing runs; otherwise threads sitting on a breakpoint step off it (one at
        a time, all others stopped) and then every named thread runs.
        """
        for tid, action in actions.items():
            t = self.threads.get(tid)
            if t is not None:
                t.action = action
                t.resumed = True
                if action.signal:
                    t.deliver = action.signal  # kept until the thread really runs
        self.running = True
        if self.non_stop:
            self._resume_non_stop()
            return
        event = self._take_pending()
        if event is None:
            event = self._step_off_breakpoints()
        if event is not None:
            self._ready.append(event)
            return
        for t in list(self.threads.values()):
            if self._ready:
                break  # a step-off ended in an event: everything is stopped again
            if t.resumed and t.stopped and t.tid in self.threads:
                sig, t.deliver = t.deliver, 0
                self._resume_one(t, sig)

    def _resume_non_stop(self) -> None:
        """Non-stop: a thread with a kept event reports it and stays stopped; the others run."""
        self._ready.extend(self._deferred)
        self._deferred.clear()
        for t in list(self.threads.values()):
            if not (t.resumed and t.stopped) or t.tid not in self.threads:
                continue
            if t.pending is not None:
                event, t.pending = t.pending, None
                if self._still_valid(t, event):
                    self._ready.append(event)
                    t.resumed = False
                    continue
            sig, t.deliver = t.deliver, 0
            self._resume_one(t, sig)
        self.running = any(t.resumed for t in self.threads.values())
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
                t.expect_sigstop = True

    def _wake_if_ready(self) -> None:
        """Non-stop: events queued while handling a request (vCont, vCont;t) are not
        followed by a SIGCHLD of their own; send one, so the event loop polls for them
        instead of waiting for some other thread's stop."""
        if self._ready:
            os.kill(os.getpid(), signal.SIGCHLD)

    def _take_pending(self) -> StopEvent | None:
        """The next still-valid event kept from an earlier stop (exits first: a thread's
        only when the request continues threads, not just steps one)."""
        continuing = any(t.resumed and not self._stepping(t) for t in self.threads.values())
        for i, gone in enumerate(self._deferred):
            if gone.kind is not StopKind.THREAD_EXITED or continuing:
                return self._deferred.pop(i)
        candidates = sorted((t for t in self.threads.values() if t.resumed and t.pending is not None),
                            key=lambda t: t.pending_seq)
        chosen: StopEvent | None = None
        for t in candidates:
            event = t.pending
            assert event is not None
            if not self._still_valid(t, event):
                t.pending = None
                continue
            if chosen is None or (self._stepping(t) and not self._stepping(self.threads[chosen.tid])):
                chosen = event
        if chosen is not None:
            self.threads[chosen.tid].pending = None
        return chosen

    def pending_event(self, tid: int) -> StopEvent | None:
        """Read-only: the event a stopped thread keeps for a later resume (all-stop reports
        one thread's at a time). lldb is told of them all at once, as lldb-server does.
        None when there is none or it no longer counts (its breakpoint was removed)."""
        t = self.threads.get(tid)
        if t is None or t.pending is None or not self._still_valid(t, t.pending):
            return None
        return t.pending

    def _still_valid(self, t: Thread, event: StopEvent) -> bool:
        """A breakpoint hit whose breakpoint is gone by now is dropped (the PC was rewound,
        so the thread simply runs the original instruction), as gdbserver does."""
        if event.reason != "swbreak":
            return True
        proc = self.processes.get(t.pid)
        try:
            return proc is not None and self.get_pc(t) in proc.sw_breakpoints
        except OSError:
            return False

    @staticmethod
    def _stepping(t: Thread) -> bool:
        return t.action.kind in ("s", "r")

    def _step_off_breakpoints(self) -> StopEvent | None:
        for t in list(self.threads.values()):
            if not (t.resumed and t.stopped and t.tid in self.threads and self._on_breakpoint(t)):
                continue
            sig, t.deliver = t.deliver, 0
            event = self._step_over(t, sig)
            if event is not None:
                return event
        return None

    def _on_breakpoint(self, t: Thread) -> bool:
        proc = self.processes.get(t.pid)
        if proc is None or not proc.sw_breakpoints:
            return False
        try:
            return self.get_pc(t) in proc.sw_breakpoints
        except OSError:
            return False

    def _resume_one(self, t: Thread, sig: int) -> None:
        """Set one stopped thread going per its action (stepping off a breakpoint first)."""
        if self._on_breakpoint(t):
            event = self._step_over_non_stop(t, sig) if self.non_stop else self._step_over(t, sig)
            if event is not None:
                self._ready.append(event)
                if not self.non_stop:
                    self._stop_all()
                return
            if not t.stopped or t.tid not in self.threads:
                return
            sig = 0
        self._ptrace_resume(t, sig)

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

    def _restart_paused(self, skip: Thread) -> None:
        """After a non-stop step-over: events seen while pausing are queued for the
        client (their threads stay stopped), the other resumed threads run on."""
        self._ready.extend(self._deferred)
        self._deferred.clear()
        for x in list(self.threads.values()):
            if x is skip or not (x.resumed and x.stopped) or x.tid not in self.threads:
                continue
            if x.pending is not None:
                event, x.pending = x.pending, None
                if self._still_valid(x, event):
                    self._ready.append(event)
                    x.resumed = False
                    continue
            if x.client_stop and not x.expect_sigstop:  # its vCont;t SIGSTOP came meanwhile
                self._ready.append(StopEvent(StopKind.SIGNAL, x.pid, x.tid, signal=0))
                x.resumed = False
                continue
            sig, x.deliver = x.deliver, 0
            self._resume_one(x, sig)

    def _ptrace_resume(self, t: Thread, sig: int) -> None:
        t.user = None
        t.xstate = None
        try:
            if self.hw is not None:
                self.hw.sync(t.pid, t.tid)
            if self._stepping(t):
                ptrace.singlestep(t.tid, sig)
            elif self.catch_syscalls is not None:
                ptrace.syscall(t.tid, sig)
            else:
                ptrace.cont(t.tid, sig)
        except OSError as exc:
            # Not in a ptrace-stop after all (dying, or blocked in vfork): its next
            # wait status tells what became of it.
            log.debug("resume %d failed: %s", t.tid, exc)
        t.stopped = False

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
                t.user = None
                t.xstate = None
                try:
                    if self.hw is not None:
                        self.hw.sync(t.pid, t.tid)
                    ptrace.singlestep(t.tid, sig)
                except OSError:
                    return None
                sig = 0
                t.stopped = False
                status = self._wait_for(t.tid)
                if status is None:
                    self._forget_thread(t)
                    return None
                swallowed = (os.WIFSTOPPED(status) and os.WSTOPSIG(status) == signal.SIGSTOP
                             and t.expect_sigstop and status >> 16 == 0)
                if not swallowed:
                    break
                t.expect_sigstop = False  # our old SIGSTOP came first: step again
                t.stopped = True
        finally:
            if orig is not None and pc in proc.sw_breakpoints and t.pid in self.processes:
                proc.memory.write(pc, INT3)
        plain_trap = (os.WIFSTOPPED(status) and os.WSTOPSIG(status) == signal.SIGTRAP
                      and status >> 16 == 0)
        if plain_trap and not (self.hw is not None and self.hw.fired(t.tid)):
            t.stopped = True
            t.user = None
            t.xstate = None
            if t.action.kind == "s":
                t.stop_signal = signal.SIGTRAP
                return StopEvent(StopKind.SIGNAL, t.pid, t.tid, signal=signal.SIGTRAP)
            if t.action.kind == "r" and not self._in_range(t):
                t.stop_signal = signal.SIGTRAP
                return StopEvent(StopKind.SIGNAL, t.pid, t.tid, signal=signal.SIGTRAP)
            if self._on_breakpoint(t):
                # Landed on the next breakpoint: that is a hit, as if its int3 had run.
                if not self._hit_wanted(t, "swbreak"):
                    return self._step_over(t, 0)  # a tracepoint's (collected now): over it too
                t.stop_signal = signal.SIGTRAP
                return StopEvent(StopKind.SIGNAL, t.pid, t.tid, signal=signal.SIGTRAP, reason="swbreak")
            return None
        return self._on_status(t.tid, status, collecting=True)

    def _in_range(self, t: Thread) -> bool:
        return t.action.start <= self.get_pc(t) < t.action.end

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
        event = self._poll()
        if event is not None and self.tracer.sites:
            stepped_onto_tracepoint(self, event)  # a step ending at a tracepoint is its hit
        return event

    def _poll(self) -> StopEvent | None:
        while True:
            if self._ready:
                event = self._ready.pop(0)
                if self.non_stop:
                    self._reported(event)
                else:
                    self._end_resume()
                return event
            try:
                tid, status = os.waitpid(-1, os.WNOHANG | ptrace.WALL)
            except ChildProcessError:
                tid = 0
            if tid == 0:
                return self._no_resumed()
            found = self._on_status(tid, status, collecting=False)
            if found is not None:
                return self._report(found)

    def _no_resumed(self) -> StopEvent | None:
        """Nothing left running (the resumed threads exited): gdb's 'N' stop."""
        if not self.running or not self.report_no_resumed or not self.processes:
            return None
        if any(not t.stopped for t in self.threads.values()):
            return None
        self._end_resume()
        return StopEvent(StopKind.NO_RESUMED, self.pid, 0)

    def _report(self, event: StopEvent) -> StopEvent:
        """All-stop: stop every other thread, then report the stepping thread's event
        before any other (as gdbserver does), keeping the rest pending."""
        if self.non_stop:
            self._reported(event)
            return event
        self._stop_all()
        trigger = self.threads.get(event.tid)
        if trigger is not None and not self._stepping(trigger):
            steppers = [t for t in self.threads.values()
                        if t.pending is not None and t.resumed and self._stepping(t)]
            if steppers:
                chosen = min(steppers, key=lambda t: t.pending_seq)
                self._keep_pending(trigger, event)
                event, chosen.pending = chosen.pending, None  # type: ignore[assignment]
        self._end_resume()
        return event

    def _end_resume(self) -> None:
        self.running = False
        for t in self.threads.values():
            t.resumed = False

    # --- non-stop ------------------------------------------------------------------

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
            t.resumed = False
            t.client_stop = False
        self.running = any(x.resumed for x in self.threads.values())

    def is_running(self, tid: int) -> bool:
        """As the client sees it: resumed and no stop reported since."""
        t = self.threads.get(tid)
        return bool(t and t.resumed)

    def stop_threads(self, tids: list[int]) -> None:
        """vCont;t: stop running threads; each is reported with signal 0."""
        for tid in tids:
            t = self.threads.get(tid)
            if t is None or not t.resumed:
                continue
            t.client_stop = True
            if t.stopped:  # stopped for us already (a step-over, a new thread): report now
                t.client_stop = False
                t.resumed = False
                self._ready.append(StopEvent(StopKind.SIGNAL, t.pid, t.tid, signal=0))
            elif not t.expect_sigstop:
                try:
                    ptrace.tgkill(t.pid, t.tid, signal.SIGSTOP)
                    t.expect_sigstop = True
                except OSError:
                    continue
        self.running = any(x.resumed for x in self.threads.values())
        self._wake_if_ready()

    def _keep_pending(self, t: Thread, event: StopEvent) -> None:
        self._seq += 1
        if t.pending is not None:
            log.debug("thread %d: second pending event %s dropped", t.tid, event.kind)
            return
        t.pending = event
        t.pending_seq = self._seq

    def _stop_all(self) -> None:
        """Bring every thread to a stop; the events they had meanwhile are kept pending."""
        start = time.monotonic()
        deadline = start + STOP_TIMEOUT
        zombies_checked = False
        while True:
            waiting = [t for t in self.threads.values() if not t.stopped]
            if not waiting:
                break
            for t in waiting:
                if not t.expect_sigstop:
                    try:
                        ptrace.tgkill(t.pid, t.tid, signal.SIGSTOP)
                    except OSError:
                        pass
                    t.expect_sigstop = True
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
                        if _task_state(t.pid, t.tid) in ("Z", "X", ""):
                            t.stopped = True
                            if t.tid == t.pid and any(x.pid == t.pid and x.tid != t.tid
                                                      for x in self.threads.values()):
                                self._forget_thread(t)  # gone from the list, as gdbserver does
                    continue
                if time.monotonic() > deadline:
                    # A thread that will not stop (blocked in vfork, say): treat it as
                    # stopped; its SIGSTOP is still due and is swallowed when it comes.
                    for t in waiting:
                        log.debug("thread %d did not stop", t.tid)
                        t.stopped = True
                    break
                time.sleep(0.0005)
                continue
            self._collect(tid, status)
        self.running = False

    def _collect(self, tid: int, status: int) -> None:
        event = self._on_status(tid, status, collecting=True)
        if event is None:
            return
        t = self.threads.get(event.tid)
        if t is None or event.kind in (StopKind.EXITED, StopKind.TERMINATED):
            self._deferred.append(event)
        else:
            self._keep_pending(t, event)

    # --- turning wait statuses into events -------------------------------------------

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
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            return self._thread_gone(t, status)
        t.stopped = True
        t.user = None
        t.xstate = None
        sig = os.WSTOPSIG(status)
        event = status >> 16
        if event:
            return self._ptrace_event(t, event, collecting)
        if sig == signal.SIGSTOP and t.expect_sigstop:
            t.expect_sigstop = False
            if t.report_create:
                t.report_create = False
                return StopEvent(StopKind.THREAD_CREATED, t.pid, t.tid)
            if t.client_stop and not collecting:  # non-stop vCont;t asked for this stop
                return StopEvent(StopKind.SIGNAL, t.pid, t.tid, signal=0)
            self._go_on(t, collecting)
            return None
        if sig == signal.SIGTRAP | 0x80:
            return self._syscall_stop(t, collecting)
        if sig == signal.SIGTRAP:
            return self._sigtrap(t, collecting)
        if self._pass_silently(t, sig):
            if collecting:
                t.deliver = sig
            else:
                self._ptrace_resume(t, sig)
            return None
        t.stop_signal = sig
        return StopEvent(StopKind.SIGNAL, t.pid, t.tid, signal=sig)

    def _pass_silently(self, t: Thread, sig: int) -> bool:
        """QPassSignals (and glibc's internal SIGCANCEL/SIGSETXID, as gdbserver with
        libthread_db passes them), except while stepping."""
        if self._stepping(t) and t.resumed:
            return False
        return sig in self.pass_signals or sig in GLIBC_INTERNAL_SIGNALS

    def _go_on(self, t: Thread, collecting: bool) -> None:
        """A stop the client never sees: let the thread go on if it should be running."""
        if not collecting and self.running and t.resumed:
            sig, t.deliver = t.deliver, 0
            self._resume_one(t, sig)

    def _thread_gone(self, t: Thread, status: int) -> StopEvent | None:
        exited = os.WIFEXITED(status)
        if t.tid != t.pid:
            self._forget_thread(t)
            if self.thread_events:
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

    def _forget_thread(self, t: Thread) -> None:
        self.threads.pop(t.tid, None)
        fd = self._stat_fds.pop(t.tid, None)
        if fd is not None:
            os.close(fd)

    def _new_thread(self, parent: Thread, tid: int, collecting: bool) -> StopEvent | None:
        """A clone: the new thread runs as its parent does, or (QThreadEvents) stops
        and is reported with 'create', as gdbserver does."""
        t = Thread(tid, parent.pid, stopped=False, expect_sigstop=True, resumed=parent.resumed,
                   report_create=self.thread_events)
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
        t.stopped = True
        t.expect_sigstop = False
        if os.WIFSTOPPED(status) and os.WSTOPSIG(status) != signal.SIGSTOP:
            t.deliver = os.WSTOPSIG(status)
        if t.report_create:
            t.report_create = False
            return StopEvent(StopKind.THREAD_CREATED, t.pid, t.tid)
        self._go_on(t, collecting)
        return None

    def _sigtrap(self, t: Thread, collecting: bool) -> StopEvent | None:
        proc = self.processes[t.pid]
        reason: str | None = None
        address = 0
        code = SI_KERNEL
        armed = self.hw is not None and self.hw.armed(t.tid)
        if t.action.kind == "c" and not armed and proc.sw_breakpoints:
            # Continuing, so no step trap: PC just past one of ours is our int3
            # (skips a GETSIGINFO per breakpoint hit).
            pc = self.get_pc(t)
            if pc - 1 in proc.sw_breakpoints:
                self.set_pc(t, pc - 1)
                reason = "swbreak"
        if reason is None and t.action.kind != "r" and not armed and not self._after_our_int3(t, proc):
            pass  # the reason would stay None whatever the siginfo says: skip GETSIGINFO
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
            if t.action.kind != "s" or not t.resumed:
                if reason == "swbreak" and not collecting and self.running and not self.non_stop:
                    return self._step_over_alone(t)
                # Goes on (or, while stopping all, stays).
                self._go_on(t, collecting)
                return None
            reason, address = None, 0  # the step itself is done: report that
        if reason is None and t.action.kind == "r" and t.resumed and code not in (SI_KERNEL, TRAP_BRKPT):
            if self._in_range(t):
                # Still inside the range: step on (or, while stopping all, just stay).
                if not collecting and self.running:
                    self._ptrace_resume(t, 0)
                return None
        t.stop_signal = signal.SIGTRAP
        return StopEvent(StopKind.SIGNAL, t.pid, t.tid, signal=signal.SIGTRAP,
                         reason=reason, address=address)

    def _after_our_int3(self, t: Thread, proc: Process) -> bool:
        """Whether the PC is just past one of our breakpoints, present or removed (True when unsure)."""
        if not proc.sw_breakpoints and not proc.removed:
            return False
        try:
            pc = self.get_pc(t)
            return pc - 1 in proc.sw_breakpoints or pc - 1 in proc.removed
        except OSError:
            return True

    def _step_over_alone(self, t: Thread) -> StopEvent | None:
        """A breakpoint hit nobody wants (false condition) while other threads run: stop
        them before lifting the int3, or one could run through the breakpoint unseen."""
        if any(x is not t and not x.stopped for x in self.threads.values()):
            self._stop_all()
            self.running = True
        sig, t.deliver = t.deliver, 0
        event = self._step_over(t, sig) or self._take_pending() or self._step_off_breakpoints()
        if event is not None:
            return event  # reported as usual: everything is stopped already
        for x in list(self.threads.values()):
            if x.resumed and x.stopped and x.tid in self.threads:
                sig, x.deliver = x.deliver, 0
                self._resume_one(x, sig)
        return None

    def _hit_wanted(self, t: Thread, reason: str) -> bool:
        """False for a hit the client asked not to hear about: a breakpoint whose condition
        is false (or whose dprintf ran here), a write caught by a read watchpoint's slot."""
        if reason == SILENT:
            return False
        if reason == "swbreak" and self.tracer.sites and not self.tracer.hit(t.pid, t.tid, self.get_pc(t)):
            return False
        if reason in ("swbreak", "hwbreak") and self.conditions.table:
            ztype = 0 if reason == "swbreak" else 1
            return self.conditions.should_report(self, t.pid, t.tid, ztype, self.get_pc(t))
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
        leader = Thread(pid, pid, stopped=True, resumed=t.resumed, action=t.action)
        leader.stop_signal = signal.SIGTRAP
        self.threads[pid] = leader
        proc.memory.reopen()
        proc.sw_breakpoints.clear()
        proc.removed.clear()
        self.conditions.clear_process(pid)
        self.tracer.forget_process(pid)
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
                thread.deliver = os.WSTOPSIG(status)
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


def _task_state(pid: int, tid: int) -> str:
    """The state letter of /proc/PID/task/TID/stat ("" when the thread is gone)."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:].split()[0].decode()
    except (OSError, ValueError, IndexError):
        return ""
