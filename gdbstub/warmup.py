"""Work of a session's first packets that does not depend on the client, done while it
starts and connects (gdb needs ~45 ms before its qSupported; the stub's imports take less).

Only first-call costs and caches of things that stay as they are until the client resumes
the program (stopped at its first instruction, or attached): nothing is sent, and nothing
read here is reported later from the cache unless it is keyed on what would change it (a
file's identity). What each saves from the packet that would pay it:

- target.xml of the program's register table (qXfer:features, ~0.2 ms);
- StopEvent's keyword ``__new__``, compiled on its first keyword call (``?``, or the first
  stop: ~0.1 ms, see ``hints``), and the table's stop layout (``?``);
- the thread's /proc stat file, kept open for the core of every stop reply (``?``);
- the program's ELF headers: svr4's (libraries-svr4) and the thread library's (qSymbol);
- the parsers of the packets every session sends (qXfer, m) or most do (Z/z, p, M, X).
"""

from __future__ import annotations

from .logs import get_logger
from .protocol import grammar as g
from .protocol import tls
from .target.base import StopEvent, StopKind
from .target.linux import svr4
from .target.linux.process import LinuxTarget
from .target.linux.registers import stop_layout

log = get_logger("gdbstub")


def warm_up(target: LinuxTarget) -> None:
    """Pay the first packets' one-time costs now; a failure only leaves them to those packets."""
    StopEvent(StopKind.SIGNAL, 0, 0, signal=0)
    for grammar in (g.XferWindow, g.ReadMemory, g.Breakpoint, g.ReadRegister, g.WriteMemory, g.WriteBinary):
        g.prepare(grammar)
    for pid, proc in list(target.processes.items()):
        try:
            proc.arch.features_xml  # noqa: B018 (built and kept by the property)
            stop_layout(proc.arch)
            target.thread_core(pid, pid)
            svr4.elf_info(pid)
            tls.thread_library(pid)
        except Exception:  # a process gone, an unreadable file: the packets meet it as before
            log.debug("warm-up of %d failed", pid)
