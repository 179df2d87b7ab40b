"""The ELF file header and program headers, read with ``struct``.

The stub needs only a program's class (32/64), entry point and a few program
headers (PT_PHDR, PT_DYNAMIC) before gdb's first stop; pyelftools would cost
more to import than the stub's whole start-up, so these few fixed layouts are
declared here (little-endian x86 only) and pyelftools is kept for symbol tables.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

ELFCLASS32 = 1
ELFCLASS64 = 2
ELFDATA2LSB = 1
EI_NIDENT = 16

# After e_ident: e_type e_machine e_version e_entry e_phoff e_shoff e_flags e_ehsize
# e_phentsize e_phnum e_shentsize e_shnum e_shstrndx.
_EHDR = {ELFCLASS32: struct.Struct("<HHIIIIIHHHHHH"), ELFCLASS64: struct.Struct("<HHIQQQIHHHHHH")}
# (p_type, p_vaddr, p_memsz) positions in Elf32_Phdr (type offset vaddr paddr filesz memsz
# flags align) and Elf64_Phdr (type flags offset vaddr paddr filesz memsz align).
_PHDR = {ELFCLASS32: (struct.Struct("<8I"), 0, 2, 5), ELFCLASS64: (struct.Struct("<IIQQQQQQ"), 0, 3, 6)}


class ELFError(ValueError):
    """Not an ELF file this stub can read (bad magic, class or byte order, truncated)."""


class ProgramHeader(NamedTuple):
    p_type: int
    p_vaddr: int
    p_memsz: int


class ElfHeaders(NamedTuple):
    bits: int  # 32 or 64
    entry: int
    segments: tuple[ProgramHeader, ...]


def elf_class(ident: bytes) -> int:
    """32 or 64 from the first bytes of a file; ELFError when they are not ELF's."""
    if len(ident) < 6 or ident[:4] != b"\x7fELF" or ident[4] not in _EHDR:
        raise ELFError("not an ELF file")
    return 32 if ident[4] == ELFCLASS32 else 64


def read_headers(path: str) -> ElfHeaders:
    """The file header's class and entry point, and every program header."""
    with open(path, "rb") as f:
        head = f.read(64)
        bits = elf_class(head)
        if head[5] != ELFDATA2LSB:
            raise ELFError("not a little-endian ELF file")
        ehdr = _EHDR[ELFCLASS32 if bits == 32 else ELFCLASS64]
        if len(head) < EI_NIDENT + ehdr.size:
            raise ELFError("truncated ELF header")
        fields = ehdr.unpack_from(head, EI_NIDENT)
        entry, phoff, phentsize, phnum = fields[3], fields[4], fields[8], fields[9]
        phdr, i_type, i_vaddr, i_memsz = _PHDR[ELFCLASS32 if bits == 32 else ELFCLASS64]
        if phnum and phentsize < phdr.size:
            raise ELFError("bad e_phentsize")
        f.seek(phoff)
        table = f.read(phentsize * phnum)
        if len(table) < phentsize * phnum:
            raise ELFError("truncated program headers")
    segments = []
    for i in range(phnum):
        ph = phdr.unpack_from(table, i * phentsize)
        segments.append(ProgramHeader(ph[i_type], ph[i_vaddr], ph[i_memsz]))
    return ElfHeaders(bits, entry, tuple(segments))
