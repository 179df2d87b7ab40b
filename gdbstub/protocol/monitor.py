"""qRcmd: gdb's ``monitor`` commands, gdbserver's set plus ``monitor info``.

Output goes to gdb as O packets (console output) before the final OK, as gdbserver does.
"""

from __future__ import annotations

import logging
import os
import time

from .. import logs
from ..hints import TYPE_CHECKING, Callable
from . import tls
from .session import E01, OK, Handler

if TYPE_CHECKING:
    from .session import Session

HELP = """\
The following monitor commands are supported:
  set debug on|off
    Enable or disable the stub's debug log (packets and events)
  set remote-debug on|off
    Enable or disable the packet log
  set debug-format option1[,option2,...]
    Add or remove timestamps on debug log lines
    Options: all, none, timestamp
  set libthread-db-search-path [PATH]
    Where libthread_db.so.1 must be for thread-local variables (as gdbserver)
  info
    Show the stub's own state: processes, threads, launch settings
  help
    Print this message
  exit
    Kill launched programs, detach attached ones, and quit the stub
"""

THREAD_DB_COMMAND = "set libthread-db-search-path"  # matched on the raw line, as gdbserver does
_ON = {"on": True, "1": True, "off": False, "0": False}


def _say(s: Session, text: str) -> None:
    """Send TEXT to gdb's console in O packets of a bounded size."""
    data = text.encode("utf-8", "replace")
    for i in range(0, len(data), 1024):
        s.notify(b"O" + data[i:i + 1024].hex().encode())


def _set_level(name: str, on: bool) -> None:
    logs.ready()  # the command line's handler, installed when logging is first turned on
    logging.getLogger(name).setLevel(logging.DEBUG if on else logging.WARNING)


class _Stamped(logging.Formatter):
    """'timestamp'/'all': each log line starts with the wall-clock time."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        return f"{stamp}.{int(record.msecs):03d} {record.getMessage()}"


def set_debug_format(kind: str) -> bool:
    """all/timestamp: log lines start with the time; none: bare."""
    if kind not in DEBUG_FORMATS:
        return False
    formatter = logging.Formatter("%(message)s") if kind == "none" else _Stamped()
    logs.ready()
    for handler in logging.getLogger("gdbstub").handlers:
        handler.setFormatter(formatter)
    return True


# gdbserver's debug-format options and what it says for each.
DEBUG_FORMATS = {
    "all": "All extra debug format options enabled.\n",
    "none": "All extra debug format options disabled.\n",
    "timestamp": "Timestamps will be added to debug output.\n",
}


def debug_format(value: str) -> tuple[str, str | None]:
    """Apply a comma list as gdbserver does (left to right, empty items skipped; monitor and
    --debug-format): what to say for the options taken, and the first unknown one or None."""
    said: list[str] = []
    for option in value.split(","):
        if not option:
            continue
        if not set_debug_format(option):
            return "".join(said), option
        said.append(DEBUG_FORMATS[option])
    return "".join(said), None


def _info(s: Session) -> str:
    t = s.target
    n = s.negotiated
    lines = [f"gdbstub pid {os.getpid()}, extended-remote {'on' if n.extended else 'off'}, "
             f"multiprocess {'on' if n.multiprocess else 'off'}, no-ack {'on' if n.no_ack else 'off'}"]
    if not t.processes:
        lines.append("No process.")
    for pid in sorted(t.processes):
        how = "launched" if t.is_launched(pid) else "attached"
        tids = sorted(tid for p, tid in t.thread_ids() if p == pid)
        lines.append(f"Process {pid} ({how}, {t.arch(pid).name}): "
                     f"{len(tids)} thread(s) {' '.join(str(x) for x in tids)}")
    launcher = s.launcher
    if launcher is not None:
        lines.append(f"Program: {' '.join(launcher.program) or '(none)'}")
        lines.append(f"Working directory: {launcher.cwd or os.getcwd()}")
        lines.append(f"Startup with shell: {'on' if launcher.startup_with_shell else 'off'}; "
                     f"randomization {'disabled' if launcher.disable_aslr else 'enabled'}")
        if launcher.wrapper:
            lines.append(f"Wrapper: {' '.join(launcher.wrapper)}")
    if n.disabled:
        lines.append(f"Disabled packets: {' '.join(sorted(n.disabled))}")
    debug = logging.getLogger("gdbstub").isEnabledFor(logging.DEBUG)
    lines.append(f"Debug log {'on' if debug else 'off'}")
    return "\n".join(lines) + "\n"


def _exit(s: Session) -> None:
    """Kill what the stub launched, detach what it attached, and end the stub."""
    s.target.close()
    s.status.finished = True


def run_command(s: Session, line: str) -> bool:
    """Carry out one monitor command; False when it is not one."""
    words = line.split()
    if not words:
        return False
    commands: dict[str, Callable[[], None]] = {
        "help": lambda: _say(s, HELP),
        "info": lambda: _say(s, _info(s)),
        "exit": lambda: _exit(s),
    }
    if len(words) == 1 and words[0] in commands:
        commands[words[0]]()
        return True
    if line.startswith(THREAD_DB_COMMAND) and line[len(THREAD_DB_COMMAND):][:1] in ("", " "):
        path = tls.set_search_path(s, line[len(THREAD_DB_COMMAND):].lstrip())
        _say(s, f"libthread-db-search-path set to `{path}'\n")
        return True
    if words[0] != "set" or len(words) < 3:
        return False
    what, value = words[1], " ".join(words[2:])
    if what == "debug" and value in _ON:
        _set_level("gdbstub", _ON[value])
        _say(s, f"Debug output {'enabled' if _ON[value] else 'disabled'}.\n")
        return True
    if what == "remote-debug" and value in _ON:
        _set_level("gdbstub.rsp", _ON[value])
        _say(s, f"Protocol debug output {'enabled' if _ON[value] else 'disabled'}.\n")
        return True
    return False


def set_debug_format_command(s: Session, value: str) -> bytes:
    """monitor set debug-format VALUE: gdbserver's confirmations, or its complaint and an error."""
    said, bad = debug_format(value)
    if bad is not None:
        _say(s, f'{said}Unknown debug-format argument: "{bad}"\n{HELP}')
        return E01
    if said:
        _say(s, said)
    return OK


def rcmd(s: Session, args: bytes) -> bytes:
    try:
        line = bytes.fromhex(args.lstrip(b",").decode("ascii")).decode("utf-8", "replace")
    except ValueError:
        return E01
    if line.startswith("set debug-format "):  # gdbserver's spelling: the rest is the value, as is
        return set_debug_format_command(s, line[len("set debug-format "):])
    if not run_command(s, line):
        _say(s, "Unknown monitor command.\n\n" + HELP)
        return E01  # as gdbserver: gdb adds "Protocol error with Rcmd"
    return OK


HANDLERS: dict[str, Handler] = {"qRcmd": rcmd}
