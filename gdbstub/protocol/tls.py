"""qGetTLSAddr: the address of a thread-local variable, computed as libthread_db does it but
without loading libthread_db: the layout facts it would use (where link_map keeps the TLS
module id, where a thread's DTV is, how big a DTV slot is) are the ``_thread_db_*``
descriptors glibc exports for it, read here from the inferior's own libc file, or from the
executable's symbol table when it is linked statically.

address = DTV[modid].pointer + offset, with DTV = *(thread pointer + pthread_dtvp) and
modid = *(link_map + l_tls_modid); a static program has no link map (gdb sends 0) and its
TLS block is module 1, as glibc's __libc_setup_tls numbers it and gdbserver assumes.

gdbserver answers qGetTLSAddr only once it has loaded libthread_db, which it tries when gdb
says new symbols may be there (``qSymbol::``) and finds along ``monitor set
libthread-db-search-path``. That is kept: a search path without ``libthread_db.so.1``
makes qGetTLSAddr fail here too (gdb's testsuite checks exactly that, gdb.server/no-thread-db).
"""

from __future__ import annotations

import os
import struct

from ..hints import TYPE_CHECKING, NamedTuple, lru_cache
from ..target.linux.elf import SHT_DYNSYM, SHT_NOBITS, SHT_SYMTAB, SectionHeader, read_headers, read_sections
from ..target.linux.elf import ELFError as ELFHeaderError
from .session import E01, OK, Feature, Handler

if TYPE_CHECKING:
    from ..target.linux.process import LinuxTarget
    from .session import Session

PT_INTERP = 3
UNALLOCATED = (1 << 64) - 1  # TLS_DTV_UNALLOCATED, (void *) -1


class Desc(NamedTuple):
    """One glibc db descriptor: a field's size in bits, element count and byte offset."""

    bits: int
    elements: int  # glibc calls it the count (a name tuple already has)
    offset: int


class TlsLayout(NamedTuple):
    l_tls_modid: Desc
    pthread_dtvp: Desc
    dtv_slot: Desc  # dtv_dtv: the size of one dtv_t
    pointer_val: Desc


NAMES = ("link_map_l_tls_modid", "pthread_dtvp", "dtv_dtv", "dtv_t_pointer_val")


@lru_cache(maxsize=8)
def layout_from_libc(path: str) -> TlsLayout | None:
    """The descriptors from a shared libc's dynamic symbols, or from a static executable's
    own symbol table; None when the file has none."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        bits, sections = read_sections(data)
        for kind in (SHT_DYNSYM, SHT_SYMTAB):
            for table in sections:
                if table.sh_type == kind and table.sh_link < len(sections):
                    found = _layout_in(data, bits, sections, table)
                    if found is not None:
                        return found
        return None
    except (OSError, ELFHeaderError, struct.error):
        return None


# Elf64_Sym / Elf32_Sym (st_name, then value and size where each puts them): unpacked with
# struct.iter_unpack, as pyelftools parses each symbol through construct (0.7 s for a static
# program's 2400 symbols, the time gdb then waits for qSymbol's answer).
ELF_SYM = {64: ("<IBBHQQ", 0, 4, 5), 32: ("<IIIBBH", 0, 1, 2)}


def _layout_in(data: bytes, bits: int, sections: tuple[SectionHeader, ...],
               table: SectionHeader) -> TlsLayout | None:
    found = _symbols(data, bits, table, sections[table.sh_link], [f"_thread_db_{name}" for name in NAMES])
    descs = []
    for name in NAMES:
        if f"_thread_db_{name}" not in found:
            return None
        value, size = found[f"_thread_db_{name}"]
        raw = _file_bytes(data, sections, value, size)
        if raw is None or len(raw) < 12:
            return None
        descs.append(Desc(*struct.unpack("<3I", raw[:12])))
    return TlsLayout(*descs)


def _symbols(data: bytes, bits: int, table: SectionHeader, strtab: SectionHeader,
             names: list[str]) -> dict[str, tuple[int, int]]:
    """(st_value, st_size) of each of NAMES found in TABLE."""
    strings = data[strtab.sh_offset:strtab.sh_offset + strtab.sh_size]
    wanted: dict[int, str] = {}  # string table offset -> name (a name may also end a longer one)
    for name in names:
        text = name.encode() + b"\0"
        at = strings.find(text)
        while at >= 0:
            wanted[at] = name
            at = strings.find(text, at + 1)
    fmt, name_at, value_at, size_at = ELF_SYM[bits]
    symbols = data[table.sh_offset:table.sh_offset + table.sh_size]
    usable = len(symbols) - len(symbols) % struct.calcsize(fmt)
    out: dict[str, tuple[int, int]] = {}
    for sym in struct.iter_unpack(fmt, symbols[:usable]):
        hit = wanted.get(sym[name_at])
        if hit is not None and hit not in out:
            out[hit] = (sym[value_at], sym[size_at])
    return out


def _file_bytes(data: bytes, sections: tuple[SectionHeader, ...], vaddr: int, size: int) -> bytes | None:
    for sec in sections:
        start = sec.sh_addr
        if sec.sh_type != SHT_NOBITS and start and start <= vaddr < start + sec.sh_size:
            at = sec.sh_offset + vaddr - start
            return data[at:at + size]
    return None


def libc_path(pid: int) -> str | None:
    """The libc.so PID has mapped, if any. The map is read whole as bytes and searched: gdb
    asks (qSymbol) at connect and at every library load, mostly before libc is there, and a
    line-by-line text read cost a tenth of a millisecond each time."""
    try:
        with open(f"/proc/{pid}/maps", "rb", buffering=0) as f:
            data = f.readall()
    except OSError:
        return None
    at = data.find(b"/libc.so")
    while at >= 0:
        start, end = data.rfind(b"\n", 0, at) + 1, data.find(b"\n", at)
        if end < 0:
            end = len(data)
        parts = data[start:end].split(None, 5)
        if len(parts) == 6 and b"/libc.so" in parts[5]:
            return parts[5].strip().decode("utf-8", "replace")
        at = data.find(b"/libc.so", end)
    return None


@lru_cache(maxsize=8)
def _has_interpreter(path: str, dev: int, ino: int, mtime_ns: int) -> bool:
    """Whether the file has PT_INTERP (cached per file identity: read once, not at each qSymbol)."""
    return any(seg.p_type == PT_INTERP for seg in read_headers(path).segments)


def thread_library(pid: int) -> str | None:
    """The file holding the descriptors of the thread library PID runs: libc.so, else (a
    static program) the executable. None before libc is loaded."""
    path = libc_path(pid)
    if path is None:
        exe = f"/proc/{pid}/exe"
        try:
            path = os.readlink(exe)
            st = os.stat(exe)
            if _has_interpreter(exe, st.st_dev, st.st_ino, st.st_mtime_ns):
                return None  # dynamic: libc is not loaded yet (at connect), no symbol table to parse
        except (OSError, ELFHeaderError):
            return None
    return path


def thread_library_layout(pid: int) -> TlsLayout | None:
    """The descriptors of the thread library PID runs; None before libc is loaded, or for a
    program without glibc's threads."""
    path = thread_library(pid)
    return None if path is None else layout_from_libc(path)


def _word(s: Session, pid: int, addr: int, size: int) -> int:
    data = s.target.read_memory(pid, addr, size)
    if len(data) != size:
        raise OSError(5, "short read")
    return int.from_bytes(data, "little")


def tls_address(s: Session, pid: int, tid: int, offset: int, lm: int) -> int | None:
    """The address of OFFSET in the TLS block of the module whose link_map is LM, in TID;
    LM 0 (a static program: no link map) is module 1."""
    layout = thread_library_layout(pid)
    handle = s.target.thread_handle(pid, tid)
    if layout is None or handle is None:
        return None
    word = s.target.arch(pid).word
    tp = int.from_bytes(handle, "little")
    modid = 1 if lm == 0 else _word(s, pid, lm + layout.l_tls_modid.offset, layout.l_tls_modid.bits // 8)
    if modid == 0:
        return None
    dtv = _word(s, pid, tp + layout.pthread_dtvp.offset, word)
    slot = dtv + modid * (layout.dtv_slot.bits // 8) + layout.pointer_val.offset
    block = _word(s, pid, slot, word)
    if block in (0, UNALLOCATED & ((1 << (8 * word)) - 1)):
        return None
    return block + offset


# --- gdbserver's libthread_db, by its consequences ------------------------------------------

LIBTHREAD_DB = "libthread_db.so.1"
DEFAULT_SEARCH_PATH = "$sdir:$pdir"  # gdbserver's LIBTHREAD_DB_SEARCH_PATH
# Where a plain dlopen("libthread_db.so.1") ($sdir) finds it on Debian and others.
SYSTEM_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib")


class ThreadDb:
    """The stub-wide search path and the processes whose thread library is 'loaded'."""

    def __init__(self) -> None:
        self.search_path = DEFAULT_SEARCH_PATH
        self.loaded: set[int] = set()


# A session whose client takes part in symbol look-up (sent qSymbol) has this in its
# module_state: for it loading happens only there, as in gdbserver; other clients load on first use.
SYMBOL_CLIENT = "tls.symbol_client"


def thread_db(target: LinuxTarget) -> ThreadDb:
    """The target's (kept in its module_state, shared by its sessions)."""
    state = target.module_state.get("tls")
    if not isinstance(state, ThreadDb):
        state = target.module_state["tls"] = ThreadDb()
    return state


def finds_libthread_db(search_path: str) -> bool:
    """Whether gdbserver's search along SEARCH_PATH would find a libthread_db to load
    ($pdir is ignored by gdbserver, $sdir is the system's dlopen search)."""
    for entry in search_path.split(":"):
        if entry == "$pdir" or entry.startswith("$pdir/"):
            continue
        dirs = SYSTEM_DIRS if entry == "$sdir" else (entry,)
        if any(os.path.isfile(f"{d}/{LIBTHREAD_DB}") for d in dirs):
            return True
    return False


def set_search_path(s: Session, value: str) -> str:
    """``monitor set libthread-db-search-path [PATH]``: empty means the default. Like
    gdbserver's, it takes effect at the next load, not for a library already loaded."""
    state = thread_db(s.target)
    state.search_path = value or DEFAULT_SEARCH_PATH
    return state.search_path


def _try_load(s: Session, pid: int) -> bool:
    """gdbserver's load of libthread_db once the thread library is there. Its descriptors are
    read by the first qGetTLSAddr (a library without them fails that one as a load would
    have): the qSymbol gdb sends at every library load stays cheap."""
    state = thread_db(s.target)
    if pid not in state.loaded and thread_library(pid) is not None \
            and finds_libthread_db(state.search_path):
        state.loaded.add(pid)
    return pid in state.loaded


def q_symbol(s: Session, args: bytes) -> bytes:
    """``qSymbol::``: gdb has new symbols (at connect, after each library load), the moment
    gdbserver tries to load libthread_db for the current process. The stub asks for none."""
    s.module_state[SYMBOL_CLIENT] = True
    try:
        _try_load(s, s.current_pid())
    except OSError:  # no process yet
        pass
    return OK


def get_tls_addr(s: Session, args: bytes) -> bytes:
    try:
        thread_s, offset_s, lm_s = args.lstrip(b":").split(b",")
        ptid = s.parse_thread(thread_s)
        offset, lm = int(offset_s, 16), int(lm_s, 16)
    except ValueError:
        return E01
    tid = ptid.tid if ptid.tid > 0 else s.current_tid()
    pid = s.target.pid_of(tid)
    if pid is None:
        return E01
    state = thread_db(s.target)
    if pid not in state.loaded and (SYMBOL_CLIENT in s.module_state or not _try_load(s, pid)):
        return E01  # gdbserver: "the thread layer is not (yet) initialized"
    address = tls_address(s, pid, tid, offset, lm)
    if address is None:
        return E01
    return b"%x" % address


HANDLERS: dict[str, Handler] = {"qGetTLSAddr": get_tls_addr, "qSymbol": q_symbol}
FEATURES: list[Feature] = []
