"""Range steps (vCont;r) against a real program: the stop comes at the first instruction out of
the range with the registers as they are, a breakpoint inside the range is hit there, and a step
whose PC moves past any trap reads no siginfo (the decoder's shortcut for a `next`'s steps).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_fuzz_session import build_program, end_programs, symbol
from test_stop_race import run_to, wait_stop

from gdbstub.protocol.session import Session
from gdbstub.target.linux import ptrace
from gdbstub.target.linux.process import LinuxTarget

PROGRAM = r"""
volatile long sink;
__attribute__((noinline)) long span(void)
{
    long s = 0;
    for (long i = 0; i < 40; i++)
        s += i * 3;
    return s;
}
int main(void)
{
    for (;;)
        sink += span();
}
"""


def function_range(exe: Path, name: str | None = None, pc: int = 0) -> tuple[int, int]:
    """The [start, end) of function NAME, or of the function that holds PC."""
    from elftools.elf.elffile import ELFFile

    with exe.open("rb") as f:
        for sym in ELFFile(f).get_section_by_name(".symtab").iter_symbols():
            start, size = int(sym["st_value"]), int(sym["st_size"]) or 4  # (the 32-bit thunk's size is 0)
            if sym["st_info"]["type"] == "STT_FUNC" and (sym.name == name if name else start <= pc < start + size):
                return start, start + size
    raise AssertionError(f"no function {name or hex(pc)}")


@contextlib.contextmanager
def at_span(tmp_path: Path, bits: str) -> Iterator[tuple[LinuxTarget, Session, Path, int]]:
    """The program stopped at span's first instruction, no breakpoint left: (target, session, exe, pid)."""
    exe = build_program(tmp_path, bits, PROGRAM, "ranged")
    target = LinuxTarget()
    pid = target.launch([str(exe)])
    try:
        yield target, run_to(target, symbol(exe, "span")), exe, pid
    finally:
        target.close()
        end_programs([pid])


def pc_of(reply: bytes, bits: str) -> int:
    regnum = b"10" if bits == "64" else b"08"
    found = re.search(rb";" + regnum + rb":([0-9a-f]+);", reply)
    assert found is not None, reply
    return int.from_bytes(bytes.fromhex(found.group(1).decode()), "little")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("bits", ["64", "32"])
def test_range_step_stops_past_the_range(tmp_path: Path, bits: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with at_span(tmp_path, bits) as (target, s, exe, pid):
        start, _ = function_range(exe, "span")
        main_start, main_end = function_range(exe, "main")
        reads: list[int] = []
        getsiginfo = ptrace.getsiginfo
        monkeypatch.setattr(ptrace, "getsiginfo", lambda tid: reads.append(tid) or getsiginfo(tid))
        steps: list[int] = []
        resume = ptrace.resume
        monkeypatch.setattr(ptrace, "resume", lambda req, tid, sig: steps.append(req) or resume(req, tid, sig))
        # Each function's own range, as gdb's `step` would: 32-bit code calls a thunk first.
        pc, ranges = start, 0
        while not main_start <= pc < main_end:
            assert ranges < 4, hex(pc)
            ranges += 1
            low, high = function_range(exe, pc=pc)
            assert s.handle(b"vCont;r%x,%x:p%x.%x" % (low, high, pid, pid)) is None
            reply = s.on_stop(wait_stop(target))
            assert reply is not None and reply.startswith(b"T05") and b"swbreak" not in reply, reply
            pc = pc_of(reply, bits)
            assert not low <= pc < high
        # The registers the stop kept are the thread's own.
        kept = s.handle(b"g")
        target.threads[pid].user = None
        assert s.handle(b"g") == kept
        # The loop's 40 rounds are stepped one instruction at a time; only the steps that
        # moved the PC by 1 or 2 bytes (an int3's or a system call's size) asked for siginfo.
        assert len(steps) > 200, len(steps)
        assert len(reads) < len(steps) // 2


@pytest.mark.timeout(120)
@pytest.mark.parametrize("bits", ["64", "32"])
def test_breakpoint_inside_the_range_is_hit(tmp_path: Path, bits: str) -> None:
    with at_span(tmp_path, bits) as (target, s, exe, pid):
        start, end = function_range(exe, "span")
        # An instruction inside the loop: the range's steps reach it on the first round.
        assert s.handle(b"vCont;r%x,%x:p%x.%x" % (start, start + 1, pid, pid)) is None
        first = pc_of(s.on_stop(wait_stop(target)) or b"", bits)
        assert s.handle(b"vCont;s:p%x.%x" % (pid, pid)) is None
        inside = pc_of(s.on_stop(wait_stop(target)) or b"", bits)
        assert start < first < inside < end
        assert s.handle(b"Z0,%x,1" % inside) == b"OK"
        assert s.handle(b"vCont;r%x,%x:p%x.%x" % (first, end, pid, pid)) is None
        reply = s.on_stop(wait_stop(target))
        assert reply is not None and b"swbreak" in reply and pc_of(reply, bits) == inside, reply
