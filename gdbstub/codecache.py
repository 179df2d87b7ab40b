"""The code of the modules a session loads after ``Listening``, kept in one file beside the
package's ``.pyc`` files and found there by one finder ahead of the path finder.

Each module the path finder imports costs ~0.3 M instructions besides its own code: the search
of its package directory, a stat, the open and read of its ``.pyc``, the checks of its header
(~45 modules load after ``Listening``: about 9 M of the ~130 M a session's first stop costs).
From this file a module costs one stat of its source, the same freshness check as a ``.pyc``'s
(modification time and size), and the unmarshal of its code; a module whose source changed,
or one the file does not hold, is imported as usual. The file is written again by a start
that found it missing, stale or partial (``save``), unless bytecode writing is off
(``PYTHONDONTWRITEBYTECODE``, ``-B``) or the package directory is read-only.
"""

from __future__ import annotations

import _imp
import marshal
import os
import sys
from _frozen_importlib import ModuleSpec
from _frozen_importlib_external import MAGIC_NUMBER

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.abc import Loader
    from types import ModuleType
else:
    Loader = object  # importlib.abc's base adds nothing here: the finder is a loader by its methods

PACKAGE = __package__ or "gdbstub"
ROOT = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(ROOT, "__pycache__", f"session.{sys.implementation.cache_tag}.code")

# name -> (source path relative to ROOT, st_mtime_ns, st_size, is a package, marshalled code)
Entry = tuple[str, int, int, bool, bytes]
FORMAT = 1  # of the file: (MAGIC_NUMBER, FORMAT, {name: Entry}); another is not read


class Finder(Loader):
    """A meta path finder and loader of the modules the file holds (each fresh one once)."""

    def __init__(self, entries: dict[str, Entry]) -> None:
        self.entries = entries
        self.loaded: set[str] = set()

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        entry = self.entries.get(name)
        if entry is None:
            return None
        source = _fresh(entry)
        if source is None:
            return None
        spec = ModuleSpec(name, self, origin=source, is_package=entry[3])
        if entry[3]:
            spec.submodule_search_locations = [os.path.dirname(source)]
        return spec

    def create_module(self, spec: ModuleSpec) -> None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        name = module.__name__
        code = marshal.loads(self.entries[name][4])
        self.loaded.add(name)
        # __file__ is the source, as the path finder sets it (not __cached__, the .pyc path it
        # works out from the source's: nothing reads it, and it cost ~40 K instructions a module)
        source = module.__file__ = os.path.join(ROOT, self.entries[name][0])
        _imp._fix_co_filename(code, source)  # type: ignore[attr-defined]  # as for a .pyc: tracebacks name the source where it is now
        exec(code, module.__dict__)


_finder: Finder | None = None


def install() -> set[str]:
    """Put the file's finder ahead of the path finder; the modules loaded so far (``save``
    writes the file for those loaded after)."""
    global _finder
    before = set(sys.modules)
    if _finder is not None:
        return before
    try:
        with open(PATH, "rb") as f:
            magic, form, entries = marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        magic, form, entries = b"", 0, {}
    _finder = Finder(entries if magic == MAGIC_NUMBER and form == FORMAT and isinstance(entries, dict) else {})
    sys.meta_path.insert(0, _finder)
    return before


def save(before: set[str]) -> None:
    """Write the file for the stub's modules loaded since ``install`` unless it already
    gave them all; a failure to write leaves things as they were."""
    if _finder is None or sys.dont_write_bytecode:
        return
    names = sorted(n for n in sys.modules if n not in before and (n == PACKAGE or n.startswith(PACKAGE + ".")))
    if all(n in _finder.loaded for n in names):
        return
    # What the file held and still holds fresh stays (a session of another kind, say of a
    # 32-bit program, loads a few other modules: the file grows to both, not from one to the other).
    entries = {name: entry for name, entry in _finder.entries.items() if _fresh(entry)}
    temp = f"{PATH}.{os.getpid()}"
    try:
        for name in names:
            if name not in _finder.loaded:
                entries[name] = _entry(sys.modules[name])
        with open(temp, "wb") as f:
            f.write(marshal.dumps((MAGIC_NUMBER, FORMAT, entries)))
        os.replace(temp, PATH)  # whole or not at all, for stubs starting side by side
    except (OSError, ImportError, ValueError):
        try:  # a write cut short (a full disk) leaves no partial file behind
            os.unlink(temp)
        except OSError:
            pass


def _fresh(entry: Entry) -> str | None:
    """The entry's source path if the source is the one its code was compiled from."""
    source = os.path.join(ROOT, entry[0])
    try:
        st = os.stat(source)
    except OSError:
        return None
    return source if st.st_mtime_ns == entry[1] and st.st_size == entry[2] else None


def _entry(module: ModuleType) -> Entry:
    """A module's entry, from its source file's stat and its loader's code."""
    spec = module.__spec__
    source = module.__file__
    if spec is None or spec.loader is None or source is None or not hasattr(spec.loader, "get_code"):
        raise ImportError(f"{module.__name__} has no source")
    st = os.stat(source)
    code = spec.loader.get_code(module.__name__)
    return (os.path.relpath(source, ROOT), st.st_mtime_ns, st.st_size, spec.submodule_search_locations is not None,
            marshal.dumps(code))
