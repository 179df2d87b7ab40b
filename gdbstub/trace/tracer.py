"""The trace run: tracepoints planted as int3s of the stub's own, collection at a hit, the
run's status, and the frame the client looks at.

The target calls ``hit`` from its breakpoint handling when a thread stops at one of the
addresses in ``sites``; the thread then goes on unseen unless the client has a breakpoint
of its own there (the int3 is shared: ``owners`` counts the client and the trace). Fast
tracepoints take the same path: there is no in-process agent, so they are as fast as
regular ones, not faster.
"""

from __future__ import annotations

from collections.abc import Callable

from ..agent import AgentError
from ..hints import Protocol
from ..logs import get_logger
from ..target.base import CLIENT, TRACE, Int3Owners
from .model import (
    MAX_BLOCK,
    Action,
    CollectMemory,
    CollectRegisters,
    Evaluate,
    Frame,
    StateVariable,
    TraceBuffer,
    Tracepoint,
    memory_block,
    register_block,
    timestamp,
    timestamp_variable,
    variable_block,
)

log = get_logger("gdbstub.trace")

__all__ = ["CLIENT", "TRACE", "Tracer"]

MAX_STRING = 0xFFFF  # tracenz reads at most this much


class TraceTarget(Protocol):
    """What the tracer needs from the target."""

    def read_registers(self, tid: int) -> bytes: ...
    def read_register(self, tid: int, regnum: int) -> bytes | None: ...
    def read_memory(self, pid: int, addr: int, length: int) -> bytes: ...
    def insert_sw_breakpoint(self, pid: int, addr: int, owner: str = CLIENT) -> bool: ...
    def remove_sw_breakpoint(self, pid: int, addr: int, owner: str = CLIENT) -> bool: ...


class _Stop(Exception):
    """Collection cannot go on: the run stops (reason set by the raiser)."""


class Tracer(Int3Owners):
    """Every tracepoint, state variable and frame of the (one) trace experiment; the int3
    owners are shared with OWNERS, the target's, kept before the tracer was made."""

    def __init__(self, target: TraceTarget, stepper: Callable[[int], int | None] | None = None,
                 snapshot: Callable[[int], tuple[int, Callable[[], bytes]]] | None = None,
                 owners: Int3Owners | None = None) -> None:
        super().__init__(None if owners is None else owners.owners)
        self.target = target
        self.stepper = stepper  # one silent single-step of a thread: its new PC (None: stop stepping)
        self.snapshot = snapshot  # a thread's registers now: (g size, their g bytes when asked)
        self.tracepoints: list[Tracepoint] = []
        self.variables: dict[int, StateVariable] = {1: timestamp_variable()}
        self.readonly: list[tuple[int, int]] = []
        self.buffer = TraceBuffer()
        self.running = False
        self.stop_reason = b"tnotrun"
        self.stop_tpnum = 0
        self.stop_note = b""
        self.error = b""
        self.start_time = 0
        self.stop_time = 0
        self.user = b""
        self.notes = b""
        self.disconnected = False
        self.pid = 0
        self.sites: dict[int, list[Tracepoint]] = {}  # address -> enabled tracepoints planted there
        self.current: int = -1  # the selected frame (QTFrame), -1: the live program
        self._lift_pending = False
        self._last: Tracepoint | None = None  # the tracepoint QTDP continuations add to

    def forget_process(self, pid: int) -> None:
        super().forget_process(pid)
        if pid == self.pid and self.running:
            self.sites.clear()

    # --- definitions ---------------------------------------------------------------------------

    def init(self) -> None:
        """QTinit: a new experiment (state variables with getters stay, as in gdbserver)."""
        self.stop(b"tstop")
        self.current = -1
        self.lift()
        self.tracepoints.clear()
        self.readonly.clear()
        self.variables = {n: v for n, v in self.variables.items() if v.builtin}
        self._last = None

    def define(self, tp: Tracepoint) -> None:
        old = self.find(tp.number, tp.address)
        if old is not None:
            self.tracepoints.remove(old)  # gdb re-sends a definition it changed
            self._unplant(old)
        self.tracepoints.append(tp)
        self._last = tp
        if self.running and tp.enabled:
            self._plant(tp)  # InstallInTrace

    def find(self, number: int, address: int) -> Tracepoint | None:
        for tp in self.tracepoints:
            if tp.number == number and tp.address == address:
                return tp
        return None

    def continuation(self, number: int, address: int) -> Tracepoint:
        tp = self.find(number, address)
        if tp is None:
            raise KeyError(f"tracepoint {number}")
        return tp

    def set_enabled(self, number: int, address: int, enabled: bool) -> None:
        tp = self.continuation(number, address)
        if tp.enabled == enabled:
            return
        tp.enabled = enabled
        if self.running:
            if enabled:
                self._plant(tp)
            else:
                self._unplant(tp)

    def define_variable(self, var: StateVariable) -> None:
        old = self.variables.get(var.number)
        if old is not None and old.builtin:
            old.initial = var.initial  # gdb re-sends $trace_timestamp: keep its getter
            return
        self.variables = {var.number: var, **self.variables}  # newest first, as gdbserver lists them

    # --- running ---------------------------------------------------------------------------------

    def start(self, pid: int) -> None:
        """QTStart: an empty buffer, counts and variables back to their start, the int3s in."""
        self.lift()
        self.pid = pid
        self.buffer.clear()
        self.current = -1
        for tp in self.tracepoints:
            tp.hits = 0
            tp.usage = 0
        for var in self.variables.values():
            var.value = var.initial
        self.error = b""
        self.stop_reason, self.stop_tpnum, self.stop_note = b"tnotrun", 0, b""
        self.start_time = timestamp()
        self.stop_time = 0
        self.running = True
        for tp in self.tracepoints:
            if tp.enabled:
                self._plant(tp)

    def stop(self, reason: bytes, tpnum: int = 0, *, in_hit: bool = False) -> None:
        """End the run; a stop from inside a hit leaves the int3s for the next packet to lift
        (the thread is still stepping over the one it hit)."""
        if not self.running:
            return
        self.running = False
        self.stop_reason, self.stop_tpnum = reason, tpnum
        self.stop_time = timestamp()
        self._lift_pending = True
        if not in_hit:
            self.lift()

    def lift(self, keep: int | None = None) -> None:
        """Take out the int3s of a finished run (all but ``keep``, the one a thread is on)."""
        if not self._lift_pending and not self.sites:
            return
        for addr in list(self.sites):
            if addr == keep:
                continue
            self.sites.pop(addr)
            try:
                self.target.remove_sw_breakpoint(self.pid, addr, TRACE)
            except OSError:
                pass
        self._lift_pending = keep is not None and keep in self.sites

    def _plant(self, tp: Tracepoint) -> None:
        site = self.sites.get(tp.address)
        if site is None:
            if not self.target.insert_sw_breakpoint(self.pid, tp.address, TRACE):
                log.debug("tracepoint %d: cannot insert at 0x%x", tp.number, tp.address)
                return
            site = self.sites[tp.address] = []
        if tp not in site:
            site.append(tp)

    def _unplant(self, tp: Tracepoint) -> None:
        site = self.sites.get(tp.address)
        if site is None or tp not in site:
            return
        site.remove(tp)
        if not site:
            del self.sites[tp.address]
            try:
                self.target.remove_sw_breakpoint(self.pid, tp.address, TRACE)
            except OSError:
                pass

    # --- a hit -----------------------------------------------------------------------------------

    def hit(self, pid: int, tid: int, pc: int, may_step: bool = True) -> bool:
        """A thread stopped at pc on an int3: collect for each tracepoint there. Returns whether
        the client should hear of the stop (it has a breakpoint of its own at pc). ``may_step``
        False: the stop is reported anyway, so no while-stepping moves the thread."""
        wanted = CLIENT in self.owners.get((pid, pc), (CLIENT,))
        if self._lift_pending:
            self.lift(keep=pc)
        site = self.sites.get(pc)
        if not self.running or site is None or pid != self.pid:
            return wanted
        collected = []
        try:
            for tp in list(site):
                if self._collect(tp, tp.actions, tp.address, pid, tid, hit=True):
                    collected.append(tp)
            stepping = [tp for tp in collected if tp.step_count and tp.step_actions]
            if stepping and self.stepper is not None and may_step and not wanted:  # not away from a reported stop
                self._while_stepping(stepping, pid, tid)
            for tp in collected:  # passcounts count once the stepping is done, as in gdbserver
                if tp.pass_count and tp.hits >= tp.pass_count:
                    self.stop(b"tpasscount", tp.number, in_hit=True)
                    break
        except _Stop:
            pass  # the run ended at this hit
        return wanted

    def _while_stepping(self, tps: list[Tracepoint], pid: int, tid: int) -> None:
        """Step the thread as far as the longest while-stepping count, a frame per step and tracepoint."""
        assert self.stepper is not None
        for step in range(1, max(tp.step_count for tp in tps) + 1):
            pc = self.stepper(tid)
            if pc is None:
                return
            for tp in tps:
                if step <= tp.step_count:
                    self._collect(tp, tp.step_actions, tp.address, pid, tid, hit=False)

    def _collect(self, tp: Tracepoint, actions: list[Action], address: int, pid: int, tid: int,
                 hit: bool) -> bool:
        """A frame of ``actions`` for tp (at its hit, after its condition; or at a step)."""
        sink = _Sink(self, pid, None)
        if hit and tp.cond is not None:
            try:
                if not tp.cond.run(self.target, pid, tid, sink=sink):
                    return False
            except (AgentError, OSError) as exc:
                self._fail(tp, f"condition: {exc}")
        if hit:
            tp.hits += 1
        frame = self.buffer.new_frame(tp.number, address)
        if frame is None:
            self.stop(b"tfull", 0, in_hit=True)
            raise _Stop
        sink.frame = frame
        sink.tp = tp
        for action in actions:
            if isinstance(action, CollectRegisters):
                sink.registers(tid)
            elif isinstance(action, CollectMemory):
                base = 0
                if action.basereg >= 0:
                    raw = self.target.read_register(tid, action.basereg)
                    base = int.from_bytes(raw[:8], "little") if raw else 0
                sink.record_memory((base + action.offset) & ((1 << 64) - 1), action.length)
            elif isinstance(action, Evaluate):
                try:
                    action.expr.run(self.target, pid, tid, sink=sink)
                except (AgentError, OSError) as exc:
                    self._fail(tp, f"action expression: {exc}")
        return True

    def _fail(self, tp: Tracepoint, message: str) -> None:
        log.debug("tracepoint %d: %s", tp.number, message)
        self.error = message.encode("utf-8", "replace")
        self.stop(b"terror", tp.number, in_hit=True)
        raise _Stop

    # --- looking at frames -------------------------------------------------------------------------

    def frame(self) -> Frame | None:
        if 0 <= self.current < len(self.buffer.frames):
            return self.buffer.frames[self.current]
        return None

    def select(self, number: int) -> Frame | None:
        if 0 <= number < len(self.buffer.frames):
            self.current = number
            return self.buffer.frames[number]
        return None

    def find_next(self, test: object) -> int:
        """The first frame after the selected one that passes ``test`` (a callable on frames), or -1."""
        frames = self.buffer.frames
        for number in range(self.current + 1, len(frames)):
            if test(frames[number]):  # type: ignore[operator]
                return number
        return -1

    def in_readonly(self, addr: int, length: int) -> bool:
        return any(lo <= addr and addr + length <= hi for lo, hi in self.readonly)

    def status(self) -> bytes:
        """qTStatus, field for field as gdbserver 13 sends it."""
        reason = self.stop_reason
        if reason == b"tstop":
            reason = b"tstop:" + self.stop_note.hex().encode()
        elif reason == b"terror":
            reason = b"terror:" + self.error.hex().encode()
        b = self.buffer
        return (b"T%d;%s:%x;tframes:%x;tcreated:%x;tfree:%x;tsize:%x;circular:%d;disconn:%d;"
                b"starttime:%x;stoptime:%x;username:%s;notes:%s:") % (
            int(self.running), reason, self.stop_tpnum, len(b.frames), b.created, b.free, b.size,
            int(b.circular), int(self.disconnected), self.start_time, self.stop_time,
            self.user.hex().encode(), self.notes.hex().encode())


class _Sink:
    """The trace opcodes' view of the frame being built and of the state variables."""

    def __init__(self, tracer: Tracer, pid: int, frame: Frame | None) -> None:
        self.tracer = tracer
        self.pid = pid
        self.frame = frame
        self.tp: Tracepoint | None = None

    def block(self, block: bytes) -> None:
        frame = self.frame
        if frame is None:
            raise AgentError("no frame to record into")
        if not self.tracer.buffer.add_block(frame, block):
            return  # no room: the frame goes without it, as in gdbserver
        if self.tp is not None:
            self.tp.usage += len(block)
        kind = block[:1]
        if kind == b"R":
            frame.add_registers(len(block) - 1, lambda: block[1:])
        elif kind == b"M":
            addr = int.from_bytes(block[1:9], "little")
            frame.memory.append((addr, block[11:]))
        elif kind == b"V":
            frame.variables[int.from_bytes(block[1:5], "little", signed=True)] = \
                int.from_bytes(block[5:13], "little", signed=True)

    def registers(self, tid: int) -> None:
        """An R block: the registers kept raw, in g layout only when the frame is read."""
        if self.tracer.snapshot is None:
            self.block(register_block(self.tracer.target.read_registers(tid)))
            return
        size, later = self.tracer.snapshot(tid)
        frame = self.frame
        if frame is None or not self.tracer.buffer.add_block(frame, b"R" + bytes(size)):
            return
        if self.tp is not None:
            self.tp.usage += 1 + size
        frame.add_registers(size, later)

    def record_memory(self, addr: int, length: int, until_nul: bool = False) -> None:
        """Blocks of at most 64 KiB; what cannot be read is left out (gdbserver goes on too)."""
        if until_nul:
            length = min(length, MAX_STRING)
        while length > 0:
            size = min(length, MAX_BLOCK)
            try:
                data = self.tracer.target.read_memory(self.pid, addr, size)
            except OSError:
                return
            if until_nul:
                nul = data.find(b"\0")
                if nul >= 0:
                    data = data[:nul + 1]
                    length = len(data)
            if not data:
                return
            self.block(memory_block(addr, data))
            if len(data) < size and not until_nul:
                return
            addr += len(data)
            length -= len(data)

    def record_variable(self, number: int) -> None:
        self.block(variable_block(number, self.get_variable(number)))

    def get_variable(self, number: int) -> int:
        var = self.tracer.variables.get(number)
        if var is None:
            raise AgentError(f"no trace state variable {number}")
        return var.current() or 0

    def set_variable(self, number: int, value: int) -> None:
        var = self.tracer.variables.get(number)
        if var is None:
            raise AgentError(f"no trace state variable {number}")
        if value >= 1 << 63:
            value -= 1 << 64
        var.value = value
