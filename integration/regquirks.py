"""Registers whose gdbserver 13 values cannot serve as the reference on this CPU.

gdbserver 13 reads and writes the AVX-512 XSAVE components (k0-7, the zmm upper halves, and
xmm16-31/ymm16-31 on x86_64) at Intel's fixed offsets; gdb asks CPUID for them only from gdb 14.
AMD Zen 4/5 put those components 256 bytes earlier (no MPX gap), so there gdbserver shows other
bytes (k1 = 0 while the program holds 0x5a5a). gdbstub uses the CPUID offsets; tests compare those
registers with gdbserver only where the layouts agree, and check them against the program's own
values (test_registers.py) everywhere.

gdbserver 13 also sizes its XSAVE buffer for at most AVX-512 + PKRU (2696 bytes). The kernel takes a
PTRACE_SETREGSET(NT_X86_XSTATE) only of its own full size, which is larger on a CPU with AMX
(11008 bytes): there every x87/SSE/AVX write through gdbserver fails ("regsets_store_inferior_registers:
Bad address") while gdbstub learns the kernel's size.
"""

from __future__ import annotations

import re
from pathlib import Path

from gdbstub.arch.xsave import INTEL_OFFSETS, cpuid

CPU_FLAGS = set(
    next(
        (
            line.split(":", 1)[1].split()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")
        ),
        [],
    )
)
HAS_AVX = "avx" in CPU_FLAGS
HAS_AVX512 = "avx512f" in CPU_FLAGS
# True when this CPU puts the AVX-512 components where gdbserver 13 assumes they are.
INTEL_AVX512_LAYOUT = HAS_AVX512 and all(cpuid(0xD, bit)[1] == INTEL_OFFSETS[bit] for bit in (5, 6, 7))

GDBSERVER13_XSTATE_MAX = 2696
# True when gdbserver 13 cannot write any register kept in the XSAVE area on this CPU.
GDBSERVER_CANNOT_WRITE_XSTATE = cpuid(0xD, 0)[1] > GDBSERVER13_XSTATE_MAX

AVX512_REG = re.compile(r"^(k[0-7]|zmm\d+h?|xmm(1[6-9]|2\d|3[01])|ymm(1[6-9]|2\d|3[01])h?)$")


def gdbserver_misreads(name: str) -> bool:
    """True for a register gdbserver 13 shows from the wrong XSAVE bytes on this CPU."""
    import harness

    if harness.gdb_version() != "gdb13":
        return False  # gdbserver 16 finds the components where CPUID says they are
    return HAS_AVX512 and not INTEL_AVX512_LAYOUT and bool(AVX512_REG.match(name))


def without_misread_lines(text: str) -> str:
    """TEXT without the `info registers` lines of such registers (for whole-output comparisons)."""
    return "\n".join(
        line for line in text.splitlines() if not (line.split() and gdbserver_misreads(line.split()[0]))
    )
