"""qGetTLSAddr: the address of a thread-local variable, computed as libthread_db does it but
without loading libthread_db: the layout facts it would use (where link_map keeps the TLS
module id, where a thread's DTV is, how big a DTV slot is) are the ``_thread_db_*``
descriptors glibc exports for it, read here from the inferior's own libc file.

address = DTV[modid].pointer + offset, with DTV = *(thread pointer + pthread_dtvp) and
modid = *(link_map + l_tls_modid).
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .session import E01, Feature, Handler

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile

    from .session import Session

UNALLOCATED = (1 << 64) - 1  # TLS_DTV_UNALLOCATED, (void *) -1


@dataclass(frozen=True)
class Desc:
    """One glibc db descriptor: a field's size in bits, element count and byte offset."""

    bits: int
    count: int
    offset: int


@dataclass(frozen=True)
class TlsLayout:
    l_tls_modid: Desc
    pthread_dtvp: Desc
    dtv_slot: Desc  # dtv_dtv: the size of one dtv_t
    pointer_val: Desc


NAMES = ("link_map_l_tls_modid", "pthread_dtvp", "dtv_dtv", "dtv_t_pointer_val")


@functools.lru_cache(maxsize=8)
def layout_from_libc(path: str) -> TlsLayout | None:
    """The descriptors from libc's dynamic symbol table; None when libc has none."""
    # pyelftools is imported here, on the first TLS access: it costs more than the stub's start.
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            dynsym = elf.get_section_by_name(".dynsym")
            if not isinstance(dynsym, SymbolTableSection):
                return None
            descs = []
            for name in NAMES:
                found = dynsym.get_symbol_by_name(f"_thread_db_{name}")
                if not found:
                    return None
                value, size = found[0]["st_value"], found[0]["st_size"]
                data = _file_bytes(elf, value, size)
                if data is None or len(data) < 12:
                    return None
                endian = "<" if elf.little_endian else ">"
                descs.append(Desc(*struct.unpack(endian + "3I", data[:12])))
            return TlsLayout(*descs)
    except (OSError, ELFError, struct.error):
        return None


def _file_bytes(elf: ELFFile, vaddr: int, size: int) -> bytes | None:
    for sec in elf.iter_sections():
        start = sec["sh_addr"]
        if sec["sh_type"] != "SHT_NOBITS" and start and start <= vaddr < start + sec["sh_size"]:
            sec.stream.seek(sec["sh_offset"] + vaddr - start)
            data: bytes = sec.stream.read(size)
            return data
    return None


def libc_path(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and "/libc.so" in parts[5]:
                    return parts[5].strip()
    except OSError:
        return None
    return None


def _word(s: Session, pid: int, addr: int, size: int) -> int:
    data = s.target.read_memory(pid, addr, size)
    if len(data) != size:
        raise OSError(5, "short read")
    return int.from_bytes(data, "little")


def tls_address(s: Session, pid: int, tid: int, offset: int, lm: int) -> int | None:
    """The address of OFFSET in the TLS block of the module whose link_map is LM, in TID."""
    path = libc_path(pid)
    layout = layout_from_libc(path) if path else None
    handle = s.target.thread_handle(pid, tid)
    if layout is None or handle is None:
        return None
    word = s.target.arch(pid).word
    tp = int.from_bytes(handle, "little")
    modid = _word(s, pid, lm + layout.l_tls_modid.offset, layout.l_tls_modid.bits // 8)
    if modid == 0:
        return None
    dtv = _word(s, pid, tp + layout.pthread_dtvp.offset, word)
    slot = dtv + modid * (layout.dtv_slot.bits // 8) + layout.pointer_val.offset
    block = _word(s, pid, slot, word)
    if block in (0, UNALLOCATED & ((1 << (8 * word)) - 1)):
        return None
    return block + offset


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
    address = tls_address(s, pid, tid, offset, lm)
    if address is None:
        return E01
    return b"%x" % address


HANDLERS: dict[str, Handler] = {"qGetTLSAddr": get_tls_addr}
FEATURES: list[Feature] = []
