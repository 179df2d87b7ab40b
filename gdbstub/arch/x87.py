"""x87 registers as gdb shows them, from the FXSAVE image (the first 512 bytes
of the XSAVE area). The layout is the same for 32- and 64-bit programs.

FXSAVE keeps an abridged tag word (one bit per physical register); gdb's
``ftag`` is the full two-bit form, rebuilt from the register contents.
"""

from __future__ import annotations

from .regs import Codec, Reg, RegBuffers
from .xsave import FX, X87

FCW, FSW, FTW, FOP = FX["fctrl"], FX["fstat"], FX["ftag"], FX["fop"]
FIOFF, FISEG, FOOFF, FOSEG = FX["fioff"], FX["fiseg"], FX["fooff"], FX["foseg"]
MXCSR, ST0 = FX["mxcsr"], FX["st"]


def _tag(raw: bytes) -> int:
    """Classify an 80-bit value: 0 valid, 1 zero, 2 special (gdb's i387_tag)."""
    integer = raw[7] & 0x80
    exponent = ((raw[9] & 0x7F) << 8) | raw[8]
    fraction_zero = not any(raw[0:7]) and not raw[7] & 0x7F
    if exponent == 0x7FFF:
        return 2
    if exponent == 0:
        return 1 if fraction_zero and not integer else 2
    return 0 if integer else 2


def _read_ftag(reg: Reg, bufs: RegBuffers) -> bytes:
    fx = bufs.xstate
    abridged = fx[FTW]
    top = (int.from_bytes(fx[FSW : FSW + 2], "little") >> 11) & 7
    ftag = 0
    for phys in range(8):
        if abridged & (1 << phys):
            st = (phys + 8 - top) % 8
            tag = _tag(bytes(fx[ST0 + 16 * st : ST0 + 16 * st + 10]))
        else:
            tag = 3
        ftag |= tag << (2 * phys)
    return ftag.to_bytes(4, "little")


def _write_ftag(reg: Reg, bufs: RegBuffers, value: bytes) -> None:
    ftag = int.from_bytes(value[:4], "little")
    bufs.xstate[FTW] = sum(1 << i for i in range(8) if (ftag >> (2 * i)) & 3 != 3)


def _read_fop(reg: Reg, bufs: RegBuffers) -> bytes:
    return (int.from_bytes(bufs.xstate[FOP : FOP + 2], "little") & 0x7FF).to_bytes(4, "little")


def _write_fop(reg: Reg, bufs: RegBuffers, value: bytes) -> None:
    fop = int.from_bytes(value[:4], "little") & 0x7FF
    bufs.xstate[FOP : FOP + 2] = fop.to_bytes(2, "little")


X87_CODECS: dict[str, Codec] = {
    "ftag": (_read_ftag, _write_ftag),
    "fop": (_read_fop, _write_fop),
}


def x87_regs(first: int, feature: str) -> list[Reg]:
    """st0-st7 then fctrl fstat ftag fiseg fioff foseg fooff fop, from ``first``."""
    regs = [
        Reg(f"st{i}", first + i, 10, "xstate", ST0 + 16 * i, 10, feature, "i387_ext", xfeature=X87)
        for i in range(8)
    ]
    control = [
        ("fctrl", FCW, 2, None),
        ("fstat", FSW, 2, None),
        ("ftag", FTW, 1, "ftag"),
        ("fiseg", FISEG, 2, None),
        ("fioff", FIOFF, 4, None),
        ("foseg", FOSEG, 2, None),
        ("fooff", FOOFF, 4, None),
        ("fop", FOP, 2, "fop"),
    ]
    for i, (name, off, width, codec) in enumerate(control):
        regs.append(
            Reg(name, first + 8 + i, 4, "xstate", off, width, feature, "int", "float", codec, xfeature=X87)
        )
    return regs
