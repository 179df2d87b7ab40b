"""qSearch:memory (gdb's ``find``): search the inferior's memory in the stub, in large reads,
instead of gdb pulling every byte over the wire.

Memory that cannot be read answers E00 and a malformed packet E01, as gdbserver's do."""

from __future__ import annotations

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


HANDLERS: dict[str, Handler] = {"qSearch": search_memory}
FEATURES: list[Feature] = []  # gdb probes qSearch:memory; nothing to advertise
