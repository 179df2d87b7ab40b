"""The tracer's two hooks into the Linux target: the registers of a thread at a hit, kept raw
for later, and while-stepping.

While-stepping: after a tracepoint's hit the thread single-steps N times, unseen by the client,
its step actions collected at each step (gdb's `while-stepping N` in a tracepoint's actions).

The steps run at the hit, before the thread goes on: one step at a time with the target's own
step-over (which lifts an int3 under the PC for the step and puts it back). A step that ends in
anything but its trap (a signal, an exit) ends the stepping; the target keeps that event and
reports it as it would have.
"""

from __future__ import annotations

from collections.abc import Callable

from ..arch.regs import RegBuffers
from ..hints import TYPE_CHECKING, signal
from ..target.base import StopEvent, StopKind

if TYPE_CHECKING:
    from ..target.linux.process import LinuxTarget
    from ..target.linux.stops import StopEngine


def while_step(target: LinuxTarget, tid: int) -> int | None:
    """One silent single-step of a continuing thread: its new PC, or None when stepping must end
    (the thread is not continuing, is gone, or stopped for something else)."""
    t = target.threads.get(tid)
    if t is None or t.action.kind != "c" or not t.stopped:
        return None
    event = target._step_over(t, 0)
    if event is not None:
        if event.kind is StopKind.SIGNAL and event.reason == "swbreak":
            return None  # on another breakpoint: the stepping ends there
        t = target.threads.get(tid)
        if t is None or event.kind in (StopKind.EXITED, StopKind.TERMINATED):
            target._deferred.append(event)
        else:
            target._keep_pending(t, event)
        return None
    t = target.threads.get(tid)
    if t is None or not t.stopped:
        return None
    return target.get_pc(t)


def register_snapshot(target: LinuxTarget, tid: int) -> tuple[int, Callable[[], bytes]]:
    """The thread's raw register buffers copied now; their g-layout bytes made when asked."""
    t = target.threads[tid]
    arch = target.arch(t.pid)
    bufs = target._buffers(t, True)
    user, xstate = bytes(bufs.user), bytes(bufs.xstate)
    return arch.g_size, lambda: arch.read_all(RegBuffers(bytearray(user), bytearray(xstate)))


def stepped_onto_tracepoint(target: StopEngine, event: StopEvent) -> None:
    """A step reported to the client that ends at a tracepoint: the instruction there is about
    to run, so that is the tracepoint's hit (gdbserver collects there too); the step-over that
    follows at the next resume collects nothing."""
    if event.kind is not StopKind.SIGNAL or event.signal != signal.SIGTRAP or event.reason is not None:
        return
    t = target.threads.get(event.tid)
    if t is not None:
        t.collected_pc = pc = target.get_pc(t)
        target.tracer.hit(t.pid, t.tid, pc, may_step=False)
