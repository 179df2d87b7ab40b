"""QCatchSyscalls, QThreadEvents, no-resumed and QProgramSignals: what the packets set on the
target (the real LinuxTarget class, with no process: these packets only configure it)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gdbstub.protocol.registry import new_session
from gdbstub.protocol.session import Session
from gdbstub.target.linux.process import LinuxTarget


def session() -> Session:
    return new_session(LinuxTarget())


def test_catch_syscalls_all_some_and_off() -> None:
    s = session()
    assert s.handle(b"QCatchSyscalls:1") == b"OK"
    assert s.target.catch_syscalls == frozenset()  # empty: every syscall
    assert s.handle(b"QCatchSyscalls:1;1;3c") == b"OK"
    assert s.target.catch_syscalls == frozenset({1, 0x3C})
    assert s.handle(b"QCatchSyscalls:0") == b"OK"
    assert s.target.catch_syscalls is None


def test_catch_syscalls_bad_arguments_change_nothing() -> None:
    s = session()
    s.handle(b"QCatchSyscalls:1;4")
    for bad in (b"QCatchSyscalls:2", b"QCatchSyscalls:1;zz", b"QCatchSyscalls:1;;4", b"QCatchSyscalls:0;1",
                b"QCatchSyscalls:", b"QCatchSyscalls:1;123456789"):
        assert s.handle(bad) == b"E01", bad
    assert s.target.catch_syscalls == frozenset({4})


def test_thread_events() -> None:
    s = session()
    assert s.handle(b"QThreadEvents:1") == b"OK"
    assert s.target.thread_events and s.negotiated.thread_events
    assert s.handle(b"QThreadEvents:0") == b"OK"
    assert not s.target.thread_events
    assert s.handle(b"QThreadEvents:2") == b"E01"
    assert s.handle(b"QThreadEvents") == b"E01"


def test_qsupported_advertises_and_negotiates() -> None:
    s = session()
    reply = s.handle(b"qSupported:multiprocess+;no-resumed+;QThreadEvents+;fork-events+")
    assert reply is not None
    offered = reply.decode().split(";")
    for name in ("QCatchSyscalls+", "QThreadEvents+", "no-resumed+", "fork-events+", "QPassSignals+"):
        assert name in offered, reply
    assert s.target.report_no_resumed
    plain = session()
    reply = plain.handle(b"qSupported:multiprocess+")
    assert reply is not None and "no-resumed+" not in reply.decode().split(";")
    assert not plain.target.report_no_resumed


def test_program_and_pass_signals_in_linux_numbers() -> None:
    s = session()
    # gdb's numbers: 0x1e is SIGUSR1 (Linux 10), 0x14 is SIGCHLD (Linux 17), 0x4d is SIG32.
    assert s.handle(b"QProgramSignals:1e;14;4d") == b"OK"
    assert s.target.program_signals == frozenset({10, 17, 32})
    assert s.handle(b"QPassSignals:e;1e") == b"OK"
    assert s.target.pass_signals == frozenset({14, 10})


def test_no_events_without_a_process() -> None:
    """poll() with nothing traced and nothing resumed reports nothing (and never blocks)."""
    target = LinuxTarget()
    assert target.poll() is None
    assert target.thread_ids() == []
    assert target.thread_handle(1, 1) is None


@given(st.binary(max_size=40))
def test_catch_syscalls_never_crashes(args: bytes) -> None:
    s = session()
    assert s.handle(b"QCatchSyscalls" + args) in (b"OK", b"E01", b"")  # "": another packet name
    assert s.handle(b"QThreadEvents" + args) in (b"OK", b"E01", b"")
