"""System calls made inside the program on a client's behalf: lldb's ``_M``/``_m``
(allocate and free memory for its expressions) are an mmap/munmap in the program,
as lldb-server does them.

A stopped thread lends itself: its registers are saved, a system call instruction
(``syscall``; ``int 0x80`` for i386) is put at the start of the first executable
mapping, the call's number and arguments go into the registers, one single-step runs
it, and the instruction's bytes and every register are put back. orig_rax is -1
meanwhile, so a thread stopped inside a call of its own (a blocked read) does not
restart that one instead; the saved registers bring the restart back afterwards.
All-stop: every other thread stays stopped, so none runs over the borrowed bytes.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Sequence

from ...hints import TYPE_CHECKING, signal
from . import procfs, ptrace

if TYPE_CHECKING:
    from .process import LinuxTarget

# The kernel's 64-bit struct user_regs_struct (PTRACE_GETREGS gives it for 32-bit tracees too).
USER_OFFSET = {name: 8 * i for i, name in enumerate(
    "r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs "
    "eflags rsp ss fs_base gs_base ds es fs gs".split())}
INSTRUCTION = {8: b"\x0f\x05", 4: b"\xcd\x80"}  # syscall / int 0x80
ARGUMENTS = {8: ("rdi", "rsi", "rdx", "r10", "r8", "r9"), 4: ("rbx", "rcx", "rdx", "rsi", "rdi", "rbp")}
NUMBERS = {8: {"mmap": 9, "munmap": 11}, 4: {"mmap": 192, "munmap": 91}}  # i386: mmap2
PROT = {"r": 1, "w": 2, "x": 4}
MAP_PRIVATE_ANONYMOUS = 0x22
MAX_TRIES = 8  # single-steps interrupted by a signal before the call gives up


def _put(regs: bytearray, name: str, value: int, word: int) -> None:
    value &= (1 << (8 * word)) - 1
    regs[USER_OFFSET[name] : USER_OFFSET[name] + 8] = value.to_bytes(8, "little")


def _get(regs: bytearray, name: str, word: int) -> int:
    """A register as the signed word the call returned (-errno on failure)."""
    raw = int.from_bytes(regs[USER_OFFSET[name] : USER_OFFSET[name] + word], "little")
    return raw - (1 << (8 * word)) if raw >> (8 * word - 1) else raw


def run(target: LinuxTarget, tid: int, call: str, args: Sequence[int]) -> int:
    """Make system call CALL in stopped thread TID; its result (negative: -errno)."""
    t = target.threads.get(tid)
    if t is None or not t.stopped:
        raise OSError(errno.ESRCH, "no stopped thread to make the call in")
    word = target.arch(t.pid).word
    memory = target.processes[t.pid].memory
    code = next((m.start for m in procfs.read_maps(t.pid) if m.executable), None)
    if code is None:
        raise OSError(errno.EFAULT, "no executable mapping")
    insn = INSTRUCTION[word]
    saved_regs = ptrace.getregs(t.tid)
    saved_code = memory.read(code, len(insn))
    if len(saved_code) != len(insn):
        raise OSError(errno.EFAULT, "cannot read the executable mapping")
    regs = bytearray(saved_regs)
    _put(regs, "rip", code, word)
    _put(regs, "rax", NUMBERS[word][call], word)
    _put(regs, "orig_rax", -1, 8)
    for name, value in zip(ARGUMENTS[word], args, strict=False):
        _put(regs, name, value, word)
    t.user = t.xstate = None  # the target's register caches are stale from here on
    try:
        memory.write(code, insn)
        ptrace.setregs(t.tid, regs)
        if _step(t.pid, t.tid, t.expect_sigstop):
            t.sigstop_arrived()
        return _get(ptrace.getregs(t.tid), "rax", word)
    finally:
        memory.write(code, saved_code)
        ptrace.setregs(t.tid, saved_regs)
        t.user = t.xstate = None


def _step(pid: int, tid: int, sigstop_due: bool) -> bool:
    """Single-step over the instruction; True when it swallowed our SIGSTOP that was still
    due from stopping all threads. Another signal that stops the thread first is sent
    again afterwards (reported at the next resume, not lost)."""
    again: list[int] = []
    swallowed = False
    try:
        for _ in range(MAX_TRIES):
            ptrace.singlestep(tid, 0)
            while True:
                try:
                    _, status = os.waitpid(tid, ptrace.WALL)
                    break
                except InterruptedError:
                    continue
            if not os.WIFSTOPPED(status):
                raise OSError(errno.ESRCH, "the thread ended during the call")
            sig = os.WSTOPSIG(status)
            if sig == signal.SIGTRAP and status >> 16 == 0:
                return swallowed
            if sig == signal.SIGSTOP and sigstop_due and not swallowed:
                swallowed = True
            elif status >> 16 == 0:
                again.append(sig)
        raise OSError(errno.EINTR, "the call kept being interrupted")
    finally:
        for sig in again:
            with contextlib.suppress(OSError):
                ptrace.tgkill(pid, tid, sig)


def allocate(target: LinuxTarget, tid: int, size: int, permissions: str) -> int:
    """mmap SIZE bytes of fresh private memory with PERMISSIONS ('rwx' letters)."""
    prot = 0
    for letter in permissions:
        if letter not in PROT:
            raise ValueError(f"permission {letter!r}")
        prot |= PROT[letter]
    result = run(target, tid, "mmap", [0, size, prot, MAP_PRIVATE_ANONYMOUS, -1, 0])
    if -4096 < result < 0:
        raise OSError(-result, os.strerror(-result))
    return result & ((1 << (8 * target.arch(target.threads[tid].pid).word)) - 1)


def deallocate(target: LinuxTarget, tid: int, addr: int, size: int) -> None:
    result = run(target, tid, "munmap", [addr, size])
    if result < 0:
        raise OSError(-result, os.strerror(-result))
