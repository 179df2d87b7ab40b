"""Declarative register tables: one per architecture, feeding g/G, p/P,
expedited registers and the target description XML.

A register lives in one of the per-thread buffers a target fetches with ptrace:
``user`` (PTRACE_GETREGS, 64-bit ``user_regs_struct``) or ``xstate`` (the
XSAVE area from PTRACE_GETREGSET NT_X86_XSTATE, whose first 512 bytes are the
FXSAVE image). ``size`` is the register's width in the protocol; ``width`` the
bytes it occupies in the buffer (values are truncated or zero-extended). A
``codec`` names a conversion that is not a plain slice (see ``codecs``).

Writes to the XSAVE area also set the register's component bit in XSTATE_BV:
the kernel ignores (and resets to the initial state) every component whose
bit is clear, so a changed $ymm2 upper half would otherwise never reach the CPU.
"""

from __future__ import annotations

from ..hints import TYPE_CHECKING, Callable, NamedTuple

if TYPE_CHECKING:
    from typing import Literal

    Buffer = Literal["user", "xstate"]


class Reg(NamedTuple):
    """One register: where it sits in the g packet and in the raw buffers."""

    name: str
    regnum: int
    size: int  # bytes in the g packet
    buffer: Buffer
    offset: int
    width: int  # bytes in the buffer
    feature: str
    type: str = "int"
    group: str | None = None
    codec: str | None = None  # special conversion, see Arch.codecs
    signed: bool = False  # sign-extend when widening on writes
    xfeature: int = 0  # XSTATE_BV bit(s) a write must set so the kernel loads the value

    @property
    def bitsize(self) -> int:
        return self.size * 8


class RegBuffers:
    """The raw per-thread register state the table reads from and writes to.

    A slotted class, not a dataclass: the start-up path pays for each dataclass."""

    __slots__ = ("user", "xstate")

    def __init__(self, user: bytearray, xstate: bytearray) -> None:
        self.user = user
        self.xstate = xstate


Codec = tuple[Callable[[Reg, RegBuffers], bytes], Callable[[Reg, RegBuffers, bytes], None]]


class Arch:
    """An architecture: its register table and what goes in stop replies (built once, not
    changed after: a slotted class rather than a frozen dataclass, for start-up)."""

    __slots__ = (
        "_by_name",
        "_by_num",
        "_make_xml",
        "_xml",
        "codecs",
        "expedite",
        "fp",
        "name",
        "pc",
        "regs",
        "sp",
        "word",
        "xcr0",
    )

    def __init__(self, name: str, word: int, regs: tuple[Reg, ...], pc: str, sp: str, fp: str,
                 expedite: tuple[str, ...], make_xml: Callable[[Arch], str],
                 codecs: dict[str, Codec] | None = None, xcr0: int = 0) -> None:
        self.name = name  # gdb's architecture name
        self.word = word  # pointer size in bytes
        self.regs = regs
        self.pc = pc
        self.sp = sp
        self.fp = fp
        self.expedite = expedite
        self._make_xml = make_xml
        self._xml: str | None = None
        self.codecs: dict[str, Codec] = {} if codecs is None else codecs
        self.xcr0 = xcr0  # the XSAVE components this table was built for
        self._by_num = {r.regnum: r for r in regs}
        self._by_name = {r.name: r for r in regs}

    @property
    def features_xml(self) -> str:
        """The whole target.xml, built when first read: gdb reads the table of its program's
        CPU, not the x87+SSE defaults every start builds."""
        if self._xml is None:
            self._xml = self._make_xml(self)
        return self._xml

    def by_num(self, regnum: int) -> Reg | None:
        return self._by_num.get(regnum)

    def by_name(self, name: str) -> Reg:
        return self._by_name[name]

    @property
    def g_size(self) -> int:
        return sum(r.size for r in self.regs)

    def read(self, reg: Reg, bufs: RegBuffers) -> bytes:
        if reg.codec is not None:
            return self.codecs[reg.codec][0](reg, bufs)
        src = bufs.user if reg.buffer == "user" else bufs.xstate
        raw = bytes(src[reg.offset : reg.offset + min(reg.width, reg.size)])
        return raw.ljust(reg.size, b"\0")

    def write(self, reg: Reg, bufs: RegBuffers, value: bytes) -> None:
        if reg.xfeature:
            _set_xstate_bv(bufs.xstate, reg.xfeature)
        if reg.codec is not None:
            self.codecs[reg.codec][1](reg, bufs, value)
            return
        dst = bufs.user if reg.buffer == "user" else bufs.xstate
        if reg.width > reg.size:
            fill = b"\xff" if reg.signed and value[-1] & 0x80 else b"\0"
            value = value.ljust(reg.width, fill)
        dst[reg.offset : reg.offset + reg.width] = value[: reg.width]

    def read_all(self, bufs: RegBuffers) -> bytes:
        return b"".join(self.read(r, bufs) for r in self.regs)

    def write_all(self, bufs: RegBuffers, data: bytes) -> None:
        """Write a G packet's bytes; a short packet leaves the rest untouched."""
        pos = 0
        for reg in self.regs:
            if pos + reg.size > len(data):
                break
            self.write(reg, bufs, data[pos : pos + reg.size])
            pos += reg.size


XSTATE_BV_OFFSET = 512


def _set_xstate_bv(xstate: bytearray, bits: int) -> None:
    if len(xstate) >= XSTATE_BV_OFFSET + 8:
        bv = int.from_bytes(xstate[XSTATE_BV_OFFSET : XSTATE_BV_OFFSET + 8], "little")
        xstate[XSTATE_BV_OFFSET : XSTATE_BV_OFFSET + 8] = (bv | bits).to_bytes(8, "little")
