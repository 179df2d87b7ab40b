"""Per-architecture register tables, chosen from the inferior's ELF header."""

from __future__ import annotations

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from .regs import Arch
from .x86_64 import X86_64

ARCHES: dict[int, Arch] = {64: X86_64}


def elf_class(path: str) -> int:
    """32 or 64, from the ELF header (pyelftools); 64 when unreadable."""
    try:
        with open(path, "rb") as f:
            return int(ELFFile(f).elfclass)
    except (OSError, ELFError):
        return 64


def detect_arch(pid: int) -> Arch:
    """The register table for a live process, from /proc/PID/exe."""
    return ARCHES.get(elf_class(f"/proc/{pid}/exe"), X86_64)
