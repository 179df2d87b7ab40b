"""The protocol package's dependencies go one way: the registry knows every packet module,
the packet modules know ``session``, and ``session`` knows none of them (it is handed its
tables). A packet module nobody registered would answer nothing: the registry lists all."""

from __future__ import annotations

import ast
from pathlib import Path

import gdbstub.protocol as package
from gdbstub.protocol import registry

HERE = Path(package.__file__).parent
CONTRIBUTIONS = ("HANDLERS", "FEATURES", "OBJECTS", "STOP_EXTRAS")


def _defines(path: Path) -> set[str]:
    """The module-level names a module assigns."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, ast.AnnAssign) else []
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _imports(path: Path) -> set[str]:
    """The package's modules a module imports, at run time or for type checking alike."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {a.name for a in node.names}
    return found


def _registered() -> set[str]:
    """The packet modules the registry builds sessions from."""
    return {m if isinstance(m, str) else m.__name__.rsplit(".", 1)[1] for m in registry.MODULES}


def test_session_imports_no_packet_module() -> None:
    packet_modules = _registered()
    assert not _imports(HERE / "session.py") & (packet_modules | {"registry"})


def test_every_packet_module_is_registered() -> None:
    registered = _registered()
    contributing = {p.stem for p in HERE.glob("*.py") if _defines(p) & set(CONTRIBUTIONS)}
    assert contributing == registered


def test_each_session_gets_tables_of_its_own() -> None:
    first, second = registry.tables(), registry.tables()
    first.features.clear()
    first.handlers.clear()
    assert second.features and "qSupported" in second.handlers


def test_lazy_modules_are_declared_as_they_are() -> None:
    """A module imported on first use is declared in the registry: the declaration must say
    exactly what the module defines, or a packet would go unanswered (or a feature be offered
    that the module does not have)."""
    assert set(registry.LAZY) == {m for m in registry.MODULES if isinstance(m, str)}
    for name, lazy in registry.LAZY.items():
        module = registry.load(name)
        assert tuple(getattr(module, "HANDLERS", {})) == lazy.handlers, name
        assert tuple(getattr(module, "OBJECTS", {})) == lazy.objects, name
        assert all(obj.write is None for obj in getattr(module, "OBJECTS", {}).values()), name
        features = getattr(module, "FEATURES", [])
        assert tuple(f for f, _ in features) == lazy.features, name
        assert all(available(None) for _, available in features), name  # always offered
        assert len(getattr(module, "STOP_EXTRAS", [])) == lazy.stop_extras, name


def test_lazy_handlers_reach_the_module() -> None:
    """The stand-in of a lazy packet calls the module's own handler, and puts it in its place in
    the session's tables: the session's later packets of that name go to it directly."""
    calls = []
    search = registry.load("search")
    real = search.HANDLERS["qSearch"]
    search.HANDLERS["qSearch"] = own = lambda s, args: calls.append(args) or b"OK"

    class FakeSession:
        tables = registry.tables()
        target = None

    session = FakeSession()
    handlers = session.tables.handlers
    stand_in = handlers["qSearch"]
    try:
        assert stand_in is not own
        assert stand_in(session, b"memory:1;2;ab") == b"OK"  # type: ignore[arg-type]
        assert handlers["qSearch"] is own
        assert handlers["qSearch"](session, b"memory:3;4;cd") == b"OK"
    finally:
        search.HANDLERS["qSearch"] = real
    assert calls == [b"memory:1;2;ab", b"memory:3;4;cd"]


def test_lazy_stop_extra_replaces_itself() -> None:
    """A lazy module's stop-reply extra is looked up once: later stops call the module's own."""

    class Tables:
        stop_extras = registry.tables().stop_extras

    class FakeSession:
        tables = Tables()

    session = FakeSession()
    lldb = registry.load("lldb")
    stand_in = session.tables.stop_extras[0]
    assert stand_in is not lldb.STOP_EXTRAS[0]
    seen = []
    real = lldb.STOP_EXTRAS[0]
    lldb.STOP_EXTRAS[0] = lambda s, event: seen.append(event) or b"x:;"
    try:
        assert stand_in(session, "event") == b"x:;"  # type: ignore[arg-type]
        assert session.tables.stop_extras == [lldb.STOP_EXTRAS[0]]
    finally:
        lldb.STOP_EXTRAS[0] = real
    assert seen == ["event"]


def test_passive_module_stands_aside_until_its_packets_come(monkeypatch) -> None:
    """lldb's module is passive: in a gdb session (no lldb packet yet) its 'k', its target.xml
    and its stop-reply extra are the earlier modules' (or nothing), and it is not imported."""
    import sys

    from gdbstub.protocol import packets, xfer

    assert registry.LAZY["lldb"].passive
    calls = []
    monkeypatch.setitem(packets.HANDLERS, "k", lambda s, args: calls.append(("k", args)) or None)
    monkeypatch.setitem(xfer.OBJECTS, "features", xfer.OBJECTS["features"]._replace(
        read=lambda s, annex: calls.append(("features", annex)) or b"<target/>"))
    monkeypatch.delitem(sys.modules, "gdbstub.protocol.lldb", raising=False)
    tables = registry.tables()
    assert tables.handlers["k"](None, b"") is None  # type: ignore[arg-type]
    assert tables.objects["features"].read(None, "target.xml") == b"<target/>"  # type: ignore[arg-type]
    assert [extra(None, "event") for extra in tables.stop_extras] == [b""]  # type: ignore[arg-type]
    assert calls == [("k", b""), ("features", "target.xml")]
    assert "gdbstub.protocol.lldb" not in sys.modules
    tables.handlers["QThreadSuffixSupported"]  # one of its own packets would import it
    assert "gdbstub.protocol.lldb" not in sys.modules


def test_idle_replies_are_a_fresh_tracers() -> None:
    """Until the target makes its tracer, gdb's tracepoint queries at every connect get the
    registry's declared replies without the module: exactly what the module answers for a
    fresh tracer, and the tracer is still not made."""
    from gdbstub.target.linux.process import LinuxTarget

    lazy = registry.LAZY["tracepoints"]
    packets = [name.encode() for name, _ in lazy.idle]
    target = LinuxTarget()
    idle = registry.new_session(target)
    idle_replies = [idle.handle(p) for p in packets]
    assert target.made_tracer is None
    assert idle.tables.handlers["g"] is registry.tables().handlers["g"]  # no frame routing yet
    assert target.tracer is not None  # made now: a new session answers from the module
    real = registry.new_session(target)
    assert idle_replies == [real.handle(p) for p in packets] == [reply for _, reply in lazy.idle]


def test_target_dependent_lazy_module_is_offered_only_where_it_works() -> None:
    """Tracepoints need a tracer: a target without one is offered none of their features or
    objects and gets the empty reply to their packets, as an unknown packet's."""

    class Plain:
        def __init__(self) -> None:
            self.pid = 0
            self.threads: dict[int, object] = {}

    from gdbstub.protocol.session import Session

    session = Session(Plain(), registry.tables())  # type: ignore[arg-type]
    reply = session.handle(b"qSupported:multiprocess+")
    assert reply is not None and b"TraceStateVariables+" not in reply and b"traceframe-info" not in reply
    assert session.handle(b"qTStatus") == b""
    assert session.handle(b"qXfer:traceframe-info:read::0,100") == b""
