"""The Target interface the protocol session drives, and the stop events a
target reports.

Optional capabilities are methods returning an implementation or None (the
idea of the Rust gdbstub crate), so ``qSupported`` is derived from what the
target really implements and never advertises more.
"""

from __future__ import annotations

from ..arch.regs import Arch
from ..hints import TYPE_CHECKING, Enum, NamedTuple, Protocol


class StopKind(Enum):
    SIGNAL = "signal"  # stopped with a signal (SIGTRAP for breakpoints and steps)
    EXITED = "exited"  # W: the process exited with ``status``
    TERMINATED = "terminated"  # X: the process was killed by ``signal``
    FORK = "fork"
    VFORK = "vfork"
    VFORK_DONE = "vforkdone"
    EXEC = "exec"
    SYSCALL_ENTRY = "syscall_entry"
    SYSCALL_RETURN = "syscall_return"
    THREAD_CREATED = "create"
    THREAD_EXITED = "thread_exited"
    THREAD_CLONED = "clone"  # QThreadOptions CLONE: the parent's clone, the child in child_pid/child_tid
    NO_RESUMED = "no_resumed"


# The kinds every stop tests, as plain names: on Python 3.11 an Enum class's attribute goes
# through EnumType.__getattr__ (0.2 us, ten times a global's load), and each stop read a few.
STOP_SIGNAL = StopKind.SIGNAL
STOP_EXITED = StopKind.EXITED
STOP_TERMINATED = StopKind.TERMINATED


class StopEvent(NamedTuple):
    """One stop to report. A NamedTuple: one is made per stop, and a tuple is built
    faster than a dataclass instance (and costs no code generation at start-up)."""

    kind: StopKind
    pid: int
    tid: int
    signal: int = 0  # Linux signal number
    status: int = 0  # exit status for EXITED / THREAD_EXITED
    reason: str | None = None  # swbreak, hwbreak, watch, rwatch, awatch
    address: int = 0  # data address of a watchpoint hit
    child_pid: int = 0  # fork / vfork / clone
    child_tid: int = 0
    exec_path: str = ""
    syscall: int = 0


# A StopEvent made without NamedTuple's generated __new__ (a Python frame with its defaults:
# 1.6 K instructions of every step and hit): ``new_event(StopEvent, (...))`` with every field,
# in order (tests/test_hot_paths.py checks the count).
new_event = tuple.__new__


class ResumeAction(NamedTuple):
    """What to do with one thread: continue, step, or range-step, with a signal."""

    kind: str  # "c", "s", "r"
    signal: int = 0  # Linux signal number to deliver, 0 for none
    start: int = 0  # range-step bounds
    end: int = 0


if TYPE_CHECKING:  # interfaces for the type checker: no class to build at run time
    class Breakpoints(Protocol):
        """Z/z types 0..4 (software, hardware, write, read, access watchpoints)."""

        def supported_types(self) -> frozenset[int]: ...
        def insert_breakpoint(self, pid: int, type_: int, addr: int, kind: int) -> bool: ...
        def remove_breakpoint(self, pid: int, type_: int, addr: int, kind: int) -> bool: ...


    class Target(Protocol):
        """One debugged program (and the processes it forks) under the stub's control."""

        @property
        def pid(self) -> int: ...
        def arch(self, pid: int) -> Arch: ...
        def alive(self) -> bool: ...
        def launched(self) -> bool: ...
        def thread_ids(self) -> list[tuple[int, int]]: ...
        def thread_name(self, pid: int, tid: int) -> str: ...
        def thread_core(self, pid: int, tid: int) -> int | None: ...
        def thread_core_text(self, pid: int, tid: int) -> bytes | None: ...
        def read_registers(self, tid: int) -> bytes: ...
        def write_registers(self, tid: int, data: bytes) -> None: ...
        def read_register(self, tid: int, regnum: int) -> bytes | None: ...
        def write_register(self, tid: int, regnum: int, data: bytes) -> bool: ...
        def read_memory(self, pid: int, addr: int, length: int) -> bytes: ...
        def write_memory(self, pid: int, addr: int, data: bytes) -> None: ...
        def resume(self, actions: dict[int, ResumeAction]) -> None: ...
        def poll(self) -> StopEvent | None: ...
        def interrupt(self) -> None: ...
        def kill(self, pid: int | None = None) -> None: ...
        def detach(self, pid: int | None = None) -> None: ...
        def auxv(self, pid: int) -> bytes: ...
        def exec_file(self, pid: int) -> str: ...
        def breakpoints(self) -> Breakpoints | None: ...


# Who wants each int3: the client (Z0) and the trace may share one. Kept by the target from the
# start (a plain gdb session needs only this of the trace), without loading the tracer.
CLIENT = "client"
TRACE = "trace"


class Int3Owners:
    """(pid, address) -> the owners of the int3 there; a plain Z0 may have no entry (the client's)."""

    def __init__(self, owners: dict[tuple[int, int], set[str]] | None = None) -> None:
        self.owners: dict[tuple[int, int], set[str]] = {} if owners is None else owners

    def own(self, pid: int, addr: int, owner: str) -> None:
        holders = self.owners.get((pid, addr))
        if holders is None:
            self.owners[(pid, addr)] = {owner}  # no set made and dropped at every Z0 of the same place
        else:
            holders.add(owner)

    def owns(self, pid: int, addr: int, owner: str = CLIENT) -> bool:
        """Whether OWNER has a breakpoint of its own in the int3 at addr (a plain Z0, or a fork
        child's copy, has no entry here: the client's)."""
        return owner in self.owners.get((pid, addr), (CLIENT,))

    def still_owned(self, pid: int, addr: int, owner: str) -> bool:
        """``owner`` lets go of the int3 at addr: True when another owner still needs it."""
        holders = self.owners.get((pid, addr))
        if holders is None:
            return False
        holders.discard(owner)
        if holders:
            return True
        del self.owners[(pid, addr)]
        return False

    def forget_process(self, pid: int) -> None:
        for key in [k for k in self.owners if k[0] == pid]:
            del self.owners[key]
