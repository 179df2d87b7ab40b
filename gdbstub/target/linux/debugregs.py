"""x86 debug registers (DR0-DR3, DR6, DR7) behind Z1-Z4: hardware breakpoints and watchpoints.

The kernel keeps debug registers per thread (``u_debugreg`` through PTRACE_POKEUSER), and a new
thread or an exec starts with none. So the wanted slots are kept per process and written into a
thread only right before it runs (``sync``): the z2/Z2 pair gdb sends at every stop then costs no
system call, and threads created later get the same registers as the others.
"""

from __future__ import annotations

from ...arch.regs import Arch
from ...hints import TYPE_CHECKING, NamedTuple, Protocol
from ...logs import get_logger
from . import ptrace

log = get_logger("gdbstub.target")

Z_HW_BREAK = 1
Z_WRITE = 2
Z_READ = 3
Z_ACCESS = 4
SLOTS = 4
DR_STATUS = 6
DR_CONTROL = 7
DR6_TRAPS = 0xF
# DR7 R/W field: x86 has no read-only watch, so a read watch takes an access slot.
RW_EXEC = 0
RW_WRITE = 1
RW_ACCESS = 3
RW_OF_TYPE = {Z_HW_BREAK: RW_EXEC, Z_WRITE: RW_WRITE, Z_READ: RW_ACCESS, Z_ACCESS: RW_ACCESS}
LEN_BITS = {1: 0, 2: 1, 8: 2, 4: 3}  # DR7 LEN field per length in bytes
MAX_REGION = SLOTS * 8
USER_LIMIT_64 = 0x7FFFFFFFF000  # TASK_SIZE_MAX: the kernel refuses addresses above
USER_LIMIT_32 = 1 << 32
SILENT = "silent"  # a debug trap the client does not want: resume without reporting


if TYPE_CHECKING:  # interfaces for the type checker: no class to build at run time
    class Tracee(Protocol):
        """What the debug registers need from the target: memory (read watches) and word size."""

        def read_memory(self, pid: int, addr: int, length: int) -> bytes: ...
        def arch(self, pid: int) -> Arch: ...


class Slot:
    """One debug register's watch: its range and kind, and the Z requests sharing it."""

    __slots__ = ("addr", "length", "rw", "users", "value")

    def __init__(self, addr: int, length: int, rw: int) -> None:
        self.addr = addr
        self.length = length
        self.rw = rw
        self.users: dict[int, int] = {}  # Z type -> insert count (a dict: collections is not loaded)
        self.value = b""  # memory seen last, to tell a write from a read at a read-watch hit

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.addr, self.length, self.rw)


class Registers(NamedTuple):
    """The DR0-DR3 and DR7 values of a thread."""

    addrs: tuple[int, int, int, int] = (0, 0, 0, 0)
    dr7: int = 0


NONE = Registers()


class ProcessSlots:
    """A process's four slots, the watches they held before, and the registers they add up to.
    Plain classes here, not dataclasses: nothing generated at start-up."""

    __slots__ = ("previous", "slots", "wanted")

    def __init__(self) -> None:
        self.slots: list[Slot | None] = [None] * SLOTS
        self.previous: list[tuple[int, int, int] | None] = [None] * SLOTS
        self.wanted = NONE

    def update(self) -> None:
        addrs = [0] * SLOTS
        dr7 = 0
        for i, slot in enumerate(self.slots):
            if slot is None:
                before = self.previous[i]
                addrs[i] = before[0] if before is not None else 0
                continue
            addrs[i] = slot.addr
            dr7 |= 1 << (2 * i)  # local enable
            dr7 |= (slot.rw | LEN_BITS[slot.length] << 2) << (16 + 4 * i)
        self.wanted = Registers((addrs[0], addrs[1], addrs[2], addrs[3]), dr7)


def split_region(addr: int, length: int) -> list[tuple[int, int]]:
    """Cover [addr, addr+length) with aligned 1/2/4/8-byte pieces, largest first (x86 alignment rule)."""
    pieces = []
    while length > 0:
        size = 8
        while size > 1 and (addr % size or size > length):
            size //= 2
        pieces.append((addr, size))
        addr += size
        length -= size
    return pieces


def _offset(n: int) -> int:
    return ptrace.USER_DEBUGREG_OFFSET + 8 * n


class DebugRegisters:
    """Z1 (hardware breakpoint), Z2/Z3/Z4 (write, read, access watchpoints) in DR0-DR3."""

    def __init__(self, tracee: Tracee) -> None:
        self.tracee = tracee
        self.procs: dict[int, ProcessSlots] = {}
        self.applied: dict[int, tuple[int, Registers]] = {}  # tid -> (pid, registers in the thread)

    # --- the Breakpoints capability ---------------------------------------------------

    def supported_types(self) -> frozenset[int]:
        return frozenset((Z_HW_BREAK, Z_WRITE, Z_READ, Z_ACCESS))

    def _pieces(self, pid: int, type_: int, addr: int, kind: int) -> list[tuple[int, int]] | None:
        if type_ == Z_HW_BREAK:
            pieces = [(addr, 1)]  # an instruction breakpoint is always LEN 1
        elif 0 < kind <= MAX_REGION:
            pieces = split_region(addr, kind)
        else:
            return None
        limit = USER_LIMIT_32 if self.tracee.arch(pid).word == 4 else USER_LIMIT_64
        if addr < 0 or addr + max(kind, 1) > limit or len(pieces) > SLOTS:
            return None
        return pieces

    def insert_breakpoint(self, pid: int, type_: int, addr: int, kind: int) -> bool:
        pieces = self._pieces(pid, type_, addr, kind)
        if pieces is None:
            return False
        proc = self.procs.setdefault(pid, ProcessSlots())
        rw = RW_OF_TYPE[type_]
        found: list[int] = []
        new: dict[int, Slot] = {}
        free = [i for i, s in enumerate(proc.slots) if s is None]
        for piece_addr, size in pieces:
            key = (piece_addr, size, rw)
            same = [i for i, s in enumerate(proc.slots) if s is not None and s.key == key]
            if same:
                found.append(same[0])
                continue
            # Prefer the slot this region had last: a z/Z pair then leaves the thread untouched.
            reuse = [i for i in free if proc.previous[i] == key] or free
            if not reuse:
                return False  # all four slots are taken: gdb says so instead of missing hits
            i = reuse[0]
            free.remove(i)
            new[i] = Slot(piece_addr, size, rw)
            found.append(i)
        for i, taken in new.items():  # all pieces fit: only now take the slots
            proc.slots[i] = taken
        for i in found:
            slot = proc.slots[i]
            assert slot is not None
            slot.users[type_] = slot.users.get(type_, 0) + 1
            if type_ == Z_READ:
                slot.value = self._peek(pid, slot)
        self._update(pid, proc)
        return True

    def remove_breakpoint(self, pid: int, type_: int, addr: int, kind: int) -> bool:
        pieces = self._pieces(pid, type_, addr, kind)
        proc = self.procs.get(pid)
        if pieces is None or proc is None:
            return False
        rw = RW_OF_TYPE[type_]
        removed = False
        for piece_addr, size in pieces:
            for i, slot in enumerate(proc.slots):
                if slot is None or slot.key != (piece_addr, size, rw) or not slot.users.get(type_):
                    continue
                slot.users[type_] -= 1
                removed = True
                if not any(slot.users.values()):
                    proc.previous[i] = slot.key
                    proc.slots[i] = None
                break
        self._update(pid, proc)
        return removed

    def _update(self, pid: int, proc: ProcessSlots) -> None:
        """New wanted registers; threads running now (non-stop) pick them up only when they
        next resume, so the tracee may pause them for it (``debug_registers_changed``)."""
        before = proc.wanted
        proc.update()
        changed = getattr(self.tracee, "debug_registers_changed", None)
        if changed is not None and proc.wanted != before:
            changed(pid)

    def _peek(self, pid: int, slot: Slot) -> bytes:
        try:
            return self.tracee.read_memory(pid, slot.addr, slot.length)
        except (OSError, KeyError):
            return b""

    # --- threads ----------------------------------------------------------------------

    def sync(self, pid: int, tid: int) -> None:
        """Before TID runs: give it its process's debug registers if it does not have them yet."""
        if pid not in self.procs and tid not in self.applied:  # none wanted, none set: every resume
            return
        proc = self.procs.get(pid)
        want = proc.wanted if proc is not None else NONE
        have = self.applied.get(tid, (pid, NONE))[1]
        if want == have:
            return
        try:
            if have.dr7:
                ptrace.pokeuser(tid, _offset(DR_CONTROL), 0)
            for i in range(SLOTS):
                if want.addrs[i] != have.addrs[i] and (want.dr7 >> (2 * i)) & 1:
                    ptrace.pokeuser(tid, _offset(i), want.addrs[i])
            if want.dr7:
                ptrace.pokeuser(tid, _offset(DR_CONTROL), want.dr7)
        except OSError as exc:
            log.debug("debug registers of %d: %s", tid, exc)
            self.applied.pop(tid, None)
            return
        kept = tuple(want.addrs[i] if (want.dr7 >> (2 * i)) & 1 else have.addrs[i] for i in range(SLOTS))
        self.applied[tid] = (pid, Registers((kept[0], kept[1], kept[2], kept[3]), want.dr7))

    def forget_thread(self, tid: int) -> None:
        """A new thread (or a reused tid) starts with no debug registers."""
        self.applied.pop(tid, None)

    def exec_process(self, pid: int) -> None:
        """exec cleared the registers in the kernel, and gdb inserts the new program's afresh."""
        self.procs.pop(pid, None)
        for tid in [tid for tid, (p, _) in self.applied.items() if p == pid]:
            del self.applied[tid]

    def clear_process(self, pid: int) -> None:
        """Detach (or an unfollowed fork child): nothing of ours stays in the threads."""
        self.procs.pop(pid, None)
        for tid in [tid for tid, (p, _) in self.applied.items() if p == pid]:
            _, regs = self.applied.pop(tid)
            if regs.dr7:
                try:
                    ptrace.pokeuser(tid, _offset(DR_CONTROL), 0)
                except OSError:
                    pass

    # --- stops ------------------------------------------------------------------------

    def armed(self, tid: int) -> bool:
        """Whether TID ran with a slot enabled (else no stop of it can come from DR0-DR3)."""
        entry = self.applied.get(tid)
        return entry is not None and bool(entry[1].dr7)

    def fired(self, tid: int) -> bool:
        """Whether DR6 says a slot fired (left set for ``stop_reason``)."""
        if not self.armed(tid):
            return False
        try:
            return bool(ptrace.peekuser(tid, _offset(DR_STATUS)) & DR6_TRAPS)
        except OSError:
            return False

    def stop_reason(self, tid: int) -> tuple[str, int] | None:
        """At a SIGTRAP: which slot fired (DR6, cleared after) as (reason, data address), or None."""
        entry = self.applied.get(tid)
        if entry is None or not entry[1].dr7:
            return None
        pid, regs = entry
        try:
            fired = ptrace.peekuser(tid, _offset(DR_STATUS)) & DR6_TRAPS
            if fired:
                ptrace.pokeuser(tid, _offset(DR_STATUS), 0)
        except OSError:
            return None
        if not fired:
            return None
        proc = self.procs.get(pid)
        hits: list[tuple[int, str, int]] = []  # (priority, reason, address)
        for i in range(SLOTS):
            if not (fired >> i) & 1 or not (regs.dr7 >> (2 * i)) & 1:
                continue
            addr = regs.addrs[i]
            rw = (regs.dr7 >> (16 + 4 * i)) & 3
            slot = proc.slots[i] if proc is not None else None
            if slot is None or slot.addr != addr or slot.rw != rw:
                slot = None  # removed since this thread ran: report what the hardware says
            hits.append(self._classify(pid, slot, rw, addr))
        if not hits:
            return None
        hits.sort()
        _, reason, address = hits[0]
        return reason, address

    def _classify(self, pid: int, slot: Slot | None, rw: int, addr: int) -> tuple[int, str, int]:
        if rw == RW_EXEC:
            return (3, "hwbreak", 0)
        if rw == RW_WRITE:
            return (0, "watch", addr)
        if slot is None or slot.users.get(Z_ACCESS) or not slot.users.get(Z_READ):
            return (1, "awatch", addr)
        # Only read watches here: a hit that changed the value was a write; resume silently.
        now = self._peek(pid, slot)
        changed = bool(slot.value) and now != slot.value
        slot.value = now or slot.value
        return (4, SILENT, 0) if changed else (2, "rwatch", addr)
