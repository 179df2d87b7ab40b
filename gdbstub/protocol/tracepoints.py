"""Tracepoint packets: definitions (QTinit, QTDP, QTDPsrc, QTDV, QTro), the run (QTStart,
QTStop, qTStatus, qTP, qTV), upload to a client that connects later (qTfP/qTsP, qTfV/qTsV),
and looking at frames (QTFrame; g, p and m answer from the selected frame;
qXfer:traceframe-info). The state itself lives in the target's Tracer (gdbstub/trace/)."""

from __future__ import annotations

from ..hints import TYPE_CHECKING
from ..trace import tfile
from ..trace.model import (
    DEFAULT_BUFFER_SIZE,
    MAX_BUFFER_SIZE,
    MAX_SOURCE,
    MIN_BUFFER_SIZE,
    Frame,
    TraceError,
    parse_definition,
    parse_variable,
)
from . import grammar as g
from .session import E01, OK, PACKET_SIZE, Feature, Handler, XferObject

if TYPE_CHECKING:
    from ..trace.tracer import Tracer
    from .session import Session

MASK64 = (1 << 64) - 1

# Declared argument grammars (the variable-shaped ones, QTDP and its actions, are parsed in
# gdbstub/trace/model.py, since they are data the tracer keeps).
F = g.Field
# QTEnable:N:ADDR, QTDisable:N:ADDR, qTP:N:ADDR
TracepointRef: g.Grammar = (F("number", g.HEX, b":"), F("addr", g.HEX))
# QTDPsrc:N:ADDR:TYPE:START:LENGTH:HEX
SourcePiece: g.Grammar = (F("number", g.HEX, b":"), F("addr", g.HEX, b":"), F("type", g.BYTES, b":"),
                          F("start", g.HEX, b":"), F("length", g.HEX, b":"), F("text", g.HEX_BYTES))
# qTBuffer:OFFSET,LENGTH
BufferWindow: g.Grammar = (F("offset", g.HEX, b","), F("length", g.HEX))
# qTV:N
VariableRef: g.Grammar = (F("number", g.HEX),)
# QTFrame:range:LO:HI and QTFrame:outside:LO:HI
AddressRange: g.Grammar = (F("lo", g.HEX, b":"), F("hi", g.HEX))


def tracer(s: Session) -> Tracer:
    return s.target.tracer


def _args(args: bytes) -> bytes:
    return args[1:] if args.startswith(b":") else args


# --- definitions ---------------------------------------------------------------------------


def qt_init(s: Session, args: bytes) -> bytes:
    if not s.target.processes:
        return E01
    tracer(s).init()
    return OK


def qt_dp(s: Session, args: bytes) -> bytes:
    args = _args(args)
    t = tracer(s)
    try:
        if args.startswith(b"-"):
            number_s, addr_s, actions = args[1:].split(b":", 2)
            more = actions.endswith(b"-")
            tp = t.continuation(int(number_s, 16), int(addr_s, 16))
            tp.add_actions(actions[:-1] if more else actions)
            return OK
        tp, _ = parse_definition(args)
    except TraceError:
        return E01
    t.define(tp)
    return OK


def qt_dp_src(s: Session, args: bytes) -> bytes:
    req = g.parse(SourcePiece, _args(args))
    tp = tracer(s).continuation(req.number, req.addr)
    if len(req.text) != req.length or req.length > MAX_SOURCE:
        return E01
    if req.start and tp.sources and tp.sources[-1][0] == req.type:
        kind, text = tp.sources[-1]
        tp.sources[-1] = (kind, text + req.text)  # a long string comes in pieces
    else:
        tp.sources.append((req.type, req.text))
    return OK


def qt_dv(s: Session, args: bytes) -> bytes:
    try:
        tracer(s).define_variable(parse_variable(_args(args)))
    except TraceError:
        return E01
    return OK


def qt_ro(s: Session, args: bytes) -> bytes:
    regions = []
    for piece in _args(args).split(b":"):
        lo, _, hi = piece.partition(b",")
        regions.append((int(lo, 16), int(hi, 16)))
    tracer(s).readonly = regions
    return OK


def _enable(s: Session, args: bytes, enabled: bool) -> bytes:
    req = g.parse(TracepointRef, _args(args))
    tracer(s).set_enabled(req.number, req.addr, enabled)
    return OK


def qt_enable(s: Session, args: bytes) -> bytes:
    return _enable(s, args, True)


def qt_disable(s: Session, args: bytes) -> bytes:
    return _enable(s, args, False)


def qt_buffer(s: Session, args: bytes) -> bytes:
    """QTBuffer:size:N (-1: the default) and QTBuffer:circular:0|1."""
    key, _, value = _args(args).partition(b":")
    buf = tracer(s).buffer
    if key == b"circular":
        buf.circular = int(value, 16) != 0
        return OK
    if key == b"size":
        if tracer(s).running:
            return E01
        size = DEFAULT_BUFFER_SIZE if value == b"-1" else int(value, 16)
        if not MIN_BUFFER_SIZE <= size <= MAX_BUFFER_SIZE:
            return E01
        buf.size = size
        buf.clear()
        return OK
    return E01


def qt_notes(s: Session, args: bytes) -> bytes:
    t = tracer(s)
    for item in _args(args).split(b";"):
        if not item:
            continue
        key, _, value = item.partition(b":")
        text = bytes.fromhex(value.decode("ascii"))
        if key == b"user":
            t.user = text
        elif key == b"notes":
            t.notes = text
        elif key == b"tstop":
            t.stop_note = text
    return OK


def qt_disconnected(s: Session, args: bytes) -> bytes:
    tracer(s).disconnected = int(_args(args), 16) != 0
    return OK


# --- the run -----------------------------------------------------------------------------------


def qt_start(s: Session, args: bytes) -> bytes:
    if not s.target.threads:
        return E01
    tracer(s).start(s.current_pid())
    return OK


def qt_stop(s: Session, args: bytes) -> bytes:
    tracer(s).stop(b"tstop")  # the note (tstop NOTE) came in QTNotes before
    return OK


def qt_status(s: Session, args: bytes) -> bytes:
    t = tracer(s)
    if not t.running:
        t.lift()  # the int3s of a run that stopped at a hit
    return t.status()


def qt_p(s: Session, args: bytes) -> bytes:
    """Hits and buffer bytes of one tracepoint (hex, as the manual says; gdbserver 13 sends decimal)."""
    req = g.parse(TracepointRef, _args(args))
    tp = tracer(s).find(req.number, req.addr)
    if tp is None:
        return E01
    return b"V%x:%x" % (tp.hits, tp.usage)


def qt_v(s: Session, args: bytes) -> bytes:
    """A state variable: from the selected frame, else its value; unknown before the first run
    (after one, its last value, as gdbserver keeps it)."""
    req = g.parse(VariableRef, _args(args))
    t = tracer(s)
    frame = t.frame()
    if frame is not None:
        value = frame.variables.get(req.number)
    elif not t.running and t.stop_reason == b"tnotrun":
        value = None
    else:
        var = t.variables.get(req.number)
        value = (var.current() or 0) if var is not None else 0
    return b"U" if value is None else b"V%x" % (value & MASK64)


def qt_save(s: Session, args: bytes) -> bytes:
    """tsave -r: the stub writes gdb's trace file itself, at a path on its side."""
    t = tracer(s)
    path = bytes.fromhex(_args(args).decode("ascii")).decode("utf-8", "surrogateescape")
    pid = t.pid if t.pid in s.target.processes else s.target.pid
    arch = s.target.arch(pid)
    tfile.save(t, path, arch.g_size, arch.features_xml.encode())
    return OK


def qt_min_ftpi_len(s: Session, args: bytes) -> bytes:
    """Fast tracepoints take the same one-byte int3 as regular ones: any instruction will do."""
    return b"1"


# --- upload --------------------------------------------------------------------------------------


def _cursor(s: Session) -> dict[str, list[bytes]]:
    cursor = s.xfer_cache.get("trace-upload")
    if not isinstance(cursor, dict):
        cursor = {}
        s.xfer_cache["trace-upload"] = cursor
    return cursor


def _next(s: Session, key: str) -> bytes:
    pieces = _cursor(s).get(key) or []
    return pieces.pop(0) if pieces else b"l"


def qt_fp(s: Session, args: bytes) -> bytes:
    _cursor(s)["tp"] = [piece for tp in tracer(s).tracepoints for piece in tp.upload()]
    return _next(s, "tp")


def qt_sp(s: Session, args: bytes) -> bytes:
    return _next(s, "tp")


def qt_fv(s: Session, args: bytes) -> bytes:
    _cursor(s)["tv"] = [v.upload() for v in tracer(s).variables.values()]
    return _next(s, "tv")


def qt_sv(s: Session, args: bytes) -> bytes:
    return _next(s, "tv")


def qt_buffer_read(s: Session, args: bytes) -> bytes:
    """qTBuffer: the raw frames, for tsave."""
    req = g.parse(BufferWindow, _args(args))
    raw = tracer(s).buffer.raw()
    if req.offset == len(raw):
        return b"l"
    if req.offset > len(raw):
        return E01
    length = min(req.length, (PACKET_SIZE - 16) // 2)
    return raw[req.offset:req.offset + length].hex().encode()


# --- frames ----------------------------------------------------------------------------------------


def qt_frame(s: Session, args: bytes) -> bytes:
    t = tracer(s)
    args = _args(args)
    kind, _, rest = args.partition(b":")
    if kind == b"pc":
        pc = int(rest, 16)
        number = t.find_next(lambda f: f.address == pc)
    elif kind == b"tdp":
        tpnum = int(rest, 16)
        number = t.find_next(lambda f: f.tpnum == tpnum)
    elif kind in (b"range", b"outside"):
        req = g.parse(AddressRange, rest)
        inside = kind == b"range"
        number = t.find_next(lambda f: (req.lo <= f.address <= req.hi) == inside)
    else:
        number = int(args, 16)
        if number == 0xFFFFFFFF or args == b"-1":
            t.current = -1
            return OK
    frame = t.select(number) if number >= 0 else None
    if frame is None:
        return b"F-1"
    return b"F%xT%x" % (number, frame.tpnum)


def _frame_registers(s: Session, frame: Frame) -> bytes:
    """The frame's registers in g layout, hex: 'x' for what it did not collect, but the PC,
    which is the tracepoint's address (gdbserver guesses it the same way)."""
    if frame.registers is not None:
        return frame.registers.hex().encode()
    arch = s.target.arch(tracer(s).pid)
    out = []
    for reg in arch.regs:
        if reg.name == arch.pc:
            out.append(frame.address.to_bytes(reg.size, "little").hex().encode())
        else:
            out.append(b"xx" * reg.size)
    return b"".join(out)


def _read_register(s: Session, frame: Frame, regnum: int) -> bytes:
    arch = s.target.arch(tracer(s).pid)
    text = _frame_registers(s, frame)
    pos = 0
    for reg in arch.regs:
        if reg.regnum == regnum:
            return text[2 * pos:2 * (pos + reg.size)]
        pos += reg.size
    return E01


def _read_memory(s: Session, frame: Frame, args: bytes) -> bytes:
    req = g.parse(g.ReadMemory, args)
    length = min(req.length, PACKET_SIZE // 2)
    data = frame.read_memory(req.addr, length)
    if data:
        return data.hex().encode()
    if tracer(s).in_readonly(req.addr, length):
        return s.target.read_memory(tracer(s).pid, req.addr, length).hex().encode()
    return E01


def _traceframe_info(s: Session, annex: str) -> bytes:
    frame = tracer(s).frame()
    if frame is None:
        raise KeyError("no trace frame selected")
    lines = ["<traceframe-info>\n"]
    for addr, data in frame.memory:
        lines.append(f'<memory start="0x{addr:x}" length="0x{len(data):x}"/>\n')
    for number in frame.variables:
        lines.append(f'<tvar id="{number}"/>\n')
    lines.append("</traceframe-info>\n")
    return "".join(lines).encode()


def _while_frame(previous: Handler | None, in_frame: Handler) -> Handler:
    """Route a packet to ``in_frame`` while a trace frame is selected, else where it went."""

    def handler(s: Session, args: bytes) -> bytes | None:
        if s.target.tracer.current >= 0:
            return in_frame(s, args)
        return previous(s, args) if previous is not None else b""

    return handler


def _frame_g(s: Session, args: bytes) -> bytes:
    frame = tracer(s).frame()
    return E01 if frame is None else _frame_registers(s, frame)


def _frame_p(s: Session, args: bytes) -> bytes:
    frame = tracer(s).frame()
    regnum = g.parse(g.ReadRegister, args.partition(b";")[0]).regnum
    return E01 if frame is None else _read_register(s, frame, regnum)


def _frame_m(s: Session, args: bytes) -> bytes:
    frame = tracer(s).frame()
    return E01 if frame is None else _read_memory(s, frame, args)


def _refuse(s: Session, args: bytes) -> bytes:
    """Writes while looking at a frame: the frame is history (gdbserver refuses too)."""
    return E01


HANDLERS: dict[str, Handler] = {
    "QTinit": qt_init,
    "QTDP": qt_dp,
    "QTDPsrc": qt_dp_src,
    "QTDV": qt_dv,
    "QTro": qt_ro,
    "QTEnable": qt_enable,
    "QTDisable": qt_disable,
    "QTBuffer": qt_buffer,
    "QTNotes": qt_notes,
    "QTDisconnected": qt_disconnected,
    "QTStart": qt_start,
    "QTStop": qt_stop,
    "qTStatus": qt_status,
    "qTP": qt_p,
    "qTV": qt_v,
    "qTfP": qt_fp,
    "qTsP": qt_sp,
    "qTfV": qt_fv,
    "qTsV": qt_sv,
    "qTBuffer": qt_buffer_read,
    "QTFrame": qt_frame,
    "qTMinFTPILen": qt_min_ftpi_len,
    "QTSave": qt_save,
}

IN_FRAME: dict[str, Handler] = {
    "g": _frame_g,
    "p": _frame_p,
    "m": _frame_m,
    "G": _refuse,
    "P": _refuse,
    "M": _refuse,
    "X": _refuse,
}

OBJECTS: dict[str, XferObject] = {"traceframe-info": XferObject(_traceframe_info)}

# Offered on a target with a tracer (the registry declares them and tests for it: this module
# is imported by the first tracepoint packet, not by qSupported).
FEATURES: list[Feature] = [
    (name, lambda s: True)
    for name in ("ConditionalTracepoints+", "TraceStateVariables+", "TracepointSource+",
                 "InstallInTrace+", "EnableDisableTracepoints+", "QTBuffer:size+", "tracenz+", "FastTracepoints+",
                 "DisconnectedTracing+",
                 "qXfer:traceframe-info:read+")
]


def install(session: Session) -> None:
    """Called by the session's first tracepoint packet (the registry's stand-ins until then):
    the packets' own handlers replace the stand-ins, and g/p/m are routed to the selected frame
    (writes refused) while one is selected, which only QTFrame does."""
    tables = session.tables
    tables.handlers.update(HANDLERS)
    for name, in_frame in IN_FRAME.items():
        tables.handlers[name] = _while_frame(tables.handlers.get(name), in_frame)
    tables.objects.update(OBJECTS)
    session.close_hooks.append(lambda: _client_gone(session))


def _client_gone(s: Session) -> None:
    """A trace stops when its client leaves (disconnected tracing aside) and the frame is let go."""
    t = tracer(s)
    t.current = -1
    if t.running and not t.disconnected:
        t.stop(b"tdisconnected")
