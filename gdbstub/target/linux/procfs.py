"""Read-only facts about a process from /proc: its memory map and its ids.

lldb asks for these (qMemoryRegionInfo, qProcessInfo); gdb's osdata could use
them too. Kept apart from the ptrace code because nothing here stops or
touches the process.
"""

from __future__ import annotations

import bisect

from ...hints import NamedTuple

ADDRESS_SPACE_END = 1 << 64


class Mapping(NamedTuple):
    """One line of /proc/PID/maps."""

    start: int
    end: int
    perms: str  # "r-xp" as the kernel prints it
    offset: int
    path: str  # file, "[stack]", "[vdso]", ... or "" for anonymous memory

    @property
    def readable(self) -> bool:
        return self.perms[:1] == "r"

    @property
    def writable(self) -> bool:
        return self.perms[1:2] == "w"

    @property
    def executable(self) -> bool:
        return self.perms[2:3] == "x"


class Region(NamedTuple):
    """The mapped or unmapped range that holds an address (lldb's memory region)."""

    start: int
    end: int
    mapping: Mapping | None  # None: a hole between mappings


def parse_maps(text: str) -> list[Mapping]:
    """Parse the text of /proc/PID/maps; malformed lines are skipped."""
    out: list[Mapping] = []
    for line in text.splitlines():
        fields = line.split(None, 5)
        if len(fields) < 5:
            continue
        try:
            lo, _, hi = fields[0].partition("-")
            start, end, offset = int(lo, 16), int(hi, 16), int(fields[2], 16)
        except ValueError:
            continue
        path = fields[5].strip() if len(fields) > 5 else ""
        out.append(Mapping(start, end, fields[1], offset, path))
    out.sort(key=lambda m: m.start)
    return out


def read_maps(pid: int) -> list[Mapping]:
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
        return parse_maps(f.read())


def region_at(maps: list[Mapping], addr: int, limit: int = ADDRESS_SPACE_END) -> Region:
    """The mapping holding ADDR, or the hole around it up to the next mapping (or LIMIT)."""
    starts = [m.start for m in maps]
    i = bisect.bisect_right(starts, addr) - 1
    if i >= 0 and maps[i].start <= addr < maps[i].end:
        return Region(maps[i].start, maps[i].end, maps[i])
    hole_start = maps[i].end if i >= 0 else 0
    hole_end = maps[i + 1].start if i + 1 < len(maps) else limit
    return Region(hole_start, hole_end, None)


class ProcessIds(NamedTuple):
    """Who a process is: parent, real and effective user and group."""

    pid: int
    ppid: int
    uid: int
    gid: int
    euid: int
    egid: int


def parse_status(pid: int, text: str) -> ProcessIds:
    """Ids from the text of /proc/PID/status (PPid:, Uid:, Gid: lines)."""
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    ppid = int(fields.get("PPid", ["0"])[0])
    uid = [int(x) for x in fields.get("Uid", ["0", "0"])[:2]]
    gid = [int(x) for x in fields.get("Gid", ["0", "0"])[:2]]
    return ProcessIds(pid, ppid, uid[0], gid[0], uid[-1], gid[-1])


def read_ids(pid: int) -> ProcessIds:
    with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
        return parse_status(pid, f.read())
