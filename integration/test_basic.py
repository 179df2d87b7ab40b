"""Foundation (issue 2): breakpoints, registers, memory, stepping, through gdbserver and through gdbstub.

Each test runs once per server kind (`kind` fixture).  Against gdbserver they check the test itself
(the expected patterns, the normalisation); against gdbstub they are its acceptance tests.
Tests that compare with gdbserver also run gdbserver-vs-gdbserver, which proves the comparison is
deterministic, so a gdbstub failure is the stub's fault.
"""

from __future__ import annotations

import pytest
from harness import assert_same, expect, expect_not, location, normalise, register_table, source_line
from regquirks import gdbserver_misreads, without_misread_lines

LOOP = "loop.c"


def test_break_on_function_continue_and_backtrace(debug):
    s = debug("loop", [], ["break hot", "continue", "bt", "continue", "p i"])
    expect(
        s,
        rf"^Breakpoint 1 at 0x[0-9a-f]+: file .*{LOOP}, line {source_line('hot-body')}\.$",
        rf"^Breakpoint 1, hot \(i=0\) at .*{LOOP}:{source_line('hot-body')}$",
        r"^#0  hot \(i=0\) at ",
        rf"^#1  0x[0-9a-f]+ in main \(argc=1, argv=0x[0-9a-f]+\) at .*{LOOP}:{source_line('call-hot')}$",
        r"^Breakpoint 1, hot \(i=1\)",
        r"^\$1 = 1$",
    )


@pytest.mark.parametrize("prog", ["loop", "loop-32"])
def test_break_on_line(debug, prog):
    line = source_line("add-body")
    s = debug(prog, ["4"], [f"break {LOOP}:{line}", "continue", "p a", "p b", "info args"])
    expect(
        s,
        rf"^Breakpoint 1, add \(a=42, b=4\) at .*{LOOP}:{line}$",
        r"^\$1 = 42$",
        r"^\$2 = 4$",
        r"^a = 42\nb = 4$",
    )


def test_breakpoint_hit_count(debug):
    s = debug("loop", [], ["break hot", "continue", "continue", "continue", "p i", "info breakpoints"])
    expect(s, r"^\$1 = 2$", r"breakpoint already hit 3 times")


@pytest.mark.parametrize("prog", ["loop", "loop-32", "loop-pie", "loop-nopie", "loop-32-nopie"])
def test_info_registers_same_as_gdbserver(debug, reference, prog):
    """With ASLR off and the same environment every register is reproducible, so all must match.

    Nothing that differs between runs is excluded: the harness gives both servers the same small
    environment (see harness.server_env), which fixes the stack addresses; fs_base/gs_base and the
    AVX-512 mask registers come from the same libc start-up in both cases. Only where gdbserver 13
    reads the AVX-512 state at the wrong XSAVE offsets (AMD Zen, see regquirks.py) are k0-7 left
    out; test_registers.py checks those against the program's own values.
    """
    script = ["break hot", "continue", "continue", "info registers", "p $pc", "p/x $sp"]
    ours = debug(prog, ["5"], script)
    ref = reference(prog, ["5"], script)
    got, want = register_table(ours.out), register_table(ref.out)
    assert "eflags" in want and ("rip" in want or "eip" in want), ref.describe()
    diff = {
        name: (got.get(name), value)
        for name, value in want.items()
        if got.get(name) != value and not gdbserver_misreads(name)
    }
    extra = sorted(set(got) - set(want))
    assert not diff and not extra, (
        f"registers differ (ours, gdbserver): {diff}; only ours: {extra}\n{ours.describe()}\n{ref.describe()}"
    )
    assert without_misread_lines(normalise(ours.out)) == without_misread_lines(normalise(ref.out))


@pytest.mark.parametrize("prog", ["loop", "loop-32"])
def test_info_all_registers_same_as_gdbserver(debug, reference, prog):
    """x87, SSE/AVX, mxcsr, segment bases: `info all-registers` reads the whole register file.

    AVX-512 lines are compared only where gdbserver 13 reads them right (regquirks.py)."""
    script = ["break add", "continue", "info all-registers"]
    ours, ref = debug(prog, [], script), reference(prog, [], script)
    got, want = without_misread_lines(normalise(ours.out)), without_misread_lines(normalise(ref.out))
    assert got == want, f"gdb output differs from gdbserver's\n{ours.describe()}"


def test_print_globals(debug):
    s = debug(
        "loop",
        [],
        [
            "break hot",
            "continue",
            "p/x g8",
            "p/x g16",
            "p/x g32",
            "p/x g64",
            "p message",
            "p table",
            "x/4xb &g8",
            "x/s message",
            "x/2dw table",
            "p sizeof(g64)",
        ],
    )
    expect(
        s,
        r"^\$1 = 0x11$",
        r"^\$2 = 0x2222$",
        r"^\$3 = 0x33333333$",
        r"^\$4 = 0x4444444444444444$",
        r'^\$5 = "hello, gdbstub", \'\\000\' <repeats 17 times>$',
        r"^\$6 = \{1, 2, 3, 4, 5, 6, 7, 8\}$",
        r"^0x[0-9a-f]+ <g8>:\s+0x11\s+0x00\s+0x22\s+0x22$",
        r'^0x[0-9a-f]+ <message>:\s+"hello, gdbstub"$',
        r"^0x[0-9a-f]+ <table>:\s+1\s+2$",
        r"^\$7 = 8$",
    )


@pytest.mark.parametrize("prog", ["loop", "loop-32"])
def test_locals_args_and_stack_same_as_gdbserver(debug, reference, prog):
    script = [
        "break add",
        "continue",
        "info args",
        "info locals",
        "up",
        "info locals",
        "p n",
        "p *argv@argc",
        "x/8xw $sp",
        "x/4i $pc",
        "bt",
    ]
    ours = debug(prog, ["3"], script)
    expect(
        ours,
        r"^local_int = 42$",
        r"^\$1 = 3$",
        r"^acc = 110$",
        r"^\$2 = \{0x[0-9a-f]+ \".*/build/" + prog + '"',
    )
    assert_same(ours, reference(prog, ["3"], script))


def test_set_var_then_read_back(debug):
    s = debug(
        "loop",
        ["3"],
        [
            "break hot",
            "continue",
            "set var g32 = 0xdeadbeef",
            "p/x g32",
            "set var message[0] = 'J'",
            "p message",
            "set var table[2] = 77",
            "p table[2]",
            "set var i = 5",
            "p i",
            "set var $rax = 0x1234",
            "p/x $rax",
            "set var counter = 100",
            "finish",
            "p counter",
            "p total",
        ],
    )
    expect(
        s,
        r"^\$1 = 0xdeadbeef$",
        r'^\$2 = "Jello, gdbstub"',
        r"^\$3 = 77$",
        r"^\$4 = 5$",
        r"^\$5 = 0x1234$",
        # hot(5) with the modified i: total = 5*2 + g8(0x11) = 27
        r"^Value returned is \$6 = 27$",
        r"^\$7 = 101$",
        r"^\$8 = 27$",
    )


@pytest.mark.parametrize("prog", ["loop", "loop-32"])
def test_stepi_nexti_same_as_gdbserver(debug, reference, prog):
    script = ["break hot", "continue", *["stepi", "p $pc"] * 6, "nexti", "nexti", "x/i $pc", "info registers"]
    ours = debug(prog, [], script)
    expect(ours, r"^0x[0-9a-f]+\s+18\s", r"^\$6 = ")
    assert_same(ours, reference(prog, [], script))


@pytest.mark.parametrize("prog", ["loop", "loop-32"])
def test_step_next_finish_until_advance(debug, reference, prog):
    script = [
        "break main",
        "continue",
        "next",
        "next",
        "next",
        "next",
        "next",
        "step",
        "bt",
        "next",
        "finish",
        "until",
        "until",
        f"advance {source_line('print')}",
        "info frame",
    ]
    ours = debug(prog, [], script)
    expect(
        ours,
        rf"^{source_line('call-hot')}\s+acc \+= hot\(i\);",
        rf"^hot \(i=0\) at .*{LOOP}:{source_line('hot-body')}$",
        rf"^{source_line('hot-counter')}\s+counter\+\+;",
        r"^Run till exit|^Value returned is \$1 = 17$",
        rf"^{source_line('call-add')}\s+local_int = add",
        rf"^main \(argc=1, argv=0x[0-9a-f]+\) at .*{LOOP}:{source_line('print')}$",
    )
    assert_same(ours, reference(prog, [], script))


def test_tbreak_and_delete(debug):
    s = debug(
        "loop",
        ["3"],
        [
            "tbreak hot",
            "break add",
            "continue",
            "info breakpoints",
            "continue",
            "delete",
            "info breakpoints",
            "continue",
        ],
    )
    expect(
        s,
        r"^Temporary breakpoint 1, hot \(i=0\)",
        r"^Breakpoint 2, add \(a=42, b=3\)",
        r"^No breakpoints(,| or) watchpoints(, tracepoints, or catchpoints)?\.$",  # gdb 13 | gdb 16
        r"^\[Inferior 1 \(process \d+\) exited with code 07\]$",
    )
    expect_not(s, r"hot \(i=1\)")


def test_software_watchpoint(debug):
    s = debug(
        "loop",
        ["4"],
        [
            "set can-use-hw-watchpoints 0",
            "break main",
            "continue",
            "watch counter",
            "continue",
            "continue",
            "delete",
            "continue",
        ],
    )
    expect(
        s,
        r"^Watchpoint 2: counter$",
        rf"^Old value = 0\nNew value = 1\nhot \(i=0\) at .*{LOOP}:{source_line('hot-counter') + 1}$",
        r"^Old value = 1\nNew value = 2\nhot \(i=1\)",
        r"^\[Inferior 1 \(process \d+\) exited with code 07\]$",
    )


@pytest.mark.parametrize(
    ("prog", "pie"),
    [("loop-pie", True), ("loop-nopie", False), ("loop-32-pie", True), ("loop-32-nopie", False)],
)
def test_pie_and_non_pie(debug, prog, pie):
    """A PIE program needs the load address (auxv AT_ENTRY) to relocate its breakpoints."""
    s = debug(prog, ["2"], ["break hot", "continue", "p $pc", "p &g32", "info symbol $pc", "continue", "continue"])
    m = expect(s, r"^Breakpoint 1, hot \(i=0\)", r"^\$1 = \(void \(\*\)\(\)\) (0x[0-9a-f]+) <hot\+\d+>$")[1]
    pc = int(m.group(1), 16)
    if pie:
        assert pc >= 0x56555000, f"PIE code should be relocated, pc={pc:#x}\n{s.describe()}"
    else:
        assert pc < 0x10000000, f"non-PIE code at its link address, pc={pc:#x}\n{s.describe()}"
    expect(s, r"^hot \+ \d+ in section \.text", r"^Breakpoint 1, hot \(i=1\)", r"exited with code 07\]$")


def test_program_output_and_exit_code(debug):
    s = debug("loop", ["3", "7"], ["continue"])
    expect(s, r"^\[Inferior 1 \(process \d+\) exited with code 07\]$")
    assert "acc=110 counter=3 local=45" in s.inferior_output, s.describe()
    assert s.server_rc is not None, f"--once server still running after the program exited\n{s.describe()}"


def test_exit_code_zero(debug):
    s = debug("loop", ["1", "0"], ["continue"])
    expect(s, r"^\[Inferior 1 \(process \d+\) exited normally\]$")


def test_location_helper_matches_source():
    """The LINE: tags the tests rely on exist (a guard against editing the C programs)."""
    assert location("hot-body").startswith("loop.c:")
    assert source_line("crash", "crash") > 0
