"""Z/z packets (protocol/breakpoints.py) against an in-memory target: software and hardware types,
condition lists stored per location, malformed agent expressions refused with nothing inserted,
and the qSupported features derived from what the target has."""

from __future__ import annotations

from typing import Any

import pytest

from gdbstub.agent import BreakpointConditions
from gdbstub.arch.x86_64 import X86_64
from gdbstub.protocol.registry import new_session
from gdbstub.protocol.session import Session
from gdbstub.target.linux.debugregs import DebugRegisters


class Thread:
    def __init__(self, tid: int, pid: int) -> None:
        self.tid, self.pid = tid, pid


class Target:
    """Just what Z/z, qSupported and '?' touch."""

    def __init__(self, hardware: bool = True, conditions: bool = True) -> None:
        self.pid = 100
        self.processes: dict[int, Any] = {100: object()}
        self.threads = {100: Thread(100, 100)}
        self.sw: set[int] = set()
        self.hw = DebugRegisters(self) if hardware else None
        if conditions:
            self.conditions = BreakpointConditions()
        self.pass_signals: frozenset[int] = frozenset()
        self.report_fork = self.report_vfork = self.report_exec = False

    def arch(self, pid: int) -> Any:
        return X86_64

    def pid_of(self, tid: int) -> int | None:
        return 100 if tid in self.threads else None

    def read_memory(self, pid: int, addr: int, length: int) -> bytes:
        return bytes(length)

    def insert_sw_breakpoint(self, pid: int, addr: int) -> bool:
        if addr == 0xBAD:
            return False
        self.sw.add(addr)
        return True

    def remove_sw_breakpoint(self, pid: int, addr: int) -> bool:
        self.sw.discard(addr)
        return True

    def breakpoints(self) -> DebugRegisters | None:
        return self.hw

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def make(**kwargs: bool) -> tuple[Session, Target]:
    target = Target(**kwargs)
    s = new_session(target)  # type: ignore[arg-type]
    return s, target


def features(s: Session) -> set[str]:
    return set((s.handle(b"qSupported:multiprocess+;swbreak+;hwbreak+") or b"").decode().split(";"))


COND_TRUE = b"X3,220127"  # const8 1; end


def test_features_follow_the_target() -> None:
    s, _ = make()
    assert {"hwbreak+", "ConditionalBreakpoints+", "BreakpointCommands+"} <= features(s)
    s, _ = make(hardware=False, conditions=False)
    assert not {"hwbreak+", "ConditionalBreakpoints+", "BreakpointCommands+"} & features(s)


def test_software_breakpoint_with_conditions() -> None:
    s, t = make()
    assert s.handle(b"Z0,1000,1;" + COND_TRUE) == b"OK"
    assert 0x1000 in t.sw
    assert len(t.conditions.table[(100, 0, 0x1000)].conditions) == 1
    assert s.handle(b"Z0,1000,1") == b"OK"  # re-sent without a condition: the condition goes
    assert (100, 0, 0x1000) not in t.conditions.table
    assert s.handle(b"Z0,1000,1;" + COND_TRUE + b";cmds:1," + COND_TRUE) == b"OK"
    assert s.handle(b"z0,1000,1") == b"OK"
    assert 0x1000 not in t.sw and not t.conditions.table


@pytest.mark.parametrize("extra", [b"X2,ff27", b"X3,2201", b"Xz,27", b"junk", b"cmds:1,", b"X3,2201;X1,27zz"])
def test_malformed_condition_inserts_nothing(extra: bytes) -> None:
    s, t = make()
    assert s.handle(b"Z0,1000,1;" + extra).startswith(b"E")
    assert not t.sw and not t.conditions.table
    assert s.handle(b"Z1,1000,1;" + extra).startswith(b"E")
    assert t.hw is not None
    assert 100 not in t.hw.procs or t.hw.procs[100].wanted.dr7 == 0


def test_conditions_refused_where_they_mean_nothing() -> None:
    s, _ = make()
    assert s.handle(b"Z2,1000,4;" + COND_TRUE).startswith(b"E")
    s, _ = make(conditions=False)
    assert s.handle(b"Z0,1000,1;" + COND_TRUE).startswith(b"E")
    assert s.handle(b"Z0,1000,1") == b"OK"


def test_hardware_types() -> None:
    s, t = make()
    assert s.handle(b"Z1,1000,1;" + COND_TRUE) == b"OK"
    assert (100, 1, 0x1000) in t.conditions.table
    for z in (b"2", b"3", b"4"):
        assert s.handle(b"Z" + z + b",2000,4") == b"OK"  # Z3 and Z4 share one access slot
    assert s.handle(b"Z4,2008,4") == b"OK"
    assert s.handle(b"Z2,3000,4") == b"E01"  # four slots: Z1 + three watch regions
    assert s.handle(b"z1,1000,1") == b"OK"
    assert not t.conditions.table
    assert s.handle(b"Z2,3000,4") == b"OK"
    assert s.handle(b"qWatchpointSupportInfo:") == b"num:4;"


def test_no_hardware_means_empty_replies() -> None:
    s, _ = make(hardware=False)
    assert s.handle(b"Z1,1000,1") == b""
    assert s.handle(b"Z2,1000,4") == b""
    assert s.handle(b"qWatchpointSupportInfo:") == b""


@pytest.mark.parametrize("packet", [b"Z0", b"Z0,", b"Z9,1000,1", b"Z2,zz,4", b"Z0,1000", b"z2,1000,0", b"Z2,1000,40"])
def test_bad_packets(packet: bytes) -> None:
    s, _ = make()
    reply = s.handle(packet)
    assert reply is not None and (reply == b"" or reply.startswith(b"E"))


def test_failed_insert_keeps_no_condition() -> None:
    s, t = make()
    assert s.handle(b"Z0,bad,1;" + COND_TRUE) == b"E01"
    assert not t.conditions.table
