"""The RSP session: negotiation, the dispatch table and stop-reply encoding.

No I/O here: the server hands in packet payloads and stop events and sends
back what this returns. Packet handlers are registered per module (``packets``,
``xfer``, ``hostio``, ...) in ``HANDLERS`` tables keyed by packet name, so a
feature lives in one module and ``qSupported`` is derived from what is there.
``registry`` gathers those tables into a ``Tables`` and makes sessions with it:
this module imports no handler module.

A session's state is in named parts, so that a packet module touches the part it
works on, not the whole: ``negotiated`` (what client and stub agreed on),
``selected`` (Hg/Hc and the event thread), ``status`` (running or stopped, the last
stop), ``nonstop`` (the mode, the %Stop queue and its sender), ``lldb`` (lldb's
extensions) and ``tables`` (what the packet modules contribute).
"""

from __future__ import annotations

from ..hints import TYPE_CHECKING, Callable, NamedTuple
from ..logs import get_logger
from ..target.base import STOP_EXITED, STOP_SIGNAL, STOP_TERMINATED, ResumeAction, StopEvent, StopKind
from . import grammar as g
from . import signals
from .stopqueue import StopQueue

if TYPE_CHECKING:
    from ..launcher import Launcher
    from ..target.linux.process import LinuxTarget

log = get_logger("gdbstub.session")

# gdbserver 16's: gdb 16 then reads memory with `x` in 64 KiB chunks, and gdb 13 with `m` in 64 KiB
# chunks too (gdbserver 13's 0x47ff gave 9 KiB: a 4 MiB dump took 456 round trips instead of 64).
PACKET_SIZE = 0x2001F
# A memory read of at least this much is a part of a bulk read (gdb's `dump`, `x/20000xb`, lldb
# reading a region): its reply names the read likely to come next (Session.read_next).
BULK_READ = 0x4000
OK = b"OK"
E01 = b"E01"
E02 = b"E02"
E03 = b"E03"

# In Negotiated.disabled: stop replies in the bare 'Sxx' form (gdbserver's --disable-packet=T).
S_STOP_REPLIES = "T-stop-reply"

Handler = Callable[["Session", bytes], "bytes | None"]
# A feature's entry in qSupported: a name and a test of whether it is offered now.
Feature = tuple[str, Callable[["Session"], bool]]
# Adds lldb's keys to a T stop reply (protocol/lldb.py).
StopExtra = Callable[["Session", StopEvent], bytes]


class XferObject(NamedTuple):
    """A qXfer object (protocol/xfer.py serves them): a document built on request."""

    read: Callable[[Session, str], bytes]  # (session, annex) -> whole document
    available: Callable[[Session], bool] = lambda s: True
    write: Callable[[Session, str, int, bytes], int] | None = None  # -> bytes written


class SessionEnd(Exception):
    """The client asked the stub to stop serving this connection."""


class Negotiated:
    """What the client and the stub agreed on: qSupported, QStartNoAckMode, '!',
    QThreadEvents, QProgramSignals, and the packets the command line turned off.

    (The parts are plain slotted classes, not dataclasses: no code compiled at start-up.)"""

    __slots__ = ("client_features", "disabled", "extended", "extended_requested", "hwbreak", "multiprocess",
                 "no_ack", "no_resumed", "program_signals", "swbreak", "thread_events")

    def __init__(self, extended: bool = False) -> None:
        self.extended = extended  # may start programs (vRun, R): --multi or '!'
        self.extended_requested = False  # the client sent '!': the stub outlives its programs
        self.no_ack = False
        self.client_features: dict[str, str] = {}  # qSupported's, as sent
        self.multiprocess = False
        self.swbreak = False
        self.hwbreak = False
        self.thread_events = False
        self.no_resumed = False
        self.disabled: set[str] = set()  # packet names turned off (--disable-packet)
        self.program_signals: frozenset[int] | None = None


class ThreadSelection:
    """Which thread the client's packets mean: Hg's (registers, memory), Hc's (c, s)
    and the thread of the last stop (what 'any thread' means)."""

    __slots__ = ("event", "general", "resume")

    def __init__(self) -> None:
        self.general = g.ThreadId(0, 0)
        self.resume = g.ThreadId(-1, -1)
        self.event = 0


class StopStatus:
    """Whether the program runs, its last stop and the reply that reported it ('?' repeats
    it), each thread's last stop (non-stop '?'), and whether the session is over."""

    __slots__ = ("finished", "last_events", "last_reply", "last_stop", "running")

    def __init__(self) -> None:
        self.running = False
        self.finished = False  # the server ends this connection (k, monitor exit, detach of the last)
        self.last_stop: StopEvent | None = None
        self.last_reply: bytes | None = None
        self.last_events: dict[int, StopEvent] = {}


def _no_notification(payload: bytes) -> None:
    """Until the server connects a sender: %Stop notifications go nowhere."""


class NonStop:
    """Non-stop mode (QNonStop): whether it is on, the stop replies waiting for vStopped,
    and how a %Stop notification reaches the client (set by the server)."""

    __slots__ = ("on", "queue", "send")

    def __init__(self) -> None:
        self.on = False
        self.queue = StopQueue()
        self.send: Callable[[bytes], None] = _no_notification


class LldbExtensions:
    """lldb's extensions in use (protocol/lldb.py): ';thread:TID;' suffixes, thread lists
    in stop replies, error strings, what _M allocated and what QSaveRegisterState saved."""

    __slots__ = ("allocations", "error_strings", "list_threads_in_stop_reply", "saved_registers", "thread_suffix")

    def __init__(self) -> None:
        self.thread_suffix = False
        self.error_strings = False  # QEnableErrorStrings: errors say why, as `E01;HEX`
        self.list_threads_in_stop_reply = False
        self.allocations: dict[int, int] = {}  # _M's address -> size, for _m
        self.saved_registers: dict[int, tuple[int, bytes]] = {}  # save id -> (tid, g packet)


class Tables:
    """What the packet modules contribute (gathered by ``registry``): handlers by packet
    name, qSupported entries, qXfer objects and extra keys for T stop replies."""

    __slots__ = ("features", "handlers", "objects", "stop_extras")

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.features: list[Feature] = []
        self.objects: dict[str, XferObject] = {}
        self.stop_extras: list[StopExtra] = []


def _no_output(payload: bytes) -> None:
    """Until the server connects a sender: console output (O packets) goes nowhere."""


class Session:
    """One client connection's protocol state over one target (``registry.new_session``
    makes one with every packet module's tables).

    The parts are made here and never replaced, so a caller may keep one in a local."""

    __slots__ = ("close_hooks", "internal_errors", "launcher", "lldb", "module_state", "negotiated", "nonstop",
                 "notify", "read_next", "selected", "status", "tables", "target", "xfer_cache")

    def __init__(self, target: LinuxTarget, tables: Tables, *, extended: bool = False) -> None:
        self.target = target
        self.tables = tables
        self.negotiated = Negotiated(extended=extended)
        self.selected = ThreadSelection()
        self.status = StopStatus()
        self.nonstop = NonStop()
        self.lldb = LldbExtensions()
        self.notify: Callable[[bytes], None] = _no_output  # O packets
        self.launcher: Launcher | None = None  # how vRun/R start programs (protocol/extended.py)
        self.xfer_cache: dict[str, object] = {}  # the qXfer document being read in parts
        self.close_hooks: list[Callable[[], None]] = []  # run by close(), e.g. hostio's fds
        # Packet modules' own state for this client, by module (hostio's files; kept here, not in
        # a WeakKeyDictionary: weakref is 2.5 M instructions of every start).
        self.module_state: dict[str, object] = {}
        self.internal_errors = 0  # handler bugs caught by handle()'s last line of defence
        # The packet a bulk memory read asks for next (the memory just after, as much again),
        # set by the read before it: the server may answer it ahead (server.py, on_packet).
        self.read_next: bytes | None = None

    def close(self) -> None:
        """The client is gone: release what handlers opened for it (idempotent)."""
        hooks, self.close_hooks = self.close_hooks, []
        for hook in reversed(hooks):
            try:
                hook()
            except Exception:  # one failing hook must not keep the others from running
                log.exception("session close hook failed")

    # --- entry points ------------------------------------------------------------

    def handle(self, data: bytes) -> bytes | None:
        """Handle one packet; return the reply payload, or None while the program runs.

        Nothing a client sends may end the stub: expected failures (malformed
        arguments, numbers too large for a system call, a failed ptrace/memory
        access) are answered E01 quietly, and any other exception, a handler bug,
        is logged with its traceback and answered E01 too. Only SessionEnd (the client's own request) leaves.
        """
        # A short packet seen lately is split as before (the framer hands over the same
        # object for a repeat, so its hash is kept), and so its arguments are the same
        # object too: the grammar's and vCont's caches keyed on them hash nothing again.
        split = _SPLITS.get(data) if len(data) <= SPLIT_SIZE else None
        if split is None:
            split = _split(data)
        name, args = split
        handler = self.tables.handlers.get(name)
        if handler is None:
            return b""
        disabled = self.negotiated.disabled
        if disabled and name in disabled:
            return b""
        try:
            return handler(self, args)
        except Exception as exc:
            return self.handler_failed(exc, data, name)

    def handler_failed(self, exc: Exception, data: bytes, name: str) -> bytes:
        """The reply to packet DATA (named NAME) whose handler raised EXC (``handle``'s, and the
        event loop's, which calls the handler of a packet seen lately itself)."""
        if isinstance(exc, g.ParseError):
            log.debug("malformed %r: %s", data[:40], exc)
            return self.error_reply(f"malformed {name} packet")
        if isinstance(exc, OSError):
            log.debug("%r failed: %s", data[:40], exc)
            return self.error_reply(exc.strerror or "failed")
        if isinstance(exc, KeyError):
            log.debug("%r: unknown %s", data[:40], exc)
            return E01
        if isinstance(exc, OverflowError):  # a number too large for the system call it reaches
            log.debug("%r: %s", data[:40], exc)
            return E01
        if isinstance(exc, SessionEnd):
            raise exc
        # The last line of defence: log the bug (the caller's except: its traceback), keep serving.
        log.exception("internal error handling packet %r", data[:40])
        self.internal_errors += 1
        return E01

    def on_stop(self, event: StopEvent) -> bytes | None:
        """A stop the target reported while running: the reply to send now.

        In non-stop mode the stop goes out as a notification instead (or waits
        in the queue for vStopped) and this returns None."""
        status, nonstop = self.status, self.nonstop
        status.last_stop = event
        kind = event.kind
        if kind is not STOP_EXITED and kind is not STOP_TERMINATED:
            disabled = self.negotiated.disabled
            bare = S_STOP_REPLIES in disabled if disabled else False
            if not nonstop.on and bare:
                self._keep_general_thread()
            selected, pid, tid = self.selected, event.pid, event.tid
            selected.event = tid
            status.last_events[tid] = event
            if not nonstop.on and not bare:
                # gdb takes the thread the reply names as its general thread. (Without
                # thread: (Tthread off) too: gdbserver then hangs, this keeps gdb going.)
                general = selected.general
                if general.tid != tid or general.pid != pid:
                    selected.general = g.ThreadId(pid, tid)
        reply = self.stop_reply(event)
        status.last_reply = reply
        if nonstop.on:
            status.running = self.target.running
            note = nonstop.queue.push(reply, event.tid)
            if note is not None:
                nonstop.send(note)
            return None
        status.running = False
        return reply

    def _keep_general_thread(self) -> None:
        """A stop reply without a thread is, to gdb, a stop of the thread it has been reading:
        pin that one (what 'any thread' meant until now), as gdbserver does, so that g and p
        keep answering for it rather than for the thread that stopped."""
        selected = self.selected
        if selected.general.tid > 0 and selected.general.tid in self.target.threads:
            return
        try:
            tid = self.current_tid()
        except OSError:
            return
        selected.general = g.ThreadId(self.target.pid_of(tid) or self.target.pid, tid)

    # --- helpers for handlers -------------------------------------------------------

    def error_reply(self, reason: str) -> bytes:
        """E01, or `E.reason` for a client that offered error-message+ (gdb 15+): gdb then says
        why (`remote failure reply 'No such process'`) instead of a bare number; lldb, once
        it sent QEnableErrorStrings, takes the reason hex-encoded after the number."""
        if self.negotiated.client_features.get("error-message") != "+":
            if self.lldb.error_strings:
                return E01 + b";" + reason.encode("utf-8", "replace").hex().encode()
            return E01
        return b"E." + reason.encode("ascii", "replace").replace(b"#", b"?").replace(b"$", b"?")

    def format_thread(self, pid: int, tid: int) -> bytes:
        if self.negotiated.multiprocess:
            return b"p%x.%x" % (pid, tid)
        return b"%x" % tid

    def parse_thread(self, text: bytes) -> g.ThreadId:
        return g.parse_thread_id(text, self.target.pid)

    def current_tid(self) -> int:
        """The thread g/m/p act on: Hg's choice, else the last event's thread."""
        threads = self.target.threads
        selected = self.selected
        tid = selected.general.tid
        if tid > 0 and tid in threads:
            return tid
        if selected.event in threads:
            return selected.event
        if self.target.pid in threads:
            return self.target.pid
        if threads:
            return next(iter(threads))
        raise OSError(3, "no thread")

    def current_pid(self) -> int:
        t = self.target.threads.get(self.selected.general.tid)  # Hg's thread: current_tid's first answer
        if t is not None:
            return t.pid
        pid = self.target.pid_of(self.current_tid())
        if pid is None:
            raise OSError(3, "no process")
        return pid

    def stop_reply(self, event: StopEvent) -> bytes:
        kind = event.kind
        negotiated = self.negotiated
        if kind is STOP_SIGNAL:  # the usual stop (a step, a breakpoint): its reason first
            host = event.signal
            head = _T_HOST[host] if 0 <= host < 256 else _T_SIGNAL[_GDB_UNKNOWN]  # to_gdb, without its call
            reason = event.reason
            if reason is None:
                detail = b""
            elif reason == "swbreak":
                detail = b"swbreak:;" if negotiated.swbreak else b""
            elif reason == "hwbreak":
                detail = b"hwbreak:;" if negotiated.hwbreak else b""
            elif reason in ("watch", "rwatch", "awatch"):
                detail = b"%s:%x;" % (reason.encode(), event.address)
            else:
                detail = b""
        else:
            other = self._other_stop(event)
            if isinstance(other, bytes):
                return other
            head, detail = _T_SIGNAL[5], other[0]
        disabled = negotiated.disabled
        if disabled and S_STOP_REPLIES in disabled:  # no registers, thread or core: gdb asks for them
            return b"S" + head[1:]
        target = self.target
        pid, tid = event.pid, event.tid
        try:
            registers = target.expedite_text(tid)
        except OSError:
            registers = b""
        if disabled and "Tthread" in disabled:  # --disable-packet=Tthread
            thread = b""
        else:
            # format_thread, without its call per stop, and made once per thread (its pid and
            # tid are the same at every stop: a dict look-up costs half the formatting)
            known = _THREAD_FIELDS.get((pid, tid)) if negotiated.multiprocess else b"thread:%x;" % tid
            thread = known if known is not None else _thread_field(pid, tid)
        extras = self.tables.stop_extras
        if len(extras) == 1:  # lldb's alone (no list built per stop)
            extra = extras[0](self, event)
        else:
            extra = b"".join([add(self, event) for add in extras]) if extras else b""
        text = target.thread_core_text(pid, tid)
        if text is None:
            where = b""
        else:
            known = _CORE_FIELDS.get(text)
            where = known if known is not None else _core_field(text)
        return b"".join((head, detail, registers, thread, extra, where))

    def _other_stop(self, event: StopEvent) -> bytes | tuple[bytes]:
        """A stop of another kind than a signal: the whole reply (W, X, w, N), or as a
        1-tuple what its T reply says after the signal (fork:, exec:, create:, ...)."""
        kind = event.kind
        multiprocess = self.negotiated.multiprocess
        # gdbserver's forms: two digits alone, the bare number with the process (W3;process:N).
        if kind is StopKind.EXITED:
            if multiprocess:
                return b"W%x;process:%x" % (event.status & 0xFF, event.pid)
            return b"W%02x" % (event.status & 0xFF)
        if kind is StopKind.TERMINATED:
            if multiprocess:
                return b"X%x;process:%x" % (signals.to_gdb(event.signal), event.pid)
            return b"X%02x" % signals.to_gdb(event.signal)
        if kind is StopKind.THREAD_EXITED:
            return b"w%x;%s" % (event.status & 0xFF, self.format_thread(event.pid, event.tid))
        if kind is StopKind.NO_RESUMED:
            return b"N"
        if kind in (StopKind.FORK, StopKind.VFORK, StopKind.THREAD_CLONED):
            return (b"%s:%s;" % (kind.value.encode(), self.format_thread(event.child_pid, event.child_tid)),)
        if kind is StopKind.VFORK_DONE:
            return (b"vforkdone:;",)
        if kind is StopKind.EXEC:
            return (b"exec:%s;" % event.exec_path.encode().hex().encode(),)
        if kind in (StopKind.SYSCALL_ENTRY, StopKind.SYSCALL_RETURN):
            return (b"%s:%x;" % (kind.value.encode(), event.syscall),)
        if kind is StopKind.THREAD_CREATED:
            return (b"create:;",)
        return (b"",)

    def initial_stop(self) -> StopEvent | None:
        """What '?' reports before the program has run: stopped at its entry."""
        pid = self.target.pid
        if pid not in self.target.processes:
            return None
        event_tid = self.selected.event
        tid = event_tid if event_tid in self.target.threads else pid
        return StopEvent(StopKind.SIGNAL, pid, tid, signal=5)

    def resume(self, actions: dict[int, ResumeAction]) -> None:
        self.status.running = True
        self.target.resume(actions)

    def threads_matching(self, ptid: g.ThreadId | None) -> list[int]:
        out = []
        for pid, tid in self.target.thread_ids():
            if ptid is None:
                out.append(tid)
            elif ptid.pid in (-1, 0) or ptid.pid == pid:
                if ptid.tid in (-1, 0) or ptid.tid == tid:
                    out.append(tid)
        if ptid is not None and ptid.tid == 0 and out:
            # "any thread": the event thread when it qualifies, else the first
            event_tid = self.selected.event
            return [event_tid] if event_tid in out else out[:1]
        return out


_T_SIGNAL = [b"T%02x" % sig for sig in range(256)]  # a T reply's start, by gdb signal number
_CORE_FIELDS: dict[bytes, bytes] = {}  # a T reply's end, by the core's decimal text in /proc (no int() per stop)
_THREAD_FIELDS: dict[tuple[int, int], bytes] = {}  # (pid, tid) -> b"thread:pPID.TID;" (multiprocess)


def _core_field(text: bytes) -> bytes:
    """The core field for TEXT, the core in decimal (b"" for anything else), remembered."""
    try:
        field = b"core:%x;" % int(text)
    except ValueError:
        return b""
    if len(_CORE_FIELDS) < 4096:  # as many as there are cores
        _CORE_FIELDS[text] = field
    return field


def _thread_field(pid: int, tid: int) -> bytes:
    """A multiprocess stop reply's thread field, remembered for the thread's next stops."""
    field = b"thread:p%x.%x;" % (pid, tid)
    if len(_THREAD_FIELDS) >= 256:  # a program making threads without end must not grow it
        _THREAD_FIELDS.clear()
    _THREAD_FIELDS[(pid, tid)] = field
    return field


_TO_GDB = signals.TO_GDB
_GDB_UNKNOWN = signals.GDB_UNKNOWN
# ... by host signal number (0: T00), as to_gdb maps it
_T_HOST = [_T_SIGNAL[_TO_GDB.get(sig, _GDB_UNKNOWN) if sig else 0] for sig in range(256)]

_LETTERS = tuple("" if chr(c) in "qQvj_" else chr(c) for c in range(256))  # one-letter packet names
_NAMES: dict[bytes, str] = {}  # the word of q/Q/v/j/_ packets -> its name (a few dozen)


SPLIT_SIZE = 64  # packets up to this long are kept split (_SPLITS)
_SPLITS: dict[bytes, tuple[str, bytes]] = {}  # short packets seen lately -> (name, arguments)
SPLITS = _SPLITS  # the event loop looks a packet up here itself (server.py, on_packet)


def _split(data: bytes) -> tuple[str, bytes]:
    """DATA's packet name and its arguments (what follows the name); remembered for a short one."""
    name = packet_name(data)
    split = (name, data[len(name):])
    if len(data) <= SPLIT_SIZE:
        if len(_SPLITS) >= 256:
            _SPLITS.clear()
        _SPLITS[data] = split
    return split


def packet_name(data: bytes) -> str:
    """The dispatch key: the leading letter, or for q/Q/v/_ the word before ':' ',' ';'."""
    if not data:
        return ""
    letter = _LETTERS[data[0]]  # "" for the letters of named packets
    if letter:
        return letter
    if data.startswith(b"vCont;"):  # the hot one of them: every resume
        return "vCont"
    return _word_name(data)


def _word_name(data: bytes) -> str:
    """The name of a q/Q/v/j/_ packet: its word, up to the first separator."""
    first = chr(data[0])
    end = len(data)
    for sep in _NAME_ENDS:  # the word ends at the first separator after its letter
        at = data.find(sep, 1, end)
        if at > 0:
            end = at
    if first == "v" and data[end:end + 1] == b"?":
        end += 1
    if data.startswith((b"_M", b"_m")):
        end = 2
    elif data.startswith(_NUMBERED):  # lldb's: the number follows with no separator
        end = len(_NUMBERED[0] if data.startswith(_NUMBERED[0]) else _NUMBERED[1])
    word = data[:end]
    known = _NAMES.get(word)
    if known is not None:
        return known
    name = word.decode("ascii", "replace")
    if len(_NAMES) < 256:  # clients send a few dozen names; junk must not grow it
        _NAMES[word] = name
    return name


_NAME_ENDS = (b":", b",", b";", b"?")
_NUMBERED = (b"qThreadStopInfo", b"qRegisterInfo")
