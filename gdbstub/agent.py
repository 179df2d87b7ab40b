"""gdb agent expressions: the bytecode of breakpoint conditions and dprintf commands run in the stub.

Target-neutral (the target layer evaluates at a hit, the protocol layer parses Z packets), and
untrusted input: a program is checked once when it arrives (length, opcodes, operands, jump
targets), and every run is bounded in stack depth and in instructions executed.
"""

from __future__ import annotations

from collections.abc import Callable

from .hints import NamedTuple, Protocol

MAX_LENGTH = 4096  # bytes of one expression
MAX_STACK = 1024  # values on the stack
MAX_STEPS = 100_000  # instructions executed by one run (goto can loop)
MAX_EXPRESSIONS = 64  # conditions or commands on one breakpoint
MAX_STRING = 4096  # bytes of a %s argument read from the program
MASK = (1 << 64) - 1


class AgentError(Exception):
    """A malformed expression (refused with an error reply) or a failed run (the stop is reported)."""


class Context(Protocol):
    """What an expression reads: the registers of the stopped thread and its process's memory."""

    def read_register(self, tid: int, regnum: int) -> bytes | None: ...
    def read_memory(self, pid: int, addr: int, length: int) -> bytes: ...


class TraceSink(Protocol):
    """Where a tracepoint's expression records (the trace frame being built) and its state variables."""

    def record_memory(self, addr: int, length: int, until_nul: bool = False) -> None: ...
    def record_variable(self, number: int) -> None: ...
    def get_variable(self, number: int) -> int: ...
    def set_variable(self, number: int, value: int) -> None: ...


# opcode -> (name, operand bytes, values popped, values pushed); the operand size of printf varies.
OPS: dict[int, tuple[str, int, int, int]] = {
    0x02: ("add", 0, 2, 1),
    0x03: ("sub", 0, 2, 1),
    0x04: ("mul", 0, 2, 1),
    0x05: ("div_signed", 0, 2, 1),
    0x06: ("div_unsigned", 0, 2, 1),
    0x07: ("rem_signed", 0, 2, 1),
    0x08: ("rem_unsigned", 0, 2, 1),
    0x09: ("lsh", 0, 2, 1),
    0x0A: ("rsh_signed", 0, 2, 1),
    0x0B: ("rsh_unsigned", 0, 2, 1),
    0x0E: ("log_not", 0, 1, 1),
    0x0F: ("bit_and", 0, 2, 1),
    0x10: ("bit_or", 0, 2, 1),
    0x11: ("bit_xor", 0, 2, 1),
    0x12: ("bit_not", 0, 1, 1),
    0x13: ("equal", 0, 2, 1),
    0x14: ("less_signed", 0, 2, 1),
    0x15: ("less_unsigned", 0, 2, 1),
    0x16: ("ext", 1, 1, 1),
    0x17: ("ref8", 0, 1, 1),
    0x18: ("ref16", 0, 1, 1),
    0x19: ("ref32", 0, 1, 1),
    0x1A: ("ref64", 0, 1, 1),
    0x20: ("if_goto", 2, 1, 0),
    0x21: ("goto", 2, 0, 0),
    0x22: ("const8", 1, 0, 1),
    0x23: ("const16", 2, 0, 1),
    0x24: ("const32", 4, 0, 1),
    0x25: ("const64", 8, 0, 1),
    0x26: ("reg", 2, 0, 1),
    0x27: ("end", 0, 0, 0),
    0x28: ("dup", 0, 1, 2),
    0x29: ("pop", 0, 1, 0),
    0x2A: ("zero_ext", 1, 1, 1),
    0x2B: ("swap", 0, 2, 2),
    0x32: ("pick", 1, 0, 1),
    0x33: ("rot", 0, 3, 3),
    0x34: ("printf", -1, 2, 0),
}
# The tracing opcodes: valid only in tracepoint conditions and actions (a breakpoint condition
# has no trace frame to record into nor state variables, so Z packets refuse them).
TRACE_OPS: dict[int, tuple[str, int, int, int]] = {
    0x0C: ("trace", 0, 2, 0),
    0x0D: ("trace_quick", 1, 1, 1),
    0x2C: ("getv", 2, 0, 1),
    0x2D: ("setv", 2, 1, 1),
    0x2E: ("tracev", 2, 0, 0),
    0x2F: ("tracenz", 0, 2, 0),
    0x30: ("trace16", 2, 1, 1),
}
ALL_OPS = {**OPS, **TRACE_OPS}
# Floating-point opcodes (ref_float, ...) are valid gdb bytecode but need an FPU model the
# stub does not have: refused like unknown ones.
OP_PRINTF = 0x34
REF_SIZES = {0x17: 1, 0x18: 2, 0x19: 4, 0x1A: 8}


class Instruction(NamedTuple):
    """One checked instruction (NamedTuples here: a dataclass costs start-up time)."""

    pc: int
    op: int
    arg: int = 0  # the operand (jump target, constant, register, bit count)
    text: bytes = b""  # printf: the format string, NUL removed


class Expression(NamedTuple):
    """A checked agent expression; instructions keyed by their byte offset."""

    code: bytes
    program: dict[int, Instruction]

    @classmethod
    def parse(cls, code: bytes, tracing: bool = False) -> Expression:
        """Check a program; ``tracing`` admits the trace opcodes (tracepoints only)."""
        ops = ALL_OPS if tracing else OPS
        if not code:
            raise AgentError("empty expression")
        if len(code) > MAX_LENGTH:
            raise AgentError(f"expression longer than {MAX_LENGTH} bytes")
        program: dict[int, Instruction] = {}
        jumps: list[int] = []
        pc = 0
        while pc < len(code):
            op = code[pc]
            spec = ops.get(op)
            if spec is None:
                raise AgentError(f"unsupported opcode 0x{op:02x} at {pc}")
            size = spec[1]
            if op == OP_PRINTF:
                # nargs (1 byte), format length (2 bytes, with the NUL), the format
                if pc + 4 > len(code):
                    raise AgentError("truncated printf")
                nargs = code[pc + 1]
                flen = int.from_bytes(code[pc + 2:pc + 4], "big")
                if flen < 1 or pc + 4 + flen > len(code) or code[pc + 3 + flen] != 0:
                    raise AgentError("bad printf format string")
                program[pc] = Instruction(pc, op, nargs, code[pc + 4:pc + 3 + flen])
                pc += 4 + flen
                continue
            if pc + 1 + size > len(code):
                raise AgentError(f"truncated operand at {pc}")
            arg = int.from_bytes(code[pc + 1:pc + 1 + size], "big")
            if op in (0x16, 0x2A) and not 1 <= arg <= 64:
                raise AgentError(f"bad bit count {arg} at {pc}")
            if op in (0x20, 0x21):
                jumps.append(arg)
            program[pc] = Instruction(pc, op, arg)
            pc += 1 + size
        for target in jumps:
            if target not in program:
                raise AgentError(f"jump to {target}: not an instruction")
        if not any(i.op == 0x27 for i in program.values()):
            raise AgentError("no end")
        return cls(code, program)

    def run(self, ctx: Context, pid: int, tid: int,
            output: Callable[[str], None] | None = None, sink: TraceSink | None = None) -> int | None:
        """The value left on top at `end` (None: the stack is empty, as after a dprintf);
        AgentError when the run fails or exceeds its bounds."""
        stack: list[int] = []
        pc = 0
        program = self.program
        for _ in range(MAX_STEPS):
            ins = program.get(pc)
            if ins is None:
                raise AgentError(f"ran off the end at {pc}")
            op = ins.op
            _, size, pops, _ = ALL_OPS[op]
            if len(stack) < pops:
                raise AgentError(f"stack underflow at {pc}")
            pc = pc + 1 + size
            if op == 0x27:  # end
                return stack[-1] if stack else None
            if op in BINARY:
                b = stack.pop()
                a = stack.pop()
                stack.append(BINARY[op](a, b) & MASK)
            elif op in (0x22, 0x23, 0x24, 0x25):
                stack.append(ins.arg)
            elif op == 0x26:
                raw = ctx.read_register(tid, ins.arg)
                if raw is None:
                    raise AgentError(f"no register {ins.arg}")
                stack.append(int.from_bytes(raw[:8], "little"))
            elif op in REF_SIZES:
                n = REF_SIZES[op]
                data = ctx.read_memory(pid, stack[-1], n)
                if len(data) != n:
                    raise AgentError(f"cannot read memory at 0x{stack[-1]:x}")
                stack[-1] = int.from_bytes(data, "little")
            elif op == 0x20:  # if_goto
                if stack.pop():
                    pc = ins.arg
            elif op == 0x21:  # goto
                pc = ins.arg
            elif op == 0x0E:
                stack[-1] = int(stack[-1] == 0)
            elif op == 0x12:
                stack[-1] = ~stack[-1] & MASK
            elif op == 0x16:  # ext: sign-extend from arg bits
                stack[-1] = _signed(stack[-1], ins.arg) & MASK
            elif op == 0x2A:  # zero_ext
                stack[-1] &= (1 << ins.arg) - 1
            elif op == 0x28:
                stack.append(stack[-1])
            elif op == 0x29:
                stack.pop()
            elif op == 0x2B:
                stack[-1], stack[-2] = stack[-2], stack[-1]
            elif op == 0x32:  # pick: copy the value ARG below the top
                if ins.arg >= len(stack):
                    raise AgentError(f"pick {ins.arg} below the stack at {ins.pc}")
                stack.append(stack[-1 - ins.arg])
            elif op == 0x33:  # rot: a b c => c a b
                stack[-3], stack[-2], stack[-1] = stack[-1], stack[-3], stack[-2]
            elif op == OP_PRINTF:
                pc = ins.pc + 4 + len(ins.text) + 1
                stack.pop()  # function
                stack.pop()  # channel
                if len(stack) < ins.arg:
                    raise AgentError("printf: too few arguments")
                args = [stack.pop() for _ in range(ins.arg)]
                text = format_printf(ins.text, args, lambda a: _read_string(ctx, pid, a))
                if output is not None:
                    output(text)
            elif op in TRACE_OPS:
                if sink is None:
                    raise AgentError(f"trace opcode 0x{op:02x} outside a tracepoint")
                _trace_op(sink, op, ins.arg, stack)
            if len(stack) > MAX_STACK:
                raise AgentError("stack overflow")
        raise AgentError(f"more than {MAX_STEPS} steps")


def _trace_op(sink: TraceSink, op: int, arg: int, stack: list[int]) -> None:
    """The tracing opcodes: record memory or a state variable into the frame, read or set one."""
    if op in (0x0C, 0x2F):  # trace, tracenz: addr size =>
        size = stack.pop()
        addr = stack.pop()
        sink.record_memory(addr, size, until_nul=op == 0x2F)
    elif op in (0x0D, 0x30):  # trace_quick, trace16: addr => addr
        sink.record_memory(stack[-1], arg)
    elif op == 0x2C:
        stack.append(sink.get_variable(arg) & MASK)
    elif op == 0x2D:  # setv: the value stays on the stack
        sink.set_variable(arg, stack[-1])
    else:  # tracev
        sink.record_variable(arg)


def _signed(value: int, bits: int = 64) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _div(a: int, b: int) -> int:
    if b == 0:
        raise AgentError("division by zero")
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q  # C truncates toward zero


def _rem(a: int, b: int) -> int:
    return a - _div(a, b) * b


def _shift(a: int, b: int, signed: bool) -> int:
    if b >= 64:
        return MASK if signed and _signed(a) < 0 else 0
    return (_signed(a) if signed else a) >> b


BINARY: dict[int, Callable[[int, int], int]] = {
    0x02: lambda a, b: a + b,
    0x03: lambda a, b: a - b,
    0x04: lambda a, b: a * b,
    0x05: lambda a, b: _div(_signed(a), _signed(b)),
    0x06: lambda a, b: _div(a, b),
    0x07: lambda a, b: _rem(_signed(a), _signed(b)),
    0x08: lambda a, b: _rem(a, b),
    0x09: lambda a, b: a << b if b < 64 else 0,
    0x0A: lambda a, b: _shift(a, b, True),
    0x0B: lambda a, b: _shift(a, b, False),
    0x0F: lambda a, b: a & b,
    0x10: lambda a, b: a | b,
    0x11: lambda a, b: a ^ b,
    0x13: lambda a, b: int(a == b),
    0x14: lambda a, b: int(_signed(a) < _signed(b)),
    0x15: lambda a, b: int(a < b),
}


def _read_string(ctx: Context, pid: int, addr: int) -> bytes:
    out = b""
    while len(out) < MAX_STRING:
        chunk = ctx.read_memory(pid, addr + len(out), 256)
        if not chunk:
            break
        end = chunk.find(b"\0")
        if end >= 0:
            return out + chunk[:end]
        out += chunk
    return out[:MAX_STRING]


# printf's conversions: compiled by the first dprintf (``re`` is not imported for a session without one)
CONVERSION = rb"%([-+ #0]*)(\d*|\*)(?:\.(\d*))?(hh|h|ll|l|j|z|t|L)?([diouxXcsp%])"


ESCAPES = {b"\\": b"\\", b"a": b"\a", b"b": b"\b", b"e": b"\x1b", b"f": b"\f", b"n": b"\n",
           b"r": b"\r", b"t": b"\t", b"v": b"\v", b'"': b'"'}


def _unescape(fmt: bytes) -> bytes:
    """gdb sends the dprintf format as typed: the agent turns its backslash escapes into bytes."""
    import re

    return re.sub(rb"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(0)), fmt, flags=re.S)


def format_printf(fmt: bytes, args: list[int], read_string: Callable[[int], bytes]) -> str:
    """C printf with the integer and string conversions gdb's dprintf sends (%s reads the program)."""
    fmt = _unescape(fmt)
    out: list[str] = []
    pos = 0
    it = iter(args)
    import re

    for m in re.finditer(CONVERSION, fmt):
        out.append(fmt[pos:m.start()].decode("utf-8", "replace"))
        pos = m.end()
        flags, width, precision, length, conv = (g.decode() if g is not None else None for g in m.groups())
        if conv == "%":
            out.append("%")
            continue
        value = next(it, 0)
        if width == "*":
            width, value = str(_signed(value, 32)), next(it, 0)
        spec = "%" + (flags or "") + (width or "") + ("." + precision if precision is not None else "")
        bits = 64 if length in ("l", "ll", "j", "z", "t") else 32
        if conv in ("d", "i"):
            out.append((spec + "d") % _signed(value, bits))
        elif conv in ("o", "u", "x", "X"):
            out.append((spec + ("d" if conv == "u" else conv)) % (value & ((1 << bits) - 1)))
        elif conv == "c":
            out.append((spec + "c") % chr(value & 0xFF))
        elif conv == "p":
            out.append((spec + "s") % f"0x{value:x}")
        else:  # s
            text = read_string(value).decode("utf-8", "replace") if value else "(null)"
            out.append((spec + "s") % text)
    out.append(fmt[pos:].decode("utf-8", "replace"))
    return "".join(out)


# --- breakpoint conditions and commands ---------------------------------------------------


class BreakpointAgent:
    """What gdb attached to one breakpoint location: conditions (any true reports), commands."""

    __slots__ = ("_runners", "commands", "conditions", "persist")

    def __init__(self) -> None:
        self.conditions: list[Expression] = []
        self.commands: list[Expression] = []
        self.persist = False
        self._runners: list[Callable[[Context, int, int], int | None]] | None = None

    def condition_runners(self) -> list[Callable[[Context, int, int], int | None]]:
        """The conditions as callables, compiled at the first hit (agent_compile, imported
        only by a session that has conditions); the interpreter's run for what it leaves."""
        if self._runners is None:
            from .agent_compile import compiled

            self._runners = [compiled(c) or c.run for c in self.conditions]
        return self._runners


def parse_extras(text: bytes) -> BreakpointAgent:
    """The part of Z0/Z1 after the kind: ``[;X len,hex...][;cmds:persist,X len,hex...]``."""
    agent = BreakpointAgent()
    conds, sep, cmds = text.partition(b"cmds:")
    agent.conditions = _expression_list(conds)
    if sep:
        persist, comma, rest = cmds.partition(b",")
        if not comma or persist not in (b"0", b"1"):
            raise AgentError("bad cmds: list")
        agent.persist = persist == b"1"
        agent.commands = _expression_list(rest)
        if not agent.commands:
            raise AgentError("empty cmds: list")
    return agent


def _expression_list(text: bytes) -> list[Expression]:
    out: list[Expression] = []
    pos = 0
    while pos < len(text):
        if text[pos:pos + 1] == b";":
            pos += 1
            continue
        if text[pos:pos + 1] != b"X":
            raise AgentError(f"expected X at {pos}")
        comma = text.find(b",", pos)
        if comma < 0:
            raise AgentError("X without length")
        try:
            length = int(text[pos + 1:comma], 16)
        except ValueError as exc:
            raise AgentError("bad length") from exc
        if not 0 < length <= MAX_LENGTH:
            raise AgentError(f"bad length {length}")
        hex_text = text[comma + 1:comma + 1 + 2 * length]
        try:
            code = bytes.fromhex(hex_text.decode("ascii"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise AgentError("bad hex") from exc
        if len(code) != length:
            raise AgentError("expression shorter than its length")
        out.append(Expression.parse(code))
        if len(out) > MAX_EXPRESSIONS:
            raise AgentError("too many expressions")
        pos = comma + 1 + 2 * length
    return out


class BreakpointConditions:
    """Conditions and commands per (pid, Z type, address), evaluated by the target at a hit."""

    def __init__(self) -> None:
        self.table: dict[tuple[int, int, int], BreakpointAgent] = {}
        self.output: Callable[[str], None] = _print

    def set(self, pid: int, type_: int, addr: int, agent: BreakpointAgent | None) -> None:
        """Z0/Z1 replaces what the location had (gdb resends the whole list)."""
        if agent is None or not (agent.conditions or agent.commands):
            self.table.pop((pid, type_, addr), None)
        else:
            self.table[(pid, type_, addr)] = agent

    def discard(self, pid: int, type_: int, addr: int) -> None:
        self.table.pop((pid, type_, addr), None)

    def clear_process(self, pid: int) -> None:
        for key in [k for k in self.table if k[0] == pid]:
            del self.table[key]

    def should_report(self, ctx: Context, pid: int, tid: int, type_: int, addr: int) -> bool:
        """At a hit: report when a condition holds (or fails to run) and no command takes it."""
        agent = self.table.get((pid, type_, addr))
        if agent is None:
            return True
        holds = not agent.conditions
        for cond in agent.condition_runners():
            try:
                if cond(ctx, pid, tid) != 0:  # None: no value, an error: report
                    holds = True
                    break
            except (AgentError, OSError):
                holds = True  # a condition that cannot be evaluated stops, as gdbserver does
                break
        if not holds:
            return False
        if not agent.commands:
            return True
        for cmd in agent.commands:  # dprintf in the agent: print and go on
            try:
                cmd.run(ctx, pid, tid, self.output)
            except (AgentError, OSError):
                return True
        return False


def _print(text: str) -> None:
    """dprintf output goes to the stub's stdout, as gdbserver's does (the program's terminal)."""
    import sys

    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except (OSError, ValueError):
        pass  # stdout closed: the output is lost, the stub goes on
