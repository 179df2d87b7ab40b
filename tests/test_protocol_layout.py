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
    names = {m.__name__.rsplit(".", 1)[1] for m in registry.MODULES}
    return names | {install.__module__.rsplit(".", 1)[1] for install in registry.INSTALLERS}


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
