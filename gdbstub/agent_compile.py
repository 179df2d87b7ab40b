"""Agent expressions compiled to Python functions: a condition gdb sends with a breakpoint runs
at every hit (2000 hits to find the one where it holds), and walking the bytecode through the
interpreter's opcode table at each costs more than the rest of the hit. Each program is turned
once into straight-line Python over local variables (the stack's slots, whose depths a check of
the program fixes), cached by its bytes.

Only what can be proven to behave as ``Expression.run`` is compiled: every reachable instruction
at one stack depth, no underflow, no overflow, no ``pick`` below the stack, no falling off the
end, no printf or trace opcodes. Anything else returns None and keeps the interpreter, so the
two agree on every program (tests/test_agent.py checks it on random ones). A compiled run raises
AgentError (or the context's OSError) where the interpreter does, possibly with another message.
"""

from __future__ import annotations

from collections.abc import Callable

from .agent import (
    MASK,
    MAX_STACK,
    MAX_STEPS,
    OPS,
    REF_SIZES,
    AgentError,
    Context,
    Expression,
    _div,
    _rem,
    _shift,
    _signed,
)

Compiled = Callable[[Context, int, int], "int | None"]

_CACHE: dict[bytes, Compiled | None] = {}
_CACHE_LIMIT = 512  # distinct programs kept (gdb sends one per breakpoint condition)

# Binary operators as expressions of a (below) and b (top); the result is masked as run() does.
_BINARY: dict[int, str] = {
    0x02: "({a} + {b}) & MASK",
    0x03: "({a} - {b}) & MASK",
    0x04: "({a} * {b}) & MASK",
    0x05: "_div(_signed({a}), _signed({b})) & MASK",
    0x06: "_div({a}, {b}) & MASK",
    0x07: "_rem(_signed({a}), _signed({b})) & MASK",
    0x08: "_rem({a}, {b}) & MASK",
    0x09: "(({a} << {b}) & MASK if {b} < 64 else 0)",
    0x0A: "_shift({a}, {b}, True) & MASK",
    0x0B: "_shift({a}, {b}, False) & MASK",
    0x0F: "{a} & {b}",
    0x10: "{a} | {b}",
    0x11: "{a} ^ {b}",
    0x13: "(1 if {a} == {b} else 0)",
    0x14: "(1 if _signed({a}) < _signed({b}) else 0)",
    0x15: "(1 if {a} < {b} else 0)",
}
_GLOBALS = {"MASK": MASK, "AgentError": AgentError, "_div": _div, "_rem": _rem, "_shift": _shift,
            "_signed": _signed, "int_from": int.from_bytes}


def compiled(expr: Expression) -> Compiled | None:
    """The compiled form of EXPR (None: it runs in the interpreter), built once per program."""
    try:
        return _CACHE[expr.code]
    except KeyError:
        pass
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    fn = _CACHE[expr.code] = _compile(expr)
    return fn


def _depths(expr: Expression) -> dict[int, int] | None:
    """The stack depth before each reachable instruction, or None when the program is one
    the compiler leaves to the interpreter (see the module's docstring)."""
    program = expr.program
    depth = {0: 0}
    todo = [0]
    while todo:
        pc = todo.pop()
        ins = program.get(pc)
        if ins is None or ins.op not in OPS or ins.op == 0x34:
            return None  # off the end, or printf
        _, size, pops, pushes = OPS[ins.op]
        d = depth[pc]
        if d < pops or (ins.op == 0x32 and ins.arg >= d):
            return None
        after = d - pops + pushes
        if after > MAX_STACK:
            return None
        nxt = pc + 1 + size
        succ = [] if ins.op == 0x27 else [ins.arg] if ins.op == 0x21 else [nxt, ins.arg] if ins.op == 0x20 else [nxt]
        for s in succ:
            if s not in depth:
                depth[s] = after
                todo.append(s)
            elif depth[s] != after:
                return None
    return depth


def _statements(op: int, arg: int, d: int) -> list[str]:
    """Python for one instruction at stack depth D (slots s0..s{D-1}); jumps are the caller's."""
    top = f"s{d - 1}"
    if op in _BINARY:
        return [f"s{d - 2} = " + _BINARY[op].format(a=f"s{d - 2}", b=top)]
    if op in (0x22, 0x23, 0x24, 0x25):
        return [f"s{d} = {arg}"]
    if op == 0x26:
        return [f"r = read_register(tid, {arg})",
                f"if r is None: raise AgentError('no register {arg}')",
                f"s{d} = int_from(r[:8], 'little')"]
    if op in REF_SIZES:
        n = REF_SIZES[op]
        return [f"m = read_memory(pid, {top}, {n})",
                f"if len(m) != {n}: raise AgentError('cannot read memory at 0x%x' % {top})",
                f"{top} = int_from(m, 'little')"]
    simple = {
        0x0E: f"{top} = 0 if {top} else 1",
        0x12: f"{top} = ~{top} & MASK",
        0x16: f"{top} = _signed({top}, {arg}) & MASK",
        0x2A: f"{top} &= {(1 << arg) - 1}",
        0x28: f"s{d} = {top}",
        0x29: "pass",
        0x2B: f"s{d - 2}, {top} = {top}, s{d - 2}",
        0x32: f"s{d} = s{d - 1 - arg}",
        0x33: f"s{d - 3}, s{d - 2}, {top} = {top}, s{d - 3}, s{d - 2}",
    }
    return [simple[op]]


def _source(expr: Expression, depth: dict[int, int]) -> str:
    program = expr.program
    reachable = sorted(depth)
    targets = {i.arg for pc, i in program.items() if pc in depth and i.op in (0x20, 0x21)}
    # Blocks start at 0, at jump targets and after a jump or an end.
    leaders = {0} | targets
    for pc in reachable:
        if program[pc].op in (0x20, 0x21, 0x27):
            leaders.add(pc + 1 + OPS[program[pc].op][1])
    blocks: dict[int, list[int]] = {}
    current: list[int] | None = None
    for pc in reachable:
        if pc in leaders or current is None:
            current = blocks.setdefault(pc, [])
        current.append(pc)
    looping = bool(targets)
    lines = ["def run(ctx, pid, tid):",
             "    read_register = ctx.read_register",
             "    read_memory = ctx.read_memory"]
    if looping:
        lines += ["    pc = 0", "    steps = 0", "    while True:"]
    for n, (start, pcs) in enumerate(blocks.items()):
        indent = "    "
        if looping:
            lines.append(f"        {'if' if n == 0 else 'elif'} pc == {start}:")
            indent = "            "
            lines.append(f"{indent}steps += {len(pcs)}")
            lines.append(f"{indent}if steps > {MAX_STEPS}: raise AgentError('more than {MAX_STEPS} steps')")
        for pc in pcs:
            ins = program[pc]
            d = depth[pc]
            if ins.op == 0x27:
                lines.append(f"{indent}return s{d - 1}" if d else f"{indent}return None")
            elif ins.op == 0x21:
                lines.append(f"{indent}pc = {ins.arg}")
            elif ins.op == 0x20:
                nxt = pc + 3
                lines.append(f"{indent}pc = {ins.arg} if s{d - 1} else {nxt}")
            else:
                lines += [indent + s for s in _statements(ins.op, ins.arg, d)]
        last = program[pcs[-1]]
        if looping and last.op not in (0x20, 0x21, 0x27):
            lines.append(f"{indent}pc = {pcs[-1] + 1 + OPS[last.op][1]}")  # falls into the next block
    if looping:
        lines.append("        else: raise AgentError('bad jump')")  # unreachable: every target is a block
    return "\n".join(lines) + "\n"


def _compile(expr: Expression) -> Compiled | None:
    depth = _depths(expr)
    if depth is None:
        return None
    namespace = dict(_GLOBALS)
    exec(compile(_source(expr, depth), "<agent expression>", "exec"), namespace)
    fn: Compiled = namespace["run"]  # type: ignore[assignment]
    return fn
