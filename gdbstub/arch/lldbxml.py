"""The target description lldb reads: the same registers as gdb's (numbers, sizes and
order, so p/P/g/G and the expedited registers are unchanged), with the attributes lldb
uses instead of gdb's feature names: the register set each belongs to (``group=``), how
to show it (``encoding``/``format``), its role (``generic=``) and lldb's name for the
64-bit flags register. lldb-server describes its registers the same way; without this
lldb puts everything in one "general" set. gdb keeps gdbserver's text (features.py).
"""

from __future__ import annotations

from ..xmltext import xml_attr
from .features import AVX, AVX512, CORE, LINUX, PKEYS, SEGMENTS, SSE, target_xml
from .regs import Arch, Reg

GPR = "General Purpose Registers"
FPR = "Floating Point Registers"
# lldb-server's names for the sets it has; the others follow the same style.
SETS = {
    CORE: GPR,
    LINUX: GPR,
    SEGMENTS: GPR,
    SSE: FPR,
    AVX: "Advanced Vector Extensions",
    AVX512: "Advanced Vector Extensions 512",
    PKEYS: "Memory Protection Keys",
}
X87_CONTROL = frozenset("fctrl fstat ftag fiseg fioff foseg fooff fop".split())
SCALAR_TYPES = frozenset({"int", "int32", "int64", "code_ptr", "data_ptr", "i386_eflags", "i386_mxcsr",
                          "uint32", "uint64"})
# What lldb's ABI calls each register's role (lldb-server sends the same).
GENERIC = {
    8: {"rip": "pc", "rsp": "sp", "rbp": "fp", "eflags": "flags", "rdi": "arg1", "rsi": "arg2",
        "rdx": "arg3", "rcx": "arg4", "r8": "arg5", "r9": "arg6"},
    4: {"eip": "pc", "esp": "sp", "ebp": "fp", "eflags": "flags"},
}


def lldb_name(arch: Arch, reg: Reg) -> str:
    """lldb (and lldb-server) call the 64-bit flags register rflags."""
    return "rflags" if reg.name == "eflags" and arch.word == 8 else reg.name


def register_set(reg: Reg) -> str:
    if reg.feature == CORE and (reg.type == "i387_ext" or reg.name in X87_CONTROL):
        return FPR
    return SETS.get(reg.feature, GPR)


def _attributes(arch: Arch, reg: Reg) -> dict[str, str]:
    """What lldb reads of a register, the same in target.xml and in qRegisterInfo."""
    scalar = reg.type in SCALAR_TYPES
    attrs = {
        "name": lldb_name(arch, reg),
        "bitsize": str(reg.bitsize),
        "encoding": "uint" if scalar else "vector",
        "format": "hex" if scalar else "vector-uint8",
    }
    generic = GENERIC[arch.word].get(reg.name)
    if generic is not None:
        attrs["generic"] = generic
    return attrs


def _reg(arch: Arch, reg: Reg) -> str:
    attrs = {"regnum": str(reg.regnum), **_attributes(arch, reg), "group": register_set(reg)}
    return "    <reg " + " ".join(f"{k}={xml_attr(v)}" for k, v in attrs.items()) + "/>\n"


def register_info(arch: Arch, regnum: int) -> str | None:
    """qRegisterInfoN as lldb-server answers it (``key:value;``, the set by name, the offset in
    the g packet), for an lldb that cannot read target.xml (built without libxml2); None past
    the last register."""
    regs = sorted(arch.regs, key=lambda reg: reg.regnum)
    if not 0 <= regnum < len(regs):
        return None
    reg = regs[regnum]
    offset = sum(r.size for r in regs[:regnum])
    attrs = {**_attributes(arch, reg), "offset": str(offset), "set": register_set(reg)}
    return "".join(f"{k}:{v};" for k, v in attrs.items())


def lldb_target_xml(arch: Arch) -> str:
    """target.xml for lldb, one <feature> per gdb feature, in g-packet order."""
    return target_xml(arch.name, arch.regs, head='<?xml version="1.0"?>\n<target version="1.0">\n',
                      reg_line=lambda reg: _reg(arch, reg), with_types=False)
