"""Register-table pieces shared by i386 and x86_64: SSE from the FXSAVE image,
and the XCR0-dependent features (avx, avx512, pkeys) from the XSAVE area, in
the order and numbering gdbserver gives them."""

from __future__ import annotations

from .features import AVX, AVX512, PKEYS, SSE
from .regs import Reg
from .xsave import AVX as AVX_BIT
from .xsave import FX, HI16_ZMM, OPMASK, PKRU, ZMM_HI256, Layout
from .xsave import SSE as SSE_BIT


def sse_regs(first: int, count: int) -> list[Reg]:
    """xmm0..count-1 then mxcsr."""
    regs = [
        Reg(f"xmm{i}", first + i, 16, "xstate", FX["xmm"] + 16 * i, 16, SSE, "vec128", xfeature=SSE_BIT)
        for i in range(count)
    ]
    regs.append(
        Reg("mxcsr", first + count, 4, "xstate", FX["mxcsr"], 4, SSE, "i386_mxcsr", "vector", xfeature=SSE_BIT)
    )
    return regs


def extended_regs(first: int, layout: Layout, wide: bool) -> list[Reg]:
    """avx, avx512 and pkeys registers enabled in XCR0, numbered from FIRST.

    WIDE (x86_64) brings 16 ymmh/zmmh and xmm16-31/ymm16h-31h; i386 has 8.
    """
    count = 16 if wide else 8
    regs: list[Reg] = []

    def add(name: str, size: int, offset: int, feature: str, type_: str, bit: int) -> None:
        regs.append(Reg(name, first + len(regs), size, "xstate", offset, size, feature, type_, xfeature=bit))

    if layout.has(AVX_BIT):
        base = layout.offset(2)
        for i in range(count):
            add(f"ymm{i}h", 16, base + 16 * i, AVX, "uint128", AVX_BIT)
    if layout.has(OPMASK | ZMM_HI256 | HI16_ZMM):
        hi16 = layout.offset(7)
        if wide:
            for i in range(16):
                add(f"xmm{16 + i}", 16, hi16 + 64 * i, AVX512, "vec128", HI16_ZMM)
            for i in range(16):
                add(f"ymm{16 + i}h", 16, hi16 + 64 * i + 16, AVX512, "uint128", HI16_ZMM)
        kbase = layout.offset(5)
        for i in range(8):
            add(f"k{i}", 8, kbase + 8 * i, AVX512, "uint64", OPMASK)
        zbase = layout.offset(6)
        for i in range(count):
            add(f"zmm{i}h", 32, zbase + 32 * i, AVX512, "v2ui128", ZMM_HI256)
        if wide:
            for i in range(16):
                add(f"zmm{16 + i}h", 32, hi16 + 64 * i + 32, AVX512, "v2ui128", HI16_ZMM)
    if layout.has(PKRU):
        add("pkru", 4, layout.offset(9), PKEYS, "uint32", PKRU)
    return regs
