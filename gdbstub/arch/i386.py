"""The i386 Linux register table in gdb's numbering: core (in the hardware
order eax ecx edx ebx esp ebp esi edi), sse (xmm0-7), linux (orig_eax), then
avx, avx512 and pkeys as XCR0 enables them; no segments feature.

A 64-bit tracer sees a 32-bit tracee through the 64-bit ``user_regs_struct``
(PTRACE_GETREGS): each 32-bit register is the low half of its 64-bit slot.
eax and orig_eax are sign-extended on writes, as gdb's own native code does,
so the kernel's syscall-restart logic sees -1 (orig_eax) and -ERESTART* (eax)
as the negative values they are.
"""

from __future__ import annotations

from ..hints import cache
from .extended import extended_regs, sse_regs
from .features import CORE, LINUX, target_xml
from .regs import Arch, Reg
from .x86_64 import USER_OFFSET
from .x87 import X87_CODECS, x87_regs
from .xsave import SSE, X87, Layout

# gdb's i386 register -> the 64-bit user_regs_struct slot holding it.
GENERAL = [
    ("eax", "rax"), ("ecx", "rcx"), ("edx", "rdx"), ("ebx", "rbx"),
    ("esp", "rsp"), ("ebp", "rbp"), ("esi", "rsi"), ("edi", "rdi"),
    ("eip", "rip"), ("eflags", "eflags"),
    ("cs", "cs"), ("ss", "ss"), ("ds", "ds"), ("es", "es"), ("fs", "fs"), ("gs", "gs"),
]
_TYPE = {"esp": "data_ptr", "ebp": "data_ptr", "eip": "code_ptr", "eflags": "i386_eflags"}


def _general() -> list[Reg]:
    return [
        Reg(name, i, 4, "user", USER_OFFSET[slot], 8, CORE, _TYPE.get(name, "int32"),
            signed=name == "eax")
        for i, (name, slot) in enumerate(GENERAL)
    ]


BASE_REGS: tuple[Reg, ...] = tuple(
    _general()
    + x87_regs(16, CORE)
    + sse_regs(32, 8)
    + [Reg("orig_eax", 41, 4, "user", USER_OFFSET["orig_rax"], 8, LINUX, "int", signed=True)]
)


def _xml(arch: Arch) -> str:
    return target_xml("i386", arch.regs)


@cache
def build(layout: Layout) -> Arch:
    """The table for a 32-bit program on a CPU whose XSAVE area has LAYOUT."""
    regs = BASE_REGS + tuple(extended_regs(42, layout, wide=False))
    return Arch(
        name="i386",
        word=4,
        regs=regs,
        pc="eip",
        sp="esp",
        fp="ebp",
        expedite=("ebp", "esp", "eip"),
        make_xml=_xml,
        codecs=X87_CODECS,
        xcr0=layout.xcr0,
    )


# x87 and SSE only: gdb's default 312-byte layout.
I386 = build(Layout(X87 | SSE, ()))
