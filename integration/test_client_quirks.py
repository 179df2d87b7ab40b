"""What real clients send that gdb's own sessions do not (issue 14, items 6, 7, 11, 12, 13).

A bare `qSupported` mid-session (`maint packet qSupported`, pwndbg), pwndbg's NUL-terminated
upper-case vFile paths, addresses at or above 2^63, gdb's testsuite turning libthread_db off with
`monitor set libthread-db-search-path`, and thread-local variables of a static -pthread program.
Each test runs the same thing through gdbserver and gdbstub and compares.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

import harness
import pytest
from harness import KINDS, ProcessTracker, Session, normalise
from rawclient import RawClient

from gdbstub.protocol import tls


def raw_replies(procs: ProcessTracker, kind: str, prog: str,
                packets: Callable[[harness.Server], list[bytes]]) -> tuple[list[bytes], harness.Server]:
    """Start KIND on PROG, do gdb's handshake, send PACKETS(server) and collect the replies."""
    srv = harness.start_server(procs, kind, harness.program(prog))
    try:
        with RawClient(srv.port) as client:
            client.handshake()
            replies = [client.request(packet) for packet in packets(srv)]
            client.request(b"vKill;%x" % (srv.inferior_pid or 0))
    finally:
        srv.stop()
        srv.stderr.join(2)
    return replies, srv


def both(procs: ProcessTracker, prog: str,
         packets: Callable[[harness.Server], list[bytes]]) -> dict[str, tuple[list[bytes], harness.Server]]:
    return {kind: raw_replies(procs, kind, prog, packets) for kind in KINDS}


def gdb_lines(session: Session, drop: str = r"^$") -> str:
    """gdb's stdout, pids normalised, without the lines matching DROP."""
    return "\n".join(line for line in normalise(session.out).splitlines() if not re.search(drop, line))


# --------------------------------------------------------------------------- item 6: bare qSupported


def test_bare_qsupported_keeps_negotiation(debug_both):
    """`maint packet qSupported` mid-session: target.xml registers, multiprocess ids, swbreak stops
    and thread listing stay as negotiated (the bare packet used to reset every feature)."""
    runs = debug_both("sample", [], [
        "break distance2", "continue",
        "maint packet qSupported",
        "p $ymm1.v8_int32[0] == $xmm1.v4_int32[0]", "p $ymm15.v4_int64[3] == $ymm15.v4_int64[3]",
        "info threads", "maint packet qC",
        "continue", "info threads", "p $_siginfo.si_signo", "kill"])
    for session in runs.values():
        harness.expect(session, r'^received: "QCp[0-9a-f]+\.[0-9a-f]+"$', r"^\$1 = 1$", r"^\$2 = 1$",
                       r"^Breakpoint 1, distance2 \(a=0x[0-9a-f]+, dx=1, dy=-1\)")
        harness.expect_not(session, r"E01", r"Could not fetch register")
    drop = r'^(sending|received): '
    assert gdb_lines(runs["gdbstub"], drop) == gdb_lines(runs["gdbserver"], drop), (
        runs["gdbstub"].describe() + runs["gdbserver"].describe())


def test_qsupported_with_features_only_adds(procs):
    """A later qSupported that offers less does not take back multiprocess (qC keeps its p form)."""
    def packets(srv: harness.Server) -> list[bytes]:
        return [b"qC", b"qSupported", b"qC", b"qSupported:multiprocess-;swbreak+", b"qC"]

    got = both(procs, "sample", packets)
    for kind, (replies, _srv) in got.items():
        assert all(re.fullmatch(rb"QCp[0-9a-f]+\.[0-9a-f]+", r) for r in replies[0::2]), (kind, replies)
        # gdbserver 13's PacketSize is 47ff, gdbstub's gdbserver 16's 2001f
        assert all(re.match(rb"PacketSize=(47ff|2001f);", r) and b";multiprocess+" in r for r in replies[1::2]), kind
        assert len(set(replies[0::2])) == 1, (kind, replies)


# --------------------------------------------------------------------------- item 7: vFile paths


def test_vfile_paths_with_nul_and_upper_case_hex(procs):
    """pwndbg's `vFile:readlink:` of /proc/PID/cwd with its C string's NUL, in upper-case hex."""
    def upper_hex(path: str) -> bytes:
        return path.encode().hex().upper().encode()

    def packets(srv: harness.Server) -> list[bytes]:
        cwd = upper_hex(f"/proc/{srv.inferior_pid}/cwd\0")
        exe = upper_hex(f"/proc/{srv.inferior_pid}/exe\0")
        return [b"vFile:setfs:0", b"vFile:readlink:" + cwd, b"vFile:readlink:" + exe,
                b"vFile:readlink:" + upper_hex(f"/proc/{srv.inferior_pid}/cwd\0/junk"),
                b"vFile:open:" + exe + b",0,0", b"vFile:unlink:00", b"vFile:open:00,0,0"]

    got = both(procs, "sample", packets)
    ours, ref = got["gdbstub"][0], got["gdbserver"][0]
    assert ref[1] == b"F%x;%s" % (len(str(harness.ROOT)), str(harness.ROOT).encode()), ref
    fd = re.compile(rb"F[0-9a-f]+")
    assert fd.fullmatch(ours[4]) and fd.fullmatch(ref[4]), (ours, ref)  # descriptor numbers differ
    assert ours[:4] + ours[5:] == ref[:4] + ref[5:]


# --------------------------------------------------------------------------- item 12: addresses >= 2^63


HIGH_ADDRESS_PACKETS = [
    b"mffffffffff600000,1000",  # the vsyscall page
    b"Xffffffffffffff7f,1:",
    b"Xffffffffffffff7f,1:\x00",
    b"Mffffffffffffff7f,1:00",
    b"m8000000000000000,1",
    b"m7ffffffffffffff0,20",  # runs from below 2^63 into it
    b"mffffffffffffffff,2",
    b"Z0,ffffffffffffff00,1",
    b"Z0,8000000000000000,1",
    b"qSearch:memory:ffffffffff600000;10;00",
    b"qSearch:memory:7ffffffffffff000;2000;00",
]


@pytest.mark.parametrize("prog", ["loop", pytest.param("loop-32", marks=pytest.mark.i386)])
def test_addresses_at_or_above_2_63_fail_quietly(procs, prog):
    """Each answers gdbserver's error reply, the stub prints no traceback, and memory still reads."""
    def packets(srv: harness.Server) -> list[bytes]:
        return [*HIGH_ADDRESS_PACKETS, b"m%x,4" % harness_entry(srv)]

    got = both(procs, prog, packets)
    ours, ref = got["gdbstub"], got["gdbserver"]
    assert ours[0][:-1] == ref[0][:-1], f"{ours[0]}\n{ref[0]}"
    assert re.fullmatch(rb"[0-9a-f]{8}", ours[0][-1]) and ours[0][-1] == ref[0][-1]
    for text in (ours[1].stderr.text, ours[1].stdout.text):
        assert "Traceback" not in text and "Error" not in text, ours[1].describe()


def harness_entry(srv: harness.Server) -> int:
    """The program's entry point (AT_ENTRY in /proc/PID/auxv): mapped and readable."""
    with open(f"/proc/{srv.inferior_pid}/auxv", "rb") as f:
        data = f.read()
    size = 4 if srv.argv[-1].endswith("-32") else 8
    for i in range(0, len(data) - 2 * size + 1, 2 * size):
        key, value = (int.from_bytes(data[j:j + size], "little") for j in (i, i + size))
        if key == 9:  # AT_ENTRY
            return value
    raise AssertionError("no AT_ENTRY")


# --------------------------------------------------------------------------- item 11: libthread_db path


def test_libthread_db_search_path_without_the_library(debug_both):
    """gdbserver cannot load libthread_db, so TLS fails: the same for gdbstub (gdb.server/no-thread-db).
    Setting the path back later does not help either: the library is looked for when gdb announces
    new symbols (qSymbol), and none come before the next library load."""
    runs = debug_both("tlsfind", [], [
        "monitor set libthread-db-search-path /nonexistent", "break checkpoint", "continue",
        "p tls_value", "monitor set libthread-db-search-path", "p tls_value", "p 6 * 7", "kill"])
    for session in runs.values():
        harness.expect(session, r"^libthread-db-search-path set to `/nonexistent'$",
                       r"^libthread-db-search-path set to `\$sdir:\$pdir'$",
                       r"^Cannot find thread-local storage for Thread \d+\.\d+, executable file .*/tlsfind:\n"
                       r"Remote target failed to process qGetTLSAddr request$", r"^\$1 = 42$")
        assert len(re.findall("Cannot find thread-local storage", session.output)) == 2, session.describe()
    assert gdb_lines(runs["gdbstub"]) == gdb_lines(runs["gdbserver"])


def test_libthread_db_search_path_with_the_library(debug_both):
    """A directory that holds libthread_db.so.1 (the system's): thread-local variables work."""
    where = next((d for d in tls.SYSTEM_DIRS if os.path.isfile(f"{d}/{tls.LIBTHREAD_DB}")), None)
    if where is None:
        pytest.skip("no system libthread_db.so.1")
    runs = debug_both("tlsfind", [], [
        f"monitor set libthread-db-search-path /nonexistent:$pdir:{where}", "break checkpoint", "continue",
        "p tls_value", "thread 1", "p tls_value", "kill"])
    for session in runs.values():
        harness.expect(session, r"^\$1 = 101$", r"^\$2 = 1$")
    where_main_waits = r"^#0 "  # thread 1's frame: inside the barrier, wherever it is by then
    assert gdb_lines(runs["gdbstub"], where_main_waits) == gdb_lines(runs["gdbserver"], where_main_waits)


# --------------------------------------------------------------------------- item 13: static TLS


@pytest.mark.parametrize("prog", ["tlsfind-static", pytest.param("tlsfind-32-static", marks=pytest.mark.i386)])
def test_thread_local_variables_of_a_static_program(debug_both, prog):
    """No libc.so and no link map: every thread's tls_value and tls_name, as through gdbserver."""
    runs = debug_both(prog, [], [
        "break checkpoint", "continue", "thread apply all p tls_value", "thread apply all p tls_name", "kill"])
    for session in runs.values():
        harness.expect(session, r"^\$1 = 103$", r"^\$2 = 102$", r"^\$3 = 101$", r"^\$4 = 1$",
                       r'^\$7 = "worker-1(\\000)*"$', r'^\$8 = "initial(\\000)*"$')
        harness.expect_not(session, r"Cannot find thread-local storage")
    assert gdb_lines(runs["gdbstub"]) == gdb_lines(runs["gdbserver"])
