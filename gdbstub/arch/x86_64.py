"""The x86_64 Linux register table in gdb's numbering: core, sse, linux,
segments, then whatever XCR0 enables (avx, avx512, pkeys), mapped onto
``user_regs_struct`` and the XSAVE area."""

from __future__ import annotations

from ..hints import cache
from .extended import extended_regs, sse_regs
from .features import AVX512_64_TYPES, CORE, LINUX, SEGMENTS, target_xml
from .regs import Arch, Reg
from .x87 import X87_CODECS, x87_regs
from .xsave import SSE, X87, Layout

# Offsets of the fields in the kernel's 64-bit struct user_regs_struct.
USER_REGS = (
    "r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs "
    "eflags rsp ss fs_base gs_base ds es fs gs"
).split()
USER_OFFSET = {name: i * 8 for i, name in enumerate(USER_REGS)}
USER_REGS_SIZE = len(USER_REGS) * 8

GENERAL = "rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15".split()
_PTR_TYPE = {"rbp": "data_ptr", "rsp": "data_ptr"}


def _general() -> list[Reg]:
    regs = [
        Reg(n, i, 8, "user", USER_OFFSET[n], 8, CORE, _PTR_TYPE.get(n, "int64"))
        for i, n in enumerate(GENERAL)
    ]
    regs.append(Reg("rip", 16, 8, "user", USER_OFFSET["rip"], 8, CORE, "code_ptr"))
    regs.append(Reg("eflags", 17, 4, "user", USER_OFFSET["eflags"], 8, CORE, "i386_eflags"))
    for i, n in enumerate("cs ss ds es fs gs".split()):
        regs.append(Reg(n, 18 + i, 4, "user", USER_OFFSET[n], 8, CORE, "int32"))
    return regs


BASE_REGS: tuple[Reg, ...] = tuple(
    _general()
    + x87_regs(24, CORE)
    + sse_regs(40, 16)
    + [
        Reg("orig_rax", 57, 8, "user", USER_OFFSET["orig_rax"], 8, LINUX, "int"),
        Reg("fs_base", 58, 8, "user", USER_OFFSET["fs_base"], 8, SEGMENTS, "int"),
        Reg("gs_base", 59, 8, "user", USER_OFFSET["gs_base"], 8, SEGMENTS, "int"),
    ]
)


def _xml(arch: Arch) -> str:
    return target_xml("i386:x86-64", arch.regs, AVX512_64_TYPES)


@cache
def build(layout: Layout) -> Arch:
    """The table for a CPU whose XSAVE area has LAYOUT (XCR0 and offsets)."""
    regs = BASE_REGS + tuple(extended_regs(60, layout, wide=True))
    return Arch(
        name="i386:x86-64",
        word=8,
        regs=regs,
        pc="rip",
        sp="rsp",
        fp="rbp",
        expedite=("rbp", "rsp", "rip"),
        make_xml=_xml,
        codecs=X87_CODECS,
        xcr0=layout.xcr0,
    )


# x87 and SSE only: gdb's default 560-byte layout, for a process not yet known.
X86_64 = build(Layout(X87 | SSE, ()))
REGS = X86_64.regs
