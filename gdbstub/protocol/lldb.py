"""lldb's extensions to the remote protocol (lldb/docs/resources/lldbgdbremote.md).

lldb works with plain RSP, but it probes for these first and uses them to
be fast and complete: host and process facts, memory regions for unwinding,
a binary memory read, thread lists in stop replies, all threads' stop info
in one JSON packet, and ';thread:TID;' suffixes instead of Hg.
"""

from __future__ import annotations

import os

from ..arch.lldbxml import lldb_target_xml, register_info
from ..hints import TYPE_CHECKING
from ..hints import signal as host_signal
from ..target.base import StopEvent, StopKind
from ..target.linux import inferior_syscall, procfs, svr4
from . import packets, signals
from .session import E01, OK, Feature, Handler, XferObject
from .xfer import target_description

if TYPE_CHECKING:
    from .session import Session

TRIPLES = {8: "x86_64-pc-linux-gnu", 4: "i386-pc-linux-gnu"}


def _hex(text: str) -> str:
    return text.encode().hex()


def _pairs(items: list[tuple[str, str | int]]) -> bytes:
    """lldb's 'key:value;' replies; ints in hex as lldb reads them."""
    out = []
    for key, value in items:
        out.append(f"{key}:{value:x};" if isinstance(value, int) else f"{key}:{value};")
    return "".join(out).encode()


def _pid(s: Session) -> int:
    return s.current_pid() if s.target.threads else s.target.pid


def _word(s: Session) -> int:
    return s.target.arch(_pid(s)).word


# --- negotiation -----------------------------------------------------------------


def thread_suffix_supported(s: Session, args: bytes) -> bytes:
    s.lldb.thread_suffix = True
    return OK


def list_threads_in_stop_reply(s: Session, args: bytes) -> bytes:
    s.lldb.list_threads_in_stop_reply = True
    return OK


def enable_error_strings(s: Session, args: bytes) -> bytes:
    s.lldb.error_strings = True
    return OK


def host_info(s: Session, args: bytes) -> bytes:
    uname = os.uname()
    return _pairs([
        ("triple", _hex(TRIPLES[8])),
        ("ptrsize", 8),
        ("endian", "little"),
        ("ostype", "linux"),
        ("vendor", "pc"),
        ("os_version", uname.release.split("-")[0]),
        ("os_build", _hex(uname.release)),
        ("os_kernel", _hex(uname.version)),
        ("hostname", _hex(uname.nodename)),
        # x86 debug registers trap after the access: lldb must not re-execute it.
        ("watchpoint_exceptions_received", "after"),
    ])


def process_info(s: Session, args: bytes) -> bytes:
    pid = _pid(s)
    if pid not in s.target.processes:
        return E01
    ids = procfs.read_ids(pid)
    word = s.target.arch(pid).word
    return _pairs([
        ("pid", ids.pid),
        ("parent-pid", ids.ppid),
        ("real-uid", ids.uid),
        ("real-gid", ids.gid),
        ("effective-uid", ids.euid),
        ("effective-gid", ids.egid),
        ("triple", _hex(TRIPLES.get(word, TRIPLES[8]))),
        ("ostype", "linux"),
        ("endian", "little"),
        ("ptrsize", word),
    ])


# --- memory ----------------------------------------------------------------------


def memory_region_info(s: Session, args: bytes) -> bytes:
    """qMemoryRegionInfo:ADDR from /proc/PID/maps; a hole is a region without permissions."""
    text = args.lstrip(b":")
    if not text:
        return E01
    addr = int(text, 16)
    limit = 1 << (8 * _word(s))
    if addr >= limit:
        return E01
    region = procfs.region_at(procfs.read_maps(_pid(s)), addr, limit)
    items: list[tuple[str, str | int]] = [("start", region.start), ("size", region.end - region.start)]
    m = region.mapping
    if m is not None:
        perms = "r" * m.readable + "w" * m.writable + "x" * m.executable
        items.append(("permissions", perms))
        if m.path:
            items.append(("name", _hex(m.path)))
    return _pairs(items)


def file_load_address(s: Session, args: bytes) -> bytes:
    """qFileLoadAddress:HEXPATH: the lowest address where the file with exactly that path (as
    /proc/PID/maps names it) is mapped; lldb-server's errors: E43 no process, E44 no path,
    E45 not mapped (or not a hex path)."""
    if not s.target.threads:
        return b"E43"
    text = args.lstrip(b":")
    if not text:
        return b"E44"
    try:
        path = bytes.fromhex(text.decode("ascii")).decode("utf-8", "surrogateescape")
    except ValueError:
        return b"E45"
    starts = [m.start for m in procfs.read_maps(_pid(s)) if m.path == path]
    return b"%016x" % min(starts) if starts else b"E45"


def working_dir(s: Session, args: bytes) -> bytes:
    """qGetWorkingDir: where programs start (QSetWorkingDir's choice, else the stub's own
    directory), hex-encoded, as lldb-server answers."""
    cwd = s.launcher.cwd if s.launcher is not None and s.launcher.cwd else os.getcwd()
    return cwd.encode("utf-8", "surrogateescape").hex().encode()


def shlib_info_addr(s: Session, args: bytes) -> bytes:
    """qShlibInfoAddr: where the program's DT_DEBUG entry keeps its pointer to r_debug.

    lldb reads that pointer and then follows ld.so's rendezvous (r_debug's state, the
    svr4 list). Without this answer lldb takes the svr4 list's main-lm (gdbserver's
    main link_map) for this address, misreads the state and misses libraries.
    """
    pid = _pid(s)
    try:
        info = svr4.elf_info(pid)
        dynamic = svr4.dynamic_address(info, svr4.parse_auxv(s.target.auxv(pid), info.word))
    except svr4.NoDynamicSection:
        return E01  # a static program: lldb has nothing to follow
    dyn = svr4.LAYOUTS[info.word].dyn
    step = dyn.sizeof()
    data = s.target.read_memory(pid, dynamic, max(info.dynamic_size, step))
    for off in range(0, len(data) - step + 1, step):
        entry = dyn.parse(data[off : off + step])
        if entry.d_tag == svr4.DT_NULL:
            break
        if entry.d_tag == svr4.DT_DEBUG:
            return b"%x" % (dynamic + off + info.word)  # d_un follows the word-sized d_tag
    return E01


# --- registers ------------------------------------------------------------------


def _features(s: Session, annex: str) -> bytes:
    """target.xml: lldb's flavour (register sets, rflags) for lldb, gdbserver's text for gdb.

    lldb asks QThreadSuffixSupported before it reads target.xml; gdb never sends it."""
    if not s.lldb.thread_suffix:
        return target_description(s, annex)
    if annex != "target.xml":
        raise KeyError(annex)
    return lldb_target_xml(s.target.arch(_pid(s))).encode()


OBJECTS = {"features": XferObject(_features)}


def register_info_n(s: Session, args: bytes) -> bytes:
    """qRegisterInfoN: register N's description, E45 past the last (lldb-server's answers). An lldb
    with XML support reads target.xml instead and never asks."""
    try:
        regnum = int(args, 16)
    except ValueError:
        return E01
    info = register_info(s.target.arch(_pid(s)), regnum)
    return b"E45" if info is None else info.encode()


# --- memory for expressions ---------------------------------------------------------


def allocate_memory(s: Session, args: bytes) -> bytes:
    """_MSIZE,PERMS: an mmap in the program, made by a stopped thread (lldb-server's way).
    Without it lldb calls mmap itself by writing the PC of a thread, often one blocked in
    a system call."""
    size_s, sep, perms = args.partition(b",")
    if not sep or s.status.running:
        return E01
    try:
        size = int(size_s, 16)
        addr = inferior_syscall.allocate(s.target, s.current_tid(), size, perms.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return E01
    s.lldb.allocations[addr] = size  # _m names only the address
    return b"%x" % addr


def deallocate_memory(s: Session, args: bytes) -> bytes:
    """_mADDR: munmap what _M gave at ADDR."""
    try:
        addr = int(args, 16)
    except ValueError:
        return E01
    allocations = s.lldb.allocations
    if addr not in allocations or s.status.running:
        return E01
    inferior_syscall.deallocate(s.target, s.current_tid(), addr, allocations.pop(addr))
    return OK


# --- threads ---------------------------------------------------------------------


def _stop_reason(event: StopEvent) -> tuple[str | None, str | None]:
    """(lldb reason, description) for a thread's last stop."""
    if event.kind is not StopKind.SIGNAL:
        return None, None
    if event.reason in ("swbreak", "hwbreak"):
        return "breakpoint", None
    if event.reason in ("watch", "rwatch", "awatch"):
        # The same description lldb makes of a gdb-style 'watch:ADDR' key: address, slot unknown.
        return "watchpoint", f"{event.address} {0xFFFFFFFF}"
    return "signal", None


def _thread_pcs(s: Session) -> tuple[list[int], list[int]]:
    tids, pcs = [], []
    for _, tid in s.target.thread_ids():
        t = s.target.threads[tid]
        try:
            pcs.append(s.target.get_pc(t))
        except OSError:
            continue
        tids.append(tid)
    return tids, pcs


def _thread_event(s: Session, tid: int) -> StopEvent | None:
    """The stop a thread has to show lldb: the reported one, or a breakpoint hit it keeps.

    lldb-server stops every thread at once and each keeps its own reason; all-stop
    here reports one thread's event and keeps the others pending. lldb must see those
    hits now (it counts each, and steps each thread off the breakpoint, which drops
    the pending event: it is not reported twice). Other kinds of pending events wait
    for their turn, as they do for gdb.
    """
    last = s.status.last_stop
    if last is not None and last.tid == tid and last.kind is StopKind.SIGNAL:
        return last
    pending = s.target.pending_event(tid)
    if pending is not None and pending.kind is StopKind.SIGNAL and pending.reason == "swbreak":
        return pending
    return None


def _thread_entry(s: Session, pid: int, tid: int) -> dict[str, object]:
    """One thread in jstopinfo / jThreadsInfo: a signal and reason only when it has a stop."""
    entry: dict[str, object] = {"tid": tid}
    name = s.target.thread_name(pid, tid)
    if name:
        entry["name"] = name
    event = _thread_event(s, tid)
    if event is not None:
        reason, description = _stop_reason(event)
        entry["signal"] = signals.to_gdb(event.signal)
        if reason is not None:
            entry["reason"] = reason
        if description is not None:
            entry["description"] = description
    return entry


def _json(value: object) -> bytes:
    import json  # lldb's packets only: gdb's sessions never pay for its import

    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def stop_reply_threads(s: Session, event: StopEvent) -> bytes:
    """With QListThreadsInStopReply: every thread, its PC and its stop reason, saving
    lldb a round trip each (jstopinfo: how lldb learns of simultaneous hits)."""
    if not s.lldb.list_threads_in_stop_reply or event.kind is StopKind.THREAD_EXITED:
        return b""
    tids, pcs = _thread_pcs(s)
    if not tids:
        return b""
    width = 2 * s.target.arch(event.pid).word
    parts = [b"threads:%s;" % b",".join(b"%x" % t for t in tids)]
    infos = [_thread_entry(s, pid, tid) for pid, tid in s.target.thread_ids() if tid in tids]
    parts.append(b"jstopinfo:%s;" % _json(infos).hex().encode())
    parts.append(b"thread-pcs:%s;" % b",".join(b"%0*x" % (width, pc) for pc in pcs))
    name = s.target.thread_name(event.pid, event.tid)
    if name:
        parts.append(b"hexname:%s;" % name.encode().hex().encode())
    # The stub knows an int3 of ours ran; watchpoints already travel as gdb's 'watch:ADDR'.
    if _stop_reason(event)[0] == "breakpoint":
        parts.append(b"reason:breakpoint;")
    parts.append(_general_registers(s, event))
    return b"".join(parts)


def _general_registers(s: Session, event: StopEvent) -> bytes:
    """All registers of the user area (one GETREGS), as lldb-server sends: no 'p' per register."""
    try:
        arch = s.target.arch(event.pid)
        out = []
        for reg in arch.regs:
            if reg.buffer != "user" or reg.name in arch.expedite:
                continue
            value = s.target.read_register(event.tid, reg.regnum)
            if value is not None:
                out.append(b"%02x:%s;" % (reg.regnum, value.hex().encode()))
        return b"".join(out)
    except OSError:
        return b""


def threads_info(s: Session, args: bytes) -> bytes:
    """jThreadsInfo: every thread's name, stop reason and expedited registers as JSON."""
    out = []
    for pid, tid in s.target.thread_ids():
        entry = _thread_entry(s, pid, tid)
        try:
            entry["registers"] = {str(num): value.hex() for num, value in s.target.expedite(tid)}
        except OSError:
            pass
        out.append(entry)
    return _json(out)


def thread_stop_info(s: Session, args: bytes) -> bytes:
    """qThreadStopInfoTID: one thread's stop as a T reply (signal 0 when it has none)."""
    try:
        tid = int(args, 16)
    except ValueError:
        return E01
    pid = s.target.pid_of(tid)
    if pid is None:
        return E01
    event = _thread_event(s, tid) or StopEvent(StopKind.SIGNAL, pid, tid, signal=0)
    return s.stop_reply(event)


# --- registers with ';thread:TID;' ---------------------------------------------------


def save_register_state(s: Session, args: bytes) -> bytes:
    """QSaveRegisterState: lldb keeps a thread's registers around an expression call."""
    _, tid = packets.with_thread_suffix(s, args)
    data = s.target.read_registers(tid)
    saved = s.lldb.saved_registers
    save_id = max(saved, default=0) + 1
    saved[save_id] = (tid, data)
    return b"%x" % save_id


def restore_register_state(s: Session, args: bytes) -> bytes:
    head, tid = packets.with_thread_suffix(s, args.lstrip(b":"))
    saved = s.lldb.saved_registers.pop(int(head, 16), None)
    if saved is None:
        return E01
    s.target.write_registers(tid, saved[1])
    return OK


# --- ending ----------------------------------------------------------------------


def kill(s: Session, args: bytes) -> bytes | None:
    """lldb waits for a reply to 'k' (lldb-server sends X09); gdb never reads one."""
    if not s.lldb.thread_suffix:
        return packets.kill(s, args)
    pid = s.target.pid
    s.target.kill()
    if not s.negotiated.extended:
        s.status.finished = True
    signo = signals.to_gdb(int(host_signal.SIGKILL))
    return b"X%02x" % signo + (b";process:%x" % pid if s.negotiated.multiprocess else b"")


HANDLERS: dict[str, Handler] = {
    "QThreadSuffixSupported": thread_suffix_supported,
    "QListThreadsInStopReply": list_threads_in_stop_reply,
    "QEnableErrorStrings": enable_error_strings,
    "qFileLoadAddress": file_load_address,
    "qGetWorkingDir": working_dir,
    "qHostInfo": host_info,
    "qProcessInfo": process_info,
    "qMemoryRegionInfo": memory_region_info,
    "qShlibInfoAddr": shlib_info_addr,
    "qRegisterInfo": register_info_n,
    "_M": allocate_memory,
    "_m": deallocate_memory,
    "jThreadsInfo": threads_info,
    "qThreadStopInfo": thread_stop_info,
    "QSaveRegisterState": save_register_state,
    "QRestoreRegisterState": restore_register_state,
    "k": kill,
}

# lldb learns of these by probing, not from qSupported.
FEATURES: list[Feature] = []

STOP_EXTRAS = [stop_reply_threads]
