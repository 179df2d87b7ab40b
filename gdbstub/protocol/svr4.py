"""``qXfer:libraries-svr4:read``: the loaded-library list in one packet.

The annex is empty (the whole list) or, with ``augmented-libraries-svr4-read``
(gdb's probes-based interface), ``lmid=..;start=..;prev=..``: only the objects
from ``start`` on, in namespace ``lmid`` — what ld.so just added. The document
has gdbserver's shape: ``main-lm`` on the root element, and ``lm``, ``l_addr``,
``l_ld`` and ``lmid`` on each library.
"""

from __future__ import annotations

from ..hints import TYPE_CHECKING, NamedTuple
from ..target.linux import svr4
from ..xmltext import xml_escape
from .session import Feature, XferObject

if TYPE_CHECKING:
    from .session import Session

ANNEX_KEYS = ("lmid", "start", "prev")


class Annex(NamedTuple):
    lmid: int = 0
    start: int = 0
    prev: int = 0


def parse_annex(annex: str) -> Annex:
    """``key=HEX;...``: unknown keys are skipped, a malformed number is an error."""
    values = {}
    for item in annex.split(";"):
        key, sep, value = item.partition("=")
        if not sep or key not in ANNEX_KEYS:
            continue
        values[key] = int(value, 16)
    # Positional: a keyword call would compile the class's __new__ in gdb's first list read.
    return Annex(values.get("lmid", 0), values.get("start", 0), values.get("prev", 0))


def _attr(name: bytes) -> str:
    text = name.decode("utf-8", "surrogateescape")
    return xml_escape(text, quote=True)


def document(listing: svr4.LibraryList | None, *, main_lm_attr: bool = True) -> bytes:
    head = '<library-list-svr4 version="1.0"'
    if listing is not None and listing.main_lm is not None and main_lm_attr:
        head += f' main-lm="0x{listing.main_lm:x}"'
    parts = [head + ">"]
    for obj in listing.objects if listing is not None else ():
        parts.append(
            f'<library name="{_attr(obj.name)}" lm="0x{obj.lm:x}" l_addr="0x{obj.l_addr:x}"'
            f' l_ld="0x{obj.l_ld:x}" lmid="0x{obj.lmid:x}"/>'
        )
    parts.append("</library-list-svr4>")
    return "".join(parts).encode("utf-8", "surrogateescape")


def read_libraries(s: Session, annex: str) -> bytes:
    pid = s.current_pid() if s.target.threads else s.target.pid

    def read(addr: int, length: int) -> bytes:
        return s.target.read_memory(pid, addr, length)

    request = parse_annex(annex)
    if request.start:
        word = svr4.elf_info(pid).word
        objects = svr4.walk_link_maps(read, word, request.start, request.prev, request.lmid)
        return document(svr4.LibraryList(None, tuple(objects)))
    word, r_debug = svr4.find_r_debug(pid, read, s.target.auxv(pid))
    if r_debug == 0:
        return document(None)
    return document(svr4.library_list(read, word, r_debug))


def _available(s: Session) -> bool:
    return True


def _read(s: Session, annex: str) -> bytes:
    try:
        return read_libraries(s, annex)
    except svr4.NoDynamicSection as exc:
        # gdb then falls back to its own walk (and finds nothing for a static program)
        raise OSError(2, str(exc)) from None


OBJECTS: dict[str, XferObject] = {"libraries-svr4": XferObject(_read, _available)}

FEATURES: list[Feature] = [
    ("qXfer:libraries-svr4:read+", _available),
    ("augmented-libraries-svr4-read+", _available),
]
