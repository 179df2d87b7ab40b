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
from test_client_quirks import both, harness_entry, raw_replies


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
    other threads stopped: scheduler-locking): the stub reports the end, X9. gdbserver does so
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
    assert re.fullmatch(rb"X9;process:[0-9a-f]+", replies["gdbstub"]), replies  # gdbserver's form
    expected = rb"X9;process:[0-9a-f]+"
    if which == "one":
        expected += rb"|E\.No unwaited-for children left\."
    assert re.fullmatch(expected, replies["gdbserver"]), replies


def test_crc_and_unknown_osdata_raw(procs):
    """qCRC of memory (under a breakpoint: the original bytes), its errors, an osdata type
    neither server has, and vCont? (the same actions in the same order): the same answers byte
    for byte."""
    def packets(srv: Server) -> list[bytes]:
        entry = harness_entry(srv)
        return [b"vCont?", b"qCRC:%x,10" % entry, b"qCRC:%x,0" % entry, b"qCRC:%x" % entry, b"qCRC:0,10",
                b"Z0,%x,1" % entry, b"qCRC:%x,1000" % entry, b"qCRC:%x,ffffffff" % entry,
                b"qXfer:osdata:read:nope:0,fff"]

    got = both(procs, "loop", packets)
    ours, ref = got["gdbstub"][0], got["gdbserver"][0]
    assert ours == ref
    assert re.fullmatch(rb"C[0-9a-f]+", ours[1]) and ours[3:5] == [b"E01", b"E01"], ours


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


BIG = 1 << 22  # bench.c's big[]: big[i] = i * 7 once main has run


def test_bulk_reads_see_what_changed_between_their_parts(procs, gdb_version):
    """A bulk read's next part is answered ahead; a write, a breakpoint or any other packet in
    between makes the next part read again: gdbserver 16's replies, 64- and 32-bit. (gdbserver
    13 aborts on a read of more than its PacketSize: a heap overflow, "malloc assertion failure
    in sysmalloc"; the stub's replies are checked alone then.)"""
    def packets(srv: Server) -> list[bytes]:
        exe = srv.argv[-1]
        big = symbol_address(exe, "big") + load_bias(srv.inferior_pid, exe)
        return [b"m%x,8000" % big,  # zeros (the program has not run): its next part is read ahead
                b"M%x,4:deadbeef" % (big + 0x8010),  # a write into that next part
                b"m%x,8000" % (big + 0x8000),  # shows it
                b"m%x,8000" % (big + 0x10000),  # the part read ahead
                b"Z0,%x,1" % (big + 0x18020),  # an int3 into the part read ahead now
                b"m%x,8000" % (big + 0x18000),  # hidden as ever
                b"z0,%x,1" % (big + 0x18020),
                b"m%x,4000" % (big + 0x20000),  # another length than the part read ahead
                b"m%x,8000" % (big + 0x24000)]

    zeros = b"00" * 0x8000
    want = [zeros, b"OK", b"00" * 0x10 + b"deadbeef" + b"00" * (0x8000 - 0x14), zeros, b"OK", zeros, b"OK",
            b"00" * 0x4000, zeros]
    for prog in ("bench", "bench-32"):
        if gdb_version == "gdb13":
            assert raw_replies(procs, "gdbstub", prog, packets)[0] == want
        else:
            got = both(procs, prog, packets)
            assert got["gdbserver"][0] == want
            assert got["gdbstub"][0] == want


def test_dump_same_as_gdbserver(procs, tmp_path):
    """gdb's `dump` reads in parts of PacketSize (`m`, gdb 16 `x`), answered ahead: the file is
    the program's memory, the same as through gdbserver, and a second dump after a write in
    the middle has the write."""
    pattern = bytes((i * 7) & 0xFF for i in range(BIG))
    written = bytearray(pattern)
    written[0x12345] = 0x5A
    files = {}
    for kind in ("gdbstub", "gdbserver"):
        first, second = tmp_path / f"{kind}-1.bin", tmp_path / f"{kind}-2.bin"
        session = harness.debug(procs, kind, harness.program("bench"), ["10"], [
            "break hot", "continue", f"dump binary memory {first} &big[0] &big[{BIG}]",
            "set var big[0x12345] = 0x5a", f"dump binary memory {second} &big[0] &big[{BIG}]", "kill"])
        harness.expect(session, r"^Breakpoint 1, hot")
        files[kind] = (first.read_bytes(), second.read_bytes())
    assert files["gdbstub"] == (pattern, bytes(written))
    assert files["gdbserver"] == files["gdbstub"]


# --------------------------------------------------------------------------- info os: every type

OSDATA_TYPES = ("files", "modules", "msg", "procgroups", "semaphores", "shm", "sockets")
IPC_CREAT, IPC_RMID = 0o1000, 0


@pytest.fixture
def held_objects(tmp_path):
    """What the test holds open for both servers to list: a file, a listening TCP socket (and one
    on ::1 when the machine has IPv6), a bound UDP socket, and one System V shared-memory
    region, semaphore set and message queue (removed at the end)."""
    import contextlib
    import ctypes
    import socket

    libc = ctypes.CDLL(None, use_errno=True)
    create = {"shm": lambda: libc.shmget(0, 4096, IPC_CREAT | 0o640),
              "semaphores": lambda: libc.semget(0, 3, IPC_CREAT | 0o600),
              "msg": lambda: libc.msgget(0, IPC_CREAT | 0o644)}
    remove = {"shm": lambda i: libc.shmctl(i, IPC_RMID, None), "semaphores": lambda i: libc.semctl(i, 0, IPC_RMID),
              "msg": lambda i: libc.msgctl(i, IPC_RMID, None)}
    held: dict[str, object] = {"pid": os.getpid()}
    with contextlib.ExitStack() as stack:
        for kind, make in create.items():
            ident = make()
            if ident < 0:
                pytest.skip(f"no System V IPC here: {os.strerror(ctypes.get_errno())}")
            stack.callback(remove[kind], ident)
            held[kind] = ident
        path = tmp_path / "osdata-held-file"
        handle = stack.enter_context(open(path, "w"))
        held["file"], held["fd"] = str(path), handle.fileno()
        tcp = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        udp.bind(("127.0.0.1", 0))
        held["tcp"], held["udp"] = tcp.getsockname()[1], udp.getsockname()[1]
        with contextlib.suppress(OSError):
            tcp6 = stack.enter_context(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
            tcp6.bind(("::1", 0))
            tcp6.listen()
            held["tcp6"] = tcp6.getsockname()[1]
        yield held


def _osdata_sections(output: str) -> dict[str, list[str]]:
    """gdb's output cut at the `echo` marks the script puts before each `info os` command."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        mark = re.fullmatch(r"=== (\w+) ===", line)
        if mark:
            current = sections.setdefault(mark.group(1), [])
        elif current is not None and not line.startswith(("[Inferior ", "warning: File transfers")):
            current.append(line)
    return sections


def _row(lines: list[str], pattern: str) -> str:
    """The one row of a table matching PATTERN ("" when none does)."""
    found = [line for line in lines if re.search(pattern, line)]
    assert len(found) <= 1, found
    return found[0] if found else ""


def test_info_os_every_type_as_gdbserver(debug_both, held_objects):
    """`info os` lists gdbserver's ten types; each new type's table (and procgroups) has gdbserver's
    heading, and the rows of what the test itself holds (a file, sockets, System V IPC objects, its
    own process group and the program's) are the same."""
    script = ["echo === types ===\\n", "info os"]
    for kind in OSDATA_TYPES:
        script += [f"echo === {kind} ===\\n", f"info os {kind}"]
    runs = debug_both("loop", [], [*script, "kill"])
    got = {name: _osdata_sections(session.out) for name, session in runs.items()}
    ours, ref = got["gdbstub"], got["gdbserver"]
    context = runs["gdbstub"].describe() + runs["gdbserver"].describe()
    assert ours["types"] == ref["types"], context
    assert [line.split()[0] for line in ours["types"][1:]] == [
        "cpus", "files", "modules", "msg", "processes", "procgroups", "semaphores", "shm", "sockets", "threads"]
    for kind in OSDATA_TYPES:
        assert ours[kind][:1] == ref[kind][:1], (kind, context)
    if not os.path.exists("/proc/modules"):
        assert ours["modules"] == ref["modules"] == [], context
    held = held_objects
    owners, when = r"(?: +\S+){4}", r" +\w{3} \w{3} [ \d]\d [\d:]{8} \d+ *$"  # user group cuser cgroup; ctime
    rows = {
        "files": rf"^{held['pid']} +\S+ +{held['fd']} +{re.escape(str(held['file']))} *$",
        "sockets": rf"^127\.0\.0\.1 +{held['tcp']} +0\.0\.0\.0 +0 +LISTEN +\S+ +INET +STREAM *$",
        "udp": rf"^127\.0\.0\.1 +{held['udp']} +0\.0\.0\.0 +0 +CLOSE +\S+ +INET +DGRAM *$",
        "shm": rf"^0 +{held['shm']} +640 +4096 +\S+ +0 +0{owners}{when}",
        "semaphores": rf"^0 +{held['semaphores']} +600 +3{owners}{when}",
        "msg": rf"^0 +{held['msg']} +644 +0 +0 +0 +0{owners}{when}",
    }
    rows["procgroups"] = rf"^\d+ +\S+ +{held['pid']} "
    if "tcp6" in held:
        rows["tcp6"] = rf"^::1 +{held['tcp6']} +:: +0 +LISTEN +\S+ +INET6 +STREAM *$"
    for name, pattern in rows.items():
        table = name if name in OSDATA_TYPES else "sockets"
        row = _row(ours[table], pattern)
        assert row, (name, pattern, context)
        assert row == _row(ref[table], pattern), (name, context)
    inferior = {name: session.server.inferior_pid for name, session in runs.items()}
    leaders = {name: " ".join(_row(got[name]["procgroups"], rf"^{pid} +\S+ +{pid} ").replace(str(pid), "PID").split())
               for name, pid in inferior.items()}
    assert leaders["gdbstub"] == leaders["gdbserver"] and "PID loop PID " in leaders["gdbstub"], (leaders, context)
    assert not [line for line in ours["procgroups"][1:] if line.startswith("0 ")], context  # no kernel threads


def test_osdata_types_raw(procs):
    """The type list's three columns (type, description, title) are gdbserver's, in its order."""
    got = both(procs, "loop", lambda srv: [b"qXfer:osdata:read::0,fff"])

    def items(reply: bytes) -> list[list[tuple[bytes, bytes]]]:
        return [re.findall(rb'<column name="([^"]*)">([^<]*)</column>', item)
                for item in re.findall(rb"<item>(.*?)</item>", reply, re.S)]

    ours, ref = items(got["gdbstub"][0][0]), items(got["gdbserver"][0][0])
    assert len(ref) == 10 and ours == ref, (ours, ref)
