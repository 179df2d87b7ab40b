"""Command line in gdbserver's form, so gdbstub drops in where gdbserver is used:

    gdbstub [OPTIONS] [HOST]:PORT PROG [ARGS...]
    gdbstub [OPTIONS] --attach [HOST]:PORT PID
    gdbstub [OPTIONS] --multi [HOST]:PORT

Start-up is paid on every launch (test suites start a stub per test), so the stub listens
before it loads itself: this module, the launcher, the spawn module and the transport need no
more than os, _ctypes and _socket. The program is started (stopped at its first instruction)
and the socket listens first; the target, the session and the packet handlers are imported
after ``Listening``, while gdb starts and connects, and the target adopts the program.
"""

from __future__ import annotations

import gc
import os
import sys

from . import __version__, logs
from .launcher import Launcher, Terminal
from .target.linux import spawn
from .target.linux.spawn import LaunchError
from .transport import SEND_TIMEOUT, Address, AddressError, Listener, is_loopback, parse_address

S_STOP_REPLIES = "T-stop-reply"  # protocol.session.S_STOP_REPLIES, without importing the session

USAGE = """\
Usage:\tgdbstub [OPTIONS] COMM PROG [ARGS ...]
\tgdbstub [OPTIONS] --attach COMM PID
\tgdbstub [OPTIONS] --multi COMM

COMM may either be a tty device (for serial debugging),
HOST:PORT to listen for a TCP connection (HOST defaults to 127.0.0.1;
PORT 0 picks a free port), unix:PATH for a Unix-domain socket,
or '-' or stdio to use stdin/stdout of gdbstub.
PROG is the executable program.  ARGS are arguments passed to inferior.
PID is the process ID to attach to, when --attach is specified.

Operating modes:

  --attach              Attach to running process PID.
  --multi               Start server without a specific program, and
                        only quit when explicitly commanded.
  --once                Exit after the first connection has closed.
  --help                Print this message and then exit.
  --version             Display version information and exit.

Other options:

  --wrapper WRAPPER --  Run WRAPPER to start new programs.
  --disable-randomization
                        Run PROG with address space randomization disabled (default).
  --no-disable-randomization
                        Don't disable address space randomization when
                        starting PROG.
  --startup-with-shell
                        Start PROG using a shell.
  --no-startup-with-shell
                        Exec PROG directly instead of using a shell (default).
  --allow-any-user      Serve clients run by any user (by default only this
                        process's user may connect over a Unix socket or loopback).
  --send-timeout=SECONDS
                        Drop a client that reads nothing for SECONDS while a
                        reply waits (default 30; 0 waits for ever).

Debug options:

  --debug               Log every packet, both directions, with timestamps.
  --remote-debug        The same as --debug.
  --debug-file=FILE     Write debug output to FILE instead of stderr.
  --debug-format=OPT1[,OPT2,...]
                        Start each debug line with the time (all, timestamp) or not (none).
  --disable-packet=OPT1[,OPT2,...]
                        Disable support for RSP packets or features.
                          Options:
                            vCont, T, Tthread, qC, qfThreadInfo and
                            threads (disable all threading packets).
"""


class Options:
    """The parsed command line (a plain class: each dataclass costs start-up time)."""

    def __init__(self) -> None:
        self.once = False
        self.multi = False
        self.attach = False
        self.debug = False
        self.debug_file: str | None = None
        self.debug_format: str | None = None
        self.disable_aslr = True
        self.startup_with_shell = False
        self.wrapper: list[str] = []
        self.disabled: set[str] = set()
        self.allow_any_user = False
        self.send_timeout: float = SEND_TIMEOUT
        self.comm = ""
        self.program: list[str] = []


class UsageError(Exception):
    pass


# gdbserver's --disable-packet names -> the packet names the session turns off. "T" is not
# the thread-alive packet but the T stop reply (then sent as bare Sxx; session.S_STOP_REPLIES),
# and "threads" means the threading packets only, as in gdbserver.
DISABLE_NAMES: dict[str, set[str]] = {
    "vCont": {"vCont", "vCont?"},
    "Tthread": {"Tthread"},
    "qC": {"qC"},
    "qfThreadInfo": {"qfThreadInfo", "qsThreadInfo"},
}
DISABLE_NAMES["threads"] = set().union(*DISABLE_NAMES.values())
DISABLE_NAMES["T"] = {S_STOP_REPLIES}


# Options that only set one Options field: name -> (field, value).
SWITCHES: dict[str, tuple[str, bool]] = {
    "--once": ("once", True),
    "--multi": ("multi", True),
    "--attach": ("attach", True),
    "--debug": ("debug", True),
    "--remote-debug": ("debug", True),
    "--disable-randomization": ("disable_aslr", True),
    "--no-disable-randomization": ("disable_aslr", False),
    "--startup-with-shell": ("startup_with_shell", True),
    "--no-startup-with-shell": ("startup_with_shell", False),
    "--allow-any-user": ("allow_any_user", True),
}


def parse_args(argv: list[str]) -> Options:
    opts = Options()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            break
        if arg == "--":
            i += 1
            break
        name, eq, value = arg.partition("=")
        if name in SWITCHES:  # --debug=all|threads|... (newer gdbserver) included
            setattr(opts, *SWITCHES[name])
        elif name == "--debug-file" and eq:
            opts.debug_file = value
            opts.debug = True
        elif name == "--debug-format" and eq:
            opts.debug_format = value
        elif name == "--disable-packet" and eq:
            for item in value.split(","):
                if item not in DISABLE_NAMES:
                    raise UsageError(f"Don't know how to disable \"{item}\".")
                opts.disabled |= DISABLE_NAMES[item]
        elif name == "--send-timeout" and eq:
            try:
                opts.send_timeout = float(value)
            except ValueError:
                raise UsageError(f"Invalid --send-timeout value: {value}") from None
            if not opts.send_timeout >= 0:
                raise UsageError(f"Invalid --send-timeout value: {value}")
        elif name == "--wrapper":
            j = i + 1
            while j < len(argv) and argv[j] != "--":
                opts.wrapper.append(argv[j])
                j += 1
            if j >= len(argv) or not opts.wrapper:
                raise UsageError("Missing -- after --wrapper")
            i = j
        elif name in ("--help", "--version"):
            raise UsageError(name)
        else:
            raise UsageError(f"Unknown argument: {arg}")
        i += 1
    rest = argv[i:]
    if not rest:
        raise UsageError("Missing COMM")
    opts.comm, opts.program = rest[0], rest[1:]
    if opts.attach:
        if len(opts.program) != 1 or not opts.program[0].isdigit():
            raise UsageError("--attach needs a PID")
    elif not opts.program and not opts.multi:
        raise UsageError("Missing PROG")
    return opts


def _version() -> str:
    return (f"gdbstub {__version__}\n"
            "A GDB remote protocol stub (gdbserver replacement) for Linux x86-64, in Python.\n")


def main(argv: list[str] | None = None) -> int:
    """The command. Run as the process's own command line (no ARGV), it ends the process
    itself once the server is done (``_end``); with ARGV it returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    try:
        opts = parse_args(args)
    except UsageError as exc:
        if str(exc) == "--help":
            print(USAGE, end="", flush=True)
            code = 0
        elif str(exc) == "--version":
            print(_version(), end="", flush=True)
            code = 0
        else:
            print(f"{exc}\n{USAGE}", file=sys.stderr, end="", flush=True)
            code = 2
        if argv is None:
            _end(code)  # the interpreter's teardown was a fifth of `gdbstub --version`
        return code
    logs.configure(opts.debug, opts.debug_file)
    if opts.debug_format is not None:
        from .protocol.monitor import debug_format  # monitor's packets are imported on first use

        _, bad = debug_format(opts.debug_format)
        if bad is not None:
            print(f'Unknown debug-format argument: "{bad}"', file=sys.stderr, flush=True)
            return 1
    try:
        addr = parse_address(opts.comm)
    except AddressError as exc:
        print(f"{exc}\nExiting", file=sys.stderr, flush=True)
        return 1
    launcher = Launcher(startup_with_shell=opts.startup_with_shell,
                        disable_aslr=opts.disable_aslr, wrapper=list(opts.wrapper))
    terminal = Terminal()
    launcher.terminal = terminal
    if addr.kind == "stdio":
        # The channel is our stdin/stdout: the program reads /dev/null and writes to stderr.
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        launcher.stdio_fds = (devnull, 2, 2)
    # No exit signal may end the stub between the launch and the server's handlers, which
    # kill what it launched on the way out: they wait until then.
    spawn.hold_exit_signals()
    try:
        code = _start(opts, addr, launcher, terminal)
    finally:
        spawn.release_exit_signals()
    if argv is None:
        _end(code)
    return code


def _end(code: int) -> None:
    """End the process without the interpreter's teardown, as gdbserver ends: the session is
    over, the program gone and every file closed, and tearing ~110 modules down took 5 M
    instructions (~2 ms) of every session, which harnesses wait for. Exit handlers still run
    (logging's flush, a coverage tool's); with another thread alive, or a tracer or profiler
    installed, the interpreter ends as usual."""
    threading = sys.modules.get("threading")
    if sys.gettrace() is not None or sys.getprofile() is not None or (
            threading is not None and threading.active_count() > 1):
        return
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more to say there
            pass
    os._exit(code)


def _start(opts: Options, addr: Address, launcher: Launcher, terminal: Terminal) -> int:
    """Start or attach to the program, listen, then load the rest of the stub and serve."""
    spawned = spawn.Spawned()  # the program, until the target adopts it
    try:
        if opts.attach:
            spawned.attach(int(opts.program[0]))
            print(f"Attached; pid = {opts.program[0]}", file=sys.stderr, flush=True)
        elif opts.program:
            launcher.start(spawned, list(opts.program))
    except LaunchError as exc:
        terminal.restore()
        if str(exc):
            print(exc, file=sys.stderr)
        print(f"During startup program exited with code {exc.exit_code}.", file=sys.stderr)
        print("Exiting", file=sys.stderr, flush=True)
        return 1
    except OSError as exc:
        print(f"Cannot attach to process {opts.program[0]}: {exc.strerror} ({exc.errno})",
              file=sys.stderr)
        print("Exiting", file=sys.stderr, flush=True)
        return 1
    try:
        listener = Listener(addr, check_peer=not opts.allow_any_user)
    except OSError as exc:
        spawned.close()
        terminal.restore()
        print(f"Can't bind address: {exc.strerror}.", file=sys.stderr)
        print("Exiting", file=sys.stderr, flush=True)
        return 1
    if not is_loopback(addr):
        print(f"warning: listening on {addr.host}: anyone who can reach this address can run "
              "code as this user (a client on another host cannot be checked for its user)",
              file=sys.stderr)
    listener.announce()
    # The rest of the stub loads now, while the client starts and connects. No garbage
    # collection meanwhile (imports make no garbage cycles, yet their allocations would start
    # collections that walk every module object), and what they made is frozen: later
    # collections skip it.
    gc.disable()
    from . import codecache

    loaded = codecache.install()
    from .protocol import registry
    from .server import Server, ServerOptions
    from .target.linux.process import LinuxTarget

    registry.load_early()

    target = LinuxTarget()
    target.adopt(spawned)
    from .warmup import warm_up

    warm_up(target)
    codecache.save(loaded)
    gc.freeze()
    gc.enable()
    options = ServerOptions(once=opts.once, extended=opts.multi, disabled_packets=opts.disabled,
                            send_timeout=opts.send_timeout)
    server = Server(listener, target, launcher, options)
    server.install_signals()  # serve() unblocks the exit signals once inside its clean-up
    try:
        return server.serve()
    finally:
        terminal.restore()
