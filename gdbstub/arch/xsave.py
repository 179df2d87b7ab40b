"""The XSAVE area as PTRACE_GETREGSET(NT_X86_XSTATE) returns it.

Its first 512 bytes are the FXSAVE image (x87, MXCSR, xmm0-15), bytes 464-471
hold the XCR0 the kernel enabled, and bytes 512-575 the XSAVE header whose
XSTATE_BV says which components the buffer really carries. The extended
components (AVX upper halves, AVX-512 masks and upper halves, PKRU) sit at
offsets the CPU reports with CPUID leaf 0xD: Intel leaves a gap for MPX, AMD
Zen does not, so the offsets are asked of the CPU, never assumed (gdbserver
13 assumes Intel's and shows wrong AVX-512 values on AMD).

The layouts are declared with construct (built on first use); the register
tables take their offsets from plain tables that a test checks against them.
"""

from __future__ import annotations

import mmap

from .. import ffi as ctypes  # ctypes names without the ctypes package
from ..hints import TYPE_CHECKING, NamedTuple, cache

if TYPE_CHECKING:
    from construct import Construct, Struct

# XCR0 / XSTATE_BV bits (state components).
X87 = 1 << 0
SSE = 1 << 1
AVX = 1 << 2
BNDREGS = 1 << 3
BNDCSR = 1 << 4
OPMASK = 1 << 5
ZMM_HI256 = 1 << 6
HI16_ZMM = 1 << 7
PKRU = 1 << 9
AVX512 = OPMASK | ZMM_HI256 | HI16_ZMM

XCR0_OFFSET = 464  # in the FXSAVE image's software-reserved bytes
XSTATE_BV_OFFSET = 512
LEGACY_SIZE = 576  # FXSAVE (512) and the XSAVE header (64)

# Byte offsets of the FXSAVE fields, as the construct declaration FXSAVE (in declarations())
# lays them out: importing construct costs more than the stub's whole start, so the register
# tables read them from here and a test checks the two agree.
FX: dict[str, int] = {
    "fctrl": 0, "fstat": 2, "ftag": 4, "fop": 6, "fioff": 8, "fiseg": 12, "fooff": 16,
    "foseg": 20, "mxcsr": 24, "mxcsr_mask": 28, "st": 32, "xmm": 160, "xcr0": 464,
}

# The extended components: bit -> (name, size in bytes); declared in declarations().
COMPONENTS: dict[int, tuple[str, int]] = {
    2: ("ymmh", 256),
    5: ("k", 64),
    6: ("zmmh", 512),
    7: ("hi16_zmm", 1024),
    9: ("pkru", 8),
}
# Intel's layout (with the MPX gap): what gdb 13 assumes everywhere.
INTEL_OFFSETS = {2: 576, 5: 1088, 6: 1152, 7: 1664, 9: 2688}
# AMD Zen's (no MPX components).
AMD_OFFSETS = {2: 576, 5: 832, 6: 896, 7: 1408, 9: 2432}


@cache
def declarations() -> dict[str, Construct]:
    """The construct declarations of FXSAVE, the XSAVE header and each extended component
    (by name), built on first use (tests, Layout.struct)."""
    from construct import Array, Bytes, Int8ul, Int16ul, Int32ul, Int64ul, Padding
    from construct import Struct as CStruct

    # FXSAVE as the kernel stores it (the 32-bit FPU pointer form gdb shows).
    fxsave = CStruct(
        "fctrl" / Int16ul,
        "fstat" / Int16ul,
        "ftag" / Int8ul,  # abridged: one bit per physical register
        Padding(1),
        "fop" / Int16ul,
        "fioff" / Int32ul,
        "fiseg" / Int16ul,
        Padding(2),
        "fooff" / Int32ul,
        "foseg" / Int16ul,
        Padding(2),
        "mxcsr" / Int32ul,
        "mxcsr_mask" / Int32ul,
        "st" / Array(8, Bytes(16)),  # 80-bit values, 6 bytes padding each
        "xmm" / Array(16, Bytes(16)),
        Padding(48),
        "xcr0" / Int64ul,  # sw_reserved[0..7]: the kernel's XCR0, for debuggers
        Padding(40),
    )
    header = CStruct("xstate_bv" / Int64ul, "xcomp_bv" / Int64ul, Padding(48))
    return {
        "fxsave": fxsave,
        "header": header,
        "ymmh": Array(16, Bytes(16)),
        "k": Array(8, Int64ul),
        "zmmh": Array(16, Bytes(32)),
        "hi16_zmm": Array(16, Bytes(64)),
        "pkru": CStruct("pkru" / Int32ul, Padding(4)),
    }


def field_offset(struct: Struct, name: str) -> int:
    """Byte offset of a named field in a fixed-size construct Struct."""
    offset = 0
    for sub in struct.subcons:
        if sub.name == name:
            return offset
        offset += sub.sizeof()
    raise KeyError(name)


class Layout(NamedTuple):
    """Where each enabled extended component lives in this CPU's XSAVE area (a NamedTuple:
    hashable for the register-table cache, and no dataclass cost at start-up)."""

    xcr0: int
    offsets: tuple[tuple[int, int], ...]  # (component bit, offset), ascending

    def offset(self, component: int) -> int:
        return dict(self.offsets)[component]

    def has(self, mask: int) -> bool:
        return self.xcr0 & mask == mask

    @property
    def struct(self) -> Struct:
        """The whole XSAVE area as one construct declaration."""
        from construct import Padding
        from construct import Struct as CStruct

        decl = declarations()
        fields: list[Construct] = ["fxsave" / decl["fxsave"], "header" / decl["header"]]
        pos = LEGACY_SIZE
        for bit, offset in self.offsets:
            name, size = COMPONENTS[bit]
            if offset > pos:
                fields.append(Padding(offset - pos))
            fields.append(name / decl[name])
            pos = offset + size
        return CStruct(*fields)

    @property
    def size(self) -> int:
        return max([LEGACY_SIZE] + [offset + COMPONENTS[bit][1] for bit, offset in self.offsets])


# --- CPUID, the CPU's own answer ------------------------------------------------------

# cpuid(leaf=edi, subleaf=esi, out=rdx): push rbx; mov eax,edi; mov ecx,esi; mov r8,rdx;
# cpuid; mov [r8],eax; mov [r8+4],ebx; mov [r8+8],ecx; mov [r8+12],edx; pop rbx; ret
_CPUID_CODE = bytes.fromhex("5389f889f14989d00fa2418900418958044189480841895 00c5bc3".replace(" ", ""))
_Regs4 = ctypes.c_uint32 * 4
_cpuid_page: mmap.mmap | None = None


def cpuid(leaf: int, subleaf: int = 0) -> tuple[int, int, int, int]:
    """eax, ebx, ecx, edx of the CPUID instruction (run from an executable page)."""
    global _cpuid_page
    if _cpuid_page is None:
        page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        page.write(_CPUID_CODE)
        _cpuid_page = page
    address = ctypes.addressof(ctypes.c_char.from_buffer(_cpuid_page))
    func = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(_Regs4))(address)
    out = _Regs4()
    func(leaf, subleaf, ctypes.pointer(out))
    return out[0], out[1], out[2], out[3]


def _cpu_offsets(xcr0: int) -> dict[int, int] | None:
    try:
        if cpuid(0)[0] < 0xD:
            return None
        offsets = {bit: cpuid(0xD, bit)[1] for bit in COMPONENTS if xcr0 & (1 << bit)}
    except (OSError, ValueError):
        return None
    return offsets if all(offsets.values()) else None


def guess_offsets(xcr0: int, size: int) -> dict[int, int]:
    """Without CPUID: Intel's layout unless it cannot fit in SIZE bytes (then AMD's)."""
    wanted = [bit for bit in COMPONENTS if xcr0 & (1 << bit)]
    end = max((INTEL_OFFSETS[b] + COMPONENTS[b][1] for b in wanted), default=0)
    table = INTEL_OFFSETS if end <= size or not size else AMD_OFFSETS
    return {b: table[b] for b in wanted}


@cache
def layout(xcr0: int, size: int = 0) -> Layout:
    """The XSAVE layout for XCR0 on this CPU (CPUID; a size-based guess if that fails)."""
    offsets = _cpu_offsets(xcr0) or guess_offsets(xcr0, size)
    return Layout(xcr0, tuple(sorted(offsets.items())))


def xcr0_of(xstate: bytes | bytearray) -> int:
    """XCR0 as the kernel reports it in a NT_X86_XSTATE buffer (x87|SSE when absent)."""
    if len(xstate) < XCR0_OFFSET + 8:
        return X87 | SSE
    return int.from_bytes(xstate[XCR0_OFFSET : XCR0_OFFSET + 8], "little") or (X87 | SSE)
