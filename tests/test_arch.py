"""Register tables: layout, packing, the i386 mapping onto user_regs_struct,
x87 codecs, XSTATE_BV on writes, target.xml as gdbserver sends it, siginfo."""

from __future__ import annotations

import signal
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdbstub.arch import arch_for, i386, without_xml, x86_64
from gdbstub.arch.regs import Arch, RegBuffers
from gdbstub.arch.xsave import (
    AMD_OFFSETS,
    AVX,
    AVX512,
    COMPONENTS,
    FX,
    INTEL_OFFSETS,
    LEGACY_SIZE,
    SSE,
    X87,
    XCR0_OFFSET,
    XSTATE_BV_OFFSET,
    Layout,
    declarations,
    field_offset,
    guess_offsets,
)
from gdbstub.protocol import siginfo
from gdbstub.protocol.registry import new_session
from gdbstub.target.linux.process import LinuxTarget

DATA = Path(__file__).parent / "data"
USER = x86_64.USER_OFFSET


def amd_layout(xcr0: int) -> Layout:
    return Layout(xcr0, tuple(sorted(guess_offsets(xcr0, 2432).items())))


def intel_layout(xcr0: int) -> Layout:
    return Layout(xcr0, tuple(sorted(guess_offsets(xcr0, 4096).items())))


def buffers(size: int = 2432, xcr0: int = X87 | SSE | AVX | AVX512) -> RegBuffers:
    xstate = bytearray(size)
    xstate[XCR0_OFFSET : XCR0_OFFSET + 8] = xcr0.to_bytes(8, "little")
    return RegBuffers(bytearray(216), xstate)


def xstate_bv(bufs: RegBuffers) -> int:
    return int.from_bytes(bufs.xstate[XSTATE_BV_OFFSET : XSTATE_BV_OFFSET + 8], "little")


# --- sizes and numbering --------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "xcr0", "size"),
    [
        (x86_64.build, X87 | SSE, 560),
        (x86_64.build, X87 | SSE | AVX, 816),
        (x86_64.build, X87 | SSE | AVX | AVX512, 2416),
        (i386.build, X87 | SSE, 312),
        (i386.build, X87 | SSE | AVX, 440),
        (i386.build, X87 | SSE | AVX | AVX512, 760),
    ],
)
def test_g_packet_sizes(build, xcr0, size):
    """gdb's own sizes: 560/312 bytes without a description, +AVX, +AVX-512 (as gdbserver's g reply)."""
    arch = build(amd_layout(xcr0))
    assert arch.g_size == size
    assert [r.regnum for r in arch.regs] == list(range(len(arch.regs)))


def test_i386_numbering_and_expedite():
    arch = i386.I386
    names = [r.name for r in arch.regs]
    assert names[:10] == "eax ecx edx ebx esp ebp esi edi eip eflags".split()
    assert names[16] == "st0" and names[24] == "fctrl" and names[32] == "xmm0" and names[40] == "mxcsr"
    assert names[41] == "orig_eax" and "fs_base" not in names
    assert [arch.by_name(n).regnum for n in arch.expedite] == [5, 4, 8]
    assert [x86_64.X86_64.by_name(n).regnum for n in x86_64.X86_64.expedite] == [6, 7, 16]


@pytest.mark.parametrize(
    ("bits", "reference"),
    [(64, "gdbserver-x86_64-avx512.xml"), (32, "gdbserver-i386-avx512.xml")],
)
def test_target_xml_is_gdbservers(bits, reference):
    """Byte for byte what gdbserver 13 sent for the same XCR0 (captured on this machine kind)."""
    arch = arch_for(bits, buffers().xstate)
    assert arch.features_xml == (DATA / reference).read_text()


def test_pkeys_feature_after_avx512():
    arch = x86_64.build(intel_layout(X87 | SSE | AVX | AVX512 | (1 << 9)))
    pkru = arch.by_name("pkru")
    assert pkru.regnum == 148 and pkru.offset == INTEL_OFFSETS[9]
    assert '<feature name="org.gnu.gdb.i386.pkeys">' in arch.features_xml


# --- the i386 mapping onto the 64-bit user_regs_struct -------------------------------


def test_i386_general_registers_live_in_the_64bit_slots():
    arch, bufs = i386.I386, buffers()
    bufs.user[USER["rcx"] : USER["rcx"] + 8] = (0xFFFFFFFF_12345678).to_bytes(8, "little")
    assert arch.read(arch.by_name("ecx"), bufs) == (0x12345678).to_bytes(4, "little")
    arch.write(arch.by_name("ecx"), bufs, (0xFFFFFFF0).to_bytes(4, "little"))
    assert bufs.user[USER["rcx"] : USER["rcx"] + 8] == (0xFFFFFFF0).to_bytes(8, "little")  # zero-extended


@pytest.mark.parametrize(("name", "slot"), [("eax", "rax"), ("orig_eax", "orig_rax")])
def test_i386_eax_and_orig_eax_are_sign_extended(name, slot):
    """gdb writes orig_eax = -1 when it moves the PC; the kernel must see a 64-bit -1."""
    arch, bufs = i386.I386, buffers()
    arch.write(arch.by_name(name), bufs, b"\xff" * 4)
    assert bufs.user[USER[slot] : USER[slot] + 8] == b"\xff" * 8
    arch.write(arch.by_name(name), bufs, (5).to_bytes(4, "little"))
    assert bufs.user[USER[slot] : USER[slot] + 8] == (5).to_bytes(8, "little")


def test_i386_g_packet_order():
    arch, bufs = i386.I386, buffers()
    for i, slot in enumerate("rax rcx rdx rbx rsp rbp rsi rdi rip eflags".split()):
        bufs.user[USER[slot] : USER[slot] + 8] = (0x1000 + i).to_bytes(8, "little")
    g = arch.read_all(bufs)
    assert struct.unpack_from("<10I", g) == tuple(0x1000 + i for i in range(10))


# --- x87 ------------------------------------------------------------------------------


def test_ftag_full_form_from_the_abridged_one():
    arch, bufs = x86_64.X86_64, buffers()
    fx = bufs.xstate
    fx[2:4] = (6 << 11).to_bytes(2, "little")  # TOP = 6: st0 is physical register 6
    fx[4] = 0b1100_0000  # physical 6 and 7 in use
    fx[32 : 32 + 10] = struct.pack("<QH", 0xC000000000000000, 0x3FFF)  # st0 = 1.5: valid
    # st1 (physical 7) = +0.0: zero
    ftag = int.from_bytes(arch.read(arch.by_name("ftag"), bufs), "little")
    assert ftag == 0x0FFF | (0 << 12) | (1 << 14)
    arch.write(arch.by_name("ftag"), bufs, (0xFFFF & ~(3 << 4)).to_bytes(4, "little"))
    assert fx[4] == 0b0000_0100


def test_fop_is_11_bits_and_st_regs_are_80_bits():
    arch, bufs = x86_64.X86_64, buffers()
    arch.write(arch.by_name("fop"), bufs, (0xFFFF).to_bytes(4, "little"))
    assert arch.read(arch.by_name("fop"), bufs) == (0x7FF).to_bytes(4, "little")
    arch.write(arch.by_name("st3"), bufs, bytes(range(10)))
    assert bufs.xstate[32 + 48 : 32 + 58] == bytes(range(10))
    assert arch.by_name("st3").size == 10


# --- XSAVE components and XSTATE_BV ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "bit"),
    [("st0", X87), ("fctrl", X87), ("xmm1", SSE), ("mxcsr", SSE), ("ymm2h", AVX),
     ("k1", 1 << 5), ("zmm3h", 1 << 6), ("xmm17", 1 << 7), ("ymm20h", 1 << 7), ("zmm31h", 1 << 7)],
)
def test_xstate_writes_set_their_component_bit(name, bit):
    """The kernel ignores a component whose XSTATE_BV bit is clear, so a write must set it."""
    arch = arch_for(64, buffers().xstate)
    bufs = buffers()
    arch.write(arch.by_name(name), bufs, b"\x01" * arch.by_name(name).size)
    assert xstate_bv(bufs) == bit


@pytest.mark.parametrize("make", [amd_layout, intel_layout])
def test_extended_offsets_follow_the_layout_declaration(make):
    """Table offsets agree with the construct declaration of the whole XSAVE area."""
    lay = make(X87 | SSE | AVX | AVX512)
    arch = x86_64.build(lay)
    raw = bytearray(lay.size)
    for reg in arch.regs:
        if reg.buffer == "xstate" and reg.codec is None:
            raw[reg.offset : reg.offset + reg.width] = bytes([reg.regnum]) * reg.width
    parsed = lay.struct.parse(bytes(raw))
    assert parsed.k[1] == int.from_bytes(bytes([arch.by_name("k1").regnum]) * 8, "little")
    assert parsed.ymmh[2] == bytes([arch.by_name("ymm2h").regnum]) * 16
    assert parsed.zmmh[3] == bytes([arch.by_name("zmm3h").regnum]) * 32
    hi = parsed.hi16_zmm[1]
    assert hi[:16] == bytes([arch.by_name("xmm17").regnum]) * 16
    assert hi[16:32] == bytes([arch.by_name("ymm17h").regnum]) * 16
    assert hi[32:] == bytes([arch.by_name("zmm17h").regnum]) * 32
    assert parsed.fxsave.xmm[5] == bytes([arch.by_name("xmm5").regnum]) * 16


def test_plain_tables_follow_the_construct_declarations():
    """FX offsets and component sizes are copies (construct is not imported at start-up)."""
    decl = declarations()
    fxsave = decl["fxsave"]
    assert FX == {sub.name: field_offset(fxsave, sub.name) for sub in fxsave.subcons if sub.name}
    assert FX["xcr0"] == XCR0_OFFSET and fxsave.sizeof() == 512
    assert LEGACY_SIZE == fxsave.sizeof() + decl["header"].sizeof()
    assert {bit: (name, decl[name].sizeof()) for bit, (name, _) in COMPONENTS.items()} == COMPONENTS


def test_layout_guess_without_cpuid():
    full = X87 | SSE | AVX | AVX512
    assert guess_offsets(full, 2432) == {b: AMD_OFFSETS[b] for b in (2, 5, 6, 7)}
    assert guess_offsets(full, 2688) == {b: INTEL_OFFSETS[b] for b in (2, 5, 6, 7)}
    assert amd_layout(full).size == 2432 and intel_layout(full).size == 2688


def full_arch(bits: int) -> Arch:
    full = X87 | SSE | AVX | AVX512
    return x86_64.build(amd_layout(full)) if bits == 64 else i386.build(amd_layout(full))


@settings(max_examples=25)
@given(st.sampled_from([64, 32]), st.data())
def test_plain_registers_round_trip(bits, data):
    """Every register without a codec reads back what was written (sign/zero extension aside)."""
    arch, bufs = full_arch(bits), buffers()
    for reg in arch.regs:
        if reg.codec is not None:
            continue
        value = data.draw(st.binary(min_size=reg.size, max_size=reg.size), label=reg.name)
        arch.write(reg, bufs, value)
        kept = value[: reg.width].ljust(reg.size, b"\0")  # fctrl & co. are 16 bits in FXSAVE
        assert arch.read(reg, bufs) == kept


@settings(max_examples=25)
@given(st.sampled_from([64, 32]), st.binary(min_size=216, max_size=216), st.binary(min_size=512, max_size=512))
def test_g_then_G_round_trip(bits, user, fxsave):
    """A G packet of what g returned reads back the same (registers are re-extended into their slots)."""
    arch, bufs = full_arch(bits), buffers()
    bufs.user[:] = user
    bufs.xstate[:464] = fxsave[:464]
    g = arch.read_all(bufs)
    arch.write_all(bufs, g)
    assert arch.read_all(bufs) == g


# --- siginfo --------------------------------------------------------------------------


def siginfo64(signo: int, code: int, union: bytes) -> bytes:
    return (struct.pack("<iii4x", signo, 0, code) + union).ljust(128, b"\0")


def test_siginfo_fault_to_i386():
    raw = siginfo64(signal.SIGSEGV, 1, struct.pack("<QhxxxxxxQQ", 0x1234, 3, 0x10, 0x20))
    out = siginfo.convert(raw, 8, 4)
    assert len(out) == 128
    assert struct.unpack_from("<iiiIhxxII", out) == (signal.SIGSEGV, 0, 1, 0x1234, 3, 0x10, 0x20)


def test_siginfo_chld_and_kill_to_i386():
    raw = siginfo64(signal.SIGCHLD, 1, struct.pack("<iIi4xqq", 77, 1000, 9, -2, 5))
    assert struct.unpack_from("<iiiiIiii", siginfo.convert(raw, 8, 4)) == (
        signal.SIGCHLD, 0, 1, 77, 1000, 9, -2, 5)
    raw = siginfo64(signal.SIGUSR1, 0, struct.pack("<iI", 42, 0))  # SI_USER: kill()
    assert struct.unpack_from("<iiiiI", siginfo.convert(raw, 8, 4)) == (signal.SIGUSR1, 0, 0, 42, 0)


@pytest.mark.parametrize(
    ("signo", "code", "member"),
    [(signal.SIGSEGV, 1, "fault"), (signal.SIGTRAP, 2, "fault"), (signal.SIGCHLD, 3, "chld"),
     (signal.SIGUSR1, 0, "kill"), (signal.SIGUSR1, -6, "rt"), (signal.SIGALRM, -2, "timer"),
     (signal.SIGIO, -5, "poll"), (signal.SIGSEGV, 0x80, "kill"), (signal.SIGSYS, 1, "sys")],
)
def test_siginfo_layout_choice(signo, code, member):
    assert siginfo.layout(signo, code) == member


@given(st.sampled_from([signal.SIGSEGV, signal.SIGCHLD, signal.SIGUSR1, signal.SIGALRM]),
       st.sampled_from([0, 1, 2, -1, -2, -6, 0x80]), st.binary(min_size=116, max_size=116))
def test_siginfo_i386_round_trip(signo, code, union):
    """32 -> 64 -> 32 keeps every byte of the live union member."""
    small = struct.pack("<iii", signo, 0, code) + union
    back = siginfo.convert(siginfo.convert(small, 4, 8), 8, 4)
    again = siginfo.convert(back, 4, 8)
    assert siginfo.convert(again, 8, 4) == back
    assert back[:12] == small[:12]


# --- clients that read no target description ------------------------------------------


def test_without_xml_is_gdbs_builtin_layout():
    assert without_xml(arch_for(64, buffers().xstate)).g_size == 560
    assert without_xml(arch_for(32, buffers().xstate)).g_size == 312


@pytest.mark.parametrize(
    ("features", "xml"),
    [(b"multiprocess+;xmlRegisters=i386", True), (b"xmlRegisters=i386,arm,mips,arc", True),
     (b"multiprocess+;swbreak+", False), (b"xmlRegisters=arm", False)],
)
def test_qsupported_xml_registers_chooses_the_layout(features, xml):
    """gdbserver serves its description only to clients that say xmlRegisters=i386."""
    target = LinuxTarget()
    new_session(target).handle(b"qSupported:" + features)
    assert target.xml_registers is xml
