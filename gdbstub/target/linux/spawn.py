"""Starting a program (or attaching to one) under ptrace with nothing but ``os`` and ``_ctypes``
(through ``gdbstub.ffi``).

The command line starts its program with this before it listens, and the stub's other
modules (the target, the session, the packet handlers) load while gdb connects;
``LinuxTarget.adopt`` then takes the stopped program over. ``LinuxTarget.launch`` starts
every later program through the same ``spawn``. ``_signal``, not ``signal``: the latter
imports ``enum``, which nothing before ``Listening`` needs. The few libc calls made here are
this module's own: ``ptrace``'s bindings, which load after ``Listening`` with the target,
make ctypes types and buffers no start needs (~5 M instructions).
"""

from __future__ import annotations

import _signal
import errno
import os

from ... import ffi as ctypes  # ctypes names without the ctypes package
from .ptrace_abi import (
    ADDR_NO_RANDOMIZE,
    ATTACH,
    CONT,
    EVENT_EXEC,
    O_EXITKILL,
    O_TRACECLONE,
    O_TRACEEXEC,
    O_TRACEFORK,
    O_TRACESYSGOOD,
    O_TRACEVFORK,
    O_TRACEVFORKDONE,
    SETOPTIONS,
    TRACEME,
    WALL,
)

_libc = ctypes.CDLL(None, use_errno=True)
_ptrace = _libc.ptrace
_ptrace.restype = ctypes.c_long
_prctl = _libc.prctl
_personality = _libc.personality

PR_SET_PDEATHSIG = 1

DEFAULT_OPTIONS = (
    O_EXITKILL
    | O_TRACECLONE
    | O_TRACEEXEC
    | O_TRACEFORK
    | O_TRACEVFORK
    | O_TRACEVFORKDONE
    | O_TRACESYSGOOD
)


def _ptrace_request(request: int, pid: int, data: int = 0) -> None:
    """ptrace(REQUEST, PID, 0, DATA); -1 raises OSError with the call's errno."""
    if _ptrace(request, pid, 0, data) == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def set_options(pid: int, options: int) -> None:
    _ptrace_request(SETOPTIONS, pid, options)


def _disable_aslr() -> None:
    """In the child before exec: the address space layout gdb users expect. (-1 asks for the
    current persona: the kernel reads an unsigned int, 0xffffffff.)"""
    current = _personality(-1)
    if current != -1:
        _personality(current | ADDR_NO_RANDOMIZE)


# The signals that end the stub (the server's handlers raise StubExit): held from start-up until the server's
# handlers are in place, so that none can end the stub between a launch and those handlers
# without the clean-up that kills what it launched.
EXIT_SIGNALS = (_signal.SIGTERM, _signal.SIGHUP, _signal.SIGINT)
_SIGCHLD_ONLY = {_signal.SIGCHLD}
_child_mask: set[int] | None = None  # the mask the stub started with, while the exit signals are held


class LaunchError(Exception):
    """The program could not be started (the message says why, gdbserver-style)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def hold_exit_signals() -> None:
    """Block the exit signals until ``release_exit_signals``; a signal sent meanwhile waits
    and then ends the stub through its handler (programs started meanwhile get the mask the
    stub started with, not this one)."""
    global _child_mask
    if _child_mask is None:
        _child_mask = set(_signal.pthread_sigmask(_signal.SIG_BLOCK, EXIT_SIGNALS))


def release_exit_signals() -> None:
    """Unblock what ``hold_exit_signals`` blocked (the handlers are installed by now)."""
    global _child_mask
    if _child_mask is not None:
        # only the exit signals: SIGCHLD, blocked since for the event loop's signalfd, stays so
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, set(EXIT_SIGNALS) - _child_mask)
        _child_mask = None


def spawn(argv: list[str], env: dict[str, str] | None = None, disable_aslr: bool = True,
          cwd: str | None = None, stdio_fds: tuple[int, int, int] | None = None,
          startup_execs: int = 0) -> int:
    """fork + PTRACE_TRACEME + exec; the program stops at its first instruction, traced
    with DEFAULT_OPTIONS.

    ``startup_execs``: how many more execs come before the program itself (a shell
    running ``exec PROG``, a wrapper): the stub runs through them first."""
    path = argv[0]
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    stub = os.getpid()
    mask = _child_mask
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(err_r)
            # Until the stub has set PTRACE_O_EXITKILL (while this child stops below),
            # die with it: a stub killed mid-launch must not leave the program running.
            _prctl(PR_SET_PDEATHSIG, _signal.SIGKILL, 0, 0, 0)
            if os.getppid() != stub:
                os._exit(127)
            if mask is not None:
                _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)
            # the stub reads SIGCHLD from a signalfd (blocked); the program must not inherit that
            _signal.pthread_sigmask(_signal.SIG_UNBLOCK, _SIGCHLD_ONLY)
            _ptrace_request(TRACEME, 0)
            os.setpgid(0, 0)
            os.kill(os.getpid(), _signal.SIGSTOP)
            _prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0)  # EXITKILL from here; a detached program lives on
            if disable_aslr:
                _disable_aslr()
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
    _, status = os.waitpid(pid, WALL)
    if os.WIFSTOPPED(status):  # the SIGSTOP before exec
        # EXITKILL only: with TRACEEXEC the stop would come inside execve (rax -ENOSYS),
        # not at the first instruction with the registers gdbserver shows there.
        set_options(pid, O_EXITKILL)
        _ptrace_request(CONT, pid, 0)
        _, status = os.waitpid(pid, WALL)
    while os.WIFSTOPPED(status) and os.WSTOPSIG(status) != _signal.SIGTRAP:  # the SIGTRAP after exec
        sig = os.WSTOPSIG(status)
        _ptrace_request(CONT, pid, 0 if sig == _signal.SIGSTOP else sig)
        _, status = os.waitpid(pid, WALL)
    failure = os.read(err_r, 64)  # the exec's errno; EOF once exec closed the pipe
    os.close(err_r)
    if failure or not os.WIFSTOPPED(status):
        if os.WIFSTOPPED(status):
            try:
                os.kill(pid, _signal.SIGKILL)
            except OSError:  # gone already
                pass
            os.waitpid(pid, WALL)
            code = 127
        else:
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128
        err = int(failure or b"0") or errno.ENOENT
        raise LaunchError(f"Cannot exec {path}: {os.strerror(err)}.", code)
    if startup_execs:
        _run_startup_execs(pid, startup_execs)
    set_options(pid, DEFAULT_OPTIONS)
    return pid


def _run_startup_execs(pid: int, count: int) -> None:
    """Let a shell or wrapper run until it has exec'd the real program."""
    set_options(pid, O_EXITKILL | O_TRACEEXEC)
    sig = 0
    while count:
        _ptrace_request(CONT, pid, sig)
        sig = 0
        _, status = os.waitpid(pid, WALL)
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
            raise LaunchError("", code)
        if status >> 16 == EVENT_EXEC:
            count -= 1
        elif os.WSTOPSIG(status) != _signal.SIGTRAP:
            sig = os.WSTOPSIG(status)


def attach(pid: int) -> int | None:
    """PTRACE_ATTACH to PID (its leader thread) and wait for that stop; its wait status, None
    when it is gone. ``LinuxTarget.adopt_attached`` attaches to the other threads."""
    _ptrace_request(ATTACH, pid)
    status: int | None = None
    while True:
        try:
            _, status = os.waitpid(pid, WALL)
        except ChildProcessError:
            status = None
        except InterruptedError:
            continue
        break
    set_options(pid, DEFAULT_OPTIONS & ~O_EXITKILL)
    return status


class Spawned:
    """The programs the command line started or attached to before the target existed:
    ``LinuxTarget.adopt`` takes them over (a launched one is Launcher.start's target)."""

    def __init__(self) -> None:
        self.pids: list[int] = []  # launched, stopped at their first instruction
        self.attached: list[tuple[int, int | None]] = []  # pid, the wait status of its attach stop

    def launch(self, argv: list[str], env: dict[str, str] | None = None, disable_aslr: bool = True,
               cwd: str | None = None, stdio_fds: tuple[int, int, int] | None = None,
               startup_execs: int = 0) -> int:
        pid = spawn(argv, env, disable_aslr, cwd, stdio_fds, startup_execs)
        self.pids.append(pid)
        return pid

    def attach(self, pid: int) -> None:
        self.attached.append((pid, attach(pid)))

    def close(self) -> None:
        """Kill what was started and detach from what was attached (the stub gives up before
        a target took them): the target's own close, which knows a pending SIGSTOP."""
        if self.pids or self.attached:
            from .process import LinuxTarget

            target = LinuxTarget()
            target.adopt(self)
            target.close()
