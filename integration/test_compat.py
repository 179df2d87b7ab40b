"""Raw-packet answers compared with gdbserver 13 and 16 in the same test: removing what is not
inserted, hardware breakpoints at addresses gdbserver cannot put in a debug register, and a
process killed from outside while gdb waits in `continue`."""

from __future__ import annotations

import os
import re
import signal

import harness
import pytest
from harness import ProcessTracker, Server
from rawclient import RawClient, load_bias, symbol_address
from test_client_quirks import both, harness_entry


def test_removing_what_is_not_inserted(procs):
    """z0-z4 of breakpoints and watchpoints not inserted (never, or removed already) answer E01;
    a Z0 twice is one breakpoint that one z0 removes (gdbserver keeps no count)."""
    def packets(srv: Server) -> list[bytes]:
        entry = harness_entry(srv)
        one = [b"z%d,%x,%d" % (z, entry, 1 if z < 2 else 4) for z in (0, 1, 2, 4)]
        again = [p.replace(b"z", b"Z", 1) for p in one]
        return [*one,
                *[p for pair in zip(again, one, one, strict=True) for p in pair],  # Z, z: OK; z again: E01
                b"Z0,%x,1" % entry, b"Z0,%x,1" % entry, b"z0,%x,1" % entry, b"z0,%x,1" % entry,
                b"m%x,1" % entry]

    got = both(procs, "loop", packets)
    ours, ref = got["gdbstub"][0], got["gdbserver"][0]
    assert ours == ref
    assert ours[:4] == [b"E01"] * 4 and ours[4:16] == [b"OK", b"OK", b"E01"] * 4, ours
    assert ours[16:20] == [b"OK", b"OK", b"OK", b"E01"], ours


HIGH = [b"Z1,8000000000000000,1", b"Z2,ffffffffff600000,4", b"Z4,fffffffffffffff8,8",
        b"z1,8000000000000000,1"]


def test_hardware_breakpoints_at_or_above_2_63_raw(procs):
    """gdbserver says OK and keeps them; the stub refuses them (E01): no debug register takes them."""
    got = both(procs, "loop", lambda srv: HIGH)
    assert got["gdbserver"][0] == [b"OK"] * len(HIGH)
    assert got["gdbstub"][0] == [b"E01"] * len(HIGH)


def test_hardware_breakpoint_at_or_above_2_63_in_gdb(debug_both):
    """The choice, shown in gdb: gdbserver's OK fails only when the thread resumes ("Couldn't write
    debug register"): gdbserver kills the program and closes the connection. The stub's E01 makes
    gdb say it cannot insert the breakpoint, and the session goes on once it is deleted."""
    runs = debug_both("loop", [], ["break main", "continue", "hbreak *0x8000000000000000",
                                   "continue", "delete 2", "continue"])
    ref, ours = runs["gdbserver"], runs["gdbstub"]
    harness.expect(ref, r"^(Remote connection closed|Remote communication error)")
    assert "Couldn't write debug register" in ref.server.stderr.text, ref.describe()
    harness.expect(ours, r"^Cannot insert hardware breakpoint 2",
                   r"^\[Inferior 1 \(process \d+\) exited with code 07\]$")
    harness.expect_not(ours, r"^Remote (connection closed|communication error)")


def _start_threads(procs: ProcessTracker, kind: str) -> tuple[Server, RawClient, int, int]:
    """schedlock stopped at bump1 in its second thread (breakpoint gone): (server, client, pid, tid)."""
    exe = harness.program("schedlock")
    srv = harness.start_server(procs, kind, exe)
    client = RawClient(srv.port)
    client.handshake()
    pid = srv.inferior_pid
    assert pid is not None
    bump1 = load_bias(pid, exe) + symbol_address(exe, "bump1")
    assert client.request(b"Z0,%x,1" % bump1) == b"OK"
    stop = client.request(b"vCont;c")
    found = re.search(rb"thread:p[0-9a-f]+\.([0-9a-f]+);", stop)
    assert found, stop
    assert client.request(b"z0,%x,1" % bump1) == b"OK"
    return srv, client, pid, int(found.group(1), 16)


def _running(pid: int, tid: int) -> bool:
    """Resumed by the server (out of its ptrace-stop), not gone."""
    return _state(pid, tid) not in ("t", "T", "")


def _state(pid: int, tid: int) -> str:
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


@pytest.mark.parametrize("which", ["all", "one"])
def test_killed_from_outside_while_gdb_waits(procs, which):
    """SIGKILL from outside while gdb waits in `continue`, all threads resumed or one alone (the
    other threads stopped: scheduler-locking): the stub reports the end, X09. gdbserver does so
    for `all`; for `one` it answers "E.No unwaited-for children left." (its bug: it waits for
    the resumed thread alone)."""
    replies = {}
    for kind in harness.KINDS:
        srv, client, pid, tid = _start_threads(procs, kind)
        try:
            client.send(b"vCont;c" if which == "all" else b"vCont;c:p%x.%x" % (pid, tid))
            assert harness.wait_until(lambda p=pid, t=tid: _running(p, t), 30), _state(pid, tid)
            os.kill(pid, signal.SIGKILL)
            replies[kind] = client.receive()
        finally:
            client.close()
            srv.stop()
    assert re.fullmatch(rb"X09;process:[0-9a-f]+", replies["gdbstub"]), replies
    expected = rb"X9;process:[0-9a-f]+"
    if which == "one":
        expected += rb"|E\.No unwaited-for children left\."
    assert re.fullmatch(expected, replies["gdbserver"]), replies


def test_crc_and_unknown_osdata_raw(procs):
    """qCRC of memory (under a breakpoint: the original bytes), its errors, and an osdata type
    neither server has: the same answers byte for byte."""
    def packets(srv: Server) -> list[bytes]:
        entry = harness_entry(srv)
        return [b"qCRC:%x,10" % entry, b"qCRC:%x,0" % entry, b"qCRC:%x" % entry, b"qCRC:0,10",
                b"Z0,%x,1" % entry, b"qCRC:%x,1000" % entry, b"qCRC:%x,ffffffff" % entry,
                b"qXfer:osdata:read:nope:0,fff"]

    got = both(procs, "loop", packets)
    ours, ref = got["gdbstub"][0], got["gdbserver"][0]
    assert ours == ref
    assert re.fullmatch(rb"C[0-9a-f]+", ours[0]) and ours[2:4] == [b"E01", b"E01"], ours


def test_compare_sections_and_unknown_osdata_in_gdb(debug_both):
    """gdb's `compare-sections` (qCRC) finds the same sections matched and a patched one not;
    `info os` of an unknown type warns as with gdbserver."""
    runs = debug_both("loop-nopie", [], ["break main", "continue", "compare-sections .text",
                                         "set {char}&hot = 0x90", "compare-sections .text", "info os nope", "kill"])
    for session in runs.values():
        harness.expect(session, r"^Section \.text, range 0x[0-9a-f]+ -- 0x[0-9a-f]+: matched\.$",
                       r"^Section \.text, range 0x[0-9a-f]+ -- 0x[0-9a-f]+: MIS-MATCHED!$",
                       r"Wrong osdata type\?")
    assert runs["gdbstub"].output.replace(str(runs["gdbstub"].server.inferior_pid), "PID") == (
        runs["gdbserver"].output.replace(str(runs["gdbserver"].server.inferior_pid), "PID"))


def test_reads_past_the_end_of_xfer_objects(procs):
    """A qXfer read from past an object's end: E01 for the target description, the executable's
    name and siginfo (at its 128th byte already), 'l' with nothing for auxv, threads and the
    library list, as gdbserver's handlers answer."""
    def packets(srv: Server) -> list[bytes]:
        path = str(harness.program("loop")).encode()
        return [b"qXfer:%s:read:%s:%x,10" % (obj, annex, offset)
                for obj, annex in ((b"features", b"target.xml"), (b"exec-file", b""), (b"auxv", b""),
                                   (b"threads", b""), (b"libraries-svr4", b""), (b"siginfo", b""))
                for offset in (0x10000, 0x100000)] + [
            b"qXfer:exec-file:read::%x,10" % len(path), b"qXfer:exec-file:read::%x,10" % (len(path) + 1),
            b"qXfer:siginfo:read::7f,10", b"qXfer:siginfo:read::80,10"]

    got = both(procs, "loop", packets)
    ours, ref = got["gdbstub"][0], got["gdbserver"][0]
    assert [r[:1] for r in ours] == [r[:1] for r in ref], (ours, ref)
    assert ours[:4] == [b"E01"] * 4 and ours[4:10] == [b"l"] * 6 and ours[10:12] == [b"E01"] * 2, ours
    assert ours[12:14] == [b"l", b"E01"] and ours[14][:1] == b"l" and len(ours[14]) == 2, ours
    assert ours[15] == b"E01", ours
