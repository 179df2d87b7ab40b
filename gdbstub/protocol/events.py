"""Thread, signal and syscall event settings: QThreadEvents, QThreadOptions, QCatchSyscalls,
and the negotiated no-resumed / program-signal state the target acts on.

gdb 13 sends QThreadEvents only in non-stop; ``catch syscall`` sends
``QCatchSyscalls:1[;NR...]`` (no numbers: every call) and ``QCatchSyscalls:0``.
"""

from __future__ import annotations

from ..hints import TYPE_CHECKING
from ..target.linux.decode import THREAD_OPTION_CLONE, THREAD_OPTION_EXIT
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


def _thread_options(s: Session) -> int:
    """The QThreadOptions the target implements (none for a target that knows nothing of them)."""
    return int(getattr(s.target, "thread_options_supported", 0))


# What a QThreadOptions packet sets, by the packet, the options supported and the threads
# there are: gdb 14+ sends one before every resume (`QThreadOptions;0;2:p1f.1f` per stepi).
_OptionsKey = tuple[bytes, int, int, tuple[int, ...]]
_OPTION_PLANS: dict[_OptionsKey, tuple[tuple[int, int], ...]] = {}


def q_thread_options(s: Session, args: bytes) -> bytes:
    """``QThreadOptions;OPTS[:PTID]...`` (gdb 14+): each entry sets the options of the threads
    its ptid matches (none: all), a later entry wins; threads no entry matches keep theirs, as
    in gdbserver. Nothing changes unless the whole packet is valid."""
    target = s.target
    # The threads by tid alone (each has one pid for its life): no thread_ids() list per resume.
    key = (args, _thread_options(s), target.pid, tuple(target.threads))
    plan = _OPTION_PLANS.get(key)
    if plan is None:
        found = _options_plan(s, args, key[1])
        if isinstance(found, bytes):
            return found
        if len(_OPTION_PLANS) >= 64:
            _OPTION_PLANS.clear()
        plan = _OPTION_PLANS[key] = found
    threads = target.threads
    for tid, options in plan:
        threads[tid].options = options
    return OK


def _options_plan(s: Session, args: bytes, supported: int) -> tuple[tuple[int, int], ...] | bytes:
    """The (thread, options) a QThreadOptions packet sets, or the error reply."""
    if not args.startswith(b";") or not supported:
        return E01
    chosen: dict[int, int] = {}
    for item in args[1:].split(b";"):
        text, colon, ptid_text = item.partition(b":")
        if not text or len(text) > 8 or (colon and not ptid_text):
            return E01
        try:
            options = int(text, 16)
            ptid = s.parse_thread(ptid_text) if colon else None
        except ValueError:
            return E01
        if options & ~supported:
            return s.error_reply(f"Unknown thread options requested: {options:#x}")
        for pid, tid in s.target.thread_ids():
            if ptid is None or (ptid.pid in (-1, 0, pid) and ptid.tid in (-1, 0, tid)):
                chosen[tid] = options
    return tuple(chosen.items())


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
    "QThreadOptions": q_thread_options,
    "QCatchSyscalls": q_catch_syscalls,
}

FEATURES: list[Feature] = [
    ("QCatchSyscalls+", lambda s: True),
    ("QThreadEvents+", lambda s: True),
    (f"QThreadOptions={THREAD_OPTION_CLONE | THREAD_OPTION_EXIT:x}", lambda s: _thread_options(s) != 0),
    ("no-resumed+", lambda s: s.negotiated.no_resumed),
]
