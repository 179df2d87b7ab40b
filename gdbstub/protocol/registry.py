"""Collects the packet handlers, qXfer objects, qSupported features and stop-reply
extras of every protocol module into the tables a session dispatches on. A new
feature module adds itself here.

Dependencies go one way: this module imports the handler modules and ``session``;
the handler modules import ``session`` (constants, types); ``session`` imports
neither, and is handed its tables."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

from . import (
    breakpoints,
    events,
    extended,
    hostio,
    lldb,
    monitor,
    nonstop,
    osdata,
    packets,
    search,
    siginfo,
    svr4,
    tls,
    tracepoints,
    xfer,
)
from .session import Session, Tables

if TYPE_CHECKING:
    from ..target.linux.process import LinuxTarget


# In this order: a later module's handler or object of the same name wins (lldb's 'k' and
# target.xml), and qSupported lists features in it.
MODULES: tuple[ModuleType, ...] = (
    packets, xfer, lldb, extended, monitor, hostio, svr4, nonstop, siginfo, breakpoints, events,
    osdata, search, tls,
)
# Then modules that add themselves to a session once it exists (what they offer depends on
# its target): tracepoints, last, routes g/p/m of the modules above while a frame is selected.
INSTALLERS: tuple[Callable[[Session], None], ...] = (tracepoints.install,)


def tables() -> Tables:
    """A fresh set of tables: a session may trim its own (e.g. --disable-packet=vCont).

    A module contributes what it defines of HANDLERS, FEATURES, OBJECTS (qXfer) and
    STOP_EXTRAS."""
    t = Tables()
    for module in MODULES:
        t.handlers.update(getattr(module, "HANDLERS", {}))
        t.features += getattr(module, "FEATURES", [])
        t.objects.update(getattr(module, "OBJECTS", {}))
        t.stop_extras += getattr(module, "STOP_EXTRAS", [])
    return t


def new_session(target: LinuxTarget, *, extended: bool = False) -> Session:
    """A session over ``target`` that speaks every packet the stub knows."""
    session = Session(target, tables(), extended=extended)
    for install in INSTALLERS:
        install(session)
    return session
