"""lldb's packets (protocol/lldb.py) and the /proc parsers behind them, against an in-memory target.

The fake target stands in for a process only in these unit tests of the protocol core; the
integration tests (integration/test_lldb.py) drive real lldb against real programs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gdbstub.arch.x86_64 import X86_64
from gdbstub.protocol import framing
from gdbstub.protocol.framing import DIRECT
from gdbstub.protocol.hostio import fitted_reply
from gdbstub.protocol.registry import new_session
from gdbstub.protocol.session import PACKET_SIZE, Session
from gdbstub.target.base import StopEvent, StopKind
from gdbstub.target.linux import procfs
from gdbstub.target.linux.registers import expedited_text

MAPS = """\
00400000-00401000 r--p 00000000 08:01 1234   /opt/demo/loop
00401000-00402000 r-xp 00001000 08:01 1234   /opt/demo/loop
7ffff7fc8000-7ffff7fca000 r-xp 00000000 00:00 0          [vdso]
7ffff7fca000-7ffff7fcb000 r--p 00000000 08:01 99   /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0          [stack]
garbage line
"""


class Thread:
    def __init__(self, tid: int) -> None:
        self.tid, self.pid = tid, 100


class Target:
    """Two threads of process 100; memory is 4 KiB at 0x1000; registers are a byte array per thread."""

    def __init__(self) -> None:
        self.pid = 100
        self.processes: dict[int, Any] = {100: object()}
        self.threads = {100: Thread(100), 101: Thread(101)}
        self.regs = {tid: bytearray([tid & 0xFF]) * X86_64.g_size for tid in self.threads}
        self.memory = bytes(range(256)) * 16
        self.killed = False
        self.hw: Any = None
        self.report_fork = self.report_vfork = self.report_exec = False
        self.pending: dict[int, StopEvent] = {}  # events kept for a later resume (all-stop)

    def arch(self, pid: int) -> Any:
        return X86_64

    def alive(self) -> bool:
        return not self.killed

    def pid_of(self, tid: int) -> int | None:
        return 100 if tid in self.threads else None

    def thread_ids(self) -> list[tuple[int, int]]:
        return [(100, tid) for tid in self.threads]

    def thread_name(self, pid: int, tid: int) -> str:
        return "main" if tid == 100 else "worker#1"

    def thread_core(self, pid: int, tid: int) -> int | None:
        return None

    def thread_core_text(self, pid: int, tid: int) -> bytes | None:
        return None

    def expedite_text(self, tid: int) -> bytes:
        return expedited_text(self.expedite(tid))

    def expedite(self, tid: int) -> list[tuple[int, bytes]]:
        return [(6, b"\x01" * 8), (7, b"\x02" * 8), (16, tid.to_bytes(8, "little"))]

    def get_pc(self, t: Thread) -> int:
        return 0x401000 + t.tid

    def read_registers(self, tid: int) -> bytes:
        return bytes(self.regs[tid])

    def read_register(self, tid: int, regnum: int) -> bytes | None:
        reg = X86_64.by_num(regnum)
        return None if reg is None else bytes([tid & 0xFF]) * reg.size

    def write_registers(self, tid: int, data: bytes) -> None:
        self.regs[tid][:] = data

    def read_memory(self, pid: int, addr: int, length: int) -> bytes:
        if not 0x1000 <= addr < 0x2000:
            raise OSError(5, "unreadable")
        return self.memory[addr - 0x1000 : addr - 0x1000 + length]

    def breakpoints(self) -> Any:
        return self.hw

    def pending_event(self, tid: int) -> StopEvent | None:
        return self.pending.get(tid)

    def kill(self, pid: int | None = None) -> None:
        self.killed = True


@pytest.fixture
def session() -> Session:
    return new_session(Target())  # type: ignore[arg-type]


def pairs(reply: bytes) -> dict[str, str]:
    assert reply.endswith(b";"), reply
    return dict(item.split(":", 1) for item in reply.decode()[:-1].split(";"))


# --- /proc parsers ---------------------------------------------------------------


def test_parse_maps_skips_garbage_and_keeps_names():
    maps = procfs.parse_maps(MAPS)
    assert [m.path for m in maps] == [
        "/opt/demo/loop", "/opt/demo/loop", "[vdso]",
        "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "[stack]"]
    assert maps[1].executable and not maps[1].writable and maps[4].writable


@pytest.mark.parametrize(("addr", "start", "end", "mapped"), [
    (0x401234, 0x401000, 0x402000, True),  # inside a mapping
    (0x400000, 0x400000, 0x401000, True),  # its first byte
    (0x402000, 0x402000, 0x7FFFF7FC8000, False),  # the hole after a mapping
    (0x10, 0, 0x400000, False),  # before the first mapping
    (0x7FFFFFFFF000, 0x7FFFFFFFF000, 1 << 64, False),  # after the last
])
def test_region_at(addr, start, end, mapped):
    region = procfs.region_at(procfs.parse_maps(MAPS), addr)
    assert (region.start, region.end, region.mapping is not None) == (start, end, mapped)


def test_parse_status_ids():
    ids = procfs.parse_status(7, "Name:\tx\nPPid:\t3\nUid:\t1\t2\t2\t2\nGid:\t4\t5\t5\t5\n")
    assert (ids.pid, ids.ppid, ids.uid, ids.euid, ids.gid, ids.egid) == (7, 3, 1, 2, 4, 5)


# --- host and process ------------------------------------------------------------------


def test_host_info(session):
    info = pairs(session.handle(b"qHostInfo"))
    assert bytes.fromhex(info["triple"]) == b"x86_64-pc-linux-gnu"
    assert info["ptrsize"] == "8" and info["endian"] == "little"
    assert info["watchpoint_exceptions_received"] == "after"


def test_process_info(session, monkeypatch):
    monkeypatch.setattr(procfs, "read_ids", lambda pid: procfs.ProcessIds(pid, 1, 0, 0, 0, 0))
    info = pairs(session.handle(b"qProcessInfo"))
    assert info["pid"] == "64" and info["parent-pid"] == "1" and info["ptrsize"] == "8"
    assert bytes.fromhex(info["triple"]) == b"x86_64-pc-linux-gnu"


def test_memory_region_info(session, monkeypatch):
    monkeypatch.setattr(procfs, "read_maps", lambda pid: procfs.parse_maps(MAPS))
    region = pairs(session.handle(b"qMemoryRegionInfo:7ffffffdf000"))
    assert region["start"] == "7ffffffde000" and region["size"] == "21000"
    assert region["permissions"] == "rw" and bytes.fromhex(region["name"]) == b"[stack]"
    hole = pairs(session.handle(b"qMemoryRegionInfo:402000"))
    assert hole == {"start": "402000", "size": f"{0x7FFFF7FC8000 - 0x402000:x}"}
    assert session.handle(b"qMemoryRegionInfo:") == b"E01"
    assert session.handle(b"qMemoryRegionInfo:zz") == b"E01"


def test_watchpoint_support_info_only_with_debug_registers(session):
    """Answered by protocol/breakpoints.py; lldb needs it before it sets any watchpoint."""
    assert session.handle(b"qWatchpointSupportInfo:") == b""

    class Hw:
        def supported_types(self) -> frozenset[int]:
            return frozenset({1, 2, 3, 4})

    session.target.hw = Hw()
    assert session.handle(b"qWatchpointSupportInfo:") == b"num:4;"


# --- memory ------------------------------------------------------------------------


def test_binary_read(session):
    session.handle(b"qSupported:xmlRegisters=i386,arm,mips,arc;multiprocess+;fork-events+;vfork-events+")  # lldb 14's
    assert session.handle(b"x0,0") == b"OK"
    assert session.handle(b"x1023,4") == bytes([0x23, 0x24, 0x25, 0x26])
    assert session.handle(b"x9000,4") == b"E01"  # unreadable
    assert session.handle(b"x1000") == b"E01"
    assert session.handle(b"xzz,1") == b"E01"


def test_binary_read_in_gdb_form(session):
    """gdb 16 reads `b` + data once offered binary-upload+; `b` alone is an empty read."""
    assert b"binary-upload+" in session.handle(b"qSupported:multiprocess+;QThreadOptions+;error-message+").split(b";")
    assert session.handle(b"x1000,0") == b"b"
    assert session.handle(b"x1023,4") == b"b" + bytes([0x23, 0x24, 0x25, 0x26])
    assert session.handle(b"x9000,4") == b"E.unreadable"  # the OSError's reason: gdb offered error-message+
    assert session.handle(b"x1ffe,10") == b"b\xfe\xff"  # cut at the end of what is readable
    assert session.handle(b"x1000") == b"E.malformed x packet"


@pytest.mark.parametrize("length", [1, 64, DIRECT - 1, DIRECT, 300])
def test_binary_read_framed_as_fitted(session, length):
    """A short read (gdb 16's stack reads) goes out as plain bytes that encode escapes; on the
    wire it is what the fitted reply of a long one gives: the same escapes and checksum."""
    session.handle(b"qSupported:multiprocess+;QThreadOptions+;error-message+")
    for start in (0x1000, 0x1020, 0x1023):  # '#' '$' '*' '}' (0x23, 0x24, 0x2a, 0x7d) among them
        data = session.target.memory[start - 0x1000:start - 0x1000 + length]
        framed = framing.encode(session.handle(b"x%x,%x" % (start, length)))
        assert framed == framing.encode(fitted_reply(b"b", data, PACKET_SIZE - 1))
        assert framing.unescape(framed[1:framed.index(b"#", len(framed) - 3)]) == b"b" + data


def test_binary_read_fits_packet_size(session, monkeypatch):
    """A reply whose escaped form would overflow PacketSize is cut (a short read), never sent too long."""
    from gdbstub.protocol import framing, hostio, packets

    monkeypatch.setattr(packets, "PACKET_SIZE", 64)
    session.handle(b"qSupported:error-message+")
    reply = session.handle(b"x1023,100")  # 0x23 '#', 0x24 '$' and later '*' and '}' cost two bytes each
    assert reply[:1] == b"b" and 1 + hostio.escaped_length(reply[1:]) <= 64
    assert reply[1:] == session.target.memory[0x23 : 0x23 + len(reply) - 1]
    assert len(framing.encode(reply)) <= 64 + 4 and framing.encode(reply) == framing.encode(bytes(reply))


# --- threads -------------------------------------------------------------------------


def test_thread_suffix_selects_the_thread_for_g_p_and_G(session):
    assert session.handle(b"QThreadSuffixSupported") == b"OK"
    assert session.lldb.thread_suffix
    assert session.handle(b"g;thread:65;") == (b"65" * X86_64.g_size)
    assert session.handle(b"g;thread:64;") == (b"64" * X86_64.g_size)
    assert session.handle(b"G" + b"07" * X86_64.g_size + b";thread:65;") == b"OK"
    assert session.target.regs[101] == bytearray([7]) * X86_64.g_size
    assert session.target.regs[100] == bytearray([100]) * X86_64.g_size


def test_threads_in_stop_reply(session):
    event = StopEvent(StopKind.SIGNAL, 100, 101, signal=5, reason="swbreak")
    assert b"threads:" not in session.stop_reply(event)
    assert session.handle(b"QListThreadsInStopReply") == b"OK"
    reply = session.stop_reply(event)
    assert b";threads:64,65;jstopinfo:" in reply
    assert b";thread-pcs:0000000000401064,0000000000401065;" in reply
    assert b"hexname:%s;" % b"worker#1".hex().encode() in reply
    assert b"reason:breakpoint;" in reply
    # the rest of the user area travels too (rax is 0, eflags 0x11, orig_rax 0x39), once each
    assert b";00:%s;" % (b"65" * 8) in reply and b";11:%s;" % (b"65" * 4) in reply
    assert b";39:%s;" % (b"65" * 8) in reply
    assert reply.count(b";10:") == 1


def test_jthreadsinfo(session):
    session.on_stop(StopEvent(StopKind.SIGNAL, 100, 101, signal=5, reason="swbreak"))
    threads = json.loads(session.handle(b"jThreadsInfo"))
    assert [t["tid"] for t in threads] == [100, 101]
    event = threads[1]
    assert event["reason"] == "breakpoint" and event["signal"] == 5 and event["name"] == "worker#1"
    assert event["registers"]["16"] == (101).to_bytes(8, "little").hex()
    assert "signal" not in threads[0] and "reason" not in threads[0]  # as lldb-server: no stop


def _jstopinfo(reply: bytes) -> list[dict[str, Any]]:
    found = pairs(reply)["jstopinfo"]
    return json.loads(bytes.fromhex(found))  # type: ignore[no-any-return]


def test_simultaneous_breakpoint_hits_reach_lldb_at_once(session):
    """Thread 100 reports a hit while 101 keeps one pending: lldb sees both in this stop."""
    session.handle(b"QListThreadsInStopReply")
    session.target.pending[101] = StopEvent(StopKind.SIGNAL, 100, 101, signal=5, reason="swbreak")
    reply = session.on_stop(StopEvent(StopKind.SIGNAL, 100, 100, signal=5, reason="swbreak"))
    assert reply is not None and reply.startswith(b"T05")
    assert _jstopinfo(reply) == [
        {"tid": 100, "name": "main", "signal": 5, "reason": "breakpoint"},
        {"tid": 101, "name": "worker#1", "signal": 5, "reason": "breakpoint"},
    ]
    threads = json.loads(session.handle(b"jThreadsInfo"))
    assert [(t["tid"], t.get("reason"), t.get("signal")) for t in threads] == [
        (100, "breakpoint", 5), (101, "breakpoint", 5)]
    other = session.handle(b"qThreadStopInfo65")
    assert other.startswith(b"T05") and b"thread:65;" in other and b"reason:breakpoint;" in other


def test_other_pending_events_wait_their_turn(session):
    """A pending signal is reported on a later resume, as for gdb: shown now, it would come twice."""
    session.handle(b"QListThreadsInStopReply")
    session.target.pending[101] = StopEvent(StopKind.SIGNAL, 100, 101, signal=10)
    reply = session.on_stop(StopEvent(StopKind.SIGNAL, 100, 100, signal=5, reason="swbreak"))
    assert reply is not None
    assert _jstopinfo(reply)[1] == {"tid": 101, "name": "worker#1"}
    assert session.handle(b"qThreadStopInfo65").startswith(b"T00")


def test_thread_stop_info_errors(session):
    assert session.handle(b"qThreadStopInfo") == b"E01"
    assert session.handle(b"qThreadStopInfozz") == b"E01"
    assert session.handle(b"qThreadStopInfo999") == b"E01"  # no such thread
    assert session.internal_errors == 0


def test_jthreadsinfo_watchpoint_description(session):
    session.on_stop(StopEvent(StopKind.SIGNAL, 100, 100, signal=5, reason="watch", address=0x4010))
    event = json.loads(session.handle(b"jThreadsInfo"))[0]
    assert event["reason"] == "watchpoint"
    assert event["description"].split()[0] == str(0x4010)


def test_save_and_restore_register_state(session):
    session.handle(b"QThreadSuffixSupported")
    save_id = session.handle(b"QSaveRegisterState;thread:65;")
    assert save_id == b"1"
    session.handle(b"G" + b"00" * X86_64.g_size + b";thread:65;")
    assert session.handle(b"QRestoreRegisterState:1;thread:65;") == b"OK"
    assert session.target.regs[101] == bytearray([101]) * X86_64.g_size
    assert session.handle(b"QRestoreRegisterState:1;thread:65;") == b"E01"  # used up


# --- kill ------------------------------------------------------------------------------


def test_kill_replies_to_lldb(session):
    session.handle(b"QThreadSuffixSupported")
    assert session.handle(b"k") == b"X09"
    assert session.target.killed and session.status.finished


# --- target description -----------------------------------------------------------------


def _xml_regs(session: Session) -> dict[str, dict[str, str]]:
    import xml.etree.ElementTree as ET

    reply = session.handle(b"qXfer:features:read:target.xml:0,ffff")
    assert reply is not None and reply[:1] == b"l", reply[:40]
    return {r.get("name", ""): dict(r.attrib) for r in ET.fromstring(reply[1:]).iter("reg")}


def test_target_xml_for_lldb_has_register_sets_and_gdbs_is_unchanged(session):
    assert session.handle(b"qXfer:features:read:target.xml:0,ffff") == b"l" + X86_64.features_xml.encode()
    session.handle(b"QThreadSuffixSupported")  # lldb says this before it reads target.xml
    regs = _xml_regs(session)
    assert list(regs)[:18] == [r.name for r in X86_64.regs[:17]] + ["rflags"]
    assert [int(r["regnum"]) for r in regs.values()] == [r.regnum for r in X86_64.regs]
    assert [int(r["bitsize"]) for r in regs.values()] == [r.bitsize for r in X86_64.regs]
    assert regs["rflags"]["group"] == regs["rax"]["group"] == "General Purpose Registers"
    assert regs["st0"]["group"] == regs["fctrl"]["group"] == regs["xmm3"]["group"] == "Floating Point Registers"
    assert (regs["rip"]["generic"], regs["rsp"]["generic"], regs["rdi"]["generic"]) == ("pc", "sp", "arg1")
    assert regs["xmm0"]["encoding"] == "vector" and regs["rax"]["encoding"] == "uint"


def test_register_info_says_what_target_xml_says(session):
    """qRegisterInfoN (an lldb without XML support) describes register N as lldb's target.xml
    does, with its offset in the g packet; E45 past the last, as lldb-server answers."""
    session.handle(b"QThreadSuffixSupported")
    regs = _xml_regs(session)
    offset = 0
    for n, (name, attrs) in enumerate(regs.items()):
        reply = session.handle(b"qRegisterInfo%x" % n)
        assert reply is not None
        info = dict(item.split(":", 1) for item in reply.decode().rstrip(";").split(";"))
        assert info.pop("name") == name and info.pop("set") == attrs.pop("group")
        assert int(info.pop("offset")) == offset
        offset += int(attrs["bitsize"]) // 8
        del attrs["name"], attrs["regnum"]
        assert info == attrs, name
    assert offset == X86_64.g_size
    assert session.handle(b"qRegisterInfo%x" % len(regs)) == b"E45"
    assert session.handle(b"qRegisterInfo") == session.handle(b"qRegisterInfoz") == b"E01"


# --- memory for expressions ------------------------------------------------------------


def test_allocate_and_deallocate_memory(session, monkeypatch):
    from gdbstub.target.linux import inferior_syscall

    calls: list[tuple[object, ...]] = []

    def allocate(target: Any, tid: int, size: int, perms: str) -> int:
        if set(perms) - set("rwx"):
            raise ValueError(perms)
        calls.append(("mmap", tid, size, perms))
        return 0x7FFFF7FB0000

    monkeypatch.setattr(inferior_syscall, "allocate", allocate)
    monkeypatch.setattr(inferior_syscall, "deallocate", lambda t, tid, a, n: calls.append(("munmap", a, n)))
    assert session.handle(b"_M1000,rwx") == b"7ffff7fb0000"
    assert calls == [("mmap", 100, 0x1000, "rwx")]
    assert session.handle(b"_m7ffff7fb0000") == b"OK"
    assert calls[-1] == ("munmap", 0x7FFFF7FB0000, 0x1000)
    assert session.handle(b"_m7ffff7fb0000") == b"E01"  # already freed
    for bad in (b"_M1000", b"_Mzz,rw", b"_M1000,rwq", b"_m", b"_mzz", b"_M1000,\xff"):
        assert session.handle(bad) == b"E01", bad
    session.status.running = True
    assert session.handle(b"_M1000,rw") == b"E01"  # only a stopped thread can make the call
    assert session.internal_errors == 0


def test_pc_write_in_a_system_call_cancels_its_restart(session):
    """P of the PC: orig_rax becomes -1 (else the kernel moves the new PC back over a syscall
    instruction); a later write of orig_rax still wins."""
    writes: list[tuple[int, bytes]] = []
    target = session.target
    target.write_register = lambda tid, regnum, data: writes.append((regnum, data)) or True
    assert session.handle(b"P10=0010400000000000") == b"OK"
    assert writes == [(16, bytes.fromhex("0010400000000000")), (57, b"\xff" * 8)]
    writes.clear()
    assert session.handle(b"P0=0100000000000000") == b"OK"  # not the PC: nothing else
    assert writes == [(0, bytes.fromhex("0100000000000000"))]
