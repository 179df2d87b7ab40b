"""The ELF file header and program headers, read with ``struct``.

The stub needs only a program's class (32/64), entry point and a few program
headers (PT_PHDR, PT_DYNAMIC) before gdb's first stop, and the section headers of a
TLS lookup (``read_sections``); pyelftools would cost more to import than the stub's
whole start-up (and parsing libc's sections with it, 0.2 s at gdb's first qSymbol after
libc loads), so these few fixed layouts are declared here (little-endian x86 only).
"""

from __future__ import annotations

import struct

from ...hints import NamedTuple

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


# (sh_name, sh_type, sh_addr, sh_offset, sh_size, sh_link) positions in Elf32_Shdr (name type
# flags addr offset size link info addralign entsize) and Elf64_Shdr (the same, some 8 bytes).
_SHDR = {ELFCLASS32: struct.Struct("<10I"), ELFCLASS64: struct.Struct("<IIQQQQIIQQ")}
SHT_SYMTAB = 2
SHT_NOBITS = 8
SHT_DYNSYM = 11


class SectionHeader(NamedTuple):
    sh_type: int
    sh_addr: int
    sh_offset: int
    sh_size: int
    sh_link: int


def read_sections(data: bytes) -> tuple[int, tuple[SectionHeader, ...]]:
    """The class (32/64) and every section header of a whole ELF file's bytes (the symbol
    tables a TLS lookup needs are found by type, so section names are not read)."""
    bits = elf_class(data[:6])
    if data[5] != ELFDATA2LSB:
        raise ELFError("not a little-endian ELF file")
    cls = ELFCLASS32 if bits == 32 else ELFCLASS64
    ehdr = _EHDR[cls]
    if len(data) < EI_NIDENT + ehdr.size:
        raise ELFError("truncated ELF header")
    fields = ehdr.unpack_from(data, EI_NIDENT)
    shoff, shentsize, shnum = fields[5], fields[10], fields[11]
    shdr = _SHDR[cls]
    if shnum and (shentsize < shdr.size or shoff + shentsize * shnum > len(data)):
        raise ELFError("bad section headers")
    sections = []
    for i in range(shnum):
        sh = shdr.unpack_from(data, shoff + i * shentsize)
        sections.append(SectionHeader(sh[1], sh[3], sh[4], sh[5], sh[6]))
    return bits, tuple(sections)
