"""Memory and breakpoints: reads and writes through /proc/PID/mem with our int3s
hidden, software breakpoints, the debug registers (``hw``) and breakpoint conditions.
Answers "is this thread on / just past one of ours"; decides nothing about resuming.
"""

from __future__ import annotations

import os

from ...hints import TYPE_CHECKING
from ..base import CLIENT, Int3Owners, StopEvent
from .debugregs import DebugRegisters
from .registers import RegisterFile
from .threads import Process, Thread

if TYPE_CHECKING:
    from ...agent import BreakpointConditions
    from ...trace.tracer import Tracer
    from ..base import Breakpoints

INT3 = b"\xcc"


class MemoryAndBreakpoints(RegisterFile):
    """Process memory and the breakpoints planted in it."""

    def __init__(self) -> None:
        super().__init__()
        self.hw: DebugRegisters | None = DebugRegisters(self)  # Z1-Z4 in DR0-DR7
        self.int3_owners = Int3Owners()  # the client and the trace may share one int3
        # Made on first use (a plain gdb session needs neither, nor agent.py and the trace model):
        self.made_conditions: BreakpointConditions | None = None  # Z0/Z1 conditions evaluated at the hit
        self.made_tracer: Tracer | None = None  # tracepoints: their int3s (shared with Z0), collected at the hit

    def breakpoint_conditions(self, make: bool = True) -> BreakpointConditions | None:
        """The Z0/Z1 conditions and commands, made by the first Z that has some."""
        store = self.made_conditions
        if store is None and make:
            from ...agent import BreakpointConditions

            store = self.made_conditions = BreakpointConditions()
        return store

    @property
    def conditions(self) -> BreakpointConditions:
        store = self.breakpoint_conditions()
        assert store is not None
        return store

    @property
    def tracer(self) -> Tracer:
        """The trace experiment, made by the first tracepoint packet that needs it."""
        tracer = self.made_tracer
        if tracer is None:
            from ...trace.tracer import Tracer

            tracer = self.made_tracer = Tracer(self, owners=self.int3_owners)
            self._tracer_made(tracer)
        return tracer

    def _tracer_made(self, tracer: Tracer) -> None:
        """Hook for the layers that give the tracer its stepping and register snapshots."""

    def read_memory(self, pid: int, addr: int, length: int) -> bytes:
        proc = self.processes[pid]
        data = proc.memory.read(addr, length)
        if proc.sw_breakpoints and data:
            end = addr + len(data)
            patched = None
            for bp, orig in proc.sw_breakpoints.items():
                if addr <= bp < end:
                    if patched is None:
                        patched = bytearray(data)
                    patched[bp - addr] = orig[0]
            if patched is not None:
                return bytes(patched)
        return data

    def write_memory(self, pid: int, addr: int, data: bytes) -> None:
        proc = self.processes[pid]
        if proc.sw_breakpoints:
            end = addr + len(data)
            hits = [bp for bp in proc.sw_breakpoints if addr <= bp < end]
            if hits:
                buf = bytearray(data)
                for bp in hits:
                    proc.sw_breakpoints[bp] = bytes((buf[bp - addr],))
                    buf[bp - addr] = INT3[0]
                data = bytes(buf)
        proc.memory.write(addr, data)

    def insert_sw_breakpoint(self, pid: int, addr: int, owner: str = CLIENT) -> bool:
        proc = self.processes.get(pid)
        if proc is None:
            return False
        self.int3_owners.own(pid, addr, owner)
        try:
            if addr in proc.sw_breakpoints:
                # Written again: a vfork child sharing our memory may have taken it out.
                proc.memory.write(addr, INT3)
                return True
            orig = proc.memory.read(addr, 1)
            if len(orig) != 1:
                return False
            proc.memory.write(addr, INT3)
        except OSError:
            return False
        proc.sw_breakpoints[addr] = orig
        proc.removed.discard(addr)
        return True

    def remove_sw_breakpoint(self, pid: int, addr: int, owner: str = CLIENT) -> bool:
        """False for one OWNER does not have (gdbserver's E01 for a z0 of a breakpoint not inserted)."""
        proc = self.processes.get(pid)
        if proc is None or addr not in proc.sw_breakpoints or not self.int3_owners.owns(pid, addr, owner):
            return False
        if self.int3_owners.still_owned(pid, addr, owner):
            return True
        orig = proc.sw_breakpoints.pop(addr)
        try:
            proc.memory.write(addr, orig)
        except OSError:
            return False
        proc.removed.add(addr)
        return True

    def _forget_process(self, pid: int) -> None:
        self._forget_breakpoint_owners(pid)
        super()._forget_process(pid)

    def _forget_breakpoint_owners(self, pid: int) -> None:
        """A process gone or exec'd: its conditions and int3 owners go (tracepoints stop planting)."""
        if self.made_conditions is not None:
            self.made_conditions.clear_process(pid)
        if self.made_tracer is not None:
            self.made_tracer.forget_process(pid)
        else:
            self.int3_owners.forget_process(pid)

    def _on_breakpoint(self, t: Thread) -> bool:
        proc = self.processes.get(t.pid)
        if proc is None or not proc.sw_breakpoints:
            return False
        try:
            return self.get_pc(t) in proc.sw_breakpoints
        except OSError:
            return False

    def _after_our_int3(self, t: Thread, proc: Process) -> bool:
        """Whether the PC is just past one of our breakpoints, present or removed (True when unsure)."""
        if not proc.sw_breakpoints and not proc.removed:
            return False
        try:
            pc = self.get_pc(t)
            return pc - 1 in proc.sw_breakpoints or pc - 1 in proc.removed
        except OSError:
            return True

    def _still_valid(self, t: Thread, event: StopEvent) -> bool:
        """A breakpoint hit whose breakpoint is gone by now is dropped (the PC was rewound,
        so the thread simply runs the original instruction), as gdbserver does."""
        if event.reason != "swbreak":
            return True
        proc = self.processes.get(t.pid)
        try:
            return proc is not None and self.get_pc(t) in proc.sw_breakpoints
        except OSError:
            return False

    def breakpoints(self) -> Breakpoints | None:
        return self.hw

    def _clear_hw(self, pid: int) -> None:
        clear = getattr(self.hw, "clear_process", None)
        if clear is not None:
            clear(pid)

    def auxv(self, pid: int) -> bytes:
        with open(f"/proc/{pid}/auxv", "rb") as f:
            return f.read()

    def exec_file(self, pid: int) -> str:
        return os.readlink(f"/proc/{pid}/exe")
