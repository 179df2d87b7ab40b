"""Target description XML, generated from a register table.

The text is what gdbserver 13 sends, byte for byte: each feature carries the
type definitions gdb's own feature file declares (gdb/features/i386/*.xml),
then one <reg> per table entry, in gdbserver's print_xml_feature form.
"""

from __future__ import annotations

from ..hints import Callable, Iterable
from .regs import Reg

CORE = "org.gnu.gdb.i386.core"
SSE = "org.gnu.gdb.i386.sse"
LINUX = "org.gnu.gdb.i386.linux"
SEGMENTS = "org.gnu.gdb.i386.segments"
AVX = "org.gnu.gdb.i386.avx"
AVX512 = "org.gnu.gdb.i386.avx512"
PKEYS = "org.gnu.gdb.i386.pkeys"

EFLAGS_FIELDS = [
    ("CF", 0), ("", 1), ("PF", 2), ("AF", 4), ("ZF", 6), ("SF", 7), ("TF", 8),
    ("IF", 9), ("DF", 10), ("OF", 11), ("NT", 14), ("RF", 16), ("VM", 17),
    ("AC", 18), ("VIF", 19), ("VIP", 20), ("ID", 21),
]
MXCSR_FIELDS = [
    ("IE", 0), ("DE", 1), ("ZE", 2), ("OE", 3), ("UE", 4), ("PE", 5), ("DAZ", 6),
    ("IM", 7), ("DM", 8), ("ZM", 9), ("OM", 10), ("UM", 11), ("PM", 12), ("FZ", 15),
]


def _flags(ident: str, fields: list[tuple[str, int]]) -> str:
    body = "".join(
        f'      <field name="{n}" start="{b}" end="{b}" type="bool"/>\n' for n, b in fields
    )
    return f'    <flags id="{ident}" size="4">\n{body}    </flags>\n'


VEC128_TYPES = (
    '    <vector id="v8bf16" type="bfloat16" count="8"/>\n'
    '    <vector id="v8h" type="ieee_half" count="8"/>\n'
    '    <vector id="v4f" type="ieee_single" count="4"/>\n'
    '    <vector id="v2d" type="ieee_double" count="2"/>\n'
    '    <vector id="v16i8" type="int8" count="16"/>\n'
    '    <vector id="v8i16" type="int16" count="8"/>\n'
    '    <vector id="v4i32" type="int32" count="4"/>\n'
    '    <vector id="v2i64" type="int64" count="2"/>\n'
    '    <union id="vec128">\n'
    '      <field name="v8_bfloat16" type="v8bf16"/>\n'
    '      <field name="v8_half" type="v8h"/>\n'
    '      <field name="v4_float" type="v4f"/>\n'
    '      <field name="v2_double" type="v2d"/>\n'
    '      <field name="v16_int8" type="v16i8"/>\n'
    '      <field name="v8_int16" type="v8i16"/>\n'
    '      <field name="v4_int32" type="v4i32"/>\n'
    '      <field name="v2_int64" type="v2i64"/>\n'
    '      <field name="uint128" type="uint128"/>\n'
    "    </union>\n"
)
V2UI128 = '    <vector id="v2ui128" type="uint128" count="2"/>\n'

# Type definitions each feature needs before its registers (by feature name);
# 64-bit avx512 (xmm16-31 are vec128) redeclares the SSE types, as gdb's file does.
FEATURE_TYPES: dict[str, str] = {
    CORE: _flags("i386_eflags", EFLAGS_FIELDS),
    SSE: VEC128_TYPES + _flags("i386_mxcsr", MXCSR_FIELDS),
    AVX512: V2UI128,
}
AVX512_64_TYPES = {AVX512: VEC128_TYPES + V2UI128}


def reg_xml(reg: Reg) -> str:
    group = f' group="{reg.group}"' if reg.group else ""
    return (
        f'    <reg name="{reg.name}" bitsize="{reg.bitsize}" type="{reg.type}"'
        f' regnum="{reg.regnum}"{group}/>\n'
    )


GDB_XML_HEAD = '<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n<target>\n'


def target_xml(architecture: str, regs: Iterable[Reg], extra_types: dict[str, str] | None = None, *,
               head: str = GDB_XML_HEAD, reg_line: Callable[[Reg], str] | None = None,
               with_types: bool = True) -> str:
    """Build a whole target.xml, features in the order their registers appear (REG_LINE: how a
    register is written, gdb's form by default; lldb's carries more attributes and no types)."""
    types = {**FEATURE_TYPES, **(extra_types or {})} if with_types else {}
    features: dict[str, list[Reg]] = {}
    for reg in regs:
        features.setdefault(reg.feature, []).append(reg)
    parts = [head, f"  <architecture>{architecture}</architecture>\n  <osabi>GNU/Linux</osabi>\n"]
    for name, members in features.items():
        parts.append(f'  <feature name="{name}">\n')
        parts.append(types.get(name, ""))
        parts.extend((reg_line or reg_xml)(r) for r in members)
        parts.append("  </feature>\n")
    parts.append("</target>\n")
    return "".join(parts)
