"""gdb's own signal numbering (gdb/signals.def) against Linux x86's.

The protocol speaks gdb's numbers: gdb's SIGCHLD is 20 where Linux's is 17.
"""

from __future__ import annotations

# Linux signal number -> gdb signal number, for the classic signals.
_CLASSIC = {
    1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 10, 8: 8, 9: 9, 10: 30, 11: 11, 12: 31,
    13: 13, 14: 14, 15: 15, 17: 20, 18: 19, 19: 17, 20: 18, 21: 21, 22: 22, 23: 16,
    24: 24, 25: 25, 26: 26, 27: 27, 28: 28, 29: 23, 30: 32, 31: 12,
}
GDB_UNKNOWN = 143


def _table() -> dict[int, int]:
    table = dict(_CLASSIC)
    table[32] = 77  # GDB_SIGNAL_REALTIME_32
    for sig in range(33, 64):
        table[sig] = 45 + sig - 33  # REALTIME_33 .. REALTIME_63
    table[64] = 78  # REALTIME_64
    return table


TO_GDB: dict[int, int] = _table()
FROM_GDB: dict[int, int] = {g: h for h, g in TO_GDB.items()}


def to_gdb(host: int) -> int:
    if host == 0:
        return 0
    return TO_GDB.get(host, GDB_UNKNOWN)


def from_gdb(gdb: int) -> int | None:
    """The Linux number for a gdb signal number; None when Linux has no such signal."""
    if gdb == 0:
        return 0
    return FROM_GDB.get(gdb)
