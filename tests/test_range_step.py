"""Range steps (vCont;r) against a real program: the stop comes at the first instruction out of
the range with the registers as they are, a breakpoint inside the range is hit there, and a step
whose PC moves past any trap reads no siginfo (the decoder's shortcut for a `next`'s steps).
Each also with SIGCHLD blocked, as the server runs the target (``sigchld_blocked``: poll awaits
the steps itself): a step blocked in a system call, or a range that never ends, still hands
back to the caller.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
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
volatile int done;
__attribute__((noinline)) void spin(void)
{
    while (!done)
        ;
}
__attribute__((noinline)) long blocker(void)
{
    long ret = 0;
#ifdef __x86_64__
    char c;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(0L), "D"(0L), "S"(&c), "d"(1L) : "rcx", "r11", "memory");
#endif
    return ret;
}
__attribute__((noinline)) long span(void)
{
    long s = 0;
    for (long i = 0; i < 40; i++)
        s += i * 3;
    return s;
}
int main(int argc, char **argv)
{
    for (;;) {
        sink += span();
        if (argc > 1) {
            sink += blocker();
            spin();
        }
    }
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
def at_span(tmp_path: Path, bits: str, awaited: bool, name: str = "span"
            ) -> Iterator[tuple[LinuxTarget, Session, Path, int, int]]:
    """The program stopped at NAME's first instruction, no breakpoint left: (target, session,
    exe, pid, the write end of its stdin). AWAITED: SIGCHLD blocked, as the server has it."""
    exe = build_program(tmp_path, bits, PROGRAM, "ranged")
    stdin_r, stdin_w = os.pipe()
    if awaited:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    target = LinuxTarget()
    target.sigchld_blocked = awaited
    pid = target.launch([str(exe), *(["loops"] if name != "span" else [])], stdio_fds=(stdin_r, 1, 2))
    os.close(stdin_r)
    if name == "spin":
        os.write(stdin_w, b"x")  # blocker's read, on the way
    try:
        yield target, run_to(target, symbol(exe, name)), exe, pid, stdin_w
    finally:
        os.close(stdin_w)
        target.close()
        end_programs([pid])
        if awaited:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})


def pc_of(reply: bytes, bits: str) -> int:
    regnum = b"10" if bits == "64" else b"08"
    found = re.search(rb";" + regnum + rb":([0-9a-f]+);", reply)
    assert found is not None, reply
    return int.from_bytes(bytes.fromhex(found.group(1).decode()), "little")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("awaited", [False, True], ids=["polled", "awaited"])
@pytest.mark.parametrize("bits", ["64", "32"])
def test_range_step_stops_past_the_range(tmp_path: Path, bits: str, awaited: bool,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with at_span(tmp_path, bits, awaited) as (target, s, exe, pid, _):
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
@pytest.mark.parametrize("awaited", [False, True], ids=["polled", "awaited"])
@pytest.mark.parametrize("bits", ["64", "32"])
def test_breakpoint_inside_the_range_is_hit(tmp_path: Path, bits: str, awaited: bool) -> None:
    with at_span(tmp_path, bits, awaited) as (target, s, exe, pid, _):
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


def poll_returns(target: LinuxTarget) -> None:
    """One poll of a range step that does not end: it comes back (bounded), with nothing."""
    began = time.monotonic()
    assert target.poll() is None
    assert time.monotonic() - began < 10  # a bound against a hang, not a timing claim
    assert target.running


@pytest.mark.timeout(120)
@pytest.mark.parametrize("awaited", [False, True], ids=["polled", "awaited"])
def test_range_step_blocked_in_a_system_call(tmp_path: Path, awaited: bool) -> None:
    """The step over `syscall` (a read of an empty pipe) does not end: poll gives up on it;
    once the read returns, its stop is reported."""
    with at_span(tmp_path, "64", awaited, "blocker") as (target, s, exe, pid, stdin_w):
        start, end = function_range(exe, "blocker")
        assert s.handle(b"vCont;r%x,%x:p%x.%x" % (start, end, pid, pid)) is None
        poll_returns(target)
        os.write(stdin_w, b"x")
        reply = s.on_stop(wait_stop(target))
        assert reply is not None and reply.startswith(b"T05"), reply  # (the system call's trap ends it)
        assert start < pc_of(reply, "64") < end


@pytest.mark.timeout(120)
@pytest.mark.parametrize("awaited", [False, True], ids=["polled", "awaited"])
def test_range_that_never_ends_is_interrupted(tmp_path: Path, awaited: bool) -> None:
    """`while (!done);`: each poll comes back after a batch of steps, so the client's ^C is
    heard; the program stops with SIGINT inside the range."""
    with at_span(tmp_path, "64", awaited, "spin") as (target, s, exe, pid, _):
        start, end = function_range(exe, "spin")
        assert s.handle(b"vCont;r%x,%x:p%x.%x" % (start, end, pid, pid)) is None
        poll_returns(target)
        poll_returns(target)
        target.interrupt()
        reply = s.on_stop(wait_stop(target))
        assert reply is not None and reply.startswith(b"T02"), reply
        assert start <= pc_of(reply, "64") < end
