"""Collects the packet handlers, qXfer objects, qSupported features and stop-reply
extras of every protocol module into the tables a session dispatches on. A new
feature module adds itself here.

Dependencies go one way: this module imports the handler modules and ``session``;
the handler modules import ``session`` (constants, types); ``session`` imports
neither, and is handed its tables."""

from __future__ import annotations

import sys

from ..hints import TYPE_CHECKING, NamedTuple
from ..target.base import StopEvent
from . import breakpoints, events, hostio, nonstop, packets, siginfo, svr4, xfer
from .session import Handler, Session, StopExtra, Tables, XferObject

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

    from ..target.linux.process import LinuxTarget


class Lazy(NamedTuple):
    """What a packet module imported on first use contributes, declared here so that
    start-up does not import it (tests/test_protocol_layout.py checks this against the
    module). Its features are always offered; its qXfer objects are read-only and always
    available.

    A passive module's state is set only by its own packets: until one of them has imported
    it, its qXfer objects and the handlers it takes over from an earlier module are those
    earlier ones, and its stop-reply extras add nothing (lldb's, in a gdb session).

    A module that needs something of the target (REQUIRES, an attribute) is offered and answers
    only on a target that has it. While the target's attribute IDLE_UNTIL is None (its state not
    made yet), the packets of IDLE get their constant replies without the import (gdb's
    tracepoint queries at every connect). A module with install() gets it called on the session
    by its first packet (tracepoints: the real handlers replace the stand-ins, and g/p/m are
    routed to a selected trace frame).

    An EARLY module's first packet comes in every gdb session (qSymbol, at connect): it is
    imported while the client connects (``load_early``), not on that packet."""

    handlers: tuple[str, ...] = ()
    objects: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    stop_extras: int = 0
    passive: bool = False
    requires: str = ""
    idle_until: str = ""
    idle: tuple[tuple[str, bytes], ...] = ()
    early: bool = False


LAZY: dict[str, Lazy] = {
    "lldb": Lazy(handlers=("QThreadSuffixSupported", "QListThreadsInStopReply", "QEnableErrorStrings",
                           "qFileLoadAddress", "qGetWorkingDir", "qHostInfo", "qProcessInfo",
                           "qMemoryRegionInfo", "qShlibInfoAddr", "qRegisterInfo", "_M", "_m", "jThreadsInfo",
                           "qThreadStopInfo", "QSaveRegisterState", "QRestoreRegisterState", "k"),
                 objects=("features",), stop_extras=1, passive=True),
    # extended-remote's packets: a `target remote` session sends none of them
    "extended": Lazy(handlers=("!", "vRun", "R", "vAttach", "QEnvironmentHexEncoded", "QEnvironmentUnset",
                               "QEnvironmentReset", "QSetWorkingDir", "QStartupWithShell", "QDisableRandomization"),
                     features=("QEnvironmentHexEncoded+", "QEnvironmentUnset+", "QEnvironmentReset+",
                               "QSetWorkingDir+", "QStartupWithShell+", "QDisableRandomization+")),
    "monitor": Lazy(handlers=("qRcmd",)),
    "osdata": Lazy(objects=("osdata",), features=("qXfer:osdata:read+",)),
    "search": Lazy(handlers=("qSearch", "qCRC")),
    "tls": Lazy(handlers=("qGetTLSAddr", "qSymbol"), early=True),
    "tracepoints": Lazy(handlers=("QTinit", "QTDP", "QTDPsrc", "QTDV", "QTro", "QTEnable", "QTDisable", "QTBuffer",
                                  "QTNotes", "QTDisconnected", "QTStart", "QTStop", "qTStatus", "qTP", "qTV", "qTfP",
                                  "qTsP", "qTfV", "qTsV", "qTBuffer", "QTFrame", "qTMinFTPILen", "QTSave"),
                        objects=("traceframe-info",),
                        features=("ConditionalTracepoints+", "TraceStateVariables+", "TracepointSource+",
                                  "InstallInTrace+", "EnableDisableTracepoints+", "QTBuffer:size+", "tracenz+",
                                  "FastTracepoints+", "DisconnectedTracing+", "qXfer:traceframe-info:read+"),
                        requires="tracer", idle_until="made_tracer",
                        # a fresh tracer's answers (tests/test_protocol_layout.py checks them)
                        idle=(("qTStatus", b"T0;tnotrun:0;tframes:0;tcreated:0;tfree:500000;tsize:500000;circular:0;"
                                           b"disconn:0;starttime:0;stoptime:0;username:;notes::"),
                              ("qTfV", b"1:0:1:74726163655f74696d657374616d70"),
                              ("qTsV", b"l"), ("qTfP", b"l"), ("qTsP", b"l"))),
}

# In this order: a later module's handler or object of the same name wins (lldb's 'k' and
# target.xml), and qSupported lists features in it. A name is a module of LAZY.
MODULES: tuple[ModuleType | str, ...] = (
    packets, xfer, "lldb", "extended", "monitor", hostio, svr4, nonstop, siginfo, breakpoints, events,
    "osdata", "search", "tls", "tracepoints",
)


def load(name: str) -> ModuleType:
    """A packet module of this package, imported on first use (by ``__import__``, which
    ``python -X importtime`` reports, unlike importlib's; integration/test_startup.py reads it)."""
    full = f"{__package__}.{name}"
    __import__(full)
    return sys.modules[full]


def load_early() -> None:
    """Import the EARLY modules: the stub waits for its client meanwhile (cli), and their first
    packet then costs no import (tls: 0.5 ms at gdb's first qSymbol)."""
    for name, lazy in LAZY.items():
        if lazy.early:
            load(name)


def _loaded(name: str) -> bool:
    return f"{__package__}.{name}" in sys.modules


def _has(target: object, name: str) -> bool:
    """Whether the target has NAME (a class's property is not called: it may make what it returns)."""
    return not name or hasattr(type(target), name) or name in getattr(target, "__dict__", ())


def _offered(requires: str) -> Callable[[Session], bool]:
    """Whether a lazy module's objects and features are there: on a target with REQUIRES."""
    return (lambda s: _has(s.target, requires)) if requires else _always


def _installed(s: Session, module: str) -> ModuleType:
    """The module, installed on the session by its first packet if it has install()."""
    loaded = load(module)
    install = getattr(loaded, "install", None)
    if install is not None:
        install(s)
    return loaded


def _handler(module: str, name: str, before: Handler | None, lazy: Lazy) -> Handler:
    requires, until, idle = lazy.requires, lazy.idle_until, dict(lazy.idle).get(name)

    def handler(s: Session, args: bytes) -> bytes | None:
        if before is not None and not _loaded(module):
            return before(s, args)
        if requires and not _has(s.target, requires):
            return b""
        if idle is not None and getattr(s.target, until, False) is None:
            return idle
        real: Handler = _installed(s, module).HANDLERS[name]
        handlers = s.tables.handlers
        if idle is None and handlers.get(name) is handler:
            # The session's later packets of this name go to the module's handler directly (no
            # stand-in, no import machinery: ~10 us a packet, every lldb packet of its module).
            handlers[name] = real
        result: bytes | None = real(s, args)
        return result
    return handler


def _reader(module: str, name: str, before: XferObject | None, available: Callable[[Session], bool]) -> XferObject:
    def read(s: Session, annex: str) -> bytes:
        if before is not None and not _loaded(module):
            return before.read(s, annex)
        result: bytes = _installed(s, module).OBJECTS[name].read(s, annex)
        return result
    return XferObject(read, available=available)


def _stop_extra(module: str, index: int, passive: bool) -> StopExtra:
    full, modules = f"{__package__}.{module}", sys.modules  # _loaded's test, without its call per stop

    def extra(s: Session, event: StopEvent) -> bytes:
        if passive and full not in modules:
            return b""
        real = load(module).STOP_EXTRAS[index]
        extras = s.tables.stop_extras  # every later stop calls the real one: no import machinery per stop
        extras[:] = [real if e is extra else e for e in extras]
        result: bytes = real(s, event)
        return result
    return extra


def _always(s: Session) -> bool:
    return True


def _module_tables(module: ModuleType) -> Tables:
    t = Tables()
    t.handlers = getattr(module, "HANDLERS", {})
    t.features = getattr(module, "FEATURES", [])
    t.objects = getattr(module, "OBJECTS", {})
    t.stop_extras = getattr(module, "STOP_EXTRAS", [])
    return t


def _lazy_tables(name: str, before: Tables) -> Tables:
    """Stand-ins that import the module when one of its packets comes (BEFORE: what the
    modules ahead of it contribute, which a passive module's stand-ins fall back to)."""
    t = Tables()
    lazy = LAZY[name]
    passive = lazy.passive
    t.handlers = {h: _handler(name, h, before.handlers.get(h) if passive else None, lazy) for h in lazy.handlers}
    offered = _offered(lazy.requires)
    t.objects = {o: _reader(name, o, before.objects.get(o) if passive else None, offered) for o in lazy.objects}
    t.features = [(f, offered) for f in lazy.features]
    t.stop_extras = [_stop_extra(name, i, passive) for i in range(lazy.stop_extras)]
    return t


def tables() -> Tables:
    """A fresh set of tables: a session may trim its own (e.g. --disable-packet=vCont).

    A module contributes what it defines of HANDLERS, FEATURES, OBJECTS (qXfer) and
    STOP_EXTRAS."""
    t = Tables()
    for module in MODULES:
        part = _lazy_tables(module, t) if isinstance(module, str) else _module_tables(module)
        t.handlers.update(part.handlers)
        t.features += part.features
        t.objects.update(part.objects)
        t.stop_extras += part.stop_extras
    return t


def new_session(target: LinuxTarget, *, extended: bool = False) -> Session:
    """A session over ``target`` that speaks every packet the stub knows. A trace the target
    already has (made by an earlier client: disconnected tracing) gets its module installed now,
    as its first packet would, so that this client's leaving stops it too."""
    session = Session(target, tables(), extended=extended)
    if getattr(target, "made_tracer", None) is not None:
        _installed(session, "tracepoints")
    return session
