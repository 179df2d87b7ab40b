"""Non-stop mode at the protocol level, against gdbserver and gdbstub alike: what gdb
cannot be made to exercise on demand (QThreadEvents create/exit notifications, the
process exiting while other threads run, vKill / D while threads run, vCtrlC, '?').

The client here reads '%' notifications as well as '$' replies, and keeps them apart.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import time
from collections.abc import Iterator

import pytest
from harness import BUILD, ProcessTracker, Server, pid_alive, program, start_server, wait_until
from rawclient import tracer_of

from gdbstub.protocol import framing

TIMEOUT = 20.0
BITS = pytest.mark.parametrize("bits", ["", "-32"])


class NonStopClient:
    """Replies ('$') and notifications ('%') from one connection, kept in two queues."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""
        self.replies: list[bytes] = []
        self.notes: list[bytes] = []
        self.no_ack = False

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("nothing in time")
        self.sock.settimeout(remaining)
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buf += data
        while True:
            self.buf = self.buf.lstrip(b"+")
            m = re.match(rb"([$%])([^#]*)#[0-9a-fA-F]{2}", self.buf, re.S)
            if m is None:
                return
            self.buf = self.buf[m.end():]
            body = framing.run_length_decode(framing.unescape(m.group(2)))
            if m.group(1) == b"$":
                if not self.no_ack:
                    self.sock.sendall(b"+")
                self.replies.append(body)
            else:
                self.notes.append(body)

    def reply(self, timeout: float = TIMEOUT) -> bytes:
        deadline = time.monotonic() + timeout
        while not self.replies:
            self._fill(deadline)
        return self.replies.pop(0)

    def note(self, timeout: float = TIMEOUT) -> bytes:
        deadline = time.monotonic() + timeout
        while not self.notes:
            self._fill(deadline)
        return self.notes.pop(0)

    def request(self, payload: bytes) -> bytes:
        self.sock.sendall(framing.encode(payload))
        return self.reply()

    def start(self) -> None:
        """gdb's opening in non-stop: features, no-ack, QNonStop:1."""
        self.request(b"qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+")
        assert self.request(b"QStartNoAckMode") == b"OK"
        self.no_ack = True
        assert self.request(b"QNonStop:1") == b"OK"

    def question(self) -> list[bytes]:
        """'?' and the vStopped that drain it: every stopped thread's stop."""
        got = [self.request(b"?")]
        while got[-1] != b"OK":
            got.append(self.request(b"vStopped"))
        return got[:-1]

    def stops(self, timeout: float = TIMEOUT) -> list[bytes]:
        """Wait for a %Stop notification and drain the queue behind it with vStopped."""
        note = self.note(timeout)
        assert note.startswith(b"Stop:"), note
        got = [note[5:]]
        while True:
            more = self.request(b"vStopped")
            if more == b"OK":
                return got
            got.append(more)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def thread_of(stop: bytes) -> bytes:
    found = re.search(rb"thread:(p[0-9a-f]+\.[0-9a-f]+);", stop)
    assert found is not None, stop
    return found.group(1)


@pytest.fixture
def connect(procs: ProcessTracker, kind: str) -> Iterator[object]:
    made: list[tuple[Server, NonStopClient]] = []

    def start(name: str, *args: str) -> tuple[Server, NonStopClient]:
        srv = start_server(procs, kind, program(name), args)
        client = NonStopClient(srv.port)
        made.append((srv, client))
        client.start()
        return srv, client

    yield start
    for srv, client in made:
        client.close()
        srv.stop()


@BITS
@pytest.mark.timeout(60)
def test_thread_create_and_exit_notifications(connect, bits: str) -> None:  # type: ignore[no-untyped-def]
    """QThreadEvents:1: each new thread stops and is reported 'create' (the others run
    on), each exit is a 'w', the process exit a 'W'; gdb resumes each created thread."""
    _, c = connect("threadlife" + bits)
    (first,) = c.question()
    assert first.startswith(b"T05"), first  # stopped at the entry, as gdbserver has it
    assert c.request(b"QThreadEvents:1") == b"OK"
    assert c.request(b"vCont;c") == b"OK"
    kinds: list[bytes] = []
    seen: list[bytes] = []
    created: set[bytes] = set()
    gone: set[bytes] = set()
    while not kinds or kinds[-1] not in (b"W", b"X"):
        for stop in c.stops():
            seen.append(stop[:3] + stop[-16:])
            if stop.startswith(b"T"):
                assert b"create:;" in stop, stop
                kinds.append(b"create")
                tid = thread_of(stop)
                created.add(tid)
                assert c.request(b"vCont;c:" + tid) == b"OK"
            elif stop.startswith(b"w"):
                kinds.append(b"w")
                gone.add(b"p" + stop.split(b";p", 1)[1])
            else:
                kinds.append(stop[:1])
                assert int(stop[1:].split(b";")[0], 16) == 0, stop
    assert kinds == [b"create", b"create", b"w", b"w", b"W"], seen
    assert created == gone


@BITS
@pytest.mark.timeout(60)
def test_process_exit_while_threads_run(connect, bits: str) -> None:  # type: ignore[no-untyped-def]
    """One thread calls exit(3) while three others spin: one W03 notification."""
    srv, c = connect("nshammer" + bits, "3")
    (first,) = c.question()
    assert c.request(b"Hg" + thread_of(first)) == b"OK"  # as gdb does (gdbserver needs it for M)
    assert c.request(b"vCont;c") == b"OK"
    time.sleep(0.2)
    assert c.request(b"M%x,1:01" % _symbol(srv, "quit")) == b"OK"  # written while they run
    stops = c.stops()
    assert [(s[:1], int(s[1:].split(b";")[0], 16)) for s in stops] == [(b"W", 3)], stops
    assert srv.inferior_pid is not None
    assert wait_until(lambda: not pid_alive(srv.inferior_pid or 0), 10)
    assert not c.notes


@BITS
@pytest.mark.timeout(60)
def test_kill_while_threads_run(connect, bits: str) -> None:  # type: ignore[no-untyped-def]
    srv, c = connect("nonstop" + bits)
    pid = srv.inferior_pid
    assert pid is not None
    c.question()
    assert c.request(b"vCont;c") == b"OK"
    time.sleep(0.2)
    assert c.request(b"vKill;%x" % pid) == b"OK"
    assert wait_until(lambda: not pid_alive(pid), 10)


@BITS
@pytest.mark.timeout(60)
def test_detach_while_threads_run(connect, procs: ProcessTracker, bits: str) -> None:  # type: ignore[no-untyped-def]
    """D while threads run and others sit at a breakpoint: the program goes on, untraced,
    with no stray SIGTRAP."""
    srv, c = connect("nonstop" + bits)
    pid = srv.inferior_pid
    assert pid is not None
    c.question()
    assert c.request(b"Hgp%x.%x" % (pid, pid)) == b"OK"  # as gdb does before Z0 (gdbserver needs it)
    assert c.request(b"Z0,%x,1" % _symbol(srv, "tick")) == b"OK"
    assert c.request(b"vCont;c") == b"OK"
    # Every thread hits tick() in turn; take the hits as they come, then leave mid-run.
    hits = 0
    while hits < 4:
        for stop in c.stops():
            assert stop.startswith(b"T05"), stop
            hits += 1
            assert c.request(b"vCont;c:" + thread_of(stop)) == b"OK"
    # As gdb does: the breakpoint out (threads still running and hitting it), then D.
    assert c.request(b"z0,%x,1" % _symbol(srv, "tick")) == b"OK"
    assert c.request(b"D;%x" % pid) == b"OK"
    assert wait_until(lambda: tracer_of(pid) == 0, 10)
    time.sleep(0.3)
    assert pid_alive(pid)  # no int3 left behind to kill it with SIGTRAP
    try:
        counters = _read_counters(pid, srv, bits)
        # Every spinner counts on (bounded: a loaded machine may give one no CPU for a while).
        assert wait_until(lambda: all(b > a for a, b in zip(counters, _read_counters(pid, srv, bits), strict=True)),
                          TIMEOUT), (counters, _read_counters(pid, srv, bits))
    finally:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), 10)


@BITS
@pytest.mark.timeout(60)
def test_ctrl_c_and_question(connect, bits: str) -> None:  # type: ignore[no-untyped-def]
    """vCtrlC stops the program with SIGINT (one thread reports it); '?' then lists
    exactly the stopped threads, vCont;t stops the rest with signal 0."""
    _, c = connect("nonstop" + bits)
    c.question()
    assert c.request(b"vCont;c") == b"OK"
    time.sleep(0.3)
    assert c.request(b"vCtrlC") == b"OK"
    (stop,) = c.stops()
    assert stop.startswith(b"T02"), stop
    interrupted = thread_of(stop)
    assert [thread_of(s) for s in c.question()] == [interrupted]
    assert c.request(b"vCont;t") == b"OK"
    stopped = [interrupted]
    while len(stopped) < 5:  # main and four spinners
        for s in c.stops():
            assert s.startswith(b"T00"), s
            stopped.append(thread_of(s))
    assert len(set(stopped)) == 5
    listed = c.question()
    assert sorted(thread_of(s) for s in listed) == sorted(stopped)
    assert [s[:3] for s in listed].count(b"T02") == 1
    # vCtrlC with nothing running: the stop is not repeated.
    c.request(b"vCtrlC")
    time.sleep(0.3)
    c.sock.sendall(framing.encode(b"qfThreadInfo"))
    assert c.reply().startswith(b"m")
    assert not c.notes


def _symbol(srv: Server, name: str) -> int:
    from rawclient import load_bias, symbol_address

    exe = next(a for a in srv.argv if a.startswith(str(BUILD)))  # the program, before its arguments
    return symbol_address(exe, name) + load_bias(srv.inferior_pid or 0, exe)


def _read_counters(pid: int, srv: Server, bits: str) -> list[int]:
    from rawclient import read_mem

    size = 4 if bits else 8
    raw = read_mem(pid, _symbol(srv, "counters"), 4 * size)
    return [int.from_bytes(raw[i:i + size], "little") for i in range(0, len(raw), size)]


@BITS
@pytest.mark.timeout(60)
def test_reconnect_after_non_stop(procs: ProcessTracker, bits: str) -> None:
    """A client leaves in non-stop with every thread running; the next one (a fresh launch,
    issue 2) starts in all-stop: a breakpoint hit stops every thread. A third one in
    non-stop: '?' lists the fresh program's one stopped thread.

    gdbstub only: gdbserver keeps non-stop across connections (its '?' in the next,
    all-stop, connection answers OK), which no client expects."""
    srv = start_server(procs, "gdbstub", program("nonstop" + bits), once=False)
    try:
        first = NonStopClient(srv.port)
        first.start()
        first.question()
        assert first.request(b"vCont;c") == b"OK"
        time.sleep(0.3)
        first.close()
        second = NonStopClient(srv.port)
        second.request(b"qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+")
        stop = second.request(b"?")
        assert stop.startswith(b"T05"), stop
        pid = int(thread_of(stop)[1:].split(b".")[0], 16)
        exe = program("nonstop" + bits)
        from rawclient import load_bias, symbol_address

        hit = symbol_address(exe, "hit") + load_bias(pid, exe)
        assert second.request(b"Z0,%x,1" % hit) == b"OK"
        stop = second.request(b"vCont;c")  # all-stop: the stop is the reply
        assert stop.startswith(b"T05swbreak:"), stop
        tasks = os.listdir(f"/proc/{pid}/task")
        assert len(tasks) > 1
        states = [_task_state(pid, int(t)) for t in tasks]
        assert set(states) == {"t"}, states  # every thread stopped
        assert not second.notes
        second.close()
        third = NonStopClient(srv.port)
        third.start()
        (only,) = third.question()
        assert only.startswith(b"T05") and thread_of(only) != thread_of(stop), only
        third.close()
    finally:
        srv.stop()


def _task_state(pid: int, tid: int) -> str:
    with open(f"/proc/{pid}/task/{tid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@BITS
@pytest.mark.timeout(60)
def test_process_exit_with_a_thread_stopped(connect, bits: str) -> None:  # type: ignore[no-untyped-def]
    """A thread the client stopped (vCont;t) goes with the process when another thread
    calls exit(3): its stop, then one W03, and '?' has nothing left to list."""
    srv, c = connect("nshammer" + bits, "3")
    (first,) = c.question()
    assert c.request(b"Hg" + thread_of(first)) == b"OK"  # as gdb does (gdbserver needs it for M)
    assert c.request(b"vCont;c") == b"OK"
    threads: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT
    while len(threads) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
        reply = c.request(b"qfThreadInfo")
        threads = []
        while reply.startswith(b"m"):
            threads += reply[1:].split(b",")
            reply = c.request(b"qsThreadInfo")
    last = threads[-1]  # a spinner; thread 0 (the one that exits) is the second
    assert c.request(b"vCont;t:" + last) == b"OK"
    stops = c.stops()
    assert stops[0].startswith(b"T00") and thread_of(stops[0]) == last, stops
    assert c.request(b"M%x,1:01" % _symbol(srv, "quit")) == b"OK"
    while not any(s.startswith((b"W", b"X")) for s in stops):
        stops += c.stops()
    assert [(s[:1], int(s[1:].split(b";")[0], 16)) for s in stops[1:]] == [(b"W", 3)], stops
    assert c.question() == []
