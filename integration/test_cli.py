"""Issue 10: gdbstub as a drop-in for gdbserver: command line, output, lifetime.

Tests taking `kind` run the same command line against gdbserver, which shows the expected
behaviour is gdbserver's own.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import harness
import pytest
from extutil import RawClient, base_command, expect_in, gdb, spawn_server
from harness import pid_alive, wait_until

PID_LINE = re.compile(r"ppid=(\d+) pid=(\d+)")


def envargs() -> Path:
    return harness.program("envargs")


def run_cli(procs, kind: str, args: list[str], timeout: float = 20) -> tuple[int | None, str, str]:
    """Run KIND with ARGS to completion (it must exit by itself)."""
    proc = procs.spawn([*base_command(kind), *args], env=harness.server_env())
    try:
        out, err = proc.communicate(timeout=timeout)
    except Exception:
        proc.kill()
        out, err = proc.communicate(timeout=5)
        return None, out, err
    return proc.returncode, out, err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_harness_style_start(procs, kind):
    """Started exactly as a harness starts gdbserver: wait for 'Listening on port', connect at once."""
    srv = harness.start_server(procs, kind, envargs(), ["x"])
    # The line is printed only once the socket listens: connecting right now must work.
    client = RawClient(srv.port)
    try:
        assert srv.stderr.wait_for(re.compile(r"^Remote debugging from host 127\.0\.0\.1, port \d+$"), 10), \
            srv.describe()
        assert client.request(b"?").startswith(b"T05"), srv.describe()
        assert client.request(b"vKill;%x" % srv.inferior_pid) == b"OK"  # type: ignore[str-format]
    finally:
        client.close()
    assert srv.wait_exit() is not None, srv.describe()
    assert srv.stderr.text.index("Process ") < srv.stderr.text.index("Listening on port"), srv.describe()


def test_harness_style_gdb_session(procs, kind):
    srv = harness.start_server(procs, kind, envargs(), ["x"])
    res = harness.run_gdb(procs, srv.port, ["break reached", "continue", "continue"], file=envargs())
    context = res.describe() + srv.describe()
    expect_in(res.stdout, r"^Breakpoint 1, reached \(\)", r"exited with code 03\]$", context=context)
    assert srv.wait_exit() == 0, context


def test_two_stubs_race_for_one_port(procs, kind):
    """Two servers on one port at once: one listens, the other says the port is taken and exits."""
    port = free_port()
    args = ["--once", f"127.0.0.1:{port}", str(envargs())]
    first = procs.spawn([*base_command(kind), *args], env=harness.server_env())
    second = procs.spawn([*base_command(kind), *args], env=harness.server_env())
    readers = [harness.OutputReader(p.stderr) for p in (first, second)]
    # The loser exits as soon as its bind fails; the winner waits for a client (bounded, no fixed wait).
    assert wait_until(lambda: first.poll() is not None or second.poll() is not None, 10), [r.text for r in readers]
    if first.poll() is not None:
        (loser, reader), (winner, win_reader) = (first, readers[0]), (second, readers[1])
    else:
        (loser, reader), (winner, win_reader) = (second, readers[1]), (first, readers[0])
    reader.join()
    assert loser.returncode != 0
    # Both bind (SO_REUSEADDR) before either listens: then gdbserver's loser fails in listen() instead.
    assert re.search(r"^Can't (bind address|listen on socket): Address already in use\.$", reader.text, re.M), \
        reader.text
    assert "Exiting" in reader.text, reader.text
    assert win_reader.wait_for(re.compile(rf"Listening on port {port}$"), 10), win_reader.text
    assert winner.poll() is None, win_reader.text
    # Only one of them exited, and the one left owns the port: it serves a client there.
    client = RawClient(port)
    try:
        assert client.request(b"?").startswith(b"T05"), win_reader.text
    finally:
        client.close()
    winner.kill()
    winner.wait(5)


@pytest.mark.parametrize("prog", ["/nonexistent/prog", "/etc/passwd"])
def test_program_that_cannot_start(procs, kind, prog):
    """gdbserver's lines exactly, but for the name in front: 'gdbserver: Cannot exec PROG',
    'gdbserver: Error: WHY', then the exit code and 'Exiting'."""
    rc, _, err = run_cli(procs, kind, ["--no-startup-with-shell", "127.0.0.1:0", prog])
    assert rc not in (0, None), err
    why = "No such file or directory" if prog.startswith("/non") else "Permission denied"
    lines = [line.removeprefix(f"{kind}: ") for line in err.splitlines()]
    assert lines == [f"Cannot exec {prog}", f"Error: {why}", "During startup program exited with code 127.",
                     "Exiting"], err


@pytest.mark.parametrize("shell", ["--no-startup-with-shell", "--startup-with-shell"])
def test_stdio_program_that_cannot_start(procs, kind, shell):
    """Issue 14 item 9: on stdio the child first says 'stdin/stdout redirected' (gdbserver's
    child does), then why it could not start, the exit code 127 and 'Exiting'."""
    rc, out, err = run_cli(procs, kind, [shell, "-", "/nonexistent/prog"])
    assert rc not in (0, None) and out == "", err
    lines = [line.removeprefix(f"{kind}: ") for line in err.splitlines()]
    if shell == "--no-startup-with-shell":
        assert lines[1:3] == ["Cannot exec /nonexistent/prog", "Error: No such file or directory"], err
        lines[1:3] = ["why"]
    else:  # the shell's own words, e.g. '/bin/sh: 1: exec: /nonexistent/prog: not found'
        assert "/nonexistent/prog" in lines[1] and "sh: " in lines[1], err
        lines[1] = "why"
    assert lines == ["stdin/stdout redirected", "why", "During startup program exited with code 127.",
                     "Exiting"], err


def test_program_that_cannot_start_through_shell(procs, kind):
    rc, _, err = run_cli(procs, kind, ["--startup-with-shell", "127.0.0.1:0", "/nonexistent/prog"])
    assert rc not in (0, None), err
    expect_in(err, r"^During startup program exited with code 127\.$", r"^Exiting$")


@pytest.mark.parametrize(("address", "why"), [
    ("tcp8:123:2345", "Name or service not known"), ("udp123::::2345", "Name or service not known"),
    ("garbage:1234:2345", "Name or service not known"), ("127.0.0.1:port", "Servname not supported for ai_socktype"),
])
def test_unresolvable_address(procs, kind, address, why):
    """Issue 14 item 8: gdbserver's exact two lines, before any program starts; harnesses give
    up on a start when they see 'cannot resolve name'."""
    rc, out, err = run_cli(procs, kind, ["--once", address, str(envargs())])
    assert rc not in (0, None) and out == "", err
    assert err.splitlines() == [f"{address}: cannot resolve name: {why}", "Exiting"], err


@pytest.mark.parametrize("address", ["tcp8:123:2345", "garbage:1234:2345", "127.0.0.1:99999", "127.0.0.1:port"])
def test_garbage_address_refused(procs, address):
    rc, _, err = run_cli(procs, "gdbstub", ["--once", address, str(envargs())])
    assert rc not in (0, None), err
    assert address in err and "Exiting" in err, err
    assert "Traceback" not in err and "Process" not in err, err


def test_version_and_help(procs):
    rc, out, _ = run_cli(procs, "gdbstub", ["--version"])
    assert rc == 0 and re.match(r"gdbstub \d+\.\d+", out.splitlines()[0]), out
    rc, out, _ = run_cli(procs, "gdbstub", ["--help"])
    assert rc == 0 and out.startswith("Usage:") and "--disable-packet" in out and "--wrapper" in out, out
    rc, _, err = run_cli(procs, "gdbstub", ["--frobnicate", ":0", "x"])
    assert rc not in (0, None) and "Unknown argument: --frobnicate" in err, err
    rc, _, err = run_cli(procs, "gdbstub", ["--disable-packet=bogus", ":0", "x"])
    assert rc not in (0, None) and 'Don\'t know how to disable "bogus"' in err, err
    rc, _, err = run_cli(procs, "gdbstub", ["127.0.0.1:0"])
    assert rc not in (0, None) and "Usage" in err, err


@pytest.mark.parametrize("name", ["vCont", "Tthread", "qC", "qfThreadInfo", "threads"])
def test_disable_packet(procs, kind, name):
    """gdb still debugs a threaded program with each packet gdbserver can disable turned off.

    gdbserver 13 itself hangs here when vCont or Tthread are off (after `c` only one thread
    runs and the others never reach the barrier), so only the working choices run against it."""
    if kind == "gdbserver" and name in ("vCont", "Tthread", "threads"):
        pytest.skip("gdbserver 13 hangs at the second continue with this packet disabled")
    prog = harness.program("threads")
    srv = spawn_server(procs, kind, ["--once", f"--disable-packet={name}", "127.0.0.1:0", str(prog)])
    res = harness.run_gdb(procs, srv.port, [
        f"break {harness.location('worker', 'threads')}", "continue", "p id > 0", "delete", "continue"],
        file=prog)
    context = res.describe() + srv.describe()
    expect_in(res.stdout, r"Breakpoint 1, worker \(id=\d\)", r"^\$1 = 1$", r"exited normally\]$", context=context)
    assert srv.wait_exit() is not None, context


def test_disable_T_bare_stop_replies(procs, kind):
    """--disable-packet=T,qfThreadInfo (issue 14 item 4): stop replies in the bare Sxx form.
    gdb takes the stop as its current thread's (thread 1, where no breakpoint is: a SIGTRAP)
    and still finds and names every thread through qXfer:threads, as with gdbserver."""
    prog = harness.program("threads")
    srv = spawn_server(procs, kind, ["--once", "--disable-packet=T,qfThreadInfo", "127.0.0.1:0", str(prog)])
    res = harness.run_gdb(procs, srv.port, [
        f"break {harness.location('worker', 'threads')}", "continue", "info threads", "delete", "continue"],
        file=prog)
    context = res.describe() + srv.describe()
    expect_in(res.stdout, r'^Thread 1 "threads" received signal SIGTRAP', r'^\* 1 +Thread \d+\.\d+ "threads" ',
              r"exited normally\]$", context=context)
    names = re.findall(r'^  \d+ +Thread \d+\.\d+ "(worker-\d)" ', res.stdout, re.M)
    assert sorted(names) == [f"worker-{i}" for i in range(1, 9)], context
    assert srv.wait_exit() is not None, context


def test_disable_T_replies(procs, kind):
    """Raw: S05 for a stop, the thread-alive packet T still answered, W unchanged."""
    srv = spawn_server(procs, kind, ["--once", "--disable-packet=T", "127.0.0.1:0", str(envargs())])
    client = RawClient(srv.port)
    try:
        assert client.request(b"?") == b"S05"
        assert client.request(b"T%x" % srv.inferior_pid) == b"OK"  # type: ignore[str-format]
        assert client.request(b"vCont;c") == b"W03"
    finally:
        client.close()
    assert srv.wait_exit() is not None, srv.describe()


def test_disable_packet_replies(procs):
    """The disabled packets get the empty reply; stop replies lose thread: with Tthread."""
    srv = spawn_server(procs, "gdbstub", ["--once", "--disable-packet=threads", "127.0.0.1:0", str(envargs())])
    client = RawClient(srv.port)
    try:
        for packet in (b"vCont?", b"qC", b"qfThreadInfo", b"qsThreadInfo"):
            assert client.request(packet) == b"", packet
        assert client.request(b"T%x" % srv.inferior_pid) == b"OK"  # type: ignore[str-format]  # 'threads' is not T
        assert b"thread:" not in client.request(b"?")
        assert b"vContSupported" not in client.request(b"qSupported:multiprocess+;vContSupported+")
        client.send_raw(b"vKill;%x" % srv.inferior_pid)  # type: ignore[str-format]
        assert client.receive() == b"OK"
    finally:
        client.close()
    assert srv.wait_exit() is not None


def test_multiprocess_off(procs, kind):
    prog = harness.program("threads")
    srv = harness.start_server(procs, kind, prog)
    res = harness.run_gdb(procs, srv.port, [
        f"break {harness.location('worker', 'threads')}", "continue", "info threads", "delete", "continue"],
        file=prog, before=["set remote multiprocess-feature-packet off"])
    context = res.describe() + srv.describe()
    expect_in(res.stdout, r"Breakpoint 1, worker", r"^\* \d+ +Thread \d+ ", r"exited normally\]$", context=context)
    assert "Thread 0x" not in res.stdout or "LWP" in res.stdout, context
    assert srv.wait_exit() is not None, context


def test_reconnect_twice(procs, kind):
    """Without --once the server takes client after client. gdbserver keeps the program between
    them; gdbstub kills the program it launched when its client leaves (issue 2: no launched
    program outlives its client) and starts it afresh for the next one."""
    srv = harness.start_server(procs, kind, envargs(), once=False)
    prog = envargs()
    first = harness.run_gdb(procs, srv.port, ["break reached", "continue", "disconnect"], file=prog)
    context = first.describe() + srv.describe()
    expect_in(first.stdout, r"Breakpoint 1, reached", context=context)
    first_pid = srv.inferior_pid
    second = harness.run_gdb(procs, srv.port, ["p count", "p count = 41", "disconnect"], file=prog)
    context = second.describe() + srv.describe()
    expect_in(second.stdout, r"^\$1 = 0$", r"^\$2 = 41$", context=context)
    third = harness.run_gdb(procs, srv.port, ["p count", "kill"], file=prog)
    context = third.describe() + srv.describe()
    kept = "41" if kind == "gdbserver" else "0"
    expect_in(third.stdout, rf"^\$1 = {kept}$", r"killed\]$", context=context)
    assert srv.proc.poll() is not None or srv.wait_exit() is not None, context
    assert srv.stderr.text.count("Remote debugging from host") == 3, context
    if kind == "gdbstub":
        pids = [int(p) for p in re.findall(r"created; pid = (\d+)", srv.stderr.text)]
        assert len(set(pids)) == 3 and pids[0] == first_pid, context
        assert not any(pid_alive(p) for p in pids), context


def test_loader_as_program(procs, kind):
    """gdbstub :P /lib64/ld-linux-x86-64.so.2 PROG: the loader is the program; gdb learns of the
    link map (libraries-svr4) and the program runs to its end under it, as with gdbserver."""
    srv = harness.start_server(procs, kind, "/lib64/ld-linux-x86-64.so.2", [str(envargs()), "x"])
    res = harness.run_gdb(procs, srv.port, [
        "set stop-on-solib-events 1", "continue", "continue", "info sharedlibrary",
        "set stop-on-solib-events 0", "continue"], file=None)
    srv.wait_exit()
    srv.stdout.join(2)
    context = res.describe() + srv.describe()
    expect_in(res.stdout, r"Inferior loaded target:/lib64/ld-linux-x86-64\.so\.2",
              r"Yes\s+target:/lib64/ld-linux-x86-64\.so\.2$", r"exited with code 03\]$", context=context)
    expect_in(srv.stdout.text, r"^argv\[0\]=\[.*envargs\]$", r"^argv\[1\]=\[x\]$", context=context)


def test_program_is_direct_child_on_stub_terminal(procs, kind):
    """The program writes to the stub's own stdout and its parent is the stub itself."""
    srv = harness.start_server(procs, kind, envargs(), ["x"])
    res = harness.run_gdb(procs, srv.port, ["continue"], file=envargs())
    srv.wait_exit()
    srv.stdout.join(2)
    context = res.describe() + srv.describe()
    found = PID_LINE.search(srv.stdout.text)
    assert found, context
    assert int(found.group(1)) == srv.proc.pid, context
    assert int(found.group(2)) == srv.inferior_pid, context


def test_once_multi_without_program(procs, kind):
    srv = spawn_server(procs, kind, ["--once", "--multi", "127.0.0.1:0"])
    res = gdb(procs, f"target extended-remote {srv.address}", ["info inferiors", "disconnect"])
    context = res.describe() + srv.describe()
    assert "Remote connection closed" not in res.output, context
    assert srv.wait_exit() is not None, context


@pytest.mark.parametrize("ending", ["continue", "kill", "detach"])
def test_multi_ends_with_plain_client(procs, kind, ending):
    """Issue 14 item 5: --multi keeps the stub only for extended-remote clients. A plain
    `target remote` client whose program exited, was killed or detached takes the stub with it
    (pwntools starts `gdbserver --multi` so and waits for the end)."""
    srv = spawn_server(procs, kind, ["--multi", "127.0.0.1:0", str(envargs())])
    res = harness.run_gdb(procs, srv.port, [ending], file=envargs())
    context = res.describe() + srv.describe()
    expect_in(res.stdout, {"continue": r"exited with code 03\]$", "kill": r"killed\]$",
                           "detach": r"detached\]$"}[ending], context=context)
    assert srv.wait_exit() is not None, context


def test_multi_stays_after_extended_client(procs, kind):
    """Once a client sent '!' the stub outlives its programs, also for a later plain client."""
    srv = spawn_server(procs, kind, ["--multi", "127.0.0.1:0", str(envargs())])
    res = gdb(procs, f"target extended-remote {srv.address}", ["continue"], file=envargs())
    context = res.describe() + srv.describe()
    expect_in(res.stdout, r"exited with code 03\]$", context=context)
    client = RawClient(srv.port)  # still listening: the connection is served
    try:
        assert client.request(b"?").startswith((b"W", b"X", b"T")), context
        assert client.request(b"qRcmd," + b"exit".hex().encode()) == b"OK", context
    finally:
        client.close()
    assert srv.wait_exit() is not None, context


@pytest.mark.parametrize("option", ["--debug", "--remote-debug", "--debug-file"])
def test_debug_options(procs, tmp_path, option):
    log = tmp_path / "debug.log"
    opt = f"--debug-file={log}" if option == "--debug-file" else option
    srv = spawn_server(procs, "gdbstub", ["--once", opt, "127.0.0.1:0", str(envargs())])
    res = harness.run_gdb(procs, srv.port, ["kill"], file=envargs())
    srv.wait_exit()
    srv.stderr.join(2)
    text = log.read_text() if option == "--debug-file" else srv.stderr.text
    assert "qSupported" in text and "vKill" in text, res.describe() + srv.describe() + text
    if option == "--debug-file":
        assert "qSupported" not in srv.stderr.text


def _stack_addresses(procs, kind, option: str) -> list[str]:
    found = []
    for _ in range(2):
        srv = spawn_server(procs, kind, ["--once", option, "127.0.0.1:0", str(envargs())])
        res = harness.run_gdb(procs, srv.port, ["p/x $sp", "kill"], file=envargs())
        srv.wait_exit()
        match = re.search(r"^\$1 = (0x[0-9a-f]+)$", res.stdout, re.M)
        assert match, res.describe() + srv.describe()
        found.append(match.group(1))
    return found


def test_randomization_options(procs, kind):
    same = _stack_addresses(procs, kind, "--disable-randomization")
    assert same[0] == same[1], same
    different = _stack_addresses(procs, kind, "--no-disable-randomization")
    assert different[0] != different[1], different


def test_startup_with_shell_option(procs, kind, tmp_path):
    """--startup-with-shell: the program starts through $SHELL, still as the stub's child."""
    srv = spawn_server(procs, kind, ["--once", "--startup-with-shell", "127.0.0.1:0", str(envargs()), "one"])
    res = harness.run_gdb(procs, srv.port, ["break reached", "continue", "continue"], file=envargs())
    srv.wait_exit()
    srv.stdout.join(2)
    context = res.describe() + srv.describe()
    expect_in(res.stdout, r"Breakpoint 1, reached", r"exited with code 03\]$", context=context)
    expect_in(srv.stdout.text, r"^argv\[1\]=\[one\]$", context=context)
    found = PID_LINE.search(srv.stdout.text)
    assert found and int(found.group(1)) == srv.proc.pid, context


DEBUG_FORMAT_SAID = {
    "all": "All extra debug format options enabled.",
    "none": "All extra debug format options disabled.",
    "timestamp": "Timestamps will be added to debug output.",
}


def test_monitor_debug_format(procs, kind):
    """Issue 14 item 10: monitor set debug-format, each option's confirmation as gdbserver's,
    a comma list option by option, and an unknown option named with the help and an error."""
    srv = harness.start_server(procs, kind, envargs())
    values = ["all", "none", "timestamp", "timestamp,none", ",", "timestamp,bogus", "ALL"]
    res = harness.run_gdb(procs, srv.port, [*(f"monitor set debug-format {v}" for v in values), "kill"],
                          file=envargs())
    context = res.describe() + srv.describe()
    said = DEBUG_FORMAT_SAID
    help_head = "The following monitor commands are supported:"
    expected = [said["all"], said["none"], said["timestamp"], said["timestamp"], said["none"],
                said["timestamp"], 'Unknown debug-format argument: "bogus"', help_head, "Protocol error with Rcmd",
                'Unknown debug-format argument: "ALL"', help_head, "Protocol error with Rcmd"]
    # gdb shows monitor output on stderr; the help's body (indented) is each server's own
    lines = [line for line in res.stderr.splitlines() if not line.startswith(("  ", "warning:"))]
    assert lines == expected, context
    assert "set debug-format option1[,option2,...]" in res.stderr, context


def test_debug_format_option_refused(procs, kind):
    """--debug-format= takes the same list; an unknown option ends the server with its name."""
    rc, _, err = run_cli(procs, kind, ["--debug-format=timestamp,bogus", "127.0.0.1:0", str(envargs())])
    assert rc not in (0, None), err
    assert err.splitlines() == ['Unknown debug-format argument: "bogus"'], err


def test_monitor_exit_ends_stub_at_once(procs, kind):
    srv = spawn_server(procs, kind, ["127.0.0.1:0", str(envargs())])
    pid = srv.inferior_pid
    res = harness.run_gdb(procs, srv.port, ["monitor exit"], file=envargs())
    context = res.describe() + srv.describe()
    assert srv.wait_exit() is not None, context
    assert pid is not None and wait_until(lambda: not pid_alive(pid), 10), context


def test_signal_ends_stub_and_program(procs):
    srv = spawn_server(procs, "gdbstub", ["127.0.0.1:0", str(envargs())])
    pid = srv.inferior_pid
    srv.proc.terminate()
    assert srv.wait_exit() is not None, srv.describe()
    assert pid is not None and wait_until(lambda: not pid_alive(pid), 10), srv.describe()



@pytest.mark.parametrize("prog", ["tlsfind", "tlsfind-32"])
def test_thread_local_variables(procs, kind, prog):
    """qGetTLSAddr: each thread's own copy of a __thread variable."""
    path = harness.program(prog)
    srv = harness.start_server(procs, kind, path)
    res = harness.run_gdb(procs, srv.port, [
        "break checkpoint", "continue", "p tls_value", "p tls_name", "thread 1", "p tls_value", "kill"], file=path)
    context = res.describe() + srv.describe()
    expect_in(res.stdout, r"^\$1 = 101$", r'^\$2 = "worker-1(\\000)*"$', r"^\$3 = 1$", context=context)
    assert "Cannot find thread-local" not in res.output, context


def test_find_searches_memory(procs, kind):
    """qSearch:memory: gdb's find, also for a pattern split across the stub's read chunks."""
    path = harness.program("tlsfind")
    srv = harness.start_server(procs, kind, path)
    bytes_of = lambda text: ", ".join(f"(char){ord(c)}" for c in text)  # noqa: E731
    res = harness.run_gdb(procs, srv.port, [
        "break checkpoint", "continue",
        f"find &haystack[0], +sizeof(haystack), {bytes_of('needle-in')}",
        f"find &haystack[0], +sizeof(haystack), {bytes_of('split#needle')}",
        f"find &haystack[0], +sizeof(haystack), {bytes_of('absent!')}",
        "find /b &haystack[0], +sizeof(haystack), 0x6e, 0x65", "kill"], file=path)
    context = res.describe() + srv.describe()
    expect_in(res.stdout, r"<haystack\+70000>\n1 pattern found\.", r"<haystack\+65530>\n1 pattern found\.",
              r"^Pattern not found\.$", r"<haystack\+65536>\n0x[0-9a-f]+ <haystack\+70000>\n2 patterns found\.",
              context=context)


def test_info_os(procs, kind):
    """qXfer:osdata:read: info os (types), processes and threads list the stub's own program."""
    path = harness.program("threads")
    srv = harness.start_server(procs, kind, path)
    res = harness.run_gdb(procs, srv.port, [
        f"break {harness.location('worker', 'threads')}", "continue",
        "info os", "info os processes", "info os threads", "kill"], file=path)
    context = res.describe() + srv.describe()
    pid = srv.inferior_pid
    expect_in(res.stdout, r"^processes +Listing of all processes", r"^threads +Listing of all threads",
              rf"^{pid} +root +{re.escape(str(path))} +[0-9,]+ *$", context=context)
    thread_rows = re.findall(rf"^{pid} +threads +(\d+) +\d+ *$", res.stdout, re.M)
    assert len(thread_rows) == 9, context


def _read_until(fd: int, pattern: re.Pattern[bytes], seen: bytearray, timeout: float) -> re.Match[bytes] | None:
    import select
    import time

    deadline = time.monotonic() + timeout
    while True:
        found = pattern.search(seen)
        if found:
            return found
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return pattern.search(seen)
            if not chunk:
                return pattern.search(seen)
            seen += chunk


def test_program_reads_the_stub_terminal(procs, kind):
    """On a terminal the program is handed the foreground: it reads what is typed there
    (without that it would stop with SIGTTIN), and the stub gets the terminal back."""
    import fcntl
    import termios

    master, slave = os.openpty()
    try:
        proc = procs.spawn([*base_command(kind), "--once", "127.0.0.1:0", "/bin/cat"], stdin=slave, stdout=slave,
                           stderr=slave, env=harness.server_env(), text=False,
                           preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        seen = bytearray()
        listening = _read_until(master, re.compile(rb"Listening on port (\d+)"), seen, 20)
        assert listening, bytes(seen)
        gdb_proc = procs.spawn(harness.gdb_command(int(listening.group(1)), ["continue"]))
        assert _read_until(master, re.compile(rb"Remote debugging from host"), seen, 20), bytes(seen)
        os.write(master, b"typed-on-the-tty\n")
        # the terminal echoes the line, then cat writes it back
        assert _read_until(master, re.compile(rb"(typed-on-the-tty\r?\n.*){2}", re.S), seen, 20), bytes(seen)
        os.write(master, b"\x04")
        out, _ = gdb_proc.communicate(timeout=30)
        assert "exited normally" in out, out + bytes(seen).decode(errors="replace")
        assert proc.wait(timeout=10) == 0, bytes(seen)
    finally:
        os.close(master)


def test_client_vanishes_mid_run_then_reconnect(procs):
    """Without --once: gdb is killed while the program runs; the stub kills that program (never
    left running) and the next client gets a fresh one, stopped at its first instruction
    (gdbserver 13 instead waits for a stop that never comes)."""
    import signal as sig

    busy = harness.program("busy")
    srv = harness.start_server(procs, "gdbstub", busy, once=False)
    first = procs.spawn(harness.gdb_command(srv.port, ["continue"], busy))
    found = srv.stdout.wait_for(re.compile(r"busy pid (\d+)"), 30)
    assert found, srv.describe()
    os.killpg(first.pid, sig.SIGKILL)
    first.wait(timeout=10)
    assert srv.stderr.wait_for(re.compile(r"will reopen the connection"), 20), srv.describe()
    assert wait_until(lambda: not pid_alive(int(found.group(1))), 10), srv.describe()
    res = harness.run_gdb(procs, srv.port, ["p spins", "info inferiors", "kill"], file=busy)
    context = res.describe() + srv.describe()
    expect_in(res.stdout, r"^\$1 = 0$", r"killed\]$", context=context)
    pids = [int(p) for p in re.findall(r"created; pid = (\d+)", srv.stderr.text)]
    assert len(set(pids)) == 2, context
    assert srv.wait_exit() is not None, context
    assert not any(pid_alive(p) for p in pids), context
