"""qSearch:memory (gdb's ``find``) and qCRC (gdb's ``compare-sections``): search or checksum
the inferior's memory in the stub, in large reads, instead of gdb pulling every byte over the wire.

Memory that cannot be read answers E00 (qSearch) or E01 (qCRC) and a malformed packet E01, as
gdbserver's do."""

from __future__ import annotations

import binascii

from ..hints import TYPE_CHECKING
from .session import E01, Feature, Handler

if TYPE_CHECKING:
    from .session import Session

CHUNK = 0x10000
UNREADABLE = b"E00"  # gdbserver's answer when the search runs into memory it cannot read


def search_memory(s: Session, args: bytes) -> bytes:
    prefix = b":memory:"
    if not args.startswith(prefix):
        return b""
    try:
        addr_s, length_s, pattern = args[len(prefix):].split(b";", 2)
        addr, length = int(addr_s, 16), int(length_s, 16)
    except ValueError:
        return E01
    if not pattern:
        return E01
    pid = s.current_pid()
    end = addr + length
    pos = addr
    while pos < end:
        want = min(CHUNK + len(pattern) - 1, end - pos)
        try:
            data = s.target.read_memory(pid, pos, want)
        except OSError:
            return UNREADABLE
        found = data.find(pattern)
        if found >= 0:
            return b"1,%x" % (pos + found)
        if len(data) < want:  # the rest is not mapped
            return UNREADABLE if pos == addr and not data else b"0"
        if pos + want >= end:
            break
        pos += want - (len(pattern) - 1)
    return b"0"


# gdb's CRC-32 (libiberty's xcrc32: MSB first, no final xor) is zlib's on bit-reversed bytes.
_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc32(data: bytes, crc: int = 0xFFFFFFFF) -> int:
    """xcrc32(DATA, CRC) as gdb and gdbserver compute it."""
    reflected = binascii.crc32(data.translate(_REVERSED), int(f"{crc:032b}"[::-1], 2) ^ 0xFFFFFFFF)
    return int(f"{reflected ^ 0xFFFFFFFF:032b}"[::-1], 2)


def memory_crc(s: Session, args: bytes) -> bytes:
    """qCRC:ADDR,LENGTH: 'C' and the CRC of the memory there (the original bytes under our
    breakpoints), E01 when any of it cannot be read."""
    addr_s, comma, length_s = args.lstrip(b":").partition(b",")
    try:
        addr, length = int(addr_s, 16), int(length_s, 16)
    except ValueError:
        return E01
    if not comma or length < 0:
        return E01
    pid = s.current_pid()
    crc = 0xFFFFFFFF
    while length > 0:
        want = min(CHUNK, length)
        try:
            data = s.target.read_memory(pid, addr, want)
        except OSError:
            return E01
        if len(data) < want:
            return E01
        crc = crc32(data, crc)
        addr += want
        length -= want
    return b"C%x" % crc


HANDLERS: dict[str, Handler] = {"qSearch": search_memory, "qCRC": memory_crc}
FEATURES: list[Feature] = []  # gdb probes qSearch:memory; nothing to advertise
