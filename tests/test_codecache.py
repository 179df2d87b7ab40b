"""gdbstub.codecache: the session modules' code in one file, used only while each source is
the one it was compiled from, on a package of its own in a temporary directory."""

from __future__ import annotations

import importlib
import marshal
import os
import sys
from pathlib import Path

import pytest

from gdbstub import codecache

PACKAGE = "codecache_probe"


@pytest.fixture
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A package with two modules, the cache file pointed at it, no finder installed yet."""
    root = tmp_path / PACKAGE
    root.mkdir()
    (root / "__init__.py").write_text('"""probe"""\n')
    (root / "one.py").write_text("VALUE = 1\n\n\ndef f():\n    pass\n")
    (root / "two.py").write_text("from .one import VALUE\nDOUBLE = 2 * VALUE\n")
    monkeypatch.setattr(codecache, "ROOT", str(root))
    monkeypatch.setattr(codecache, "PATH", str(tmp_path / "session.code"))
    monkeypatch.setattr(codecache, "PACKAGE", PACKAGE)
    monkeypatch.setattr(codecache, "_finder", None)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    _forget()


def _forget() -> None:
    """A fresh start: no probe module loaded, no finder."""
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, codecache.Finder)]
    codecache._finder = None
    importlib.invalidate_caches()


def _start() -> tuple[codecache.Finder, int]:
    """What the command line does after Listening: install, import, save; the finder and DOUBLE."""
    before = codecache.install()
    value = importlib.import_module(f"{PACKAGE}.two").DOUBLE
    codecache.save(before)
    assert codecache._finder is not None
    return codecache._finder, value


def test_second_start_loads_every_module_from_the_file(probe: Path):
    finder, value = _start()
    assert value == 2 and finder.loaded == set()  # nothing in the file yet: imported as usual
    assert os.path.exists(codecache.PATH)
    _forget()
    finder, value = _start()
    assert value == 2
    assert finder.loaded == {PACKAGE, f"{PACKAGE}.one", f"{PACKAGE}.two"}
    module = sys.modules[f"{PACKAGE}.one"]
    assert module.__file__ == str(probe / "one.py") and module.__loader__ is finder
    assert module.f.__code__.co_filename == str(probe / "one.py")  # what tracebacks name
    assert sys.modules[PACKAGE].__path__ == [str(probe)]


def test_moved_package_names_its_new_place(probe: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A package moved whole (a copy keeping mtimes) still loads from its file; its code and
    tracebacks name the sources where they are now, as Python fixes a .pyc's."""
    _start()
    _forget()
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    probe.rename(moved / PACKAGE)
    monkeypatch.setattr(codecache, "ROOT", str(moved / PACKAGE))
    monkeypatch.syspath_prepend(str(moved))
    finder, value = _start()
    assert value == 2 and f"{PACKAGE}.one" in finder.loaded
    module = sys.modules[f"{PACKAGE}.one"]
    assert module.__file__ == module.f.__code__.co_filename == str(moved / PACKAGE / "one.py")


def test_changed_source_is_imported_again_and_rewritten(probe: Path):
    _start()
    _forget()
    (probe / "one.py").write_text("VALUE = 21\n")  # another size, whatever the clock says
    finder, value = _start()
    assert value == 42
    assert f"{PACKAGE}.one" not in finder.loaded and f"{PACKAGE}.two" in finder.loaded
    _forget()
    finder, value = _start()
    assert value == 42 and f"{PACKAGE}.one" in finder.loaded


def test_unreadable_file_is_ignored(probe: Path):
    Path(codecache.PATH).write_bytes(b"not marshal data")
    finder, value = _start()
    assert value == 2 and finder.loaded == set()


def test_file_of_another_format_is_ignored(probe: Path):
    _start()
    _forget()
    magic, form, entries = marshal.loads(Path(codecache.PATH).read_bytes())
    Path(codecache.PATH).write_bytes(marshal.dumps((magic, form + 1, entries)))
    finder, value = _start()
    assert value == 2 and finder.loaded == set()


def test_no_file_written_when_bytecode_writing_is_off(probe: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    _start()
    assert not os.path.exists(codecache.PATH)
