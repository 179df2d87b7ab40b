"""Non-stop mode: threads stop and run independently.

Stops are reported as ``%Stop`` notifications, at most one outstanding: the
client drains the rest of the queue with ``vStopped``. ``vCont`` answers OK at
once, ``vCont;t`` stops threads (reported with signal 0), and ``?`` starts a
fresh report of every stopped thread.
"""

from __future__ import annotations

from ..hints import TYPE_CHECKING
from ..target.base import StopEvent, StopKind
from .session import E01, OK, Feature, Handler
from .stopqueue import StopQueue

if TYPE_CHECKING:
    from .session import Session


def q_non_stop(s: Session, args: bytes) -> bytes:
    value = args.lstrip(b":")
    if value not in (b"0", b"1"):
        return E01
    on = value == b"1"
    nonstop = s.nonstop
    if nonstop.on == on:
        return OK
    nonstop.on = on
    nonstop.queue = StopQueue()
    s.target.set_non_stop(on)
    s.status.running = s.target.running  # QNonStop:0 stopped every thread
    if on:  # (idempotent: toggling on again adds a harmless second hook)
        s.close_hooks.append(lambda: _leave_non_stop(s))
    return OK


def _leave_non_stop(s: Session) -> None:
    """The client is gone: the target goes back to all-stop (its threads stopped), so the
    next client starts as a fresh connection does, in all-stop without thread events
    (gdb sends QThreadEvents only when it speaks non-stop)."""
    s.target.set_non_stop(False)
    s.target.thread_events = False


def v_stopped(s: Session, args: bytes) -> bytes:
    if not s.nonstop.on:
        return b""
    return s.nonstop.queue.acknowledge()


def v_ctrl_c(s: Session, args: bytes) -> bytes:
    if not s.nonstop.on:
        return b""
    s.target.interrupt()
    return OK


def question_non_stop(s: Session) -> bytes:
    """Every stopped thread's stop, the first now, the rest through vStopped."""
    replies = []
    # Before anything ran, the program's own stop at its entry (SIGTRAP, as gdbserver has it).
    first = s.initial_stop() if s.status.last_stop is None else None
    for pid, tid in s.target.thread_ids():
        if s.target.is_running(tid):
            continue
        event = s.status.last_events.get(tid)
        if event is None:
            event = first if first is not None and first.tid == tid else StopEvent(StopKind.SIGNAL, pid, tid, signal=0)
        replies.append(s.stop_reply(event))
    return s.nonstop.queue.restart(replies)


HANDLERS: dict[str, Handler] = {
    "QNonStop": q_non_stop,
    "vStopped": v_stopped,
    "vCtrlC": v_ctrl_c,
}

FEATURES: list[Feature] = [("QNonStop+", lambda s: True)]
