"""Threads (acceptance for the threads issue): named threads, a breakpoint in a worker, switching
threads, threads that come and go between stops, scheduler locking, pthread handles.

Each test runs against gdbserver (checking the test) and gdbstub; where output is deterministic
the two sessions are compared line by line.
"""

from __future__ import annotations

import os
import re

import harness
import pytest
from harness import Session, expect, location, normalise, source_line
from rawclient import load_bias, symbol_address

pytestmark = pytest.mark.threads

EXITED = re.compile(r"^\[Thread (\d+\.\d+) exited\]$")
THREAD_ROW = re.compile(r"^(\*?\s+\d+\s+Thread \S+ \"[\w-]+\")(.*)$", re.M)


@pytest.mark.parametrize("prog", ["threads", "threads-32"])
def test_break_in_worker_and_list_threads(debug, prog):
    s = debug(prog, [], ["break worker", "continue", "info threads", "bt 2", "thread 1", "bt 1", "delete", "continue"])
    expect(
        s,
        r"^Thread \d+ \"worker-\d\" hit Breakpoint 1, worker \(id=\d\)",
        r"^\* \d+\s+Thread \d+\.\d+ \"worker-\d\"\s+worker \(id=\d\)",
        r"^\[Switching to thread 1 \(Thread \d+\.\d+\)\]",
        r"^\[Inferior 1 \(process \d+\) exited normally\]$",
    )
    listed = re.findall(r"^\*?\s+\d+\s+Thread \d+\.\d+ \"([\w-]+)\"", s.out, re.M)
    assert len(listed) == 9, f"want main + 8 workers, got {listed}\n{s.describe()}"
    assert listed[0] == prog, listed
    assert sorted(listed[1:]) == [f"worker-{n}" for n in range(1, 9)], listed
    assert "counter=36" in s.inferior_output, s.describe()


@pytest.mark.parametrize("prog", ["threads", "threads-32"])
def test_every_worker_hits_and_backtraces(debug, prog):
    """Eight hits, one per worker (each reported on its own thread, none lost while the others
    were stopped), `thread N` + bt and `thread apply all bt`, then the right result."""
    script = ["break worker", "continue", "thread apply all bt 3", "thread 1", "bt"]
    script += ["continue"] * 8
    s = debug(prog, [], script)
    hits = re.findall(r"^Thread \d+ \"worker-(\d)\" hit Breakpoint 1, worker \(id=(\d)\)", s.out, re.M)
    assert sorted(int(a) for a, _ in hits) == list(range(1, 9)), f"hits {hits}\n{s.describe()}"
    assert all(a == b for a, b in hits), f"a worker reported the wrong id: {hits}\n{s.describe()}"
    expect(
        s,
        r"^Thread 1 \(Thread \d+\.\d+ \"threads(-32)?\"\):$",
        r"^#\d+\s+(0x[0-9a-f]+ in )?thread_main \(arg=0x\d\) at .*threads\.c:\d+$",
        r"^#\d+\s+(0x[0-9a-f]+ in )?main \(\) at .*threads\.c:\d+$",
        r"^\[Inferior 1 \(process \d+\) exited normally\]$",
    )
    assert "counter=36" in s.inferior_output, s.describe()


def _thread_rows(session: Session) -> str:
    """gdb's output with thread rows cut after the thread name (where a sleeping thread is
    exactly is timing), `[New Thread` lines dropped and so are the `[Thread ... exited]` lines
    of threads no `info threads` listed (a short-lived thread may or may not be seen alive at a
    stop, through gdbserver as through gdbstub; gdb 16 then says it exited)."""
    listed = set(re.findall(r"^\*?\s+\d+\s+Thread (\d+\.\d+) ", session.out, re.M))
    out = "\n".join(line for line in session.out.splitlines()
                    if not (m := EXITED.match(line)) or m.group(1) in listed)
    text = THREAD_ROW.sub(r"\1", normalise(out))
    return "\n".join(line for line in text.splitlines() if not line.startswith("[New Thread"))


@pytest.mark.parametrize("prog", ["threadlife", "threadlife-32"])
def test_threads_created_and_exited_between_stops(debug, reference, prog):
    """A thread created and joined while main is stepped with `next`, another exiting while main is
    stopped at a breakpoint: gdb's thread list must follow, as with gdbserver."""
    script = ["break checkpoint", f"break {location('create-b', 'threadlife')}", "continue", "info threads",
              "continue", "next", "next", "info threads", "continue", "info threads", "continue",
              "info threads", "continue"]
    ours, ref = debug(prog, [], script), reference(prog, [], script)
    expect(ours, r"^\[Inferior 1 \(process \d+\) exited normally\]$")
    assert "threadlife done" in ours.inferior_output, ours.describe()
    got, want = _thread_rows(ours), _thread_rows(ref)
    assert got == want, f"--- ours:\n{got}\n--- gdbserver:\n{want}\n{ours.describe()}"
    rows = re.findall(r"^\*?\s+\d+\s+Thread", got, re.M)
    assert len(rows) == 2 + 2 + 2 + 1, got


@pytest.mark.parametrize("prog", ["schedlock", "schedlock-32"])
def test_scheduler_locking_steps_one_thread(debug, prog):
    """`set scheduler-locking on` + `next`: only the stepped thread runs (vCont;r:TID alone), so the
    other thread's counter does not move; with locking off both run again and the program ends."""
    line = source_line("bump1", "schedlock")
    s = debug(prog, [], [
        "break bump1", "continue", "delete", "set scheduler-locking on", "p counts[0]",
        "next", "next", "p counts[0]", "p counts[1] - $1 * 0", "info threads",
        "set var stop = 1", "set scheduler-locking off", "continue",
    ])
    expect(
        s,
        rf"^Thread \d+ \"schedlock(-32)?\" hit Breakpoint 1, bump1 \(\) at .*schedlock\.c:{line}$",
        rf"^{line + 1}\s+counts\[1\]\+\+; /\* LINE:bump1-second \*/$",
        rf"^{line + 2}\s+counts\[1\]\+\+; /\* LINE:bump1-third \*/$",
        r"^\[Inferior 1 \(process \d+\) exited normally\]$",
    )
    before, after = (int(v) for v in re.findall(r"^\$[12] = (\d+)$", s.out, re.M))
    assert before == after, f"the other thread ran under scheduler locking: {before} -> {after}\n{s.describe()}"
    assert "schedlock done" in s.inferior_output, s.describe()


@pytest.mark.parametrize("prog", ["schedlock", "schedlock-32"])
def test_next_in_one_thread_while_others_run(debug, prog):
    """Without locking `next` range-steps one thread (vCont;r:TID;c) while the other keeps running
    through the same breakpoint-free code: the step ends in the stepped thread, on the next line."""
    line = source_line("bump1", "schedlock")
    s = debug(prog, [], [
        "break bump1", "continue", "delete", "p $_thread", "next", "p $_thread", "next", "p $_thread",
        "set var stop = 1", "continue",
    ])
    expect(
        s,
        rf"^{line + 1}\s+counts\[1\]\+\+;",
        rf"^{line + 2}\s+counts\[1\]\+\+;",
        r"^\[Inferior 1 \(process \d+\) exited normally\]$",
    )
    threads = re.findall(r"^\$\d+ = (\d+)$", s.out, re.M)
    assert len(threads) == 3 and len(set(threads)) == 1, f"next switched threads: {threads}\n{s.describe()}"


HANDLES = (
    "python\n"
    "for t in sorted(gdb.selected_inferior().threads(), key=lambda t: t.name):\n"
    "    try:\n"
    "        h = t.handle().hex()\n"
    "    except RuntimeError:\n"  # gdb 16: 'Thread handle not found' for some, through either server
    "        h = 'none'\n"
    "    print('handle', t.name, h)\n"
    "end"
)


@pytest.mark.parametrize("prog", ["threads", "threads-32"])
def test_pthread_handles_same_as_gdbserver(procs, debug, reference, prog, tmp_path):
    """qXfer:threads `handle=`: the pthread_t of each thread, as gdbserver's libthread_db gives it
    (gdb's Python `InferiorThread.handle()`); `info threads` shows Thread PID.TID through both."""
    if harness.gdb_version() == "gdb16":
        pytest.skip("gdbserver 16 runs on the gdb 16 root's glibc, whose libthread_db refuses this machine's "
                    "libc: it reports no handles")
    script_file = tmp_path / "handles.gdb"
    script_file.write_text(HANDLES + "\n")
    script = ["break worker", "continue", f"source {script_file}"]
    ours, ref = debug(prog, [], script), reference(prog, [], script)
    got = sorted(re.findall(r"^handle (\S+) ([0-9a-f]+|none)$", ours.out, re.M))
    want = sorted(re.findall(r"^handle (\S+) ([0-9a-f]+|none)$", ref.out, re.M))
    assert len(want) == 9, ref.describe()
    if harness.gdb_version() == "gdb13":
        assert all(handle != "none" for _, handle in want), ref.describe()
    assert got == want, f"handles differ\nours: {got}\ngdbserver: {want}\n{ours.describe()}"


# --- raw packets: what gdb 13 only sends in non-stop, and no-resumed -------------------------------

def _connect(procs, kind: str, prog: str, features: str):
    from gdbstub.client import Client

    srv = harness.start_server(procs, kind, harness.program(prog))
    client = Client.connect("127.0.0.1", srv.port, handshake=False, timeout=30)
    client.request(b"qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+;" + features.encode())
    assert client.request(b"QStartNoAckMode") == b"OK"
    client.no_ack = True
    client.request(b"?")
    return srv, client


def _thread_of(reply: bytes) -> bytes:
    found = re.search(rb"thread:([^;]+);", reply)
    assert found, reply
    return found.group(1)


@pytest.mark.parametrize("kind", ["gdbserver", "gdbstub"])
def test_no_resumed_when_the_only_resumed_thread_exits(procs, kind):
    """vCont;c for one thread that then exits while the others stay stopped: 'N' (no-resumed+)."""
    prog = str(harness.program("threadlife"))
    srv, c = _connect(procs, kind, "threadlife", "no-resumed+")
    with c:
        checkpoint, go = c.symbol("checkpoint", prog), c.symbol("go", prog)
        assert c.request(b"Z0,%x,1" % checkpoint) == b"OK"
        c.send(b"vCont;c")
        main = _thread_of(c.receive())
        threads = c.threads()
        assert len(threads) == 2, threads
        sleeper = next(t for t in threads if t.encode() != main)
        assert c.request(b"z0,%x,1" % checkpoint) == b"OK"
        assert c.request(b"M%x,4:01000000" % go) == b"OK"
        c.send(b"vCont;c:" + sleeper.encode())
        assert c.receive() == b"N"
        assert c.threads() == [main.decode()]
        c.send(b"vCont;c")
        assert c.receive().startswith(b"W0")
    assert srv.wait_exit() is not None, srv.describe()
    assert srv.stdout.wait_for(re.compile("threadlife done"), 10), srv.describe()


def test_thread_events_create_and_exit(procs):
    """QThreadEvents:1 (gdb sends it in non-stop): every clone is reported with 'create', every
    thread exit with 'w'; the breakpoint stops come in between and nothing is lost."""
    prog = str(harness.program("threadlife"))
    srv, c = _connect(procs, "gdbstub", "threadlife", "QThreadEvents+")
    kinds = []
    with c:
        checkpoint = c.symbol("checkpoint", prog)
        assert c.request(b"Z0,%x,1" % checkpoint) == b"OK"
        assert c.request(b"QThreadEvents:1") == b"OK"
        reply = b""
        for _ in range(20):
            if b"swbreak" in reply:  # step off the breakpoint as gdb does
                assert c.request(b"z0,%x,1" % checkpoint) == b"OK"
                c.send(b"vCont;s:" + _thread_of(reply))
                assert c.receive().startswith(b"T05")
                assert c.request(b"Z0,%x,1" % checkpoint) == b"OK"
            c.send(b"vCont;c")
            reply = c.receive()
            kinds.append("break" if b"swbreak" in reply else "create" if b"create:" in reply else reply[:1].decode())
            if reply[:1] in (b"W", b"X"):
                break
    assert kinds.count("create") == 2 and kinds.count("w") == 2 and kinds.count("break") == 3, kinds
    assert kinds[-1] == "W", kinds  # a create and a breakpoint hit may come in either order
    assert srv.wait_exit() is not None, srv.describe()


@pytest.mark.parametrize("prog", ["schedlock", "schedlock-32"])
def test_attach_to_running_threads(procs, kind, prog):
    """--attach PID to a program whose threads already run: every thread is traced and listed,
    and after detach the program goes on to its normal end."""
    program = harness.program(prog)
    inferior = procs.spawn([str(program)])
    assert harness.wait_until(lambda: len(os.listdir(f"/proc/{inferior.pid}/task")) == 3, 10)
    # Attach once spin1 has counted (read from outside), so that `p counts[1] > 0` is 1 whatever the timing.
    word = 4 if prog.endswith("-32") else 8
    counts1 = symbol_address(program, "counts") + load_bias(inferior.pid, program) + word

    def spin1_counted() -> bool:
        with open(f"/proc/{inferior.pid}/mem", "rb") as mem:
            mem.seek(counts1)
            return int.from_bytes(mem.read(word), "little") > 0

    assert harness.wait_until(spin1_counted, 10)
    srv = harness.start_server(procs, kind, str(inferior.pid), extra=["--attach"])
    result = harness.run_gdb(procs, srv.port, ["info threads", "p counts[1] > 0", "set var stop = 1", "detach"],
                             file=program)
    session = Session(srv, result)
    rows = re.findall(r"^\*?\s+\d+\s+Thread \d+\.\d+ \"schedlock(-32)?\"", result.stdout, re.M)
    assert len(rows) == 3, session.describe()
    expect(session, r"^\$1 = 1$", r"^\[Inferior 1 \(process \d+\) detached\]$")
    out, _ = inferior.communicate(timeout=20)
    assert inferior.returncode == 0 and "schedlock done" in out, session.describe()


@pytest.mark.parametrize("kind", ["gdbserver", "gdbstub"])
def test_vcont_step_one_thread_continue_others(procs, kind):
    """vCont;s:TID;c steps TID while the others run; vCont;s:TID alone (scheduler locking) leaves
    the others where they are. The stop is always the stepped thread's."""
    prog = str(harness.program("schedlock"))
    srv, c = _connect(procs, kind, "schedlock", "")
    with c:
        bump1, counts = c.symbol("bump1", prog), c.symbol("counts", prog)
        assert c.request(b"Z0,%x,1" % bump1) == b"OK"
        c.send(b"vCont;c")
        stepped = _thread_of(c.receive())
        assert c.request(b"z0,%x,1" % bump1) == b"OK"
        for payload in (b"vCont;s:" + stepped + b";c", b"vCont;s:" + stepped):
            before = c.read_memory(counts, 8)
            c.send(payload)
            reply = c.receive()
            assert reply.startswith(b"T05") and _thread_of(reply) == stepped, (payload, reply)
            if payload.endswith(stepped):
                assert c.read_memory(counts, 8) == before, "another thread ran during vCont;s:TID"
        c.request(b"vKill;%x" % srv.inferior_pid)
    assert srv.wait_exit() is not None, srv.describe()


# Breakpoints on every system-call instruction of glibc's clone3 and clone (x86-64: pthread_create
# uses clone3; the one in the child's path is never reached by the parent).
CLONE_SYSCALL_BREAKS = (
    "python exec(\"import re\\nfor f in ('__clone3', '__clone'):\\n"
    " try:\\n  text = gdb.execute('disassemble ' + f, to_string=True)\\n except gdb.error:\\n  continue\\n"
    " for a in re.findall(r'(0x[0-9a-f]+) <\\\\+\\\\d+>:\\\\s+syscall', text):\\n"
    "  gdb.execute('break *' + a)\\n\")"
)


@pytest.mark.parametrize("mode", ["non-stop", "all-stop"])
def test_breakpoint_on_clone_syscall(debug, reference, gdb_version, mode):
    """A breakpoint on the clone3 `syscall` instruction while the threads created before keep
    running: gdb 14+ steps over the clone (non-stop: displaced) with QThreadOptions' clone event
    asked for, and gets a `clone` stop (the new thread held until gdb has fixed it up). Every
    create stops at the breakpoint once, every thread runs to its end, as with gdbserver.
    (x86-64 only: i386's glibc enters the kernel for clone through the vDSO.)"""
    if gdb_version == "gdb13" and mode == "non-stop":
        pytest.skip("gdb 13 has no clone events: the new thread starts in the displaced copy of the "
                    "syscall (through gdbserver 13 as well)")
    script = ["break main", "continue", CLONE_SYSCALL_BREAKS, "info breakpoints"]
    if gdb_version != "gdb13":
        script.append("show remote thread-options-packet")
    script += [*["continue"] * 3, "delete", "continue"]
    before = ["set non-stop on"] if mode == "non-stop" else []
    ours, ref = (run("clonerun", [], script, before=before) for run in (debug, reference))
    for s in (ours, ref):
        expect(s, r"^\[Inferior 1 \(process \d+\) exited normally\]$")
        assert "clonerun total=9000000" in s.inferior_output, s.describe()
        if gdb_version != "gdb13":
            expect(s, r"^Support for the 'QThreadOptions' packet .* currently enabled\.$")

    def stops(s: Session) -> list[str]:
        # Without gdb's `Thread N "clonerun" hit ` prefix: gdb adds it once it knows of a second
        # thread, and whether the first clone's thread is listed by the second hit is timing.
        return re.findall(r"^(?:Thread \d+ \"clonerun\" hit )?(Breakpoint \d+, .*|Breakpoint \d+ at .*)$", s.out, re.M)

    assert stops(ours).count("Breakpoint 2, clone3 () at ../sysdeps/unix/sysv/linux/x86_64/clone3.S:60") == 3, (
        ours.describe())
    assert stops(ours) == stops(ref), f"{stops(ours)}\n{stops(ref)}\n{ours.describe()}"


@pytest.mark.parametrize("prog", ["leaderexit", "leaderexit-32"])
def test_leader_exits_first(debug, reference, prog):
    """main() calls pthread_exit: its zombie leaves the thread list (as with gdbserver), stops stay
    prompt, and the process exit is reported when the worker ends."""
    script = ["break tick", "continue", "continue", "info threads", "continue", "continue"]
    ours, ref = debug(prog, [], script), reference(prog, [], script)
    got, want = _thread_rows(ours), _thread_rows(ref)
    assert got == want, f"--- ours:\n{got}\n--- gdbserver:\n{want}\n{ours.describe()}"
    expect(ours, r"hit Breakpoint 1, tick \(i=2\)", r"^\[Inferior 1 \(process \d+\) exited normally\]$")
    assert "worker done" in ours.inferior_output, ours.describe()


def _spinners_ran(pid: int, at_least_ns: int = 2_000_000) -> bool:
    """Every thread but the leader has had AT_LEAST_NS on a CPU (/proc/PID/task/TID/schedstat)."""
    try:
        tids = [t for t in os.listdir(f"/proc/{pid}/task") if t != str(pid)]
        return bool(tids) and all(
            int(open(f"/proc/{pid}/task/{t}/schedstat").read().split()[0]) >= at_least_ns for t in tids)
    except (OSError, ValueError, IndexError):
        return False


def test_ctrl_c_stops_every_thread(procs, server):
    """Ctrl-C while two threads spin: SIGINT stops the program (all-stop), every thread is listed
    and readable, and the program goes on after it."""
    srv = server("schedlock")
    mi = harness.MIClient(procs, harness.program("schedlock"))
    try:
        assert mi.send("-gdb-set mi-async on")["message"] == "done"
        assert mi.send(f"-target-select remote {srv.address}")["message"] == "connected"
        for _ in range(2):
            assert mi.send("-exec-continue")["message"] == "running"
            assert harness.wait_until(lambda: len(os.listdir(f"/proc/{srv.inferior_pid}/task")) == 3, 20)
            # both counting threads have been on a CPU (a loaded machine may not have run one yet)
            assert harness.wait_until(lambda: _spinners_ran(srv.inferior_pid), 20)
            assert mi.send("-exec-interrupt")["message"] == "done"
            stopped = mi.wait_stopped(30)["payload"]
            assert stopped.get("signal-name") == "SIGINT", stopped
            info = mi.send("-thread-info")["payload"]
            threads = info["threads"]
            assert len(threads) == 3, info
            assert all(t.get("state") == "stopped" and "frame" in t for t in threads), info
        assert mi.send('-data-evaluate-expression "counts[0] > 0 && counts[1] > 0"')["payload"] == {"value": "1"}
        mi.send('-interpreter-exec console "kill"')
    finally:
        mi.close()
    assert srv.wait_exit() is not None, srv.describe()
