"""Signals (acceptance for the signals issue): stops reported with gdb's numbers, delivery of a
chosen signal (C/S, vCont;C), QPassSignals without a round trip, crashes, a program killed from
outside (X09), detach delivering the stop signal."""

from __future__ import annotations

import os
import re
import signal

import harness
import pytest
from harness import Session, expect, expect_not, normalise, source_line

BUSY_PID = re.compile(r"busy pid (\d+)")


def same_as_gdbserver(ours: Session, ref: Session) -> None:
    got, want = normalise(ours.out), normalise(ref.out)
    assert got == want, f"--- ours:\n{got}--- gdbserver:\n{want}\n=== details:\n{ours.describe()}"


@pytest.mark.parametrize("prog", ["signals", "signals-32"])
def test_signal_delivered_to_handler(debug, reference, prog):
    """continue after SIGUSR1 delivers it (vCont;C1e): the handler's breakpoint is hit and bt
    shows the signal frame."""
    script = ["break on_usr1", "continue", "continue", "bt", "continue"]
    ours, ref = debug(prog, [], script), reference(prog, [], script)
    expect(
        ours,
        r"^Program received signal SIGUSR1, User defined signal 1\.$",
        r"^Breakpoint 1, on_usr1 \(sig=10\) at ",
        r"^#1  <signal handler called>$",
        r"^\[Inferior 1 \(process \d+\) exited with code 02\]$",
    )
    same_as_gdbserver(ours, ref)


@pytest.mark.parametrize("prog", ["signals", "signals-32"])
def test_signal_command_delivers_chosen_signal(debug, reference, prog):
    """`signal SIGUSR1` at a breakpoint sends a signal of gdb's choice: the handler runs once more."""
    line = source_line("report", "signals")
    script = [f"break signals.c:{line}", "continue", "continue", "signal SIGUSR1", "continue"]
    ours, ref = debug(prog, [], script), reference(prog, [], script)
    expect(ours, r"^\[Inferior 1 \(process \d+\) exited with code 03\]$")
    assert "usr1=2 alrm=1" in ours.inferior_output, ours.describe()
    same_as_gdbserver(ours, ref)


@pytest.mark.parametrize("prog", ["signals", "signals-32"])
def test_pass_nostop_without_round_trip(procs, server, kind, prog):
    """`handle SIGUSR1 nostop noprint pass` puts SIGUSR1 in QPassSignals: the stub delivers it
    itself, so no stop reply for it ever reaches gdb."""
    if kind == "gdbserver" and harness.gdb_version() == "gdb16":
        pytest.skip("gdbserver 16's packet log holds the raw bytes of its x replies: not readable as text")
    extra = ["--debug"] if kind == "gdbstub" else ["--debug", "--remote-debug"]
    srv = server(prog, extra=extra)
    result = harness.run_gdb(procs, srv.port, ["handle SIGUSR1 SIGALRM nostop noprint pass", "continue"],
                             file=harness.program(prog))
    srv.wait_exit()
    session = Session(srv, result)
    expect(session, r"^\[Inferior 1 \(process \d+\) exited with code 02\]$")
    expect_not(session, r"Program received signal")
    assert "usr1=1 alrm=1" in srv.stdout.text, session.describe()
    log = srv.stderr.text
    assert "QPassSignals:" in log, session.describe()
    assert not re.search(r"\$T(1e|0e)", log), f"a passed signal was reported\n{session.describe()}"


@pytest.mark.parametrize("prog", ["crash", "crash-32"])
def test_crash_signal_and_backtrace(debug, reference, prog):
    script = ["continue", "bt", "p $_siginfo.si_signo", "continue", "info registers"]
    ours, ref = debug(prog, [], script), reference(prog, [], script)
    expect(
        ours,
        r"^Program received signal SIGSEGV, Segmentation fault\.$",
        r"^#2  0x[0-9a-f]+ in level1 \(x=1\)",
        r"^\$1 = 11$",
        r"^Program terminated with signal SIGSEGV, Segmentation fault\.$",
        r"^The program has no registers now\.$",
    )
    same_as_gdbserver(ours, ref)


def test_detach_at_signal_delivers_it(debug, reference):
    """Detaching while stopped at SIGUSR1 passes the signal on (gdbserver does): the handler runs."""
    for session in (debug("signals", [], ["continue", "detach"]), reference("signals", [], ["continue", "detach"])):
        expect(session, r"^\[Inferior 1 \(process \d+\) detached\]$")
        assert session.server.stdout.wait_for(re.compile("usr1=1 alrm=1"), 10), session.describe()


def test_killed_from_outside(procs, server, kind):
    """SIGKILL from another process while running: gdb reports X09 ("Program terminated with signal
    SIGKILL") and the stub still answers what gdb asks afterwards."""
    srv = server("busy")
    gdb = procs.spawn(harness.gdb_command(srv.port, ["continue", "info registers rip", "info threads"],
                                          harness.program("busy")))
    found = srv.stdout.wait_for(BUSY_PID, 30)
    assert found, f"busy.c never started\n{srv.describe()}"
    os.kill(int(found.group(1)), signal.SIGKILL)
    out, err = gdb.communicate(timeout=60)
    text = out + err
    assert re.search(r"^Program terminated with signal SIGKILL, Killed\.$", text, re.M), text + srv.describe()
    assert re.search(r"^The program has no registers now\.$", text, re.M), text
    assert re.search(r"^No threads\.$", text, re.M), text
    assert srv.wait_exit() is not None, f"--once server still running\n{srv.describe()}"


@pytest.mark.parametrize("prog", ["signals", "signals-32"])
def test_stepi_delivers_signal_into_handler(debug, reference, prog):
    """stepi at a SIGUSR1 stop steps with the signal (vCont;S1e): the thread stops at the first
    instruction of the handler, under a signal frame."""
    script = ["continue", "stepi", "bt 2", "stepi", "continue"]
    ours, ref = debug(prog, [], script), reference(prog, [], script)
    expect(ours, r"^on_usr1 \(sig=\d+\) at ", r"^#1  <signal handler called>$",
           r"^\[Inferior 1 \(process \d+\) exited with code 02\]$")
    same_as_gdbserver(ours, ref)


@pytest.mark.threads
@pytest.mark.parametrize("prog", ["threadsig", "threadsig-32"])
def test_thread_directed_signal_reported_on_its_thread(debug, prog):
    """pthread_kill(worker, SIGUSR1): the stop names that worker, $_siginfo is its signal, and the
    signal goes to that worker's handler on continue."""
    s = debug(prog, [], ["continue", "p $_siginfo.si_signo", "break on_usr1", "continue", "bt 1", "continue"])
    expect(
        s,
        r"^Thread 2 \"sig-target\" received signal SIGUSR1, User defined signal 1\.$",
        r"^\$1 = 10$",
        r"^Thread 2 \"sig-target\" hit Breakpoint 1, on_usr1 \(sig=10\) at ",
        r"^\[Inferior 1 \(process \d+\) exited normally\]$",
    )
    assert "hits=1" in s.inferior_output, s.describe()
