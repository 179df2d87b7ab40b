"""Collects the packet handlers, qXfer objects and qSupported features of every
protocol module into a session. A new feature module adds itself here."""

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
    tracepoints,
    xfer,
)

if TYPE_CHECKING:
    from .session import Session


def install(session: Session) -> None:
    session.handlers.update(packets.HANDLERS)
    session.handlers.update(xfer.HANDLERS)
    session.objects = dict(xfer.OBJECTS)
    session.xfer_cache = {}
    session.features = list(packets.FEATURES)
    session.features += xfer.features()
    session.handlers.update(lldb.HANDLERS)
    session.objects.update(lldb.OBJECTS)
    session.features += lldb.FEATURES
    session.stop_extras += lldb.STOP_EXTRAS
    session.handlers.update(extended.HANDLERS)
    session.features += extended.FEATURES
    session.handlers.update(monitor.HANDLERS)
    session.handlers.update(hostio.HANDLERS)
    session.objects.update(svr4.OBJECTS)
    session.features += svr4.FEATURES
    session.handlers.update(nonstop.HANDLERS)
    session.features += nonstop.FEATURES
    session.objects.update(siginfo.OBJECTS)
    session.features += siginfo.FEATURES
    session.handlers.update(breakpoints.HANDLERS)
    session.features += breakpoints.FEATURES
    session.handlers.update(events.HANDLERS)
    session.features += events.FEATURES
    session.objects.update(osdata.OBJECTS)
    session.features += osdata.FEATURES
    session.handlers.update(search.HANDLERS)
    session.handlers.update(tls.HANDLERS)
    tracepoints.install(session)  # last: it routes g/p/m of the modules above while a frame is selected
