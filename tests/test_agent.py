"""Agent expressions: parsing (untrusted input, refused when malformed), evaluation and its bounds,
Z-packet condition lists, dprintf formatting, and the per-breakpoint decision to report."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdbstub.agent import (
    MAX_LENGTH,
    OPS,
    AgentError,
    BreakpointConditions,
    Expression,
    format_printf,
    parse_extras,
)
from gdbstub.agent_compile import compiled

# A few opcodes by name, to write programs readably.
ADD, SUB, MUL, DIV_S, DIV_U, REM_S, REM_U, LSH, RSH_S, RSH_U = range(0x02, 0x0C)
LOG_NOT, AND, OR, XOR, NOT, EQ, LT_S, LT_U, EXT = 0x0E, 0x0F, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16
REF8, REF16, REF32, REF64 = 0x17, 0x18, 0x19, 0x1A
IF_GOTO, GOTO, REG, END, DUP, POP, ZERO_EXT, SWAP, PICK, ROT, PRINTF = (
    0x20, 0x21, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B, 0x32, 0x33, 0x34)


def c8(v: int) -> bytes:
    return bytes((0x22, v))


def c16(v: int) -> bytes:
    return bytes((0x23,)) + struct.pack(">H", v)


def c32(v: int) -> bytes:
    return bytes((0x24,)) + struct.pack(">I", v)


def c64(v: int) -> bytes:
    return bytes((0x25,)) + struct.pack(">Q", v)


def op(*codes: int) -> bytes:
    return bytes(codes)


class Ctx:
    """Registers and memory of a pretend stopped thread."""

    def __init__(self) -> None:
        self.regs = {0: (5).to_bytes(8, "little"), 6: (0x1000).to_bytes(8, "little")}
        self.mem = bytearray(0x2000)
        self.mem[0x0FF0:0x0FF8] = (1999).to_bytes(8, "little")
        self.mem[0x1800:0x1806] = b"hello\0"
        self.reads = 0

    def read_register(self, tid: int, regnum: int) -> bytes | None:
        return self.regs.get(regnum)

    def read_memory(self, pid: int, addr: int, length: int) -> bytes:
        self.reads += 1
        if addr >= len(self.mem):
            return b""
        return bytes(self.mem[addr:addr + length])


def run(code: bytes) -> int | None:
    return Expression.parse(code).run(Ctx(), 1, 1)


@pytest.mark.parametrize(
    ("code", "want"),
    [
        (c8(2) + c8(3) + op(ADD, END), 5),
        (c8(2) + c8(3) + op(SUB, END), (1 << 64) - 1),
        (c16(300) + c8(3) + op(MUL, END), 900),
        (c64((1 << 64) - 7) + c8(2) + op(DIV_S, END), (1 << 64) - 3),  # -7 / 2 = -3 (toward zero)
        (c64((1 << 64) - 7) + c8(2) + op(REM_S, END), (1 << 64) - 1),  # -7 % 2 = -1
        (c8(7) + c8(2) + op(DIV_U, END), 3),
        (c8(7) + c8(2) + op(REM_U, END), 1),
        (c8(1) + c8(63) + op(LSH, END), 1 << 63),
        (c8(1) + c8(64) + op(LSH, END), 0),
        (c64(1 << 63) + c8(63) + op(RSH_S, END), (1 << 64) - 1),
        (c64(1 << 63) + c8(63) + op(RSH_U, END), 1),
        (c8(0) + op(LOG_NOT, END), 1),
        (c8(0xF0) + c8(0x3C) + op(AND, END), 0x30),
        (c8(0xF0) + c8(0x0F) + op(OR, END), 0xFF),
        (c8(0xFF) + c8(0x0F) + op(XOR, END), 0xF0),
        (c8(0) + op(NOT, END), (1 << 64) - 1),
        (c8(4) + c8(4) + op(EQ, END), 1),
        (c64((1 << 64) - 1) + c8(0) + op(LT_S, END), 1),  # -1 < 0
        (c64((1 << 64) - 1) + c8(0) + op(LT_U, END), 0),
        (c8(0xFF) + op(EXT, 8, END), (1 << 64) - 1),
        (c64((1 << 64) - 1) + op(ZERO_EXT, 16, END), 0xFFFF),
        (c8(1) + c8(2) + op(SWAP, END), 1),
        (c8(1) + c8(2) + op(POP, END), 1),
        (c8(9) + op(DUP, ADD, END), 18),
        (c8(1) + c8(2) + c8(3) + op(PICK, 2, END), 1),
        (c8(1) + c8(2) + c8(3) + op(ROT, END), 2),  # a b c => c a b: top is b
        (op(REG, 0, 0, END), 5),
        (c16(0x0FF0) + op(REF64, END), 1999),
        (c16(0x0FF0) + op(REF32, END), 1999),
        (c16(0x0FF0) + op(REF16, END), 1999),
        (c16(0x0FF0) + op(REF8, END), 1999 & 0xFF),
    ],
)
def test_evaluate(code: bytes, want: int) -> None:
    assert run(code) == want


def test_gdb_condition_from_a_real_z0() -> None:
    """What gdb 13 sent for `break hot if i == 5` (loop.c, x86_64): *(long *)(rbp + 0x10 - 40) == 5."""
    code = bytes.fromhex("26000622100222d81608021a164022051327")
    ctx = Ctx()
    ctx.regs[6] = (0x1000).to_bytes(8, "little")
    ctx.mem[0x1000 - 0x18:0x1000 - 0x10] = (5).to_bytes(8, "little")
    assert Expression.parse(code).run(ctx, 1, 1) == 1
    ctx.mem[0x1000 - 0x18:0x1000 - 0x10] = (6).to_bytes(8, "little")
    assert Expression.parse(code).run(ctx, 1, 1) == 0


def test_goto_and_if_goto() -> None:
    # if 1 then push 7 else push 9
    code = c8(1) + op(IF_GOTO, 0, 10) + c8(9) + op(GOTO, 0, 12) + c8(7) + op(END)
    assert run(code) == 7
    code = c8(0) + op(IF_GOTO, 0, 10) + c8(9) + op(GOTO, 0, 12) + c8(7) + op(END)
    assert run(code) == 9


@pytest.mark.parametrize(
    "code",
    [
        b"",
        op(0xFF, END),  # unknown opcode
        op(0x01, END),  # float: valid gdb bytecode, not supported here
        op(0x0C, END),  # trace
        op(0x2C, 0, 0, END),  # getv
        bytes((0x24, 1, 2)),  # truncated const32
        c8(1) + op(GOTO, 0, 1) + op(END),  # jump into the middle of an instruction
        c8(1) + op(GOTO, 0x10, 0) + op(END),  # jump outside
        c8(1) + op(EXT, 0, END),  # ext 0 bits
        c8(1) + op(EXT, 65, END),
        c8(1) + c8(2) + op(ADD),  # no end
        op(PRINTF, 0, 0, 5) + b"ab\0",  # format longer than the expression
        op(PRINTF, 0, 0, 3) + b"abc" + op(END),  # format without NUL
        op(END) * (MAX_LENGTH + 1),
    ],
)
def test_malformed_refused(code: bytes) -> None:
    with pytest.raises(AgentError):
        Expression.parse(code)


@pytest.mark.parametrize(
    "code",
    [
        op(END),  # empty stack: no value
        op(ADD, END),  # underflow
        c8(1) + c8(0) + op(DIV_S, END),  # division by zero
        op(GOTO, 0, 0, END),  # endless loop: bounded in steps
        c8(1) + op(DUP, GOTO, 0, 2, END),  # grows the stack without end
        c16(0x5000) + op(REF32, END),  # unreadable memory
        op(REG, 0, 99, END),  # no such register
        c8(1) + op(PICK, 5, END),
    ],
)
def test_run_failures_are_agent_errors(code: bytes) -> None:
    expr = Expression.parse(code)
    if code == op(END):
        assert expr.run(Ctx(), 1, 1) is None
        return
    with pytest.raises(AgentError):
        expr.run(Ctx(), 1, 1)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=64))
def test_random_bytes_never_crash(code: bytes) -> None:
    try:
        expr = Expression.parse(code)
    except AgentError:
        return
    try:
        result = expr.run(Ctx(), 1, 1, output=lambda text: None)
    except AgentError:
        return
    assert result is None or 0 <= result < 1 << 64


def test_parse_extras() -> None:
    cond = (c8(1) + op(END)).hex().encode()
    agent = parse_extras(b"X3," + cond + b"X3," + cond)
    assert len(agent.conditions) == 2 and not agent.commands
    agent = parse_extras(b"X3," + cond + b";X3," + cond + b";cmds:1,X3," + cond)
    assert len(agent.conditions) == 2 and len(agent.commands) == 1 and agent.persist
    agent = parse_extras(b"cmds:0,X3," + cond)
    assert not agent.conditions and len(agent.commands) == 1 and not agent.persist


@pytest.mark.parametrize(
    "text",
    [b"X", b"X3", b"X3,", b"X3,2201", b"X2,2201", b"Xzz,2201", b"Y3,220127", b"X0,", b"cmds:", b"cmds:2,X1,27",
     b"cmds:1,", b"X3,22012g", b"X%x," % (MAX_LENGTH + 1)],
)
def test_parse_extras_refuses(text: bytes) -> None:
    with pytest.raises(AgentError):
        parse_extras(text)


def test_printf_formats() -> None:
    strings = {0x1800: b"hello"}
    text = format_printf(b"a=%d b=%u c=%x d=%ld e=%5s f=%c g=%% h=%p i=%s\\n",
                         [0xFFFFFFFF, 0xFFFFFFFF, 255, (1 << 64) - 2, 0x1800, 65, 0xDEAD, 0],
                         lambda addr: strings[addr])
    assert text == "a=-1 b=4294967295 c=ff d=-2 e=hello f=A g=% h=0xdead i=(null)\n"


def test_printf_bytecode_runs_and_prints() -> None:
    """dprintf "x=%d s=%s\\n", 7, "hello": args pushed in reverse, then channel and function."""
    fmt = b"x=%d s=%s\\n\0"
    code = c16(0x1800) + c8(7) + c8(0) + c8(0) + op(PRINTF, 2) + struct.pack(">H", len(fmt)) + fmt + op(END)
    out: list[str] = []
    assert Expression.parse(code).run(Ctx(), 1, 1, out.append) is None
    assert out == ["x=7 s=hello\n"]


def test_conditions_decide_reporting() -> None:
    store = BreakpointConditions()
    true = parse_extras(b"X3," + (c8(1) + op(END)).hex().encode())
    false = parse_extras(b"X3," + (c8(0) + op(END)).hex().encode())
    broken = parse_extras(b"X2," + op(ADD, END).hex().encode())
    ctx = Ctx()
    assert store.should_report(ctx, 1, 1, 0, 0x400000)  # nothing attached
    store.set(1, 0, 0x400000, false)
    assert not store.should_report(ctx, 1, 1, 0, 0x400000)
    assert store.should_report(ctx, 1, 1, 1, 0x400000)  # Z1 at the same address is another breakpoint
    store.set(1, 0, 0x400000, true)
    assert store.should_report(ctx, 1, 1, 0, 0x400000)
    store.set(1, 0, 0x400000, broken)
    assert store.should_report(ctx, 1, 1, 0, 0x400000)  # cannot evaluate: stop, as gdbserver does
    store.set(1, 0, 0x400000, None)
    assert not store.table
    printed: list[str] = []
    store.output = printed.append
    fmt = b"hit\0"
    cmd = op(PRINTF, 0) + struct.pack(">H", len(fmt)) + fmt
    cmd = c8(0) + c8(0) + cmd + op(END)
    store.set(1, 0, 0x400000, parse_extras(b"cmds:1,X%x," % len(cmd) + cmd.hex().encode()))
    assert not store.should_report(ctx, 1, 1, 0, 0x400000)  # dprintf: print and go on
    assert printed == ["hit"]
    store.clear_process(1)
    assert not store.table


# --- the compiled form agrees with the interpreter ------------------------------------------

_COMPILABLE = [o for o in OPS if o != PRINTF]


@st.composite
def programs(draw: st.DrawFn) -> bytes:
    """Well-formed programs of the condition opcodes, jumps to instruction starts, ending in end."""
    count = draw(st.integers(1, 16))
    ins: list[tuple[int, int]] = [(draw(st.sampled_from(_COMPILABLE)), draw(st.integers(0, 1 << 64)))
                                  for _ in range(count)]
    ins.append((END, 0))
    sizes = [1 + OPS[o][1] for o, _ in ins]
    starts = [sum(sizes[:i]) for i in range(len(ins))]
    out = bytearray()
    for o, raw in ins:
        size = OPS[o][1]
        if o in (IF_GOTO, GOTO):
            arg = starts[raw % len(starts)]
        elif o in (EXT, ZERO_EXT):
            arg = 1 + raw % 64
        elif o == REG:
            arg = raw % 8
        elif o == PICK:
            arg = raw % 4
        elif o in (0x23, 0x24, 0x25) and raw % 3 == 0:
            arg = 0x0FF0 + raw % 32  # an address the context can read
        else:
            arg = raw & ((1 << (8 * size)) - 1)
        out.append(o)
        out += arg.to_bytes(size, "big")
    return bytes(out)


def _outcome(fn: Callable[[], int | None]) -> object:
    try:
        return fn()
    except (AgentError, OSError):
        return "error"


@settings(max_examples=400, deadline=None)
@given(programs())
def test_compiled_agrees_with_interpreter(code: bytes) -> None:
    expr = Expression.parse(code)
    fn = compiled(expr)
    if fn is None:
        return  # left to the interpreter
    assert _outcome(lambda: fn(Ctx(), 1, 1)) == _outcome(lambda: expr.run(Ctx(), 1, 1))


def test_compiled_forms() -> None:
    """gdb's real condition compiles (straight-line) and so do jumps and loops (bounded);
    a program that underflows or prints stays with the interpreter."""
    gdb = Expression.parse(bytes.fromhex("26000622100222d81608021a164022051327"))
    fn = compiled(gdb)
    assert fn is not None and compiled(gdb) is fn  # once per program
    ctx = Ctx()
    ctx.mem[0x1000 - 0x18:0x1000 - 0x10] = (5).to_bytes(8, "little")
    assert fn(ctx, 1, 1) == 1
    branch = compiled(Expression.parse(c8(0) + op(IF_GOTO, 0, 10) + c8(9) + op(GOTO, 0, 12) + c8(7) + op(END)))
    assert branch is not None and branch(Ctx(), 1, 1) == 9
    endless = compiled(Expression.parse(op(GOTO, 0, 0, END)))
    assert endless is not None
    with pytest.raises(AgentError):
        endless(Ctx(), 1, 1)
    assert compiled(Expression.parse(op(ADD, END))) is None
    fmt = b"hit\0"
    assert compiled(Expression.parse(c8(0) + c8(0) + op(PRINTF, 0) + struct.pack(">H", len(fmt)) + fmt
                                     + op(END))) is None
