"""Issue 7: extended-remote (run, kill, run again, attach, detach, environment, working
directory, shell, several inferiors), --attach, monitor commands and --wrapper, with stock gdb.

Tests that take `kind` run against gdbserver too: that proves the expectations are gdbserver's.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import harness
import pytest
from extutil import RawClient, expect_in, gdb, hexs, proc_status, spawn_server
from harness import pid_alive, wait_until
from rawclient import load_bias, symbol_address

ENVARGS = "envargs"
PID_LINE = re.compile(r"ppid=(\d+) pid=(\d+)")


def envargs() -> Path:
    return harness.program(ENVARGS)


def multi_server(procs, kind, *extra):
    return spawn_server(procs, kind, ["--once", "--multi", *extra, "127.0.0.1:0"])


def inferior_lines(srv, keep: tuple[str, ...] = ("argc=", "argv[", "env=", "cwd=")) -> list[str]:
    """The lines the program printed about itself that start with KEEP (envargs' by default)."""
    return [line.rstrip("\n") for line in srv.stdout.lines if line.startswith(keep)]


@pytest.mark.parametrize("shell", ["on", "off"])
def test_run_with_args_env_and_cwd(procs, kind, tmp_path, shell):
    """Arguments with spaces and quotes, a value holding '=', a working directory, both shells."""
    # gdbserver 13 refuses an argument with blanks without a shell ("can't handle
    # command-line argument containing whitespace"); gdbstub passes it through.
    spaced = "two words" if kind == "gdbstub" or shell == "on" else "two_words"
    srv = multi_server(procs, kind)
    res = gdb(procs, f"target extended-remote {srv.address}", [
        f"set remote exec-file {envargs()}",
        f"set startup-with-shell {shell}",
        "set environment GDBSTUB_EQ=a=b=c",
        "set environment GDBSTUB_GONE=1",
        "unset environment GDBSTUB_GONE",
        f"set cwd {tmp_path}",
        f"run \"{spaced}\" 'dq\"inside' plain",
        "monitor exit",
    ], file=envargs())
    srv.wait_exit()
    srv.stdout.join(2)
    lines = inferior_lines(srv)
    context = res.describe() + srv.describe()
    assert "argc=4" in lines, context
    assert f"argv[1]=[{spaced}]" in lines, context
    assert "argv[2]=[dq\"inside]" in lines, context
    assert "argv[3]=[plain]" in lines, context
    assert "env=[GDBSTUB_EQ=a=b=c]" in lines, context
    assert not any("GDBSTUB_GONE" in line for line in lines), context
    assert f"cwd=[{tmp_path}]" in lines, context
    expect_in(res.stdout, r"exited with code 03\]$", context=context)


def test_shell_expands_redirection_and_globs(procs, tmp_path):
    """QStartupWithShell: '$SHELL -c exec PROG ARGS' as native gdb does, so '>' and '*' work.

    gdbserver 13 passes such arguments through literally, so this is gdbstub only."""
    (tmp_path / "one.glob").write_text("")
    (tmp_path / "two.glob").write_text("")
    out = tmp_path / "out.txt"
    srv = multi_server(procs, "gdbstub")
    res = gdb(procs, f"target extended-remote {srv.address}", [
        f"set remote exec-file {envargs()}",
        f"set cwd {tmp_path}",
        f"run 'a b' *.glob > {out}",
        "monitor exit",
    ], file=envargs())
    srv.wait_exit()
    context = res.describe() + srv.describe()
    text = out.read_text() if out.exists() else ""
    assert "argv[1]=[a b]" in text, context + text
    assert "argv[2]=[one.glob]" in text and "argv[3]=[two.glob]" in text, context + text
    assert "argc=4" in text, context + text


def test_run_kill_run_again(procs, kind):
    srv = multi_server(procs, kind)
    res = gdb(procs, f"target extended-remote {srv.address}", [
        f"set remote exec-file {envargs()}",
        "break reached",
        "run first",
        "p count",
        "kill",
        "run second",
        "continue",
        "run third",
        "kill",
        "monitor exit",
    ], file=envargs())
    srv.wait_exit()
    srv.stdout.join(2)
    context = res.describe() + srv.describe()
    out = res.stdout
    assert len(re.findall(r"Breakpoint 1, reached \(\)", out, re.M)) == 3, context
    expect_in(out, r"^\$1 = 0$", r"exited with code 03\]$", r"killed\]$", context=context)
    started = [line for line in srv.stdout.lines if line.startswith("argv[1]=")]
    assert started == ["argv[1]=[first]\n", "argv[1]=[second]\n", "argv[1]=[third]\n"], context
    assert srv.proc.returncode == 0, context


@pytest.mark.parametrize("shell", ["on", "off"])
def test_program_gets_sigchld_of_its_children(procs, kind, shell):
    """The stub reads its own SIGCHLD from a signalfd (SIGCHLD blocked); a program it runs, after
    it has started watching, must start with SIGCHLD unblocked and get it when a child ends."""
    prog = harness.program("sigchld")
    srv = multi_server(procs, kind)
    res = gdb(procs, f"target extended-remote {srv.address}", [
        f"set remote exec-file {prog}",
        f"set startup-with-shell {shell}",
        "run",
        "run",
        "monitor exit",
    ], file=prog)
    srv.wait_exit()
    srv.stdout.join(2)
    context = res.describe() + srv.describe()
    assert inferior_lines(srv, ("blocked=", "sigchld=")) == ["blocked=0", "sigchld=1"] * 2, context


def test_environment_newline_reset_and_restart(procs):
    """Raw packets: a value with a newline, QEnvironmentUnset/Reset, QSetWorkingDir, R, vKill."""
    srv = multi_server(procs, "gdbstub")
    client = RawClient(srv.port)
    try:
        assert client.request(b"!") == b"OK"
        assert client.request(b"QEnvironmentHexEncoded:" + hexs("GDBSTUB_NL=line1\nline2")) == b"OK"
        assert client.request(b"QEnvironmentHexEncoded:" + hexs("GDBSTUB_DROP=x")) == b"OK"
        assert client.request(b"QEnvironmentUnset:" + hexs("GDBSTUB_DROP")) == b"OK"
        assert client.request(b"QSetWorkingDir:" + hexs("/")) == b"OK"
        assert client.request(b"QStartupWithShell:0") == b"OK"
        assert client.request(b"QEnvironmentHexEncoded:bad") == b"E01"
        reply = client.request(b"vRun;" + hexs(str(envargs())) + b";" + hexs("x y"))
        assert reply.startswith(b"T05"), reply
        assert client.request(b"c").startswith(b"W03"), srv.describe()
        assert srv.stdout.wait_for(re.compile(r"cwd=\[/\]"), 10), srv.describe()
        text = srv.stdout.text
        assert "env=[GDBSTUB_NL=line1\nline2]" in text, text
        assert "GDBSTUB_DROP" not in text and "argv[1]=[x y]" in text, text
        # An empty program name means the last one, with the new arguments.
        assert client.request(b"QEnvironmentReset") == b"OK"
        assert client.request(b"vRun;;" + hexs("again")).startswith(b"T05")
        first = client.request(b"qC")
        # R restarts the last program: no reply, a new process.
        client.send_raw(b"R00")
        second = client.request(b"qC")
        assert first != second and second.startswith(b"QC"), (first, second)
        assert client.request(b"c").startswith(b"W03")
        # the vRun;;again process was killed by R before it printed anything
        assert wait_until(lambda: srv.stdout.text.count("ppid=") == 2, 10), srv.describe()
        runs = srv.stdout.text.split("argc=")
        assert all("argv[1]=[again]" in run and "GDBSTUB_NL" not in run for run in runs[2:]), srv.describe()
        assert client.request(b"vRun;" + hexs("/nonexistent/prog")) == b"E01"
        assert client.request(b"vKill;1") == b"E01"
        assert client.request(b"qRcmd," + hexs("exit")) == b"OK"
    finally:
        client.close()
    assert srv.wait_exit() == 0, srv.describe()


def start_counter(procs, tmp_path, threads=0):
    """An envargs copy that counts into a file, not under any debugger; returns (popen, file)."""
    counter = tmp_path / "count"
    env = dict(harness.server_env(), GDBSTUB_COUNT_FILE=str(counter), GDBSTUB_THREADS=str(threads))
    proc = procs.spawn([str(envargs())], env=env)
    assert wait_until(counter.exists, 10), "counter program did not start"
    assert wait_until(lambda: len(os.listdir(f"/proc/{proc.pid}/task")) == threads + 1, 10)
    return proc, counter


def read_counter(counter: Path) -> tuple[int, int]:
    """(count, SIGUSR1s received) as the program last wrote them; (-1, -1) while unreadable."""
    try:
        count, usr1 = counter.read_text().split()
        return int(count), int(usr1)
    except (OSError, ValueError):
        return -1, -1


def read_count(counter: Path) -> int:
    return read_counter(counter)[0]


def still_counts(counter: Path) -> bool:
    # The program rewrites the file (truncate, write): a read may catch it empty.
    firsts: list[int] = []
    if not wait_until(lambda: firsts.append(read_count(counter)) or firsts[-1] >= 0, 10):
        return False
    return wait_until(lambda: read_count(counter) > firsts[-1], 10)


def check_detached(pid: int, counter: Path, context: str) -> None:
    assert wait_until(lambda: proc_status(pid, "TracerPid") == "0", 10), context
    assert pid_alive(pid), context
    state = proc_status(pid, "State") or "?"
    assert not state.startswith(("t", "T", "Z", "X", "?")), f"detached program is {state}\n{context}"
    assert still_counts(counter), f"detached program does not run\n{context}"


def test_vattach_multithreaded_detach_untraced(procs, kind, tmp_path):
    """attach in extended mode to a 4-thread program, stop in it, detach: it runs on untraced."""
    prog, counter = start_counter(procs, tmp_path, threads=3)
    srv = multi_server(procs, kind)
    res = gdb(procs, f"target extended-remote {srv.address}", [
        f"attach {prog.pid}",
        "info threads",
        "break reached",
        "continue",
        "p count > 0",
        "detach",
        "monitor exit",
    ], file=envargs())
    srv.wait_exit()
    context = res.describe() + srv.describe()
    expect_in(res.stdout, r"Breakpoint 1, reached \(\)", r"^\$1 = 1$", rf"Inferior 1 \(process {prog.pid}\) detached",
              context=context)
    assert len(re.findall(r"^[ *] \d+ +Thread ", res.stdout, re.M)) == 4, context
    check_detached(prog.pid, counter, context)
    prog.kill()
    prog.wait(5)


def test_attach_option_detach_keeps_pending_signal(procs, kind, tmp_path):
    """--attach PID; a SIGUSR1 sent while the program is stopped is delivered after detach."""
    prog, counter = start_counter(procs, tmp_path)
    srv = spawn_server(procs, kind, ["--once", "--attach", "127.0.0.1:0", str(prog.pid)])
    res = gdb(procs, f"target remote {srv.address}", [
        "info inferiors",
        "break reached",
        "continue",
        "delete",
        f"shell kill -USR1 {prog.pid}",
        "p usr1_seen",
        "detach",
    ], file=envargs())
    srv.wait_exit()
    context = res.describe() + srv.describe()
    expect_in(res.stdout, r"Breakpoint 1, reached \(\)", r"^\$1 = 0$", r"detached\]$", context=context)
    assert wait_until(lambda: read_counter(counter)[1] == 1, 10), f"SIGUSR1 lost: {read_counter(counter)}\n{context}"
    check_detached(prog.pid, counter, context)
    # and a second attach through the stub, then kill
    srv2 = spawn_server(procs, kind, ["--once", "--attach", "127.0.0.1:0", str(prog.pid)])
    res2 = gdb(procs, f"target remote {srv2.address}", ["kill"], file=envargs())
    context = res2.describe() + srv2.describe()
    assert srv2.wait_exit() is not None, context
    assert prog.wait(10) == -signal.SIGKILL, context


@pytest.mark.parametrize("second", ["envargs", "envargs-32"])
def test_two_inferiors_at_once(procs, kind, second):
    """Two programs under one connection (multiprocess), also a 64- and a 32-bit one together."""
    other = harness.program(second)
    srv = multi_server(procs, kind)
    res = gdb(procs, f"target extended-remote {srv.address}", [
        f"set remote exec-file {envargs()}",
        "break reached",
        "run one",
        "add-inferior",
        "inferior 2",
        f"file {other}",
        f"set remote exec-file {other}",
        "run two",
        "p $pc",
        "info inferiors",
        "inferior 1",
        "p $pc",
        "inferior 2",
        "inferior 1",
        "continue",
        "inferior 2",
        "continue",
        "monitor exit",
    ], file=envargs())
    srv.wait_exit()
    context = res.describe() + srv.describe()
    pids = re.findall(r"^[ *] ([12]) +process (\d+)", res.stdout, re.M)
    assert len(pids) == 2 and pids[0][1] != pids[1][1], context
    srv.stdout.join(2)
    assert "argv[1]=[one]" in srv.stdout.text and "argv[1]=[two]" in srv.stdout.text, context
    width = 8 if second == "envargs-32" else 12  # each inferior keeps its own architecture
    expect_in(res.stdout, rf"^\$1 = \(void \(\*\)\(\)\) 0x[0-9a-f]{{{width}}} <reached\+\d+>$",
              r"^\$2 = \(void \(\*\)\(\)\) 0x[0-9a-f]{12} <reached\+\d+>$", context=context)
    assert len(re.findall(r"exited with code 03\]$", res.stdout, re.M)) == 2, context


def _stop_pid(reply: bytes) -> int:
    """The process a multiprocess stop reply names (thread:pPID.TID)."""
    found = re.search(rb"thread:p([0-9a-f]+)\.", reply)
    assert found, reply
    return int(found.group(1), 16)


def _gone(pid: int) -> bool:
    """Nothing of PID is left: not running, not a zombie, none of its threads."""
    return not os.path.exists(f"/proc/{pid}")


def test_kill_one_of_two_processes_then_the_other_stops(procs, kind):
    """vKill of one process of two (a multi-threaded one stopped at a breakpoint, then a
    single-threaded one) leaves nothing of it behind, and the other's next stop (its exit) is
    still reported: the stub awaits a killed process's end by SIGCHLD, which must not cost the
    event loop a SIGCHLD it needed."""
    threads, other = harness.program("threads"), envargs()
    srv = multi_server(procs, kind)
    client = RawClient(srv.port)
    try:
        client.request(b"qSupported:multiprocess+;swbreak+")
        assert client.request(b"!") == b"OK"  # gdbserver runs a second process in extended mode only

        def run_to_worker() -> int:
            reply = client.request(b"vRun;" + hexs(str(threads)))
            assert reply.startswith(b"T05"), reply + srv.describe().encode()
            pid = _stop_pid(reply)
            procs.track_pid(pid)
            worker = symbol_address(threads, "worker") + load_bias(pid, threads)
            assert client.request(b"Z0,%x,1" % worker) == b"OK"
            reply = client.request(b"vCont;c")
            assert reply.startswith(b"T05") and _stop_pid(reply) == pid, reply
            assert len(os.listdir(f"/proc/{pid}/task")) > 1, srv.describe()
            return pid

        def run_other() -> int:
            reply = client.request(b"vRun;" + hexs(str(other)))
            assert reply.startswith(b"T05"), reply
            pid = _stop_pid(reply)
            procs.track_pid(pid)
            return pid

        # The multi-threaded process killed; the other runs to its exit.
        first = run_to_worker()
        second = run_other()
        assert client.request(b"vKill;%x" % first) == b"OK"
        assert wait_until(lambda: _gone(first), 10), srv.describe()
        reply = client.request(b"vCont;c")
        assert re.fullmatch(b"W0?3;process:%x" % second, reply), reply + srv.describe().encode()
        # The single-threaded one killed; the multi-threaded one runs to its exit.
        third = run_to_worker()
        fourth = run_other()
        assert client.request(b"vKill;%x" % fourth) == b"OK"
        assert wait_until(lambda: _gone(fourth), 10), srv.describe()
        reply = client.request(b"qfThreadInfo")
        assert reply.startswith(b"mp%x." % third) and b"p%x." % fourth not in reply, reply
        assert client.request(b"Hgp%x.%x" % (third, third)) == b"OK"
        worker = symbol_address(threads, "worker") + load_bias(third, threads)
        assert client.request(b"z0,%x,1" % worker) == b"OK"
        reply = client.request(b"vCont;c")
        for _ in range(8):  # gdbserver still reports the other threads' hits of the removed breakpoint
            if not reply.startswith(b"T05"):
                break
            reply = client.request(b"vCont;c")
        assert re.fullmatch(b"W0?0;process:%x" % third, reply), reply + srv.describe().encode()
        assert client.request(b"qRcmd," + hexs("exit")) == b"OK"
    finally:
        client.close()
    assert srv.wait_exit() is not None, srv.describe()
    assert all(_gone(pid) for pid in (first, second, third, fourth)), srv.describe()


def test_monitor_commands(procs, kind):
    """gdbserver 13's spelling (0|1) works with both; gdbstub also takes on|off and more."""
    extra = [] if kind == "gdbserver" else [
        "monitor set debug on", "monitor set debug off", "monitor set remote-debug on",
        "monitor set remote-debug off", "monitor set libthread-db-search-path /usr/lib"]
    srv = spawn_server(procs, kind, ["127.0.0.1:0", str(envargs())])
    res = gdb(procs, f"target remote {srv.address}", [
        "monitor help",
        "monitor set debug 1",
        "monitor set debug 0",
        "monitor set remote-debug 1",
        "monitor set remote-debug 0",
        "monitor set debug-format timestamp",
        "monitor set debug-format none",
        *extra,
        "monitor exit",
    ], file=envargs())
    context = res.describe() + srv.describe()
    expect_in(res.output, r"^The following monitor commands are supported:$", r"^  exit$", context=context)
    assert "Protocol error" not in res.output, context
    assert srv.wait_exit() is not None, f"monitor exit did not end the server\n{context}"
    pid = srv.inferior_pid
    assert pid is not None and wait_until(lambda: not pid_alive(pid), 10), context


def test_monitor_info_and_unknown(procs):
    srv = spawn_server(procs, "gdbstub", ["--once", "127.0.0.1:0", str(envargs())])
    res = gdb(procs, f"target remote {srv.address}", ["monitor info", "monitor frobnicate", "kill"],
              file=envargs())
    context = res.describe() + srv.describe()
    expect_in(res.output, rf"^Process {srv.inferior_pid} \(launched, i386:x86-64\): 1 thread",
              r"^Unknown monitor command\.$", r"^Protocol error with Rcmd$", context=context)
    assert srv.wait_exit() is not None, context


def test_monitor_debug_toggles_packet_log(procs):
    srv = spawn_server(procs, "gdbstub", ["--once", "127.0.0.1:0", str(envargs())])
    res = gdb(procs, f"target remote {srv.address}", [
        "monitor set remote-debug on", "p 1", "x/2x $sp", "monitor set remote-debug off", "x/4x $sp", "kill"],
        file=envargs())
    srv.wait_exit()
    srv.stderr.join(2)
    context = res.describe() + srv.describe()
    log = srv.stderr.text
    on, _, after = log.partition(hexs("set remote-debug off").decode())
    assert re.search(r"<- \[[\d:]+\] m[0-9a-f]+,4", on), context
    assert after and "<- " not in after and "-> " not in after, context  # 'off': nothing logged


@pytest.mark.parametrize("mode", ["cli", "extended"])
def test_wrapper(procs, kind, mode):
    """--wrapper env TEST=1 --: the program sees the wrapper's work and the stub is its parent."""
    if mode == "cli":
        srv = spawn_server(procs, kind, ["--once", "--wrapper", "env", "TESTWRAP=1", "--", "127.0.0.1:0",
                                         str(envargs()), "arg"])
        res = gdb(procs, f"target remote {srv.address}", ["break reached", "continue", "continue"],
                  file=envargs())
    else:
        srv = spawn_server(procs, kind, ["--once", "--multi", "--wrapper", "env", "TESTWRAP=1", "--",
                                         "127.0.0.1:0"])
        res = gdb(procs, f"target extended-remote {srv.address}", [
            f"set remote exec-file {envargs()}", "break reached", "run arg", "continue", "monitor exit"],
            file=envargs())
    srv.wait_exit()
    srv.stdout.join(2)
    context = res.describe() + srv.describe()
    expect_in(res.stdout, r"Breakpoint 1, reached \(\)", r"exited with code 03\]$", context=context)
    expect_in(srv.stdout.text, r"^env=\[TESTWRAP=1\]$", r"^argv\[1\]=\[arg\]$", context=context)
    found = PID_LINE.search(srv.stdout.text)
    assert found and int(found.group(1)) == srv.proc.pid, context


def test_detach_in_extended_mode_keeps_server(procs, tmp_path):
    """After detach in extended mode the server stays for the next run (then monitor exit)."""
    prog, counter = start_counter(procs, tmp_path)
    srv = spawn_server(procs, "gdbstub", ["--multi", "127.0.0.1:0"])
    res = gdb(procs, f"target extended-remote {srv.address}", [f"attach {prog.pid}", "detach"], file=envargs())
    context = res.describe() + srv.describe()
    check_detached(prog.pid, counter, context)
    time.sleep(0.2)
    assert srv.proc.poll() is None, context
    res2 = gdb(procs, f"target extended-remote {srv.address}", [
        f"set remote exec-file {envargs()}", "run", "monitor exit"], file=envargs())
    context = res2.describe() + srv.describe()
    expect_in(res2.stdout, r"exited with code 03\]$", context=context)
    assert srv.wait_exit() == 0, context
    prog.kill()
    prog.wait(5)
