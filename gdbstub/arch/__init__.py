"""Per-architecture register tables, chosen from the inferior's ELF header
(i386 or x86_64) and from the XCR0 its XSAVE area reports (which of avx,
avx512, pkeys exist)."""

from __future__ import annotations

from . import x86_64
from .regs import Arch
from .xsave import layout, xcr0_of


def elf_class(path: str) -> int:
    """32 or 64, from the ELF header; 64 when unreadable."""
    from ..target.linux.elf import ELFError
    from ..target.linux.elf import elf_class as ident_class

    try:
        with open(path, "rb") as f:
            return ident_class(f.read(16))
    except (OSError, ELFError):
        return 64


def arch_for(bits: int, xstate: bytes | bytearray) -> Arch:
    """The table for a BITS-bit program whose NT_X86_XSTATE buffer is XSTATE."""
    lay = layout(xcr0_of(xstate), len(xstate))
    if bits == 32:
        from . import i386  # only 32-bit programs need its tables

        return i386.build(lay)
    return x86_64.build(lay)


def read_xstate(tid: int) -> bytes:
    """The thread's XSAVE area (empty when ptrace cannot give it)."""
    from ..target.linux import ptrace

    try:
        return bytes(ptrace.getxstate(tid))
    except OSError:
        return b""


def without_xml(arch: Arch) -> Arch:
    """The table for a client that read no target description (no xmlRegisters=i386 in
    qSupported): gdb then assumes its built-in 560-byte amd64 / 312-byte i386 layouts, and
    gdbserver serves exactly those (core, sse, linux[, segments])."""
    if arch.word == 4:
        from . import i386

        return i386.I386
    return x86_64.X86_64


def detect_arch(pid: int, xstate: bytes | bytearray | None = None) -> Arch:
    """The register table for a live, ptrace-stopped process (/proc/PID/exe, XCR0)."""
    if xstate is None:
        xstate = read_xstate(pid)
    bits = elf_class(f"/proc/{pid}/exe")
    if not xstate:
        return arch_for(bits, b"") if bits == 32 else x86_64.X86_64
    return arch_for(bits, xstate)
