"""Collects the packet handlers, qXfer objects, qSupported features and stop-reply
extras of every protocol module into the tables a session dispatches on. A new
feature module adds itself here.

Dependencies go one way: this module imports the handler modules and ``session``;
the handler modules import ``session`` (constants, types); ``session`` imports
neither, and is handed its tables."""

from __future__ import annotations

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
    xfer,
)
from .session import Session, Tables

if TYPE_CHECKING:
    from ..target.linux.process import LinuxTarget


def tables() -> Tables:
    """A fresh set of tables: a session may trim its own (e.g. --disable-packet=vCont)."""
    t = Tables()
    t.handlers.update(packets.HANDLERS)
    t.handlers.update(xfer.HANDLERS)
    t.objects.update(xfer.OBJECTS)
    t.features += packets.FEATURES
    t.features += xfer.features()
    t.handlers.update(lldb.HANDLERS)
    t.objects.update(lldb.OBJECTS)
    t.features += lldb.FEATURES
    t.stop_extras += lldb.STOP_EXTRAS
    t.handlers.update(extended.HANDLERS)
    t.features += extended.FEATURES
    t.handlers.update(monitor.HANDLERS)
    t.handlers.update(hostio.HANDLERS)
    t.objects.update(svr4.OBJECTS)
    t.features += svr4.FEATURES
    t.handlers.update(nonstop.HANDLERS)
    t.features += nonstop.FEATURES
    t.objects.update(siginfo.OBJECTS)
    t.features += siginfo.FEATURES
    t.handlers.update(breakpoints.HANDLERS)
    t.features += breakpoints.FEATURES
    t.handlers.update(events.HANDLERS)
    t.features += events.FEATURES
    t.objects.update(osdata.OBJECTS)
    t.features += osdata.FEATURES
    t.handlers.update(search.HANDLERS)
    t.handlers.update(tls.HANDLERS)
    return t


def new_session(target: LinuxTarget, *, extended: bool = False) -> Session:
    """A session over ``target`` that speaks every packet the stub knows."""
    return Session(target, tables(), extended=extended)
