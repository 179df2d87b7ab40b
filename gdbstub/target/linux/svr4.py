"""The dynamic linker's list of loaded objects (SVR4 ``r_debug`` / ``link_map``).

gdb can walk this list itself with hundreds of small ``m`` reads per stop; the
stub walks it in-process instead and answers ``qXfer:libraries-svr4:read`` with
one packet. The way in: the program's own file (its program headers) gives PT_PHDR and
PT_DYNAMIC; the auxiliary vector's AT_PHDR gives the load bias; the in-memory
dynamic section's DT_DEBUG entry points at ``r_debug`` once ld.so has set it up
(it is 0 at the first instruction). glibc's ``r_debug_extended`` (r_version 2)
chains one ``r_debug`` per linker namespace (dlmopen) through ``r_next``.

Every layout is declared once (gdbstub.binary), for 32- and 64-bit inferiors.
"""

from __future__ import annotations

import os

from ...binary import Fields, Record
from ...hints import Callable, Iterator, NamedTuple, lru_cache
from .elf import ELFError, read_headers

PT_DYNAMIC = 2
PT_PHDR = 6
DT_NULL = 0
DT_DEBUG = 21
AT_NULL = 0
AT_PHDR = 3
AT_ENTRY = 9
PATH_MAX = 4096
MAX_OBJECTS = 100_000  # a corrupted (cyclic) list ends here at the latest

ReadMemory = Callable[[int, int], bytes]  # (address, length) -> bytes, possibly fewer


class Layouts(NamedTuple):
    """The C structures ld.so and the kernel share with a debugger, for one word size."""

    word: int
    auxv: Record  # Elf{32,64}_auxv_t
    dyn: Record  # Elf{32,64}_Dyn
    r_debug: Record  # struct r_debug_extended (r_next is read only when r_version >= 2)
    link_map: Record  # the public head of struct link_map


def _layouts(word: int) -> Layouts:
    addr = "Q" if word == 8 else "I"
    sword = "q" if word == 8 else "i"
    pad = (None, f"{word - 4}x")
    return Layouts(
        word=word,
        auxv=Record("<", ("a_type", addr), ("a_val", addr)),
        dyn=Record("<", ("d_tag", sword), ("d_val", addr)),
        r_debug=Record(
            "<",
            ("r_version", "i"),
            pad,
            ("r_map", addr),
            ("r_brk", addr),
            ("r_state", "i"),
            pad,
            ("r_ldbase", addr),
            ("r_next", addr),
        ),
        link_map=Record(
            "<",
            ("l_addr", addr),
            ("l_name", addr),
            ("l_ld", addr),
            ("l_next", addr),
            ("l_prev", addr),
        ),
    )


LAYOUTS: dict[int, Layouts] = {4: _layouts(4), 8: _layouts(8)}


class ElfInfo(NamedTuple):
    """What the walk needs from the program file's headers."""

    word: int
    entry: int
    phdr_vaddr: int | None  # PT_PHDR
    dynamic_vaddr: int | None  # PT_DYNAMIC
    dynamic_size: int


class LoadedObject(NamedTuple):
    """One ``link_map`` entry, as gdb's ``<library .../>`` reports it."""

    name: bytes
    lm: int
    l_addr: int
    l_ld: int
    lmid: int


class LibraryList(NamedTuple):
    main_lm: int | None  # the main program's link_map (None when not known)
    objects: tuple[LoadedObject, ...]


class NoDynamicSection(Exception):
    """A static program: no r_debug will ever appear (gdb is told with an error)."""


@lru_cache(maxsize=32)
def _elf_info_of(path: str, dev: int, ino: int, mtime_ns: int) -> ElfInfo:
    headers = read_headers(path)
    phdr = dynamic = None
    dynamic_size = 0
    for seg in headers.segments:
        if seg.p_type == PT_PHDR:
            phdr = seg.p_vaddr
        elif seg.p_type == PT_DYNAMIC:
            dynamic = seg.p_vaddr
            dynamic_size = seg.p_memsz
    return ElfInfo(headers.bits // 8, headers.entry, phdr, dynamic, dynamic_size)


def elf_info(pid: int) -> ElfInfo:
    """The headers of the program PID runs (cached per file identity, so exec is seen)."""
    path = f"/proc/{pid}/exe"
    st = os.stat(path)
    try:
        return _elf_info_of(path, st.st_dev, st.st_ino, st.st_mtime_ns)
    except ELFError as exc:
        raise OSError(8, f"not an ELF file: {exc}") from None  # ENOEXEC


def parse_auxv(raw: bytes, word: int) -> dict[int, int]:
    """Auxiliary vector bytes (/proc/PID/auxv) -> {a_type: a_val} up to AT_NULL."""
    out: dict[int, int] = {}
    for a_type, a_val in LAYOUTS[word].auxv.values_each(raw):
        if a_type == AT_NULL:
            break
        out.setdefault(a_type, a_val)
    return out


def dynamic_address(info: ElfInfo, auxv: dict[int, int]) -> int:
    """Where the program's dynamic section (_DYNAMIC) is in memory."""
    if info.dynamic_vaddr is None:
        raise NoDynamicSection("no PT_DYNAMIC")
    mask = (1 << (8 * info.word)) - 1
    if info.phdr_vaddr is not None and AT_PHDR in auxv:
        bias = auxv[AT_PHDR] - info.phdr_vaddr
    elif AT_ENTRY in auxv:
        bias = auxv[AT_ENTRY] - info.entry
    else:
        bias = 0
    return (info.dynamic_vaddr + bias) & mask


def r_debug_address(read: ReadMemory, dynamic: int, size: int, word: int, *, strict: bool = False) -> int:
    """DT_DEBUG's value in the in-memory dynamic section: &r_debug, or 0 before ld.so fills it.

    ``strict``: no DT_DEBUG entry at all raises NoDynamicSection instead of giving 0."""
    dyn = LAYOUTS[word].dyn
    for d_tag, d_val in dyn.values_each(read(dynamic, max(size, dyn.sizeof()))):
        if d_tag == DT_NULL:
            break
        if d_tag == DT_DEBUG:
            return int(d_val)
    if strict:
        # ld.so run as the program has no DT_DEBUG: as gdbserver, an error, so that gdb
        # walks the link map itself from ld.so's _r_debug instead of trusting an empty list.
        raise NoDynamicSection("no DT_DEBUG in the program's dynamic section")
    return 0


def read_string(read: ReadMemory, addr: int, limit: int = PATH_MAX) -> bytes:
    if addr == 0:
        return b""
    try:
        data = read(addr, limit)
    except OSError:
        return b""
    return data.split(b"\0", 1)[0]


def read_link_map(read: ReadMemory, word: int, lm: int) -> Fields | None:
    layout = LAYOUTS[word].link_map
    try:
        data = read(lm, layout.sizeof())
    except OSError:
        return None
    if len(data) < layout.sizeof():
        return None
    return layout.parse(data)


def walk_link_maps(read: ReadMemory, word: int, lm: int, prev: int, lmid: int) -> Iterator[LoadedObject]:
    """The named objects from ``lm`` on; stops where ``l_prev`` does not point back (corruption)."""
    seen: set[int] = set()
    while lm and lm not in seen and len(seen) < MAX_OBJECTS:
        seen.add(lm)
        entry = read_link_map(read, word, lm)
        if entry is None or entry.l_prev != prev:
            return
        name = read_string(read, entry.l_name)
        if name:
            yield LoadedObject(name, lm, entry.l_addr, entry.l_ld, lmid)
        prev, lm = lm, entry.l_next


def read_r_debug(read: ReadMemory, word: int, addr: int) -> Fields | None:
    layout = LAYOUTS[word].r_debug
    size = layout.sizeof()
    try:
        data = read(addr, size)
    except OSError:
        return None
    if len(data) < size - word:
        return None
    # A plain (version 1) r_debug has no r_next: pad what may lie past its end.
    return layout.parse(data.ljust(size, b"\0"))


def library_list(read: ReadMemory, word: int, r_debug: int) -> LibraryList:
    """Every namespace's objects, the main program's entry left out (it is ``main_lm``)."""
    main_lm: int | None = None
    objects: list[LoadedObject] = []
    first = r_debug
    seen: set[int] = set()
    while r_debug and r_debug not in seen:
        seen.add(r_debug)
        rd = read_r_debug(read, word, r_debug)
        if rd is None or rd.r_version < 1:
            break
        lm, prev = int(rd.r_map), 0
        if r_debug == first and lm:
            main_lm = lm
            head = read_link_map(read, word, lm)
            if head is None:
                break
            prev, lm = lm, int(head.l_next)
        objects.extend(walk_link_maps(read, word, lm, prev, r_debug))
        if rd.r_version < 2:
            break
        r_debug = int(rd.r_next)
    return LibraryList(main_lm, tuple(objects))


def find_r_debug(pid: int, read: ReadMemory, auxv_raw: bytes) -> tuple[int, int]:
    """(word size, &r_debug) of a live process; &r_debug is 0 until ld.so has run."""
    info = elf_info(pid)
    auxv = parse_auxv(auxv_raw, info.word)
    dynamic = dynamic_address(info, auxv)
    return info.word, r_debug_address(read, dynamic, info.dynamic_size, info.word, strict=True)
