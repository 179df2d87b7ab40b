"""Hardware watchpoints and breakpoints (issue 5): Z1-Z4 through the debug registers.

Each test runs against gdbserver and gdbstub (`kind`); where gdb's output is reproducible it is
compared with gdbserver's, so the stub must print exactly what the reference prints.
"""

from __future__ import annotations

import re
import shutil

import harness
import pytest
from harness import assert_same, expect, expect_not, location, source_line

WATCH = "watch.c"


def _run_with_log(procs, prog: str, commands: list[str]) -> tuple[harness.Session, str]:
    """gdbstub with --debug: gdb's session and the packet log the stub wrote on stderr."""
    server = harness.start_server(procs, "gdbstub", harness.program(prog), extra=["--debug"])
    result = harness.run_gdb(procs, server.port, commands, file=harness.program(prog))
    rc = server.wait_exit()
    server.stderr.join(1)
    return harness.Session(server, result, rc), server.stderr.text


@pytest.mark.parametrize("prog", ["watch", "watch-32"])
def test_watch_each_width(debug, reference, prog):
    """watch on 1, 2, 4 and 8-byte globals: gdb prints Old/New value at each write."""
    script = ["break writes", "continue", "watch w8", "watch w16", "watch w32", "watch w64",
              "continue", "continue", "continue", "continue", "info watchpoints"]
    s = debug(prog, [], script)
    expect(
        s,
        r"^Hardware watchpoint 2: w8\n\nOld value = 17 '\\021'\nNew value = 129 '\\201'$",
        r"^Hardware watchpoint 3: w16\n\nOld value = 8738\nNew value = 33410$",
        r"^Hardware watchpoint 4: w32\n\nOld value = 858993459\nNew value = 2206434179$",
        # i386 writes the 8 bytes in two stores: the first one stops it
        r"^Hardware watchpoint 5: w64\n\nOld value = 4919131752989213764\nNew value = \d+$",
        rf"writes \(\) at .*{WATCH}:{source_line('write64', 'watch')}$",
    )
    assert_same(s, reference(prog, [], script))


@pytest.mark.parametrize("prog", ["watch", "watch-32"])
def test_watch_misaligned_region_takes_two_slots(debug, reference, prog):
    """An 8-byte field at an odd address needs two aligned slots; the hit is still reported."""
    script = ["break writes", "continue", "watch pk.value", "continue", "continue"]
    s = debug(prog, [], script)
    # i386 stores the 8 bytes as two halves: one stop per half, through each slot
    expect(s, r"^Hardware watchpoint 2: pk.value\n\nOld value = \d+\nNew value = 1234605616436508552$")
    assert_same(s, reference(prog, [], script))


@pytest.mark.parametrize("prog", ["watch", "watch-32"])
def test_rwatch_and_awatch_each_width(debug, reference, prog):
    """rwatch ignores the writes (x86 has only access slots: the stub filters) and stops at the
    reads; awatch stops at both. All four slots in use."""
    script = ["break writes", "continue", "rwatch w32", "awatch w64", "rwatch w8", "awatch w16",
              *["continue"] * 8, "info watchpoints"]
    s = debug(prog, [], script)
    expect(
        s,
        r"^Hardware access \(read/write\) watchpoint 5: w16\n\nOld value = 8738\nNew value = 33410$",
        r"^Hardware access \(read/write\) watchpoint 3: w64\n\nOld value = \d+\nNew value = 9548902814626120836$",
        r"^Hardware read watchpoint 4: w8\n\nValue = 129 '\\201'\n"
        rf".*in reads \(\) at .*{WATCH}:{source_line('read8', 'watch')}$",
        r"^Hardware access \(read/write\) watchpoint 5: w16\n\nValue = 33410$",
        r"^Hardware read watchpoint 2: w32\n\nValue = 2206434179$",
        r"^Hardware access \(read/write\) watchpoint 3: w64\n\nValue = 9548902814626120836$",
    )
    expect_not(s, r"^Hardware read watchpoint 4: w8\n\nValue = 17", r"^Hardware read watchpoint 2: w32\n\nOld")
    assert_same(s, reference(prog, [], script))


@pytest.mark.parametrize("prog", ["watch", "watch-32"])
def test_watch_stack_variable_goes_out_of_scope(debug, reference, prog):
    script = ["break scoped", "continue", "watch local", "continue", "continue", "continue", "continue",
              "continue", "continue"]
    s = debug(prog, [], script)
    expect(
        s,
        r"^Hardware watchpoint 2: local\n\nOld value = 1\nNew value = 3$",
        r"^Watchpoint 2 deleted because the program has left the block in\nwhich its expression is valid\.$",
    )
    assert_same(s, reference(prog, [], script), addresses=True)


@pytest.mark.threads
@pytest.mark.parametrize("prog", ["watch", "watch-32"])
def test_watch_hit_in_worker_thread(debug, prog):
    """The watchpoint is set before the worker exists: new threads get the debug registers too."""
    s = debug(prog, [], ["break writes", "continue", "watch shared", "continue", "bt 1",
                         "p $_thread > 1", "continue"])
    expect(
        s,
        r"^Thread \S+ .*hit Hardware watchpoint 2: shared\n\nOld value = 0\nNew value = 42$",
        r"^#0  worker \(arg=",
        r"^\$1 = 1$",
    )


@pytest.mark.parametrize("prog", ["watch", "watch-32"])
def test_hbreak(debug, reference, prog):
    script = ["hbreak plain", "continue", "p x", "continue", "p x", "info breakpoints"]
    s = debug(prog, [], script)
    expect(
        s,
        r"^Hardware assisted breakpoint 1 at 0x[0-9a-f]+: file .*watch\.c",
        rf"^Breakpoint 1, plain \(x=2\) at .*{WATCH}:{source_line('plain', 'watch')}$",
        r"^\$1 = 2$",
        r"^\$2 = 3$",
        r"hw breakpoint\s+keep y",
    )
    assert_same(s, reference(prog, [], script))


def test_hbreak_does_not_write_code(procs):
    """Z1 puts no int3 in the text (it works in code that is not writable): the stop says hwbreak."""
    s, log = _run_with_log(procs, "watch", ["hbreak plain", "continue", "continue"])
    expect(s, r"^Breakpoint 1, plain \(x=2\)")
    found = re.search(r"<- .*Z1,([0-9a-f]+),1", log)
    assert found, log
    assert f"Z0,{found.group(1)}," not in log, log
    assert re.search(r"-> .*\$T05hwbreak:;", log), log


@pytest.mark.parametrize("prog", ["watch", "watch-32"])
def test_hbreak_in_code_nobody_can_write(debug, reference, prog):
    """A shared read-only file mapping: int3 cannot go there (gdb says so), Z1 stops there."""
    script = ["break code_ready", "continue", "break *readonly_code", "continue", "delete 2",
              "hbreak *readonly_code", "continue", "p $pc == readonly_code", "stepi", "p $eax", "continue"]
    s = debug(prog, [], script)
    expect(
        s,
        r"^Cannot insert breakpoint 2\.\nCannot access memory at address 0x[0-9a-f]+$",
        r"^Breakpoint 3, 0x[0-9a-f]+ in \?\? \(\)$",
        r"^\$1 = 1$",
        r"^\$2 = 42$",
        r"^\[Inferior 1 \(process \d+\) exited normally\]$",
    )
    assert "code=42" in s.inferior_output, s.describe()
    assert_same(s, reference(prog, [], script))


def test_five_watchpoints_fifth_refused(debug, reference):
    """Four debug registers: the fifth watchpoint cannot be inserted and gdb says so."""
    script = ["break five", "continue", "watch g1", "watch g2", "watch g3", "watch g4", "watch g5",
              "continue", "delete 6", "continue", "continue"]
    s = debug("watch", [], script)
    expect(
        s,
        r"Could not insert hardware watchpoint 6\.",
        r"^Hardware watchpoint 2: g1\n\nOld value = 0\nNew value = 1$",
        r"^Hardware watchpoint 3: g2\n\nOld value = 0\nNew value = 2$",
    )
    assert_same(s, reference("watch", [], script))


def test_watchpoints_removed_on_detach(debug):
    """Detach takes the debug registers out: the program then runs to its end untroubled."""
    s = debug("watch", [], ["break writes", "continue", "watch w64", "awatch w8", "detach"])
    expect(s, r"^\[Inferior 1 \(process \d+\) detached\]$")
    assert "sink=" in s.inferior_output or harness.wait_until(lambda: "sink=" in s.server.stdout.text, 10), \
        s.describe()


def test_watch_location_line(debug):
    """A write watchpoint and a line breakpoint together: each stop names the right reason."""
    line = location("five", "watch")
    s = debug("watch", [], ["break writes", "continue", "watch w32", f"break {line}", "continue", "continue",
                            "continue"])
    expect(
        s,
        r"^Hardware watchpoint 2: w32\n\nOld value = 858993459\nNew value = 2206434179$",
        rf"^Breakpoint 3, five \(\) at .*{WATCH}:{source_line('five', 'watch')}$",
    )


@pytest.mark.lldb
@pytest.mark.skipif(shutil.which("lldb") is None, reason="no lldb")
def test_lldb_watchpoint(procs):
    """lldb asks qWatchpointSupportInfo, sets Z2 and reads the watch: stop as a watchpoint stop."""
    from test_lldb import lldb

    run = lldb(procs, "watch", [], ["b writes", "c", "watchpoint set variable w16", "c", "p w16",
                                    "watchpoint list", "kill"])
    run.expect_lines(
        r"Watchpoint created: Watchpoint 1: addr = 0x[0-9a-f]+ size = 2 state = enabled type = w",
        r"\* thread #1, name = 'watch', stop reason = watchpoint 1",
        r"\(unsigned short\) \$0 = 33410",
        r"Number of supported hardware watchpoints: 4",
    )
