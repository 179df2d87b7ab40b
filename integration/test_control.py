"""Foundation (issue 2): interrupting, crashing, killing, detaching, reconnecting, losing the client."""

from __future__ import annotations

import os
import re
import signal

import harness
import pytest
from harness import MIClient, expect, expect_not, pid_alive, source_line, wait_until

BUSY_PID = re.compile(r"busy pid (\d+)")


def inferior_pid(text: str) -> int:
    found = re.search(r"\(process (\d+)\)|process (\d+)", text)
    assert found, f"no process id in:\n{text}"
    return int(found.group(1) or found.group(2))


def user_ticks(pid: int) -> int:
    """User CPU time of PID in clock ticks (/proc/PID/stat field 14); 0 once it is gone."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return 0
    return int(stat[stat.rindex(")") + 2 :].split()[11])


def test_ctrl_c_interrupts_busy_loop(procs, server):
    """gdb/MI `-exec-interrupt` sends \\x03 while the inferior runs; the stop is a SIGINT in spin()."""
    srv = server("busy")
    mi = MIClient(procs, harness.program("busy"))
    try:
        assert mi.send("-gdb-set confirm off")["message"] == "done"
        assert mi.send("-gdb-set mi-async on")["message"] == "done"
        connected = mi.send(f"-target-select remote {srv.address}")
        assert connected["message"] == "connected", connected
        for _ in range(2):  # interrupt, resume, interrupt again
            assert mi.send("-exec-continue")["message"] == "running"
            started = srv.stdout.wait_for(BUSY_PID, 20)
            assert started, f"busy.c never started\n{srv.describe()}"
            # Past its printf and spinning (else the stop may land in write()): 30 ms of user CPU.
            pid = int(started.group(1))
            assert wait_until(lambda pid=pid: user_ticks(pid) >= 3, 20), srv.describe()
            assert mi.send("-exec-interrupt")["message"] == "done"
            stopped = mi.wait_stopped(30)["payload"]
            assert stopped.get("reason") == "signal-received", stopped
            assert stopped.get("signal-name") == "SIGINT", stopped
            assert stopped["frame"]["func"] == "spin", stopped
        spins = mi.send('-data-evaluate-expression "spins > 0"')
        assert spins["payload"] == {"value": "1"}, spins
        mi.send('-interpreter-exec console "kill"')
    finally:
        mi.close()
    assert srv.wait_exit() is not None, f"--once server still running after kill\n{srv.describe()}"
    pid = int(BUSY_PID.search(srv.stdout.text).group(1))  # type: ignore[union-attr]
    assert wait_until(lambda: not pid_alive(pid), 10), f"inferior {pid} survived kill"


def test_crash_reports_sigsegv_and_backtrace(debug):
    s = debug("crash", [], ["continue", "bt", "info frame", "continue"])
    line = source_line("crash", "crash")
    expect(
        s,
        r"^Program received signal SIGSEGV, Segmentation fault\.$",
        rf"^0x[0-9a-f]+ in level3 \(x=3\) at .*crash\.c:{line}$",
        r"^#0  0x[0-9a-f]+ in level3 \(x=3\)",
        r"^#1  0x[0-9a-f]+ in level2 \(x=2\)",
        r"^#2  0x[0-9a-f]+ in level1 \(x=1\)",
        r"^#3  0x[0-9a-f]+ in main \(\)",
        r"^Program terminated with signal SIGSEGV, Segmentation fault\.$",
        r"^The program no longer exists\.$",
    )


def test_crash_siginfo(debug):
    """`$_siginfo` needs qXfer:siginfo:read: the faulting address of the NULL write is 0."""
    s = debug("crash-32", [], ["continue", "p $_siginfo.si_signo", "p $_siginfo._sifields._sigfault.si_addr"])
    expect(s, r"^\$1 = 11$", r"^\$2 = \(void \*\) 0x0$")


def test_kill(debug):
    s = debug("loop", [], ["break hot", "continue", "kill", "info inferiors"])
    expect(s, r"^Breakpoint 1, hot", r"^\[Inferior 1 \(process \d+\) killed\]$")
    pid = inferior_pid(s.out)
    assert wait_until(lambda: not pid_alive(pid), 10), f"process {pid} still alive after kill\n{s.describe()}"
    assert s.server_rc is not None, f"--once server still running after kill\n{s.describe()}"


def test_detach_lets_program_finish(debug):
    s = debug("loop", ["3", "5"], ["break hot", "continue", "delete", "detach"])
    expect(s, r"^\[Inferior 1 \(process \d+\) detached\]$")
    pid = inferior_pid(s.out)
    assert wait_until(lambda: not pid_alive(pid), 10), f"detached process {pid} did not finish\n{s.describe()}"
    assert s.server.stdout.wait_for(re.compile("acc=110 counter=3"), 5), s.describe()
    assert s.server_rc is not None, f"--once server still running after detach\n{s.describe()}"


def test_reconnect_after_disconnect(procs, server, kind):
    """Without --once the server outlives a client. After `disconnect` gdbserver keeps the program
    stopped where it was; gdbstub kills the program it launched and the next client debugs a fresh
    launch of it (issue 2: no launched program outlives its client)."""
    srv = server("loop", ["5"], once=False)
    prog = harness.program("loop")
    first = harness.run_gdb(procs, srv.port, ["break hot", "continue", "continue", "p i", "disconnect"], file=prog)
    assert re.search(r"^\$1 = 1$", first.stdout, re.M), first.describe() + srv.describe()
    assert srv.proc.poll() is None, f"server exited after disconnect\n{first.describe()}{srv.describe()}"
    first_pid = srv.inferior_pid
    second = harness.run_gdb(
        procs, srv.port, ["p counter", "break hot", "continue", "p i", "p counter", "kill"], file=prog
    )
    if kind == "gdbserver":  # the same process, where the first client left it
        want = (r"^\$1 = 1$", r"^Breakpoint 1, hot \(i=2\)", r"^\$2 = 2$", r"^\$3 = 2$", r"killed\]$")
    else:  # a fresh launch
        want = (r"^\$1 = 0$", r"^Breakpoint 1, hot \(i=0\)", r"^\$2 = 0$", r"^\$3 = 0$", r"killed\]$")
    for pattern in want:
        assert re.search(pattern, second.stdout, re.M), f"{pattern!r} missing\n{second.describe()}{srv.describe()}"
    if kind == "gdbstub":
        assert first_pid is not None and not pid_alive(first_pid), srv.describe()
    srv.wait_exit(5)
    srv.stop()


def test_no_inferior_survives_when_gdb_vanishes(procs, server, kind, request):
    """kill -9 gdb while the program runs: the server must notice and the program must go too.

    gdbserver 13 fails this: it logs "client connection closed" but keeps waiting for the running
    inferior to stop, which busy.c never does.  gdbstub is required to do better.
    """
    if kind == "gdbserver":
        reason = "gdbserver keeps a running inferior (and itself) alive after its client vanishes"
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    srv = server("busy")
    gdb = procs.spawn(harness.gdb_command(srv.port, ["continue"], harness.program("busy")))
    found = srv.stdout.wait_for(BUSY_PID, 30)
    assert found, f"busy.c never started\n{srv.describe()}"
    pid = int(found.group(1))
    os.killpg(gdb.pid, signal.SIGKILL)
    gdb.wait(timeout=10)
    # gdbstub gets 10 s; gdbserver's documented failure (strict xfail) shows after 3 s as well.
    grace = 3 if kind == "gdbserver" else 10
    try:
        assert wait_until(lambda: not pid_alive(pid), grace), f"inferior {pid} outlived gdb\n{srv.describe()}"
        assert srv.wait_exit(15) is not None, f"--once server outlived its client\n{srv.describe()}"
    except AssertionError:
        srv.stop()  # a failure (gdbserver's xfail) leaves both running: no 10 s leak-check grace for them
        raise


@pytest.mark.parametrize("prog", ["signals", "signals-32"])
def test_signals_stop_and_deliver(debug, prog):
    """SIGUSR1 stops (gdb's default); SIGALRM is `nostop noprint pass` by default, so it passes silently."""
    s = debug(prog, [], ["continue", "continue"])
    expect(
        s,
        r"^Program received signal SIGUSR1, User defined signal 1\.$",
        r"^\[Inferior 1 \(process \d+\) exited with code 02\]$",
    )
    expect_not(s, r"SIGALRM")
    assert "usr1=1 alrm=1" in s.inferior_output, s.describe()


def test_signal_stop_on_request(debug):
    s = debug("signals", [], ["handle SIGALRM stop print", "continue", "continue", "bt 1", "continue"])
    expect(
        s,
        r"^Program received signal SIGUSR1, User defined signal 1\.$",
        r"^Program received signal SIGALRM, Alarm clock\.$",
        r"^\[Inferior 1 \(process \d+\) exited with code 02\]$",
    )


def test_signal_discarded_with_signal_0(debug):
    s = debug("signals", [], ["continue", "signal 0", "continue"])
    expect(s, r"SIGUSR1", r"^\[Inferior 1 \(process \d+\) exited with code 01\]$")


def test_handle_nostop_passes_signals(debug):
    s = debug("signals", [], ["handle SIGUSR1 SIGALRM nostop noprint pass", "continue"])
    expect(s, r"^\[Inferior 1 \(process \d+\) exited with code 02\]$")
    expect_not(s, r"Program received signal")


def test_fork_parent_followed(debug):
    s = debug("forkexec", [], ["continue"])
    expect(s, r"^\[Inferior 1 \(process \d+\) exited with code 03\]$")


def test_fork_child_execs(debug):
    s = debug("forkexec", [str(harness.program("loop")), "2", "9"], ["continue"])
    expect(s, r"^\[Inferior 1 \(process \d+\) exited with code 011\]$")
