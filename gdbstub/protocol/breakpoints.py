"""Z/z: software and hardware breakpoints, watchpoints, and the conditions and dprintf commands
gdb attaches to breakpoints so the stub decides at the hit (one stop instead of one per hit)."""

from __future__ import annotations

from ..hints import TYPE_CHECKING
from ..logs import get_logger
from . import grammar as g
from .session import E01, OK, Feature, Handler

if TYPE_CHECKING:
    from ..agent import BreakpointAgent, BreakpointConditions
    from .session import Session

log = get_logger("gdbstub.session")

Z_SOFTWARE = 0
Z_HARDWARE = 1
_PARSED = g.results_of(g.Breakpoint)


def _conditions(s: Session, make: bool) -> BreakpointConditions | None:
    """The target's table of conditions: the Linux target makes it (and loads agent.py) for
    the first Z that has some (MAKE); a plain Z0 finds none and leaves it alone."""
    store = getattr(s.target, "breakpoint_conditions", None)
    if store is not None:
        made: BreakpointConditions | None = store(make)
        return made
    from ..agent import BreakpointConditions

    kept = getattr(s.target, "conditions", None)
    return kept if isinstance(kept, BreakpointConditions) else None


def _conditional(s: Session) -> bool:
    """qSupported: whether the target takes conditions (without making its table)."""
    return hasattr(s.target, "breakpoint_conditions") or _conditions(s, False) is not None


def _breakpoint(s: Session, args: bytes, insert: bool) -> bytes:
    if 0x3B in args:  # conditions or commands follow (one memchr; a plain z/Z needs no partition)
        head, _, extras = args.partition(b";")
    else:
        head, extras = args, b""
    req = _PARSED.get(head)  # parse's own results: the z0/Z0 of every hit is one look-up
    if req is None:
        req = g.parse(g.Breakpoint, head)
    ztype, addr = req.type, req.addr  # read once: gdb sends a z0 and a Z0 around every step off a hit
    target = s.target
    t = target.threads.get(s.selected.general.tid)  # current_pid's first answer, without its call
    pid = t.pid if t is not None else s.current_pid() if target.threads else target.pid
    make = insert and bool(extras) and ztype in (Z_SOFTWARE, Z_HARDWARE)
    # A plain z/Z (gdb's pair around every step off a hit) reads the Linux target's table as it
    # is (None: none made), without _conditions' two calls.
    store = None
    if make:
        store = _conditions(s, make)
    else:
        try:
            store = target.made_conditions
        except AttributeError:  # another target: its own way
            store = _conditions(s, make)
    agent: BreakpointAgent | None = None
    if insert and extras:
        if ztype not in (Z_SOFTWARE, Z_HARDWARE) or store is None:
            return E01
        from ..agent import AgentError, parse_extras

        try:
            agent = parse_extras(extras)
        except AgentError as exc:
            log.debug("Z%d at 0x%x: refused agent expression: %s", ztype, addr, exc)
            return E01
    if ztype == Z_SOFTWARE:
        if insert:
            ok = target.insert_sw_breakpoint(pid, addr)
        else:
            ok = target.remove_sw_breakpoint(pid, addr)
    else:
        hw = target.breakpoints()
        if hw is None or ztype not in hw.supported_types():
            return b""
        if insert:
            ok = hw.insert_breakpoint(pid, ztype, addr, req.kind)
        else:
            ok = hw.remove_breakpoint(pid, ztype, addr, req.kind)
    if not ok:
        return E01
    if store is not None and ztype in (Z_SOFTWARE, Z_HARDWARE):
        if insert:
            store.set(pid, ztype, addr, agent)  # a bare Z drops conditions sent before
        elif store.table:
            store.discard(pid, ztype, addr)
    return OK


def insert_breakpoint(s: Session, args: bytes) -> bytes:
    return _breakpoint(s, args, True)


def remove_breakpoint(s: Session, args: bytes) -> bytes:
    return _breakpoint(s, args, False)


def watchpoint_support_info(s: Session, args: bytes) -> bytes:
    """lldb asks how many watchpoints it may set (DR0-DR3)."""
    return b"num:4;" if s.target.breakpoints() is not None else b""


HANDLERS: dict[str, Handler] = {
    "Z": insert_breakpoint,
    "z": remove_breakpoint,
    "qWatchpointSupportInfo": watchpoint_support_info,
}

FEATURES: list[Feature] = [
    ("ConditionalBreakpoints+", _conditional),
    ("BreakpointCommands+", _conditional),
]
