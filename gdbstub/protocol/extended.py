"""Extended-remote packets: start programs on demand (vRun, R), attach (vAttach), and the
settings gdb sends before ``run`` (environment, working directory, shell, ASLR).

The settings live in the server's Launcher, so they outlast one connection as in gdbserver.
"""

from __future__ import annotations

import os
import sys

from ..hints import TYPE_CHECKING
from ..launcher import Launcher
from ..logs import get_logger
from ..target.base import StopEvent, StopKind
from ..target.linux.process import LaunchError
from . import grammar as g
from .session import E01, OK, Feature, Handler

if TYPE_CHECKING:
    from .session import Session

log = get_logger("gdbstub.extended")


def _launcher(s: Session) -> Launcher:
    if s.launcher is None:
        s.launcher = Launcher()
    return s.launcher


def _hex_text(data: bytes) -> str:
    return bytes.fromhex(data.decode("ascii")).decode("utf-8", "surrogateescape")


def enable_extended(s: Session, args: bytes) -> bytes:
    s.negotiated.extended = s.negotiated.extended_requested = True
    return OK


def _stopped_at_start(s: Session, pid: int, sig: int = 5) -> bytes:
    """Make PID the current process, stopped, and return the stop reply gdb expects."""
    event = StopEvent(StopKind.SIGNAL, pid, pid, signal=sig)
    status, selected = s.status, s.selected
    status.running = False
    status.last_stop = event
    selected.event = pid
    selected.general = g.ThreadId(pid, pid)
    reply = s.stop_reply(event)
    status.last_reply = reply
    return reply


def _forget_exited(s: Session) -> None:
    """Without multiprocess gdb can name only one process: the old one goes first."""
    if not s.negotiated.multiprocess and s.target.processes:
        s.target.kill()


def v_run(s: Session, args: bytes) -> bytes:
    if not s.negotiated.extended:
        return E01
    items = args[1:].split(b";") if args.startswith(b";") else [b""]
    try:
        words = [_hex_text(item) for item in items]
    except ValueError:
        return E01
    launcher = _launcher(s)
    if words[0]:
        argv = words
    elif launcher.program:
        argv = [launcher.program[0], *words[1:]]
    else:
        return E01
    _forget_exited(s)
    try:
        pid = launcher.start(s.target, argv)
    except LaunchError as exc:
        if str(exc):
            s.notify(b"O" + (str(exc) + "\n").encode().hex().encode())
        log.info("vRun failed: %s (exit code %d)", exc, exc.exit_code)
        return E01
    return _stopped_at_start(s, pid)


def restart(s: Session, args: bytes) -> bytes | None:
    """R: kill and start the last program again; gdb expects no reply."""
    if not s.negotiated.extended:
        return b""
    launcher = _launcher(s)
    if s.target.processes:
        s.target.kill()
    try:
        pid = launcher.start(s.target)
    except LaunchError as exc:
        log.info("restart failed: %s", exc)
        return None
    _stopped_at_start(s, pid)
    return None


def v_attach(s: Session, args: bytes) -> bytes:
    try:
        pid = int(args.lstrip(b";"), 16)
    except ValueError:
        return E01
    if pid in s.target.processes or pid <= 0 or pid == os.getpid():
        return E01
    _forget_exited(s)
    try:
        s.target.attach(pid)
    except OSError as exc:
        log.info("vAttach %d failed: %s", pid, exc)
        return E01
    print(f"Attached; pid = {pid}", file=sys.stderr, flush=True)
    # gdbserver says T00 here; SIGTRAP as for --attach (Session.initial_stop), which lldb
    # shows as a stop reason. gdb does not pass SIGTRAP on when resuming.
    return _stopped_at_start(s, pid, 5)


# --- settings for the next run ------------------------------------------------------


def env_hex(s: Session, args: bytes) -> bytes:
    try:
        text = _hex_text(args.lstrip(b":"))
    except ValueError:
        return E01
    name, eq, value = text.partition("=")
    if not name or not eq:
        return E01
    _launcher(s).env[name] = value
    return OK


def env_unset(s: Session, args: bytes) -> bytes:
    try:
        name = _hex_text(args.lstrip(b":"))
    except ValueError:
        return E01
    _launcher(s).env.pop(name, None)
    return OK


def env_reset(s: Session, args: bytes) -> bytes:
    _launcher(s).reset_env()
    return OK


def set_working_dir(s: Session, args: bytes) -> bytes:
    try:
        path = _hex_text(args.lstrip(b":"))
    except ValueError:
        return E01
    _launcher(s).cwd = path or None
    return OK


def _flag(args: bytes) -> bool | None:
    value = args.lstrip(b":")
    return {b"0": False, b"1": True}.get(value)


def startup_with_shell(s: Session, args: bytes) -> bytes:
    flag = _flag(args)
    if flag is None:
        return E01
    _launcher(s).startup_with_shell = flag
    return OK


def disable_randomization(s: Session, args: bytes) -> bytes:
    flag = _flag(args)
    if flag is None:
        return E01
    _launcher(s).disable_aslr = flag
    return OK


HANDLERS: dict[str, Handler] = {
    "!": enable_extended,
    "vRun": v_run,
    "R": restart,
    "vAttach": v_attach,
    "QEnvironmentHexEncoded": env_hex,
    "QEnvironmentUnset": env_unset,
    "QEnvironmentReset": env_reset,
    "QSetWorkingDir": set_working_dir,
    "QStartupWithShell": startup_with_shell,
    "QDisableRandomization": disable_randomization,
}


def _always(s: Session) -> bool:
    return True


FEATURES: list[Feature] = [
    ("QEnvironmentHexEncoded+", _always),
    ("QEnvironmentUnset+", _always),
    ("QEnvironmentReset+", _always),
    ("QSetWorkingDir+", _always),
    ("QStartupWithShell+", _always),
    ("QDisableRandomization+", _always),
]
