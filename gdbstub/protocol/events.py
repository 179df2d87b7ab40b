"""Thread, signal and syscall event settings: QThreadEvents, QCatchSyscalls,
and the negotiated no-resumed / program-signal state the target acts on.

gdb 13 sends QThreadEvents only in non-stop; ``catch syscall`` sends
``QCatchSyscalls:1[;NR...]`` (no numbers: every call) and ``QCatchSyscalls:0``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .session import E01, OK, Feature, Handler

if TYPE_CHECKING:
    from .session import Session


def q_thread_events(s: Session, args: bytes) -> bytes:
    value = args.lstrip(b":")
    if value not in (b"0", b"1"):
        return E01
    s.negotiated.thread_events = value == b"1"
    s.target.thread_events = s.negotiated.thread_events
    return OK


def q_catch_syscalls(s: Session, args: bytes) -> bytes:
    """``QCatchSyscalls:1;NR;NR`` / ``QCatchSyscalls:1`` (all) / ``QCatchSyscalls:0``."""
    fields = args.lstrip(b":").split(b";")
    if fields[0] == b"0" and len(fields) == 1:
        s.target.catch_syscalls = None
        return OK
    if fields[0] != b"1":
        return E01
    numbers = set()
    for item in fields[1:]:
        if not item or len(item) > 8:
            return E01
        numbers.add(int(item, 16))
    s.target.catch_syscalls = frozenset(numbers)
    return OK


HANDLERS: dict[str, Handler] = {
    "QThreadEvents": q_thread_events,
    "QCatchSyscalls": q_catch_syscalls,
}

FEATURES: list[Feature] = [
    ("QCatchSyscalls+", lambda s: True),
    ("QThreadEvents+", lambda s: True),
    ("no-resumed+", lambda s: s.negotiated.no_resumed),
]
