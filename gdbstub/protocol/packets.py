"""Handlers for the core packets: negotiation, registers, memory, breakpoints,
threads, resuming, kill and detach."""

from __future__ import annotations

from binascii import hexlify

from ..hints import TYPE_CHECKING, lru_cache
from ..target.base import ResumeAction, StopKind
from . import grammar as g
from . import signals
from .framing import DIRECT, ready_reply
from .hostio import fitted_count
from .nonstop import question_non_stop
from .session import BULK_READ, E01, OK, PACKET_SIZE, Feature, Handler, SessionEnd

if TYPE_CHECKING:
    from .session import Session

E08 = b"E08"  # lldb-server's answer to a read of nothing readable

def q_supported(s: Session, args: bytes) -> bytes:
    """Negotiate, and list what the stub offers.

    A bare ``qSupported`` (gdb's ``maint packet qSupported``, pwndbg) only asks: it
    changes nothing. A later one with features can add to what was negotiated but
    never takes back what gdb already relies on (multiprocess thread ids, target.xml):
    gdbserver too only turns features on within a connection."""
    offered_now = _client_features(args)
    if offered_now:
        _merge_features(s.negotiated.client_features, offered_now)
        _negotiate(s)
    reply = [f"PacketSize={PACKET_SIZE:x}"]
    reply += [name for name, offered in s.tables.features if offered(s)]
    return ";".join(reply).encode()


def _client_features(args: bytes) -> dict[str, str]:
    """``name+``/``name-``/``name?`` → the sign, ``name=value`` → the value."""
    features: dict[str, str] = {}
    for item in args.lstrip(b":").split(b";"):
        text = item.decode("ascii", "replace")
        if "=" in text:
            key, _, value = text.partition("=")
            features[key] = value
        elif text and text[-1] in "+-?":
            features[text[:-1]] = text[-1]
    return features


def _merge_features(known: dict[str, str], new: dict[str, str]) -> None:
    """A feature once offered stays offered; xmlRegisters lists are joined."""
    for key, value in new.items():
        if key == "xmlRegisters" and key in known:
            names = known[key].split(",")
            known[key] = ",".join(names + [n for n in value.split(",") if n not in names])
        elif known.get(key) != "+":
            known[key] = value


def _negotiate(s: Session) -> None:
    n, t = s.negotiated, s.target
    offered = {k for k, v in n.client_features.items() if v == "+"}
    n.multiprocess = "multiprocess" in offered and "multiprocess" not in n.disabled
    n.swbreak = "swbreak" in offered
    n.hwbreak = "hwbreak" in offered and t.breakpoints() is not None
    n.no_resumed = "no-resumed" in offered
    t.report_no_resumed = n.no_resumed
    # A fork child needs a pid of its own in thread ids (and D;PID to let it go): multiprocess.
    t.report_fork = "fork-events" in offered and n.multiprocess
    t.report_vfork = "vfork-events" in offered and n.multiprocess
    t.report_exec = "exec-events" in offered
    # Like gdbserver: without xmlRegisters=i386 the client uses gdb's built-in register layout.
    t.xml_registers = "i386" in n.client_features.get("xmlRegisters", "").split(",")


def _always(s: Session) -> bool:
    return True


def q_start_no_ack(s: Session, args: bytes) -> bytes:
    s.negotiated.no_ack = True
    return OK


def must_reply_empty(s: Session, args: bytes) -> bytes:
    return b""


def q_pass_signals(s: Session, args: bytes) -> bytes:
    s.target.pass_signals = _signal_set(args)
    return OK


@lru_cache(maxsize=16)
def _signal_set(args: bytes) -> frozenset[int]:
    """gdb sends the same two QPassSignals lists around every breakpoint hit."""
    return frozenset(_signal_list(args))


def q_program_signals(s: Session, args: bytes) -> bytes:
    s.negotiated.program_signals = frozenset(_signal_list(args))
    s.target.program_signals = s.negotiated.program_signals
    return OK


# gdb's numbers as gdb writes them (lowercase hex, no leading zero) -> Linux's (0: none): a
# QProgramSignals list has ~150 of them, each parsed and mapped by two calls otherwise.
_FROM_GDB_HEX = {b"%x" % gdb: signals.from_gdb(gdb) or 0 for gdb in range(256)}


def _signal_list(args: bytes) -> list[int]:
    out = []
    known = _FROM_GDB_HEX.get
    for item in args.lstrip(b":").split(b";"):
        if item:
            host = known(item)
            if host is None:
                host = signals.from_gdb(int(item, 16))  # another spelling
            if host:
                out.append(host)
    return out


def question(s: Session, args: bytes) -> bytes:
    if s.nonstop.on:
        return question_non_stop(s)
    status = s.status
    if status.last_stop is not None and status.last_reply is not None:
        if status.last_stop.pid in s.target.processes or not s.target.alive():
            return status.last_reply
    event = s.initial_stop()
    if event is None:
        return b"W00" if status.last_reply is None else status.last_reply
    status.last_stop = event
    s.selected.event = event.tid
    return s.stop_reply(event)


# --- registers -------------------------------------------------------------------


def read_registers(s: Session, args: bytes) -> bytes:
    _, tid = with_thread_suffix(s, args)
    return s.target.read_registers(tid).hex().encode()


def write_registers(s: Session, args: bytes) -> bytes:
    args, tid = with_thread_suffix(s, args)
    data = bytes.fromhex(args.decode("ascii"))
    s.target.write_registers(tid, data)
    return OK


def with_thread_suffix(s: Session, args: bytes) -> tuple[bytes, int]:
    """lldb's ';thread:TID;' suffix names the thread instead of Hg."""
    head, sep, rest = args.partition(b";thread:")
    if sep:
        return head, int(rest.rstrip(b";"), 16)
    return args, s.current_tid()


def read_register(s: Session, args: bytes) -> bytes:
    args, tid = with_thread_suffix(s, args)
    req = g.parse(g.ReadRegister, args)
    value = s.target.read_register(tid, req.regnum)
    if value is None:
        return E01
    return value.hex().encode()


def write_register(s: Session, args: bytes) -> bytes:
    args, tid = with_thread_suffix(s, args)
    req = g.parse(g.WriteRegister, args)
    if not s.target.write_register(tid, req.regnum, req.value):
        return E01
    _no_syscall_restart(s, tid, req.regnum)
    return OK


def _no_syscall_restart(s: Session, tid: int, regnum: int) -> None:
    """A new PC for a thread stopped inside a system call: unless orig_rax/orig_eax is -1
    the kernel restarts the call on resume, moving the new PC back over a syscall
    instruction. gdb writes -1 itself after the PC; lldb does not (lldb-server's own
    memory allocation avoids it). A later write of orig_rax still wins, and
    QRestoreRegisterState/G put the saved value back."""
    pid = s.target.pid_of(tid)
    if pid is None:
        return
    arch = s.target.arch(pid)
    if regnum != arch.by_name(arch.pc).regnum:
        return
    orig = next((r for r in arch.regs if r.name in ("orig_rax", "orig_eax")), None)
    if orig is None:
        return
    minus_one = b"\xff" * orig.size
    if s.target.read_register(tid, orig.regnum) not in (None, minus_one):
        s.target.write_register(tid, orig.regnum, minus_one)


# --- memory ----------------------------------------------------------------------


_READS = g.results_of(g.ReadMemory)  # parse's own results: a repeated `m` (gdb's stack words) is one look-up


def read_memory(s: Session, args: bytes) -> bytes:
    req = _READS.get(args)
    if req is None:
        req = g.parse(g.ReadMemory, args)
    length = req.length if req.length <= PACKET_SIZE // 2 else PACKET_SIZE // 2  # min(), without its call
    if length == 0:
        return b""
    target = s.target
    t = target.threads.get(s.selected.general.tid)  # current_pid's first answer, without its call
    pid = t.pid if t is not None else s.current_pid()
    text = hexlify(target.read_memory(pid, req.addr, length))  # bytes, no str between
    if len(text) <= DIRECT:  # a few words (gdb's stack reads at every step): encode frames it at once
        return text
    if len(text) >= 2 * BULK_READ:
        _read_next(s, b"m", req.addr + len(text) // 2, args)
    return ready_reply(b"", text, text, ascii=True)  # hex: nothing to escape, ASCII


def _read_next(s: Session, letter: bytes, addr: int, args: bytes) -> None:
    """A bulk read's next part: the same packet at ADDR, with the length as the client sent it."""
    s.read_next = b"%s%x,%s" % (letter, addr, args.partition(b",")[2])


def binary_read(s: Session, args: bytes) -> bytes:
    """`x ADDR,LEN`: the bytes themselves, half the wire of `m`'s hex.

    Two clients, two forms. gdb 16 (once the stub offers `binary-upload+`) wants `b` and the data,
    `b` alone for nothing read; lldb probes with `x0,0` and wants `OK`, then the bare data. gdb
    offers nothing for it, but every gdb that sends `x` offers `QThreadOptions+` (gdb 14+) and
    `error-message+` (gdb 15+), which lldb never does. The reply is cut where its escaped form
    would overflow PacketSize (a short read is allowed)."""
    req = g.parse(g.ReadMemory, args)
    offered = s.negotiated.client_features
    gdb_form = offered.get("error-message") == "+" or offered.get("QThreadOptions") == "+"  # no generator per read
    if req.length == 0:
        return b"b" if gdb_form else OK
    data = s.target.read_memory(s.current_pid() if s.target.threads else s.target.pid, req.addr,
                                req.length if req.length <= PACKET_SIZE else PACKET_SIZE)
    if not data:
        return E08 if not gdb_form else E01
    head = b"b" if gdb_form else b""
    if len(data) < DIRECT and 2 * len(data) < PACKET_SIZE:
        # A few words (gdb 16's stack reads at every step), whole even if every byte needs an
        # escape: encode escapes and frames it at once, without fitted_count's set-up.
        return head + data
    reply, count = fitted_count(head, data, PACKET_SIZE - len(head))
    if count >= BULK_READ:
        _read_next(s, b"x", req.addr + count, args)
    return reply


def write_memory(s: Session, args: bytes) -> bytes:
    req = g.parse(g.WriteMemory, args)
    if len(req.data) != req.length:
        return E01
    s.target.write_memory(s.current_pid(), req.addr, req.data)
    return OK


def write_binary(s: Session, args: bytes) -> bytes:
    req = g.parse(g.WriteBinary, args)
    if len(req.data) != req.length:
        return E01
    if req.length:
        s.target.write_memory(s.current_pid(), req.addr, req.data)
    return OK


# --- breakpoints: Z/z live in breakpoints.py (conditions, debug registers) -------


# --- threads ---------------------------------------------------------------------


def set_thread(s: Session, args: bytes) -> bytes:
    if len(args) < 2:
        return E01
    which, ptid = chr(args[0]), s.parse_thread(args[1:])
    if ptid.tid > 0 and ptid.tid not in s.target.threads:
        return E01
    if which == "g":
        s.selected.general = ptid
    elif which == "c":
        s.selected.resume = ptid
    else:
        return E01
    return OK


def thread_alive(s: Session, args: bytes) -> bytes:
    ptid = s.parse_thread(args)
    return OK if ptid.tid in s.target.threads else E01


def current_thread(s: Session, args: bytes) -> bytes:
    tid = s.current_tid()
    pid = s.target.pid_of(tid) or s.target.pid
    return b"QC" + s.format_thread(pid, tid)


def first_thread_info(s: Session, args: bytes) -> bytes:
    ids = [s.format_thread(pid, tid) for pid, tid in s.target.thread_ids()]
    return b"m" + b",".join(ids) if ids else b"l"


def next_thread_info(s: Session, args: bytes) -> bytes:
    return b"l"


def attached(s: Session, args: bytes) -> bytes:
    pid = int(args.lstrip(b":"), 16) if args.lstrip(b":") else s.target.pid
    if pid not in s.target.processes:
        return E01
    return b"0" if s.target.is_launched(pid) else b"1"


def empty(s: Session, args: bytes) -> bytes:
    return b""


# --- resuming --------------------------------------------------------------------


def _resume_all(s: Session, kind: str, sig: int, addr: bytes) -> bytes | None:
    target = s.target
    if not target.threads:
        return E01
    chosen = s.selected.resume.tid
    tid = s.current_tid() if chosen <= 0 else chosen
    if tid not in target.threads:
        return E01
    if addr:
        target.set_pc(target.threads[tid], int(addr, 16))
    if kind == "s":
        actions = {tid: ResumeAction("s", sig)}
    else:
        actions = {t: ResumeAction("c", sig if t == tid else 0) for t in target.threads}
    s.resume(actions)
    return None


def cont(s: Session, args: bytes) -> bytes | None:
    return _resume_all(s, "c", 0, args)


def step(s: Session, args: bytes) -> bytes | None:
    return _resume_all(s, "s", 0, args)


def _host_signal(text: bytes) -> int:
    host = signals.from_gdb(int(text, 16))
    if host is None:
        raise ValueError("unknown signal")
    return host


def cont_signal(s: Session, args: bytes) -> bytes | None:
    sig, _, addr = args.partition(b";")
    return _resume_all(s, "c", _host_signal(sig), addr)


def step_signal(s: Session, args: bytes) -> bytes | None:
    sig, _, addr = args.partition(b";")
    return _resume_all(s, "s", _host_signal(sig), addr)


def vcont_query(s: Session, args: bytes) -> bytes:
    return b"vCont;c;C;t;s;S;r"  # gdbserver's order


# vCont's plan (what each thread does) by what it depends on: the packet, the target's pid,
# the event thread ("any thread") and the threads there are. gdb sends the same few
# packets over and over (`vCont;s:p1f.1f;c` per stepi); each is worked out once.
# The plan also holds the actions as the dict target.resume takes (read, never changed there).
_PlanKey = tuple[bytes, int, int, tuple[int, ...]]
_Plan = tuple[tuple[tuple[int, ResumeAction], ...], tuple[int, ...], dict[int, ResumeAction]]
_PLANS: dict[_PlanKey, _Plan] = {}


def _vcont_plan(s: Session, args: bytes, key: _PlanKey) -> _Plan:
    """(thread, action) pairs in the order gdb named them, the threads to stop ('t'), and the
    pairs as a dict; worked out for KEY, which vcont found no plan for."""
    target = s.target
    chosen: dict[int, ResumeAction] = {}
    to_stop: list[int] = []
    for act in g.parse_vcont(args, target.pid):
        for tid in s.threads_matching(act.thread):
            if tid in chosen or tid in to_stop:
                continue  # the leftmost action that names a thread wins
            if act.kind == "t":
                to_stop.append(tid)
                continue
            sig = _host_signal(b"%x" % act.signal) if act.kind in "CS" else 0
            kind = act.kind.lower()
            chosen[tid] = ResumeAction(kind, sig, act.start, act.end)
    plan = (tuple(chosen.items()), tuple(to_stop), chosen)
    if len(_PLANS) >= 64:  # range steps (`r`) each have their own: keep it bounded
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


def vcont(s: Session, args: bytes) -> bytes | None:
    target = s.target
    key = (args, target.pid, s.selected.event, tuple(target.threads))
    plan = _PLANS.get(key)
    if plan is None:
        plan = _vcont_plan(s, args, key)
    actions, stops, chosen = plan
    if s.nonstop.on:
        # Non-stop: only threads the client sees as stopped resume; the reply is OK
        # at once and stops come later as notifications.
        # Nor a thread whose stop is still in the notification queue: the client
        # has not seen it (a wildcard resume sent meanwhile), as gdbserver does.
        queued = s.nonstop.queue.threads()
        wanted = {t: a for t, a in actions if not s.target.is_running(t) and t not in queued}
        if stops:
            s.target.stop_threads(list(stops))
        if wanted:
            s.resume(wanted)
        s.status.running = s.target.running
        return OK
    if not actions:
        return E01
    s.status.running = True  # s.resume, without its call
    target.resume(chosen)
    return None


# --- ending ----------------------------------------------------------------------


def kill(s: Session, args: bytes) -> bytes | None:
    s.target.kill()
    if not s.negotiated.extended:
        s.status.finished = True
        raise SessionEnd("killed")
    return None


def vkill(s: Session, args: bytes) -> bytes:
    pid = int(args.lstrip(b";"), 16) if args.strip(b";") else s.target.pid
    if pid not in s.target.processes:
        return E01
    s.target.kill(pid)
    s.status.last_stop = None
    s.status.last_reply = None
    return OK


def detach(s: Session, args: bytes) -> bytes:
    pid: int | None = None
    if args.startswith(b";"):
        pid = int(args[1:], 16)
        if pid not in s.target.processes:
            return E01
    elif len(s.target.processes) > 1 and (last := s.status.last_stop) is not None and \
            last.kind in (StopKind.FORK, StopKind.VFORK) and last.child_pid in s.target.processes:
        # Plain 'D' right after a fork stop (gdb with multiprocess turned off on its side):
        # gdb is letting the new child go, not everything.
        pid = last.child_pid
    s.target.detach(pid)
    if not s.target.alive() and not s.negotiated.extended:
        s.status.finished = True
    return OK


HANDLERS: dict[str, Handler] = {
    "qSupported": q_supported,
    "QStartNoAckMode": q_start_no_ack,
    "vMustReplyEmpty": must_reply_empty,
    "QPassSignals": q_pass_signals,
    "QProgramSignals": q_program_signals,
    "?": question,
    "g": read_registers,
    "G": write_registers,
    "p": read_register,
    "P": write_register,
    "m": read_memory,
    "x": binary_read,
    "M": write_memory,
    "X": write_binary,
    "H": set_thread,
    "T": thread_alive,
    "qC": current_thread,
    "qfThreadInfo": first_thread_info,
    "qsThreadInfo": next_thread_info,
    "qAttached": attached,
    "qOffsets": empty,
    "qTStatus": empty,
    "c": cont,
    "s": step,
    "C": cont_signal,
    "S": step_signal,
    "vCont?": vcont_query,
    "vCont": vcont,
    "k": kill,
    "vKill": vkill,
    "D": detach,
}

FEATURES: list[Feature] = [
    ("QPassSignals+", _always),
    ("QProgramSignals+", _always),
    ("QStartNoAckMode+", _always),
    ("multiprocess+", lambda s: s.negotiated.multiprocess),
    ("swbreak+", lambda s: s.negotiated.swbreak),
    ("hwbreak+", lambda s: s.negotiated.hwbreak),
    ("fork-events+", lambda s: s.target.report_fork),
    ("vfork-events+", lambda s: s.target.report_vfork),
    ("exec-events+", lambda s: s.target.report_exec),
    ("vContSupported+", _always),
    ("binary-upload+", _always),
]
