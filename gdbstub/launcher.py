"""How the stub starts programs: the last program and its arguments, the environment,
working directory, shell and wrapper settings that extended-remote packets change and
that live as long as the stub (not one connection), as gdbserver keeps them."""

from __future__ import annotations

import _signal
import os
import sys

from .target.linux.spawn import LaunchError

# The command line starts its program through this module before it listens: it imports no
# more than os and the spawn module (no re, no signal, no typing, not the target).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .target.linux.process import LinuxTarget
    from .target.linux.spawn import Spawned


def _needs_quotes(arg: str) -> bool:
    """An argument gdb sent that still holds shell syntax (a redirection, a glob, a variable)
    is passed to the shell as it is; one that gdb must have unquoted (it holds blanks, quotes
    or backslashes, or is empty) is quoted again so the program receives it unchanged."""
    return not arg or any(c.isspace() or c in "'\"\\" for c in arg)


def shell_word(arg: str) -> str:
    """One vRun argument as shell text: raw shell syntax stays, unquoted text is re-quoted."""
    if _needs_quotes(arg):
        import shlex  # here: only a shell start needs it, and every start would pay for it

        return shlex.quote(arg)
    return arg


def _exec_failure(message: str) -> str:
    """The target's 'Cannot exec PROG: WHY.' in gdbserver's two lines, which harnesses match:
    'gdbserver: Cannot exec PROG' and 'gdbserver: Error: WHY' (with this stub's name)."""
    import re  # here: a failed start only

    found = re.match(r"^Cannot exec (.+): (.+?)\.?$", message, re.S)
    if found is None:
        return message
    return f"gdbstub: Cannot exec {found.group(1)}\ngdbstub: Error: {found.group(2)}"


class Terminal:
    """The stub's controlling terminal, handed to each program it starts (its own process
    group becomes the foreground one, as gdbserver does) and given back when the stub ends.
    Without this the program would be stopped by SIGTTIN on its first read."""

    def __init__(self, fd: int = 0) -> None:
        self.fd = fd
        self.original: int | None = None
        try:
            if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
                self.original = os.getpgrp()
        except OSError:
            self.original = None

    def _set(self, pgrp: int) -> None:
        # A background process may not change the foreground group unless it ignores SIGTTOU.
        old = _signal.signal(_signal.SIGTTOU, _signal.SIG_IGN)
        try:
            os.tcsetpgrp(self.fd, pgrp)
        except OSError:
            pass
        finally:
            _signal.signal(_signal.SIGTTOU, old)

    def give(self, pgrp: int) -> None:
        if self.original is not None:
            self._set(pgrp)

    def restore(self) -> None:
        if self.original is not None:
            self._set(self.original)


def host_environ() -> dict[str, str]:
    """The environment the stub was started with, as programs must get it: Python's locale
    coercion adds LC_CTYPE=C.UTF-8 to os.environ under a C locale, but /proc/self/environ keeps
    what exec gave us (gdbserver passes its environment on unchanged)."""
    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return dict(os.environ)
    items = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {os.fsdecode(name): os.fsdecode(value) for name, value in items}


class Launcher:
    """The settings new programs start with; extended-remote packets change them.

    A plain class, not a dataclass: each dataclass costs start-up time."""

    def __init__(self, program: list[str] | None = None, env: dict[str, str] | None = None,
                 cwd: str | None = None, startup_with_shell: bool = False, disable_aslr: bool = True,
                 wrapper: list[str] | None = None, stdio_fds: tuple[int, int, int] | None = None,
                 initial_env: dict[str, str] | None = None, terminal: Terminal | None = None) -> None:
        self.program: list[str] = [] if program is None else program  # the last program and its arguments
        self.env = host_environ() if env is None else env
        self.cwd = cwd
        self.startup_with_shell = startup_with_shell
        self.disable_aslr = disable_aslr
        self.wrapper: list[str] = [] if wrapper is None else wrapper
        self.stdio_fds = stdio_fds  # for the stdio transport: off the channel
        self.initial_env = host_environ() if initial_env is None else initial_env
        self.terminal = terminal  # set by the CLI when the program shares the stub's terminal

    def reset_env(self) -> None:
        self.env = dict(self.initial_env)

    def command(self, argv: list[str]) -> tuple[list[str], int]:
        """The argv to exec and how many execs precede the program (shell, wrapper)."""
        if self.startup_with_shell:
            shell = os.environ.get("SHELL") or "/bin/sh"  # the stub's own, as gdbserver
            import shlex  # only a shell start needs it

            words = [shlex.quote(w) for w in self.wrapper]
            words += [shlex.quote(argv[0])] + [shell_word(a) for a in argv[1:]]
            return [shell, "-c", "exec " + " ".join(words)], 1 + bool(self.wrapper)
        if self.wrapper:
            wrapper = list(self.wrapper)
            if "/" not in wrapper[0]:  # as execvp: a bare wrapper name is looked up in PATH
                import shutil  # here: it imports bz2, lzma and zlib, which a plain start never needs

                wrapper[0] = shutil.which(wrapper[0], path=self.env.get("PATH")) or wrapper[0]
            return wrapper + argv, 1
        return list(argv), 0

    def start(self, target: LinuxTarget | Spawned, argv: list[str] | None = None) -> int:
        """Start ARGV (default: the last program) stopped at its first instruction.

        Raises LaunchError with gdbserver's message when the program cannot start."""
        if argv is not None:
            self.program = list(argv)
        if not self.program or not self.program[0]:
            raise LaunchError("No program to run.", 1)
        prog = self.program[0]
        cmd, execs = self.command(self.program)
        if self.stdio_fds is not None:  # gdbserver's child says this on every stdio launch
            print("stdin/stdout redirected", file=sys.stderr, flush=True)
        # An empty LaunchError message: a shell or wrapper already said why it failed.
        try:
            pid = target.launch(cmd, env=self.env, disable_aslr=self.disable_aslr, cwd=self.cwd,
                                stdio_fds=self.stdio_fds, startup_execs=execs)
        except LaunchError as exc:
            raise LaunchError(_exec_failure(str(exc)), exc.exit_code) from None
        if self.terminal is not None and self.stdio_fds is None:
            self.terminal.give(pid)  # the program runs in its own process group (setpgid)
        print(f"Process {prog} created; pid = {pid}", file=sys.stderr, flush=True)
        return pid

