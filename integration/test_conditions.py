"""Breakpoint conditions and dprintf evaluated in the stub, and range stepping (issue 5).

The point of both is fewer round trips: the tests check gdb prints what it prints through
gdbserver, and count packets in the stub's --debug log to show the work stayed in the stub.
"""

from __future__ import annotations

import re
import socket

import harness
import pytest
from harness import MIClient, assert_same, expect, source_line

COND = "cond.c"


def _run_with_log(procs, prog: str, args: list[str], commands: list[str]) -> tuple[harness.Session, str]:
    """gdbstub with --debug: gdb's session and the packet log the stub wrote on stderr."""
    server = harness.start_server(procs, "gdbstub", harness.program(prog), args, extra=["--debug"])
    result = harness.run_gdb(procs, server.port, commands, file=harness.program(prog))
    rc = server.wait_exit()
    server.stderr.join(1)
    server.stdout.join(1)
    return harness.Session(server, result, rc), server.stderr.text


def _count(log: str, pattern: str) -> int:
    return len(re.findall(pattern, log, re.M))


@pytest.mark.parametrize("prog", ["cond", "cond-32"])
def test_condition_false_10000_times_true_once(debug, reference, prog):
    script = ["break hit if i == 9999", "continue", "p i", "info breakpoints", "continue"]
    s = debug(prog, ["10000"], script, timeout=180)
    expect(
        s,
        rf"^Breakpoint 1, hit \(i=9999\) at .*{COND}:{source_line('hit', 'cond')}$",
        r"^\$1 = 9999$",
        r"stop only if i == 9999 \(target evals\)",
        r"breakpoint already hit 1 time",
        r"^\[Inferior 1 \(process \d+\) exited normally\]$",
    )
    assert_same(s, reference(prog, ["10000"], script, timeout=180))


def test_condition_costs_one_stop(procs):
    """10 000 hits, one true: the condition travels in Z0 and gdb sees one stop at hit()."""
    s, log = _run_with_log(procs, "cond", ["10000"], ["break hit if i == 9999", "continue", "continue"])
    expect(s, r"^Breakpoint 1, hit \(i=9999\)")
    assert re.search(r"<- .*Z0,[0-9a-f]+,1;X[0-9a-f]+,", log), log
    continues = _count(log, r"<- .*vCont;c")
    assert continues < 10, f"{continues} continues for one true condition\n{log[-3000:]}"


def test_condition_on_hbreak(debug, reference):
    script = ["hbreak hit if i == 1234", "continue", "p i", "continue"]
    s = debug("cond", ["2000"], script, timeout=120)
    expect(s, r"^Breakpoint 1, hit \(i=1234\)", r"^\$1 = 1234$")
    assert_same(s, reference("cond", ["2000"], script, timeout=120))


def test_condition_that_cannot_be_evaluated_stops(procs, reference):
    """An unreadable address in the condition: the stub reports the hit and gdb says why it stopped,
    as when gdb evaluates the condition itself. (gdbserver differs here: it ignores the failed
    read, takes the value as 0 and never stops.)"""
    script = ["break hit if *(int *)8 == 1", "continue", "p i", "kill"]
    s = harness.debug(procs, "gdbstub", harness.program("cond"), ["5"], script)
    expect(s, r"Error in testing (breakpoint condition|condition for breakpoint \d+):",  # gdb 13 | gdb 16
           r"Cannot access memory at address 0x8",
           r"^Breakpoint 1, hit \(i=0\)", r"^\$1 = 0$")
    assert_same(s, reference("cond", ["5"], script, before=["set breakpoint condition-evaluation host"]))


def test_conditions_changed_while_inserted(debug, reference):
    """`condition N expr` re-sends Z0 with the new list; `condition N` drops it."""
    script = ["break hit if i == 3", "continue", "p i", "condition 1 i == 7", "continue", "p i",
              "condition 1", "continue", "p i", "delete", "continue"]
    s = debug("cond", ["10"], script)
    expect(s, r"^\$1 = 3$", r"^\$2 = 7$", r"^\$3 = 8$")
    assert_same(s, reference("cond", ["10"], script))


@pytest.mark.parametrize("prog", ["cond", "cond-32"])
def test_dprintf_in_the_agent(debug, reference, prog):
    """set dprintf-style agent: the stub prints (on its stdout, like gdbserver) and never stops."""
    script = ["set dprintf-style agent", 'dprintf hit,"hit i=%d total=%ld label=%s\\n", (int)i, total, label',
              "continue"]
    s = debug(prog, ["4"], script)
    ref = reference(prog, ["4"], script)
    expect(s, r"^\[Inferior 1 \(process \d+\) exited normally\]$")
    lines = [line for line in s.inferior_output.splitlines() if line.startswith("hit ")]
    assert lines == [f"hit i={i} total={sum(range(i))} label=cond" for i in range(4)], s.describe()
    assert lines == [line for line in ref.inferior_output.splitlines() if line.startswith("hit ")]
    assert_same(s, ref)


# --- malformed agent expressions, straight over the wire ---------------------------------


def _packet(payload: bytes) -> bytes:
    return b"$" + payload + b"#%02x" % (sum(payload) & 0xFF)


class Wire:
    """The smallest RSP client: send a packet, read one reply (acks on)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def ask(self, payload: bytes) -> bytes:
        self.sock.sendall(_packet(payload))
        while True:
            found = re.search(rb"\$([^#]*)#[0-9a-fA-F]{2}", self.buf)
            if found:
                self.buf = self.buf[found.end():]
                self.sock.sendall(b"+")
                return found.group(1)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("stub closed the connection")
            self.buf += data

    def close(self) -> None:
        self.sock.close()


MALFORMED = [
    b"X2,ff27",  # unknown opcode
    b"X3,2201",  # shorter than its length
    b"X2,2201",  # no end
    b"X4,21000127",  # goto into the middle of itself
    b"X3,22zz27",  # not hex
    b"Xfffff,27",  # too long
    b"X1",  # no comma
    b"Q1,27",  # not a condition
    b"cmds:7,X1,27",  # bad persist flag
]


def test_malformed_bytecode_refused(procs):
    server = harness.start_server(procs, "gdbstub", harness.program("cond"), ["3"])
    wire = Wire(server.port)
    try:
        assert b"ConditionalBreakpoints+" in wire.ask(b"qSupported:multiprocess+;swbreak+;hwbreak+")
        stop = wire.ask(b"?")
        pc = re.search(rb"10:([0-9a-f]{16});", stop)
        assert pc, stop
        addr = int.from_bytes(bytes.fromhex(pc.group(1).decode()), "little")  # mapped: ld.so's entry
        for extra in MALFORMED:
            reply = wire.ask(b"Z0,%x,1;" % addr + extra)
            assert reply.startswith(b"E"), (extra, reply)
        assert wire.ask(b"Z0,%x,1;X3,220127" % addr) == b"OK"  # a good one still works
        assert wire.ask(b"z0,%x,1" % addr) == b"OK"
        assert wire.ask(b"Z2,%x,4;X3,220127" % addr).startswith(b"E")  # conditions only on breakpoints
        assert re.fullmatch(rb"[0-9a-f]+", wire.ask(b"m%x,4" % addr)), "stub unusable after bad input"
        assert wire.ask(b"vKill;%x" % server.inferior_pid) == b"OK"
    finally:
        wire.close()
    assert server.wait_exit() is not None


# --- range stepping -----------------------------------------------------------------------


STEPS = ["break step_me", "continue", "next", "next", "next", "next", "next", "step", "next", "next",
         "next", "info line *$pc"]


@pytest.mark.parametrize("prog", ["cond", "cond-32"])
def test_next_and_step_with_and_without_range_stepping(procs, prog):
    """The same stops either way; with range stepping each `next` is one round trip, not one per insn."""
    on, on_log = _run_with_log(procs, prog, ["2"], ["set range-stepping on", *STEPS])
    off, off_log = _run_with_log(procs, prog, ["2"], ["set range-stepping off", *STEPS])
    expect(on, rf"^Breakpoint 1, step_me \(a=1, b=2\) at .*{COND}:{source_line('step-first', 'cond')}$")
    assert harness.normalise(on.out) == harness.normalise(off.out), on.describe() + off.describe()
    ranged = _count(on_log, r"<- .*vCont;r[0-9a-f]+,[0-9a-f]+")
    steps_on = _count(on_log, r"<- .*vCont;s")
    steps_off = _count(off_log, r"<- .*vCont;s")
    assert ranged > 0, on_log[-3000:]
    assert _count(off_log, r"<- .*vCont;r") == 0
    assert steps_on + ranged < steps_off, (steps_on, ranged, steps_off)


def test_range_stepping_same_as_gdbserver(debug, reference):
    s = debug("cond", ["2"], STEPS)
    assert_same(s, reference("cond", ["2"], STEPS))


def test_range_step_over_conditional_breakpoint(debug, reference):
    """`next` over a call whose breakpoint condition is false: the range step goes on past it."""
    script = ["break main", "continue", "break hit if i == 100", "next", "next", "next", "next", "info line *$pc"]
    s = debug("cond", ["3"], script)
    assert_same(s, reference("cond", ["3"], script))


# The stub waits for each range step right where it issued it, not through its event loop;
# these are the cases where that wait must give way (rangewait.c).
RANGEWAIT = ["rangewait", pytest.param("rangewait-32", marks=pytest.mark.i386)]


@pytest.mark.parametrize("prog", RANGEWAIT)
def test_next_over_a_loop_a_signal_ends(debug, reference, prog):
    """`next` over a line that loops in itself until a SIGPROF handler ends the loop: the signal
    (5 ms of the program's CPU time) comes mid-range, gdb passes it (nostop noprint) and the `next`
    ends on the next line."""
    script = [f"tbreak rangewait.c:{source_line('spin', 'rangewait')}", "continue", "next", "p done", "continue"]
    s = debug(prog, ["alarm"], script)
    expect(s, rf"^{source_line('after', 'rangewait')}\s+printf", r"^\$1 = 27$",
           r"^\[Inferior 1 \(process \d+\) exited normally\]$")
    assert_same(s, reference(prog, ["alarm"], script))


@pytest.mark.threads
@pytest.mark.parametrize("prog", RANGEWAIT)
def test_next_while_another_thread_hits_a_breakpoint(debug, reference, prog):
    """All-stop: main is range-stepped through a loop that only the other thread ends, after it
    hits a breakpoint; that hit ends the `next`, and the program then finishes."""
    script = [f"tbreak rangewait.c:{source_line('spin', 'rangewait')}", "continue", "break reached", "next",
              "p $_thread", "continue"]
    s = debug(prog, ["thread"], script)
    expect(s, r'^Thread \S+ "rangewait(-32)?" hit Breakpoint 2, reached \(\) at ', r"^\$1 = 2$",
           r"^\[Inferior 1 \(process \d+\) exited normally\]$")
    assert_same(s, reference(prog, ["thread"], script))


def _blocked(pid: int) -> bool:
    info = harness.read_proc(pid)
    return info is not None and info.state == "S"


@pytest.mark.parametrize("prog", RANGEWAIT)
@pytest.mark.parametrize("mode", ["forever", "read"])
def test_ctrl_c_ends_a_next_that_does_not(procs, server, prog, mode):
    """gdb/MI `-exec-next` over a line that loops for ever, or that blocks in a read() made on
    the line itself (the range step's syscall instruction), then `-exec-interrupt`: the ^C
    stops the `next` with SIGINT on that line, through the stub as through gdbserver."""
    line = source_line("spin" if mode == "forever" else "read", "rangewait")
    srv = server(prog, [mode])
    mi = MIClient(procs, harness.program(prog))
    try:
        assert mi.send("-gdb-set mi-async on")["message"] == "done"
        connected = mi.send(f"-target-select remote {srv.address}")
        assert connected["message"] == "connected", connected
        assert mi.send(f"-break-insert rangewait.c:{line}")["message"] == "done"
        assert mi.send("-exec-continue")["message"] == "running"
        assert mi.wait_stopped()["payload"].get("reason") == "breakpoint-hit"
        assert mi.send("-break-delete")["message"] == "done"
        assert mi.send("-exec-next")["message"] == "running"
        if mode == "read":
            assert harness.wait_until(lambda: _blocked(srv.inferior_pid), 20), srv.describe()
        assert mi.send("-exec-interrupt")["message"] == "done"
        stopped = mi.wait_stopped(30)["payload"]
        assert stopped.get("reason") == "signal-received", stopped
        assert stopped.get("signal-name") == "SIGINT", stopped
        assert stopped["frame"]["func"] == "main", stopped
        assert stopped["frame"]["line"] == str(line), stopped
        mi.send('-interpreter-exec console "kill"')
    finally:
        mi.close()
    assert srv.wait_exit() is not None, f"--once server still running after kill\n{srv.describe()}"


@pytest.mark.threads
@pytest.mark.parametrize("prog", ["threads", "threads-32"])
def test_condition_in_threads_misses_no_hit(debug, reference, prog):
    """Eight workers race through one conditional breakpoint: stepping a thread past it (false
    condition) stops the others first, so every true hit is seen, each in its own thread."""
    script = ["break worker if id > 2", *["continue"] * 7, "info breakpoints"]
    s = debug(prog, [], script)
    hits = re.findall(r"^Thread \S+ \"worker-(\d)\" hit Breakpoint 1, worker \(id=(\d)\)", s.out, re.M)
    assert sorted(int(a) for a, b in hits) == [3, 4, 5, 6, 7, 8], s.describe()
    assert all(a == b for a, b in hits), hits
    expect(s, r"breakpoint already hit 6 times", r"^\[Inferior 1 \(process \d+\) exited normally\]$")
    ref = reference(prog, [], script)
    assert len(re.findall(r"hit Breakpoint 1, worker", ref.out)) == 6
