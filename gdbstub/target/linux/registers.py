"""Each stopped thread's register file: cached user_regs/xstate buffers, written back
on demand, the PC, the expedited registers, siginfo. Knows nothing of breakpoints,
events or scheduling; a thread's caches are dropped by ``Thread.stop``/``Thread.run``.
"""

from __future__ import annotations

import errno
from _operator import itemgetter  # operator.py is a wrapper of it, 0.3 ms to import
from binascii import hexlify
from struct import Struct

from ...arch.regs import Arch, RegBuffers
from ...hints import Callable
from . import ptrace
from .threads import Thread, ThreadTable

FS_BASE_OFFSET = 168  # in the 64-bit user_regs_struct (32-bit tracees too)
GS_BASE_OFFSET = 176
ORIG_RAX_OFFSET = 120
NO_XSTATE = bytearray(4096)  # what a read of only user registers is given as its xstate
_put_word = Struct("<Q").pack_into  # an 8-byte slot of the user area, in place


class StopLayout:
    """Where an architecture's PC and expedited registers are in user_regs_struct, worked
    out once per table: each stop then reads them with slices, not table look-ups."""

    __slots__ = ("arch", "expedite", "expedite_get", "expedite_pieces", "pc", "pc_end", "pc_from")

    def __init__(self, arch: Arch) -> None:
        self.arch = arch
        pc = arch.by_name(arch.pc)
        plain = pc.buffer == "user" and pc.codec is None and pc.width >= pc.size
        self.pc = pc.offset if plain else -1
        self.pc_end = pc.offset + pc.size
        # The PC's value from the user area at offset pc: (value,) in one C call, without the
        # slice and int.from_bytes (every stop reads it).
        self.pc_from: Callable[[bytearray, int], tuple[int]] = Struct("<Q" if pc.size == 8 else "<I").unpack_from
        # (regnum, offset, end) of plain user registers; None: some need the table's codecs.
        expedite = [arch.by_name(n) for n in arch.expedite]
        if all(r.buffer == "user" and r.codec is None and r.width >= r.size for r in expedite):
            self.expedite: tuple[tuple[int, int, int], ...] | None = tuple(
                (r.regnum, r.offset, r.offset + r.size) for r in expedite)
        else:
            self.expedite = None
        # Three plain registers (both x86 tables: frame, stack and PC): the stop reply's
        # 'NN:HEX;' pieces are the text between three hexlify calls, their values taken from
        # the user area in one C call. A hexlify of the whole area and a template cost more.
        self.expedite_get: Callable[[bytearray], tuple[bytearray, ...]] | None = None
        self.expedite_pieces: tuple[bytes, ...] = ()
        if self.expedite is not None and len(self.expedite) == 3:
            self.expedite_get = itemgetter(*(slice(start, end) for _, start, end in self.expedite))
            numbers = [b"%02x:" % n for n, _, _ in self.expedite]
            self.expedite_pieces = (numbers[0], b";" + numbers[1], b";" + numbers[2], b";")


_LAYOUTS: dict[Arch, StopLayout] = {}  # by the table itself (hashed by identity: no id() call per look-up)


def expedited_text(registers: list[tuple[int, bytes]]) -> bytes:
    """(regnum, value) pairs as a stop reply carries them: b'06:HEX;07:HEX;'."""
    return b"".join([b"%02x:%s;" % (regnum, value.hex().encode()) for regnum, value in registers])


def stop_layout(arch: Arch) -> StopLayout:
    found = _LAYOUTS.get(arch)
    if found is None:
        found = _LAYOUTS[arch] = StopLayout(arch)
    return found


class RegisterFile(ThreadTable):
    """Register reads and writes of stopped threads, through per-thread caches."""

    def _buffers(self, t: Thread, need_xstate: bool) -> RegBuffers:
        if t.user is None:
            t.user = ptrace.getregs(t.tid)
        if need_xstate and t.xstate is None:
            t.xstate = ptrace.getxstate(t.tid)
        return RegBuffers(t.user, t.xstate if t.xstate is not None else NO_XSTATE)

    def _flush(self, t: Thread, user: bool, xstate: bool, rollback: bool = False) -> None:
        """Write the edited caches back. The kernel applies SETREGS field by field
        and stops at a bad one (a null segment selector, say): with ``rollback``
        (a client's write) the registers are put back as they were, so a refused
        write changes nothing, and after an accepted one the caches are dropped
        too, since the kernel may have adjusted what it took (eflags' fixed bits):
        later reads show the registers as they are."""
        saved = ptrace.getregs(t.tid) if rollback and user and t.user is not None else None
        try:
            if user and t.user is not None:
                ptrace.setregs(t.tid, t.user)
            if xstate and t.xstate is not None:
                ptrace.setregset(t.tid, ptrace.NT_X86_XSTATE, t.xstate)
            if rollback:
                t.user = None
                t.xstate = None
        except OSError:
            t.user = None
            t.xstate = None
            if saved is not None:
                try:
                    ptrace.setregs(t.tid, saved)
                except OSError:
                    pass
            raise

    def read_registers(self, tid: int) -> bytes:
        t = self._thread(tid)
        arch = self.arch(t.pid)
        return arch.read_all(self._buffers(t, True))

    def write_registers(self, tid: int, data: bytes) -> None:
        t = self._thread(tid)
        arch = self.arch(t.pid)
        bufs = self._buffers(t, True)
        arch.write_all(bufs, data)
        self._flush(t, True, True, rollback=True)

    def read_register(self, tid: int, regnum: int) -> bytes | None:
        t = self._thread(tid)
        arch = self.arch(t.pid)
        reg = arch.by_num(regnum)
        if reg is None:
            return None
        return arch.read(reg, self._buffers(t, reg.buffer == "xstate"))

    def write_register(self, tid: int, regnum: int, data: bytes) -> bool:
        t = self._thread(tid)
        arch = self.arch(t.pid)
        reg = arch.by_num(regnum)
        if reg is None or len(data) != reg.size:
            return False
        bufs = self._buffers(t, reg.buffer == "xstate")
        arch.write(reg, bufs, data)
        self._flush(t, reg.buffer == "user", reg.buffer == "xstate", rollback=True)
        return True

    def get_pc(self, t: Thread) -> int:
        """From the stop's cached user registers (one GETREGS per stop, however often asked)."""
        user = t.user
        if user is None:
            user = t.user = ptrace.getregs(t.tid)
        proc = self.processes.get(t.pid)  # its own table: the PC is where the client's tables have it
        arch = proc.arch if proc is not None else self.arch(t.pid)
        layout = _LAYOUTS.get(arch) or stop_layout(arch)  # stop_layout's look-up, without the call
        start = layout.pc
        if start >= 0:
            return layout.pc_from(user, start)[0]
        arch = layout.arch
        return int.from_bytes(arch.read(arch.by_name(arch.pc), self._buffers(t, False)), "little")

    def set_pc(self, t: Thread, pc: int) -> None:
        proc = self.processes.get(t.pid)  # as get_pc: the process's own table (the PC is where both have it)
        arch = proc.arch if proc is not None else self.arch(t.pid)
        if not 0 <= pc < 1 << (8 * arch.word):  # e.g. a 64-bit address for a 32-bit program
            raise OSError(errno.EINVAL, f"no such address for this program: {pc:#x}")
        layout = _LAYOUTS.get(arch) or stop_layout(arch)
        start = layout.pc
        if start >= 0:
            # A plain user register (every breakpoint hit rewinds it): one POKEUSER of its
            # 8-byte slot (eip's upper half zero, as arch.write fills it), the stop's
            # cached copy edited to match.
            user = t.user if t.user is not None else self._buffers(t, False).user
            ptrace.pokeuser(t.tid, start, pc)
            _put_word(user, start, pc)
            return
        arch = self.arch(t.pid)
        bufs = self._buffers(t, False)
        arch.write(arch.by_name(arch.pc), bufs, pc.to_bytes(arch.word, "little"))
        self._flush(t, True, False)

    def _in_range(self, t: Thread) -> bool:
        return t.action.start <= self.get_pc(t) < t.action.end

    def expedite(self, tid: int) -> list[tuple[int, bytes]]:
        t = self._thread(tid)
        arch = self.arch(t.pid)
        bufs = self._buffers(t, False)
        plan = stop_layout(arch).expedite
        if plan is not None:
            user = bufs.user
            return [(regnum, bytes(user[start:end])) for regnum, start, end in plan]
        return [(arch.by_name(n).regnum, arch.read(arch.by_name(n), bufs)) for n in arch.expedite]

    def expedite_text(self, tid: int) -> bytes:
        """The expedited registers as a stop reply carries them: b'06:HEX;07:HEX;10:HEX;'."""
        t = self.threads.get(tid)
        if t is None:
            t = self._thread(tid)  # raises
        proc = self.processes.get(t.pid)  # self.arch(t.pid), without its call when the client reads target.xml
        arch = proc.arch if proc is not None and self.xml_registers else self.arch(t.pid)
        layout = _LAYOUTS.get(arch) or stop_layout(arch)
        get = layout.expedite_get
        if get is None:
            return expedited_text(self.expedite(tid))
        user = t.user
        if user is None:
            user = t.user = ptrace.getregs(t.tid)
        first, second, third = get(user)
        p0, p1, p2, p3 = layout.expedite_pieces
        return b"".join((p0, hexlify(first), p1, hexlify(second), p2, hexlify(third), p3))

    def thread_handle(self, pid: int, tid: int) -> bytes | None:
        """libthread_db's handle, the pthread_t: the thread pointer, which is fs_base
        on x86_64 and the %gs segment base on i386. None before libc set it up."""
        t = self.threads.get(tid)
        if t is None:
            return None
        try:
            user = self._buffers(t, False).user
        except OSError:
            return None
        word = self.arch(pid).word
        offset = FS_BASE_OFFSET if word == 8 else GS_BASE_OFFSET
        value = int.from_bytes(user[offset:offset + 8], "little")
        if not value:
            return None
        return value.to_bytes(8, "little")

    def siginfo(self, tid: int) -> bytes:
        """The stopped thread's siginfo, in the kernel's 64-bit layout (qXfer:siginfo)."""
        return ptrace.getsiginfo(self._thread(tid).tid)

    def set_siginfo(self, tid: int, data: bytes) -> None:
        ptrace.setsiginfo(self._thread(tid).tid, data)
