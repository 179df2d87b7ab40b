"""Execution control as gdbserver does it (issue 14, items 1-3).

1. A breakpoint at the PC a thread resumes from is reported at once: gdb steps off its own
   breakpoints itself, so one it leaves inserted there is one it wants hit (`jump` onto a
   tbreak, a step-resume breakpoint at the PC, the instruction after a permanent int3). Only
   a hit the stub swallowed itself (false condition) is stepped over.
2. Stepping over such a swallowed hit on the exit_group system call ends the process: the
   exit is reported.
3. A Ctrl-C that arrives while the program is stopped is not lost: the next resume reports
   SIGINT.
Each runs the same session through gdbserver and gdbstub and compares.
"""

from __future__ import annotations

import re
import socket
import threading

import harness
import pytest
from harness import KINDS, ProcessTracker, assert_same, expect, location, source_line
from rawclient import RawClient, line_address, load_bias, symbol_address

from gdbstub.protocol import framing

PROGS = ["execctl", "execctl-32"]


# --------------------------------------------------------------------------- item 1


@pytest.mark.parametrize("prog", ["loop", "loop-32"])
def test_jump_onto_a_tbreak_reports_it_at_once(debug_both, prog):
    """`tbreak N` + `jump N`: gdb writes the PC onto the inserted breakpoint and continues;
    the stop is that breakpoint, not the program running on past it."""
    line = source_line("print")
    runs = debug_both(prog, ["3"], [
        "break main", "continue", f"tbreak {location('print')}", f"jump {line}",
        "p counter", "info breakpoints", "continue"])
    for session in runs.values():
        expect(session, rf"^Temporary breakpoint 2, main \(.*\) at .*loop\.c:{line}$", r"^\$1 = 0$",
               r"^\[Inferior 1 \(process \d+\) exited")
    assert_same(runs["gdbstub"], runs["gdbserver"])


@pytest.mark.parametrize("prog", PROGS)
def test_continue_past_a_permanent_int3_onto_a_breakpoint(debug_both, prog):
    """The program's own int3 is a permanent breakpoint to gdb: to go on, gdb moves the PC past
    it (`P`) onto the next instruction, where it has inserted a breakpoint, and continues."""
    runs = debug_both(prog, ["perm"], [
        "break *perm_bp", "break *after_perm", "continue", "p $pc == &perm_bp",
        "continue", "p $pc == &after_perm", "continue"])
    for session in runs.values():
        expect(session, r"^Breakpoint 1, ", r"^\$1 = 1$", r"^Breakpoint 2, ", r"^\$2 = 1$",
               r"exited with code 03")
    assert_same(runs["gdbstub"], runs["gdbserver"], addresses=True)


def _stop_reply_pc(reply: bytes, regnum: int, word: int) -> int:
    found = re.search(rb"(?:^T..|;)%02x:([0-9a-f]+);" % regnum, reply)
    assert found, reply
    return int.from_bytes(bytes.fromhex(found.group(1).decode())[:word], "little")


def _raw_breakpoint_at_pc(procs: ProcessTracker, kind: str, prog: str) -> list[bytes]:
    """Stop at hot(), step off that breakpoint as gdb does, then put a breakpoint at the new PC and
    resume: plainly, and with SIGCHLD (no handler: gdb's step-resume breakpoint case)."""
    exe = harness.program(prog)
    word = 4 if prog.endswith("-32") else 8
    pc_reg = 8 if word == 4 else 0x10
    srv = harness.start_server(procs, kind, exe, ["3"])
    pid = srv.inferior_pid
    assert pid is not None
    replies = []
    try:
        with RawClient(srv.port) as client:
            client.handshake()
            bias = load_bias(pid, exe)
            hot, counter = bias + symbol_address(exe, "hot"), bias + symbol_address(exe, "counter")
            assert client.request(b"Z0,%x,1" % hot) == b"OK"
            first = client.request(b"vCont;c")
            assert _stop_reply_pc(first, pc_reg, word) == hot, first
            assert client.request(b"z0,%x,1" % hot) == b"OK"
            stepped = client.request(b"vCont;s:p%x.%x" % (pid, pid))
            here = _stop_reply_pc(stepped, pc_reg, word)
            assert here != hot, stepped
            assert client.request(b"Z0,%x,1" % here) == b"OK"
            # Plainly, then again with SIGCHLD: a reported hit is no reason to step over either.
            for resume in (b"vCont;c:p%x.-1" % pid, b"vCont;C14:p%x.%x" % (pid, pid)):
                reply = client.request(resume)
                replies.append(reply[:3])
                assert _stop_reply_pc(reply, pc_reg, word) == here, (kind, resume, reply)
                assert b"swbreak:" in reply, (kind, reply)
                # Still in hot()'s first call (stepped over, it is hit again in the second).
                assert client.request(b"m%x,4" % counter) == b"00000000", (kind, resume)
            client.request(b"vKill;%x" % pid)
    finally:
        srv.stop()
        srv.stderr.join(2)
    return replies


@pytest.mark.parametrize("prog", ["loop", "loop-32"])
def test_breakpoint_at_the_resume_pc_is_hit_with_a_signal_too(procs, prog):
    """`Z0` at the PC, then `vCont;C14` (SIGCHLD, no handler): the breakpoint is reported at
    once, as gdbserver does (the stub used to step over it and run to the exit)."""
    got = {kind: _raw_breakpoint_at_pc(procs, kind, prog) for kind in KINDS}
    assert got["gdbstub"] == got["gdbserver"] == [b"T05", b"T05"], got


@pytest.mark.parametrize("before", [[], ["maint set target-non-stop on"]], ids=["all-stop", "non-stop"])
@pytest.mark.parametrize("prog", ["cond", "cond-32"])
def test_false_condition_still_steps_over(debug_both, prog, before):
    """The other half of the rule: a hit the stub swallows (false condition) is stepped over,
    never reported, and the program goes on; in non-stop too, where it would otherwise loop
    on the breakpoint."""
    script = ["break hit if i == 40", "continue", "p i", "continue"]
    runs = debug_both(prog, ["50"], script, before=before)
    for session in runs.values():
        expect(session, r"^Breakpoint 1, hit \(i=40\)", r"^\$1 = 40$", r"exited normally")
    assert_same(runs["gdbstub"], runs["gdbserver"])


# --------------------------------------------------------------------------- item 2


@pytest.mark.parametrize("prog", PROGS)
def test_step_over_into_exit_group_reports_the_exit(debug_both, prog):
    """A false condition on the exit_group system call: stepping over it ends the process, the
    int3 cannot go back, and the exit is still reported."""
    runs = debug_both(prog, ["exit"], ["break *exit_syscall if never == 1", "continue", "info inferiors"],
                      timeout=60)
    for session in runs.values():
        expect(session, r"^\[Inferior 1 \(process \d+\) exited normally\]$")
    assert_same(runs["gdbstub"], runs["gdbserver"])


@pytest.mark.parametrize("prog", PROGS)
def test_step_over_into_exit_group_with_another_thread(procs, prog):
    """The same from the leader with a second thread alive: the leader's exit comes only once
    that thread is reaped, so waiting for the stepped leader alone would never end. (gdbserver
    13 itself hangs here now and then on this machine, gdb waiting for a stop that never comes:
    gdbstub alone is checked.)"""
    script = ["break *exit_syscall if never == 1", "continue", "info inferiors"]
    session = harness.debug(procs, "gdbstub", harness.program(prog), ["exit-threads"], script, timeout=60)
    expect(session, r"^\[Inferior 1 \(process \d+\) exited normally\]$")


# --------------------------------------------------------------------------- item 3


@pytest.mark.parametrize("prog", ["loop", "loop-32"])
def test_ctrl_c_while_stopped_is_reported_at_the_next_resume(procs, prog):
    """0x03 right after a stop (a user's Ctrl-C racing the breakpoint's report): SIGINT goes to the
    program's process group, so `c` stops at once with T02, then the program goes on as usual."""
    exe = harness.program(prog)
    got = {}
    for kind in KINDS:
        srv = harness.start_server(procs, kind, exe, ["3"])
        pid = srv.inferior_pid
        assert pid is not None
        try:
            with RawClient(srv.port) as client:
                client.handshake()
                hot = load_bias(pid, exe) + symbol_address(exe, "hot")
                assert client.request(b"Z0,%x,1" % hot) == b"OK"
                first = client.request(b"vCont;c")
                assert client.request(b"z0,%x,1" % hot) == b"OK"
                client.send_raw(b"\x03")
                second = client.request(b"c")
                third = client.request(b"c")
                got[kind] = [first[:3], second[:3], third[:1] + b"%x" % int(third[1:].split(b";")[0], 16)]
        finally:
            srv.stop()
            srv.stderr.join(2)
    assert got["gdbstub"] == got["gdbserver"] == [b"T05", b"T02", b"W7"], got


class CtrlCAfterStop:
    """A TCP relay between gdb and the server that types Ctrl-C (0x03) to the server right
    after passing on the stop at PC (a stop reply carrying it, little-endian, as it expedites
    the PC): a user's Ctrl-C racing that stop's report."""

    def __init__(self, server_port: int, pc: int, word: int) -> None:
        self.pc = b":" + pc.to_bytes(word, "little").hex().encode() + b";"
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.server_port = server_port
        self.sent = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(30)
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        upstream = socket.create_connection(("127.0.0.1", self.server_port))
        down = threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True)
        down.start()
        self._pump(client, upstream, False)
        down.join(10)
        for sock in (client, upstream):
            sock.close()

    def _pump(self, src: socket.socket, dst: socket.socket, from_server: bool) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if from_server and not self.sent and b"T05swbreak" in data \
                        and self.pc in framing.run_length_decode(data):  # gdbserver compresses
                    self.sent = True
                    src.sendall(b"\x03")
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()
        self.thread.join(10)


@pytest.mark.parametrize("prog", ["loop-nopie", "loop-32-nopie"])
def test_ctrl_c_racing_a_breakpoint_stop_through_gdb(procs, prog):
    """gdb shows the breakpoint, and the next `continue` stops with SIGINT at once, as through
    gdbserver; the one after runs to the end."""
    script = ["break hot", "continue", "delete", "continue", "p counter", "continue"]
    runs = {}
    for kind in KINDS:
        srv = harness.start_server(procs, kind, harness.program(prog), ["3"])
        exe = harness.program(prog)
        body = line_address(exe, source_line("hot-body"))  # where `break hot` lands
        relay = CtrlCAfterStop(srv.port, body, 4 if "32" in prog else 8)
        try:
            result = harness.run_gdb(procs, relay.port, script, file=harness.program(prog))
            rc = srv.wait_exit()
        finally:
            relay.close()
            srv.stop()
            srv.stderr.join(2)
        assert relay.sent, kind
        runs[kind] = harness.Session(srv, result, rc)
    for session in runs.values():
        expect(session, r"^Breakpoint 1, hot \(i=0\)", r"^Program received signal SIGINT, Interrupt\.$",
               r"^\$1 = 0$", r"exited with code 07")
    assert_same(runs["gdbstub"], runs["gdbserver"])
