"""Tracepoint packets (protocol/tracepoints.py) and the tracer (gdbstub/trace/) against an
in-memory target: definitions and their upload, a hit collecting registers, memory and
expressions, conditions, passcount, the buffer's accounting, frames answering g/p/m, and
malformed packets refused."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from gdbstub.agent import AgentError, Expression
from gdbstub.arch.x86_64 import X86_64
from gdbstub.protocol.registry import new_session
from gdbstub.protocol.session import Session
from gdbstub.trace.model import FRAME_HEADER, TraceBuffer, parse_actions
from gdbstub.trace.tracer import CLIENT, Tracer

PC = 0x401000
G_SIZE = X86_64.g_size


class Thread:
    def __init__(self, tid: int, pid: int) -> None:
        self.tid, self.pid = tid, pid


class Target:
    """Registers, memory and the int3 table: what the tracer and the packets touch."""

    def __init__(self) -> None:
        self.pid = 100
        self.processes: dict[int, Any] = {100: object()}
        self.threads = {100: Thread(100, 100)}
        self.mem = bytearray(0x1000)
        self.mem[0x100:0x108] = (42).to_bytes(8, "little")
        self.mem[0x200:0x206] = b"hello\0"
        self.sw: dict[int, int] = {}
        self.tracer = Tracer(self)
        self.report_fork = self.report_vfork = self.report_exec = False

    def arch(self, pid: int) -> Any:
        return X86_64

    def pid_of(self, tid: int) -> int | None:
        return 100 if tid in self.threads else None

    def read_registers(self, tid: int) -> bytes:
        return bytes(range(256)) * (G_SIZE // 256) + bytes(G_SIZE % 256)

    def read_register(self, tid: int, regnum: int) -> bytes | None:
        return (0x100 if regnum == 6 else 7).to_bytes(8, "little")

    def read_memory(self, pid: int, addr: int, length: int) -> bytes:
        return bytes(self.mem[addr:addr + length])

    def insert_sw_breakpoint(self, pid: int, addr: int, owner: str = CLIENT) -> bool:
        self.tracer.own(pid, addr, owner)
        self.sw[addr] = self.sw.get(addr, 0) + 1
        return True

    def remove_sw_breakpoint(self, pid: int, addr: int, owner: str = CLIENT) -> bool:
        if self.tracer.still_owned(pid, addr, owner):
            return True
        self.sw.pop(addr, None)
        return True


@pytest.fixture
def session() -> Session:
    return new_session(Target())  # type: ignore[arg-type]


def ask(s: Session, packet: bytes) -> bytes | None:
    return s.handle(packet)


def xexpr(code: bytes) -> bytes:
    return b"X%x,%s" % (len(code), code.hex().encode())


def define(s: Session, *packets: bytes) -> None:
    assert ask(s, b"QTinit") == b"OK"
    for packet in packets:
        assert ask(s, packet) == b"OK", packet


def test_qsupported_lists_tracepoint_features(session):
    reply = ask(session, b"qSupported:multiprocess+")
    assert reply is not None
    for name in (b"ConditionalTracepoints+", b"TraceStateVariables+", b"TracepointSource+", b"InstallInTrace+",
                 b"EnableDisableTracepoints+", b"QTBuffer:size+", b"tracenz+", b"qXfer:traceframe-info:read+",
                 b"FastTracepoints+", b"DisconnectedTracing+"):
        assert name in reply.split(b";")
    assert b"StaticTracepoints+" not in reply


def test_status_before_any_run(session):
    assert ask(session, b"qTStatus") == (b"T0;tnotrun:0;tframes:0;tcreated:0;tfree:500000;tsize:500000;circular:0;"
                                         b"disconn:0;starttime:0;stoptime:0;username:;notes::")
    assert ask(session, b"qTfV") == b"1:0:1:" + b"trace_timestamp".hex().encode()
    assert ask(session, b"qTsV") == b"l"
    assert ask(session, b"qTV:1") == b"U"  # nothing is known before the first run
    assert ask(session, b"QTFrame:0") == b"F-1"


def test_hit_collects_registers_memory_expression_and_variable(session):
    # collect $regs, 8 bytes at 0x100, *(char(*)[6])0x200 via tracenz, $v; then $v = $v + 1
    expr = bytes((0x25,)) + (0x200).to_bytes(8, "big") + bytes((0x22, 0x10, 0x2F, 0x27))
    teval = bytes((0x2C, 0, 2, 0x22, 1, 0x02, 0x2D, 0, 2, 0x27))
    tracev = bytes((0x2E, 0, 2, 0x27))
    define(session, b"QTDP:1:%016x:E:0:0-" % PC, b"QTDP:-1:%016x:R1ff-" % PC,
           b"QTDP:-1:%016x:M-1,100,8%s%s%s" % (PC, xexpr(expr), xexpr(tracev), xexpr(teval)),
           b"QTDPsrc:1:%x:at:0:3:%s" % (PC, b"abc".hex().encode()), b"QTDV:2:5:0:76")
    assert ask(session, b"QTStart") == b"OK"
    target = session.target
    assert PC in target.sw
    assert target.tracer.hit(100, 100, PC) is False  # the client has no breakpoint there: silent
    assert target.tracer.hit(100, 100, PC) is False
    assert ask(session, b"qTV:2") == b"V7"
    assert ask(session, b"QTStop") == b"OK"
    assert PC not in target.sw
    status = ask(session, b"qTStatus")
    assert status is not None and status.startswith(b"T0;tstop::0;tframes:2;tcreated:2;")
    frame_size = 1 + G_SIZE + (11 + 8) + (11 + 6) + 13
    assert ask(session, b"qTP:1:%x" % PC) == b"V2:%x" % (2 * frame_size)
    assert b"tfree:%x;" % (0x500000 - 2 * (frame_size + FRAME_HEADER)) in status
    assert ask(session, b"QTFrame:1") == b"F1T1"
    assert ask(session, b"m100,8") == (42).to_bytes(8, "little").hex().encode()
    assert ask(session, b"m200,6") == b"hello\0".hex().encode()
    assert ask(session, b"m300,4") == b"E01"
    assert ask(session, b"g") == target.read_registers(100).hex().encode()
    assert ask(session, b"qTV:2") == b"V6"  # as tracev recorded it in frame 1
    assert ask(session, b"M100,1:00") == b"E01"  # the frame is history
    info = ask(session, b"qXfer:traceframe-info:read::0,1000")
    assert info is not None and b'<memory start="0x100" length="0x8"/>' in info and b'<tvar id="2"/>' in info
    assert ask(session, b"QTFrame:ffffffff") == b"OK"
    assert ask(session, b"qTV:2") == b"V7"
    raw = ask(session, b"qTBuffer:0,10")
    assert raw is not None and bytes.fromhex(raw.decode())[:6] == struct.pack("<HI", 1, frame_size)
    pieces = [ask(session, b"qTfP")]
    while pieces[-1] != b"l":
        pieces.append(ask(session, b"qTsP"))
    assert pieces[0] == b"T1:%x:E:0:0" % PC
    assert pieces[1] == b"A1:%x:R1ff" % PC
    assert pieces[-2] == b"Z1:%x:at:0:3:616263" % PC


def test_condition_and_passcount_stop_the_run(session):
    cond = bytes((0x26, 0, 0, 0x22, 7, 0x13, 0x27))  # reg 0 == 7
    never = bytes((0x22, 0, 0x27))
    define(session, b"QTDP:1:%016x:E:0:2:%s" % (PC, xexpr(cond)), b"QTDP:2:%016x:E:0:0:%s" % (PC + 1, xexpr(never)))
    ask(session, b"QTStart")
    tracer = session.target.tracer
    tracer.hit(100, 100, PC + 1)
    tracer.hit(100, 100, PC)
    assert tracer.running
    tracer.hit(100, 100, PC)
    assert not tracer.running
    assert PC in session.target.sw  # the thread on it steps off first: lifted at the next packet
    status = ask(session, b"qTStatus")
    assert status is not None and status.startswith(b"T0;tpasscount:1;tframes:2;")
    assert PC not in session.target.sw


def test_shared_int3_with_a_client_breakpoint(session):
    define(session, b"QTDP:1:%016x:E:0:0" % PC)
    target = session.target
    assert ask(session, b"Z0,%x,1" % PC) == b"OK"
    ask(session, b"QTStart")
    assert target.tracer.hit(100, 100, PC) is True  # gdb's breakpoint: reported
    assert ask(session, b"z0,%x,1" % PC) == b"OK"
    assert PC in target.sw  # still the trace's
    assert target.tracer.hit(100, 100, PC) is False
    ask(session, b"QTStop")
    assert PC not in target.sw


def test_buffer_full_and_circular():
    """gdbserver's accounting: each allocation needs room for an end marker too."""
    buf = TraceBuffer()
    buf.size = 100
    buf.clear()
    for _ in range(3):
        frame = buf.new_frame(1, PC)
        assert frame is not None and buf.add_block(frame, b"R" + bytes(20))  # 27 bytes a frame
    frame = buf.new_frame(1, PC)  # a header still fits (81 + 6 + 6 <= 100), its block does not
    assert frame is not None and not buf.add_block(frame, b"R" + bytes(20))
    assert buf.new_frame(1, PC) is not None  # 87 + 6 + 6 <= 100
    assert buf.new_frame(1, PC) is None  # 93 + 6 + 6 > 100: full
    assert len(buf.frames) == 5 and buf.free == 7
    buf.clear()
    buf.circular = True
    for _ in range(10):
        frame = buf.new_frame(1, PC)
        assert frame is not None and buf.add_block(frame, b"R" + bytes(20))
    assert buf.created == 10 and len(buf.frames) == 2  # the ring wrapped: its top part stays unused
    assert len(buf.raw()) == buf.size - buf.free


@pytest.mark.parametrize("packet", [
    b"QTDP:1:zz:E:0:0", b"QTDP:1:10:Q:0:0", b"QTDP:1:10:E:0", b"QTDP:1:10:E:0:0:X3,00", b"QTDP:1:10:E:0:0:Sfoo",
    b"QTDP:-9:10:R1", b"QTDV:1:2", b"QTBuffer:size:1", b"QTBuffer:other:1", b"qTP:9:10", b"qTBuffer:ff,10",
    b"QTDPsrc:9:10:at:0:1:61", b"QTEnable:9:10", b"qTV:zz", b"QTFrame:pc:zz",
    b"QTDP:-1:zz:R", b"QTro:zz", b"QTro:1", b"QTNotes:user:zz", b"QTFrame:range:1", b"QTFrame:zz", b"qTBuffer:",
    b"QTSave:zz", b"QTSave:2f6e6f2f737563682f6469722f66", b"QTDV:1:2:0:zz", b"QTDisconnected:q", b"QTBuffer:circular:",
    b"QTDP:1:10:E:0:0:X2,2727:Fzz", b"QTDP:1:10:E:0:0:X1,zz",
])
def test_malformed_packets_get_an_error(session, packet):
    assert ask(session, b"QTinit") == b"OK"
    assert ask(session, packet) == b"E01"
    assert session.internal_errors == 0  # refused as malformed, not by the last line of defence


def test_actions_parse_and_trace_opcodes_need_a_tracepoint():
    actions = parse_actions(b"R0fffffffffffffffffffffffffffffffffffffM-1,555555558040,8M6,ffffffffffffffe8,4SR1")
    assert [a[2] for a in actions] == [False, False, False, True]
    with pytest.raises(AgentError):
        Expression.parse(bytes((0x2C, 0, 1, 0x27)))  # getv in a breakpoint condition
    assert Expression.parse(bytes((0x2C, 0, 1, 0x27)), tracing=True)


def test_registers_kept_raw_until_read(session):
    """With a snapshot hook the g layout is built when the frame is read, once."""
    target = session.target
    made = []

    def snapshot(tid: int) -> tuple[int, Any]:
        def later() -> bytes:
            made.append(tid)
            return target.read_registers(tid)
        return G_SIZE, later

    target.tracer.snapshot = snapshot
    define(session, b"QTDP:1:%016x:E:0:0-" % PC, b"QTDP:-1:%016x:R1" % PC)
    ask(session, b"QTStart")
    target.tracer.hit(100, 100, PC)
    assert made == []
    assert ask(session, b"qTP:1:%x" % PC) == b"V1:%x" % (1 + G_SIZE)
    assert ask(session, b"QTFrame:0") == b"F0T1"
    assert ask(session, b"g") == target.read_registers(100).hex().encode()
    assert ask(session, b"g") == target.read_registers(100).hex().encode()
    assert made == [100]
