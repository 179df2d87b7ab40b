"""Issues 7 and 10: every way to reach the stub: TCP over IPv4 and IPv6 in gdbserver's address
forms, the stdin/stdout pipe (target remote | gdbstub - PROG), and a Unix-domain socket."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import harness
import pytest
from extutil import expect_in, gdb, spawn_server
from harness import pid_alive, wait_until

COMMANDS = ["break reached", "continue", "p count", "continue"]
EXPECTED = (r"Breakpoint 1, reached \(\)", r"^\$1 = 0$", r"exited with code 03\]$")


def envargs() -> Path:
    return harness.program("envargs")


# (address given to the server, how gdb connects to it: {port} is filled in)
ADDRESS_FORMS = [
    ("127.0.0.1:0", "127.0.0.1:{port}"),
    (":0", "127.0.0.1:{port}"),
    ("localhost:0", "localhost:{port}"),
    ("tcp:127.0.0.1:0", "tcp:127.0.0.1:{port}"),
    ("tcp4:localhost:0", "tcp4:127.0.0.1:{port}"),
    ("::1:0", "[::1]:{port}"),
    ("[::1]:0", "tcp6:[::1]:{port}"),
    ("tcp6:localhost:0", "tcp6:[::1]:{port}"),
    ("tcp6::0", "[::1]:{port}"),
]


@pytest.mark.parametrize(("listen", "connect"), ADDRESS_FORMS)
def test_tcp_address_forms(procs, kind, listen, connect):
    if kind == "gdbserver" and listen.startswith("tcp"):
        pytest.skip("gdbserver 13 takes tcp:/tcp4:/tcp6: only on gdb's side ('cannot resolve name')")
    srv = spawn_server(procs, kind, ["--once", listen, str(envargs())])
    res = gdb(procs, f"target remote {connect.format(port=srv.port)}", COMMANDS, file=envargs())
    context = res.describe() + srv.describe()
    expect_in(res.stdout, *EXPECTED, context=context)
    assert srv.wait_exit() is not None, context


def test_stdio_pipe(procs, kind):
    """target remote | STUB - PROG: packets on the pipe; the program's output stays off it."""
    stub = " ".join([*(("gdbserver",) if kind == "gdbserver" else harness.STUB_COMMAND),
                     "-", str(envargs()), "piped"])
    res = gdb(procs, f"target remote | {stub}", [*COMMANDS, "info inferiors"], file=envargs())
    context = res.describe()
    expect_in(res.stdout, *EXPECTED, context=context)
    # envargs writes to its stdout: on the pipe it would have broken the protocol; it went to
    # the stub's stderr, which gdb shows.
    expect_in(res.output, r"^argv\[1\]=\[piped\]$", context=context)
    assert "Remote connection closed" not in res.output, context
    # what gdbserver's child says on every stdio launch (issue 14 item 9), before the program runs
    assert res.output.count("stdin/stdout redirected\n") == 1, context
    assert res.output.index("stdin/stdout redirected") < res.output.index("argv[1]=[piped]"), context


def test_stdio_spelled_stdio(procs):
    """Started as `python -m gdbstub` (the other tests start the installed command)."""
    stub = f"{sys.executable} -m gdbstub stdio {envargs()}"
    res = gdb(procs, f"target remote | {stub}", COMMANDS, file=envargs())
    expect_in(res.stdout, *EXPECTED, context=res.describe())


def test_stdio_stub_ends_with_gdb(procs):
    """gdb quits without kill: the piped stub sees EOF, kills the program and exits."""
    stub = f"{' '.join(harness.STUB_COMMAND)} - {envargs()}"
    res = gdb(procs, f"target remote | {stub}", ["break reached", "continue", "info inferiors"], file=envargs())
    found = re.search(r"process (\d+)", res.stdout)
    assert found, res.describe()
    pid = int(found.group(1))
    assert wait_until(lambda: not pid_alive(pid), 10), res.describe()


def test_unix_socket(procs, tmp_path):
    sock = tmp_path / "stub.sock"
    srv = spawn_server(procs, "gdbstub", ["--once", f"unix:{sock}", str(envargs())],
                       wait=re.compile(r"Listening on Unix socket (\S+)"))
    assert sock.exists(), srv.describe()
    # gdb 13 connects to a Unix-domain socket given as a bare path (unix::PATH came in gdb 14).
    res = gdb(procs, f"target remote {sock}", COMMANDS, file=envargs())
    context = res.describe() + srv.describe()
    expect_in(res.stdout, *EXPECTED, context=context)
    assert srv.wait_exit() is not None, context
    assert not sock.exists(), "socket file left behind"


def test_unix_socket_reconnect(procs, tmp_path):
    sock = tmp_path / "stub.sock"
    srv = spawn_server(procs, "gdbstub", [f"unix:{sock}", str(envargs())],
                       wait=re.compile(r"Listening on Unix socket (\S+)"))
    first = gdb(procs, f"target remote {sock}", ["break reached", "continue", "disconnect"], file=envargs())
    expect_in(first.stdout, r"Breakpoint 1, reached", context=first.describe() + srv.describe())
    second = gdb(procs, f"target remote {sock}", ["p count", "kill"], file=envargs())
    context = second.describe() + srv.describe()
    expect_in(second.stdout, r"^\$1 = 0$", r"killed\]$", context=context)
    assert srv.wait_exit() is not None, context


def test_stdio_extended_remote(procs):
    """target extended-remote | gdbstub --multi -: run, kill, run again over the pipe."""
    stub = f"{sys.executable} -m gdbstub --multi -"
    res = gdb(procs, f"target extended-remote | {stub}", [
        f"set remote exec-file {envargs()}", "break reached", "run first", "kill", "run second", "continue",
        "monitor exit"], file=envargs())
    context = res.describe()
    assert len(re.findall(r"Breakpoint 1, reached \(\)", res.stdout)) == 2, context
    expect_in(res.stdout, r"exited with code 03\]$", context=context)
    expect_in(res.output, r"^argv\[1\]=\[first\]$", r"^argv\[1\]=\[second\]$", context=context)
    assert res.output.count("stdin/stdout redirected\n") == 2, context  # once for each run
