"""Session dispatch and stop-reply encoding against an in-memory target.

The fake target stands in for a process only here, in unit tests of the pure
protocol core; integration tests use real processes.
"""

from __future__ import annotations

from typing import Any

import pytest

from gdbstub.arch.x86_64 import X86_64
from gdbstub.protocol.registry import new_session
from gdbstub.protocol.session import S_STOP_REPLIES, Session, packet_name
from gdbstub.target.base import ResumeAction, StopEvent, StopKind
from gdbstub.target.linux.registers import expedited_text


class FakeThread:
    def __init__(self, tid: int, pid: int) -> None:
        self.tid, self.pid = tid, pid


class FakeTarget:
    def __init__(self) -> None:
        self.pid = 100
        self.processes: dict[int, Any] = {100: object()}
        self.threads = {100: FakeThread(100, 100), 101: FakeThread(101, 100)}
        self.memory = bytearray(range(256)) * 16
        self.regs = bytearray(X86_64.g_size)
        self.resumed: dict[int, ResumeAction] | None = None
        self.breakpoints_set: set[int] = set()
        self.pass_signals: frozenset[int] = frozenset()
        self.report_fork = self.report_vfork = self.report_exec = False

    def arch(self, pid: int) -> Any:
        return X86_64

    def alive(self) -> bool:
        return True

    def is_launched(self, pid: int) -> bool:
        return True

    def pid_of(self, tid: int) -> int | None:
        return 100 if tid in self.threads else None

    def thread_ids(self) -> list[tuple[int, int]]:
        return [(100, 100), (100, 101)]

    def thread_core(self, pid: int, tid: int) -> int | None:
        return 1

    def thread_core_text(self, pid: int, tid: int) -> bytes | None:
        return b"1"

    def thread_name(self, pid: int, tid: int) -> str:
        return "fake"

    def expedite_text(self, tid: int) -> bytes:
        return expedited_text(self.expedite(tid))

    def expedite(self, tid: int) -> list[tuple[int, bytes]]:
        return [(6, b"\x01" * 8), (7, b"\x02" * 8), (16, b"\x03" * 8)]

    def read_registers(self, tid: int) -> bytes:
        return bytes(self.regs)

    def write_registers(self, tid: int, data: bytes) -> None:
        self.regs[: len(data)] = data

    def read_register(self, tid: int, regnum: int) -> bytes | None:
        return b"\x11" * 8 if regnum < 16 else None

    def write_register(self, tid: int, regnum: int, data: bytes) -> bool:
        return regnum < 16

    def read_memory(self, pid: int, addr: int, length: int) -> bytes:
        if addr >= len(self.memory):
            raise OSError(5, "EIO")
        return bytes(self.memory[addr : addr + length])

    def write_memory(self, pid: int, addr: int, data: bytes) -> None:
        self.memory[addr : addr + len(data)] = data

    def insert_sw_breakpoint(self, pid: int, addr: int) -> bool:
        self.breakpoints_set.add(addr)
        return True

    def remove_sw_breakpoint(self, pid: int, addr: int) -> bool:
        self.breakpoints_set.discard(addr)
        return True

    def breakpoints(self) -> None:
        return None

    def resume(self, actions: dict[int, ResumeAction]) -> None:
        self.resumed = actions

    def auxv(self, pid: int) -> bytes:
        return b"\x06\0\0\0\0\0\0\0\0\x10\0\0\0\0\0\0"

    def exec_file(self, pid: int) -> str:
        return "/bin/fake"

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


@pytest.fixture
def session() -> Session:
    s = new_session(FakeTarget())  # type: ignore[arg-type]
    s.handle(b"qSupported:multiprocess+;swbreak+;xmlRegisters=i386")
    return s


def test_packet_names() -> None:
    assert packet_name(b"qSupported:x") == "qSupported"
    assert packet_name(b"vCont?") == "vCont?"
    assert packet_name(b"vCont;c") == "vCont"
    assert packet_name(b"m10,2") == "m"
    assert packet_name(b"qXfer:features:read:target.xml:0,10") == "qXfer"


def test_qsupported_advertises_only_implemented(session: Session) -> None:
    reply = session.handle(b"qSupported:multiprocess+;swbreak+;hwbreak+")
    assert reply is not None
    items = reply.split(b";")
    assert b"PacketSize=2001f" in items  # gdbserver 16's
    assert b"multiprocess+" in items and b"swbreak+" in items
    assert b"hwbreak+" not in items  # the fake target has no hardware breakpoints
    assert b"qXfer:features:read+" in items


def test_bare_qsupported_keeps_what_was_negotiated(session: Session) -> None:
    """`maint packet qSupported` (no features) only asks; a later list adds but never takes back."""
    target = session.target
    assert session.negotiated.multiprocess and session.negotiated.swbreak and target.xml_registers
    assert session.handle(b"qSupported") == session.handle(b"qSupported:")
    assert session.negotiated.multiprocess and session.negotiated.swbreak and target.xml_registers
    assert session.handle(b"qC") == b"QCp64.64"
    session.handle(b"qSupported:multiprocess-;no-resumed+;xmlRegisters=arm")
    assert session.negotiated.multiprocess and session.negotiated.no_resumed and target.xml_registers
    assert session.negotiated.client_features["xmlRegisters"] == "i386,arm"
    fresh = new_session(FakeTarget())  # type: ignore[arg-type]
    fresh.handle(b"qSupported")
    assert not fresh.negotiated.multiprocess and fresh.handle(b"qC") == b"QC64"


def test_must_reply_empty_and_unknown(session: Session) -> None:
    assert session.handle(b"vMustReplyEmpty") == b""
    assert session.handle(b"qNoSuchThing") == b""
    assert session.handle(b"") == b""


def test_initial_stop_reply(session: Session) -> None:
    reply = session.handle(b"?")
    assert reply == (b"T0506:0101010101010101;07:0202020202020202;10:0303030303030303;"
                     b"thread:p64.64;core:1;")


def test_memory_read_write(session: Session) -> None:
    assert session.handle(b"m10,4") == b"10111213"
    assert session.handle(b"M10,2:aabb") == b"OK"
    assert session.handle(b"m10,2") == b"aabb"
    assert session.handle(b"X20,2:\x00\x01") == b"OK"
    assert session.handle(b"m20,2") == b"0001"
    assert session.handle(b"m100000,4") == b"E01"
    assert session.handle(b"mzz,4") == b"E01"
    assert session.handle(b"M10,3:aabb") == b"E01"


def test_registers(session: Session) -> None:
    g = session.handle(b"g")
    assert g is not None and len(g) == 2 * X86_64.g_size
    assert session.handle(b"p0") == b"11" * 8
    assert session.handle(b"p99") == b"E01"
    assert session.handle(b"P0=0000000000000000") == b"OK"
    assert session.handle(b"P99=00") == b"E01"
    assert session.handle(b"G" + b"00" * 8) == b"OK"


def test_threads(session: Session) -> None:
    assert session.handle(b"qfThreadInfo") == b"mp64.64,p64.65"
    assert session.handle(b"qsThreadInfo") == b"l"
    assert session.handle(b"Hgp64.65") == b"OK"
    assert session.handle(b"qC") == b"QCp64.65"
    assert session.handle(b"Hgp64.99") == b"E01"
    assert session.handle(b"Tp64.65") == b"OK"
    assert session.handle(b"Tp64.99") == b"E01"


def test_vcont_leftmost_action_wins(session: Session) -> None:
    assert session.handle(b"vCont;s:p64.65;c") is None
    target = session.target
    assert target.resumed == {101: ResumeAction("s"), 100: ResumeAction("c")}  # type: ignore[attr-defined]
    assert session.status.running


def test_vcont_signal_converted(session: Session) -> None:
    session.handle(b"vCont;C1e:p64.64")  # gdb's SIGUSR1 is 30; Linux's is 10
    assert session.target.resumed == {100: ResumeAction("c", 10)}  # type: ignore[attr-defined]


def test_vcont_malformed(session: Session) -> None:
    assert session.handle(b"vCont;x") == b"E01"
    assert not session.status.running


def test_breakpoints(session: Session) -> None:
    assert session.handle(b"Z0,1000,1") == b"OK"
    assert session.target.breakpoints_set == {0x1000}  # type: ignore[attr-defined]
    assert session.handle(b"z0,1000,1") == b"OK"
    assert session.handle(b"Z1,1000,1") == b""  # no hardware breakpoints on this target
    assert session.handle(b"Z0,zz") == b"E01"


def test_stop_replies(session: Session) -> None:
    assert session.stop_reply(StopEvent(StopKind.EXITED, 100, 100, status=7)) == b"W7;process:64"
    assert session.stop_reply(StopEvent(StopKind.TERMINATED, 100, 100, signal=9)) == b"X9;process:64"
    reply = session.stop_reply(StopEvent(StopKind.SIGNAL, 100, 101, signal=11))
    assert reply.startswith(b"T0b06:") and b"thread:p64.65;" in reply
    reply = session.stop_reply(StopEvent(StopKind.SIGNAL, 100, 101, signal=5, reason="swbreak"))
    assert reply.startswith(b"T05swbreak:;")


def test_bare_stop_replies_keep_gdbs_thread(session: Session) -> None:
    """--disable-packet=T: Sxx only, W/X as ever, the thread-alive packet answered, and since
    the reply names no thread, g keeps answering for gdb's current thread (gdbserver)."""
    session.negotiated.disabled.add(S_STOP_REPLIES)
    assert session.stop_reply(StopEvent(StopKind.SIGNAL, 100, 101, signal=11)) == b"S0b"
    assert session.stop_reply(StopEvent(StopKind.FORK, 100, 101, child_pid=200, child_tid=200)) == b"S05"
    assert session.stop_reply(StopEvent(StopKind.EXITED, 100, 100, status=7)) == b"W7;process:64"
    assert session.handle(b"Tp64.65") == b"OK"
    assert session.handle(b"Hgp0.0") == b"OK"
    assert session.on_stop(StopEvent(StopKind.SIGNAL, 100, 101, signal=5)) == b"S05"
    assert session.current_tid() == 100  # the thread 'any' meant before the stop, not 101
    session.negotiated.disabled.discard(S_STOP_REPLIES)
    assert session.on_stop(StopEvent(StopKind.SIGNAL, 100, 101, signal=5)).startswith(b"T05")
    assert session.current_tid() == 101  # a named thread becomes gdb's


def test_without_multiprocess_thread_ids_are_plain() -> None:
    s = new_session(FakeTarget())  # type: ignore[arg-type]
    s.handle(b"qSupported:swbreak+")
    assert s.handle(b"qfThreadInfo") == b"m64,65"
    reply = s.stop_reply(StopEvent(StopKind.EXITED, 100, 100, status=0))
    assert reply == b"W00"


def test_xfer_windows(session: Session) -> None:
    doc = X86_64.features_xml.encode()
    first = session.handle(b"qXfer:features:read:target.xml:0,100")
    assert first == b"m" + doc[:0x100]
    last = session.handle(b"qXfer:features:read:target.xml:%x,100000" % 0x100)
    assert last == b"l" + doc[0x100:]
    assert session.handle(b"qXfer:features:read:nope.xml:0,100") == b"E01"
    assert session.handle(b"qXfer:nosuch:read::0,10") == b""
    assert session.handle(b"qXfer:exec-file:read::0,100") == b"l/bin/fake"


def test_a_repeated_packet_is_dispatched_as_the_first(session: Session) -> None:
    """Short packets are kept split into name and arguments: a repeat gets the same answer, and
    a packet that only starts like a kept one is split afresh."""
    assert session.handle(b"QPassSignals:e;10") == b"OK"
    passed = session.target.pass_signals
    assert len(passed) == 2
    session.target.pass_signals = frozenset()
    assert session.handle(b"QPassSignals:e;10") == b"OK"
    assert session.target.pass_signals == passed
    assert session.handle(b"QPassSignals:") == b"OK"
    assert session.target.pass_signals == frozenset()
    assert session.handle(b"QPassSignalsX") == b""
