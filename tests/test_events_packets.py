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


def test_thread_options_parse_and_set() -> None:
    """QThreadOptions on a table of fake threads: a later entry wins for the threads it
    matches, the others keep their options, bad packets change nothing."""
    from gdbstub.target.linux.threads import Thread

    s = session()
    for tid in (100, 101, 102):
        s.target.threads[tid] = Thread(tid, 100)
    s.target.processes[100] = None  # type: ignore[assignment]
    s.negotiated.multiprocess = True
    assert s.handle(b"QThreadOptions;0;3:p64.65") == b"OK"
    assert [s.target.threads[t].options for t in (100, 101, 102)] == [0, 3, 0]
    assert s.handle(b"QThreadOptions;2:p64.66") == b"OK"  # 101 keeps its options
    assert [s.target.threads[t].options for t in (100, 101, 102)] == [0, 3, 2]
    assert s.handle(b"QThreadOptions;1:p64.-1") == b"OK"
    assert [s.target.threads[t].options for t in (100, 101, 102)] == [1, 1, 1]
    assert s.handle(b"QThreadOptions;0") == b"OK"
    assert [s.target.threads[t].options for t in (100, 101, 102)] == [0, 0, 0]
    for bad in (b"QThreadOptions", b"QThreadOptions:3", b"QThreadOptions;", b"QThreadOptions;3;",
                b"QThreadOptions;zz", b"QThreadOptions;3:", b"QThreadOptions;3:pq.1", b"QThreadOptions;3=1",
                b"QThreadOptions;123456789", b"QThreadOptions;3:p64.65;4"):
        assert s.handle(bad) == b"E01", bad
    assert [s.target.threads[t].options for t in (100, 101, 102)] == [0, 0, 0]
    s.handle(b"qSupported:error-message+")
    assert s.handle(b"QThreadOptions;4") == b"E.Unknown thread options requested: 0x4"


def test_thread_options_announced() -> None:
    s = session()
    features = s.handle(b"qSupported:multiprocess+").split(b";")
    assert b"QThreadOptions=3" in features


def test_clone_stop_reply_names_the_new_thread() -> None:
    """A THREAD_CLONED event: 'T05clone:<child ptid>;' then the parent's thread (no process
    here, so no registers or core)."""
    from gdbstub.target.base import StopEvent, StopKind

    s = session()
    s.negotiated.multiprocess = True
    event = StopEvent(StopKind.THREAD_CLONED, 0x64, 0x64, child_pid=0x64, child_tid=0x70)
    assert s.stop_reply(event).startswith(b"T05clone:p64.70;")
    assert b"thread:p64.64;" in s.stop_reply(event)
