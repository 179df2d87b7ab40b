"""Debug-register bookkeeping: region splitting, slot sharing and exhaustion, DR7 encoding, limits.
(Writing the registers into threads is exercised by integration/test_watch.py.)"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gdbstub.arch.x86_64 import X86_64
from gdbstub.target.linux.debugregs import DebugRegisters, split_region


class Tracee:
    def __init__(self, word: int = 8) -> None:
        self.word = word

    def read_memory(self, pid: int, addr: int, length: int) -> bytes:
        return bytes(length)

    def arch(self, pid: int):  # type: ignore[no-untyped-def]
        class A:
            word = self.word

        return A if self.word == 4 else X86_64


@pytest.mark.parametrize(
    ("addr", "length", "pieces"),
    [
        (0x1000, 8, [(0x1000, 8)]),
        (0x1001, 1, [(0x1001, 1)]),
        (0x1002, 2, [(0x1002, 2)]),
        (0x1003, 8, [(0x1003, 1), (0x1004, 4), (0x1008, 2), (0x100A, 1)]),
        (0x1004, 8, [(0x1004, 4), (0x1008, 4)]),
        (0x1000, 16, [(0x1000, 8), (0x1008, 8)]),
        (0x1001, 2, [(0x1001, 1), (0x1002, 1)]),
    ],
)
def test_split_region(addr: int, length: int, pieces: list[tuple[int, int]]) -> None:
    assert split_region(addr, length) == pieces


@given(st.integers(0, 1 << 40), st.integers(1, 64))
def test_split_region_covers_exactly_with_aligned_pieces(addr: int, length: int) -> None:
    pieces = split_region(addr, length)
    pos = addr
    for start, size in pieces:
        assert start == pos and size in (1, 2, 4, 8) and start % size == 0
        pos += size
    assert pos == addr + length


def test_dr7_encoding_and_slots() -> None:
    hw = DebugRegisters(Tracee())
    assert hw.insert_breakpoint(1, 2, 0x404040, 8)  # write, 8 bytes -> slot 0
    assert hw.insert_breakpoint(1, 4, 0x404065, 1)  # access, 1 byte -> slot 1
    assert hw.insert_breakpoint(1, 1, 0x401136, 1)  # execute -> slot 2
    want = hw.procs[1].wanted
    assert want.addrs[:3] == (0x404040, 0x404065, 0x401136)
    # L0 L1 L2; slot 0: RW=01 LEN=10 (8); slot 1: RW=11 LEN=00; slot 2: RW=00 LEN=00
    assert want.dr7 == 0b010101 | (0b1001 << 16) | (0b0011 << 20)


def test_fifth_slot_refused_without_side_effects() -> None:
    hw = DebugRegisters(Tracee())
    for i in range(4):
        assert hw.insert_breakpoint(1, 2, 0x1000 + 8 * i, 4)
    before = hw.procs[1].wanted
    assert not hw.insert_breakpoint(1, 2, 0x2000, 4)
    assert not hw.insert_breakpoint(1, 1, 0x3000, 1)
    assert hw.procs[1].wanted == before
    assert hw.remove_breakpoint(1, 2, 0x1000, 4)
    assert hw.insert_breakpoint(1, 2, 0x2000, 4)


def test_region_needing_more_slots_than_free_is_refused_whole() -> None:
    hw = DebugRegisters(Tracee())
    assert hw.insert_breakpoint(1, 2, 0x1000, 8)
    assert hw.insert_breakpoint(1, 2, 0x2000, 8)
    assert not hw.insert_breakpoint(1, 2, 0x3003, 8)  # needs 4 slots, 2 free
    assert sum(s is not None for s in hw.procs[1].slots) == 2
    assert hw.insert_breakpoint(1, 2, 0x3000, 16)  # two aligned 8-byte pieces fit


def test_shared_slots_are_counted() -> None:
    hw = DebugRegisters(Tracee())
    assert hw.insert_breakpoint(1, 3, 0x1000, 4)  # read and access share an access slot
    assert hw.insert_breakpoint(1, 4, 0x1000, 4)
    assert sum(s is not None for s in hw.procs[1].slots) == 1
    assert hw.remove_breakpoint(1, 3, 0x1000, 4)
    assert hw.procs[1].wanted.dr7 != 0
    assert hw.remove_breakpoint(1, 4, 0x1000, 4)
    assert hw.procs[1].wanted.dr7 == 0
    assert not hw.remove_breakpoint(1, 4, 0x1000, 4)  # nothing left to remove


def test_reinsert_reuses_the_same_slot() -> None:
    """gdb sends z2/Z2 at every stop: the registers must come out identical (no thread update)."""
    hw = DebugRegisters(Tracee())
    assert hw.insert_breakpoint(1, 2, 0x1000, 4)
    assert hw.insert_breakpoint(1, 2, 0x2000, 4)
    before = hw.procs[1].wanted
    assert hw.remove_breakpoint(1, 2, 0x1000, 4)
    assert hw.remove_breakpoint(1, 2, 0x2000, 4)
    assert hw.insert_breakpoint(1, 2, 0x2000, 4)
    assert hw.insert_breakpoint(1, 2, 0x1000, 4)
    assert hw.procs[1].wanted == before


@pytest.mark.parametrize(
    ("word", "type_", "addr", "kind"),
    [
        (8, 2, 0x1000, 0),  # empty region
        (8, 2, 0x1000, 33),  # more than four 8-byte slots
        (8, 2, 0x7FFFFFFFF000, 8),  # kernel half
        (8, 2, (1 << 64) - 8, 8),
        (4, 2, 0xFFFFFFFE, 4),  # beyond a 32-bit address space
        (8, 9, 0x1000, 1),  # not a watchpoint type
    ],
)
def test_refused_regions(word: int, type_: int, addr: int, kind: int) -> None:
    hw = DebugRegisters(Tracee(word))
    if type_ not in hw.supported_types():
        return
    assert not hw.insert_breakpoint(1, type_, addr, kind)
    assert 1 not in hw.procs or hw.procs[1].wanted.dr7 == 0


def test_process_state_is_separate_and_cleared() -> None:
    hw = DebugRegisters(Tracee())
    assert hw.insert_breakpoint(1, 2, 0x1000, 4)
    assert hw.insert_breakpoint(2, 2, 0x1000, 4)
    hw.clear_process(1)
    assert 1 not in hw.procs and hw.procs[2].wanted.dr7
    hw.exec_process(2)
    assert not hw.procs
    assert not hw.armed(12345) and hw.stop_reason(12345) is None
