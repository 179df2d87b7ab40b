"""gdb's trace file format (`tsave -r`, QTSave: the stub writes the file on its side).

The same file gdb writes for a plain `tsave`: a header line, the register block size, the
status, the state variables and tracepoints in their upload form, the target description,
an empty line, the raw frames, and four zero bytes to end them. `target tfile` reads it back.
"""

from __future__ import annotations

from .tracer import Tracer

HEADER = b"\x7fTRACE0\n"
REASONS = (b"tunknown", b"tnotrun", b"tstop", b"tfull", b"tdisconnected", b"tpasscount", b"terror")


def status_line(t: Tracer) -> bytes:
    """gdb's `status` line (its own field order, which is not qTStatus's)."""
    reason = t.stop_reason if t.stop_reason in REASONS else b"tunknown"
    line = b"status %d;%s" % (int(t.running), reason)
    if reason == b"terror":
        line += b":" + t.error.hex().encode()
    elif reason == b"tstop":
        line += b":" + t.stop_note.hex().encode()
    buf = t.buffer
    line += b":%x;tframes:%x;tcreated:%x;tfree:%x;tsize:%x" % (
        t.stop_tpnum, len(buf.frames), buf.created, buf.free, buf.size)
    if t.disconnected:
        line += b";disconn:1"
    if buf.circular:
        line += b";circular:1"
    if t.start_time:
        line += b";starttime:%x" % t.start_time
    if t.stop_time:
        line += b";stoptime:%x" % t.stop_time
    if t.notes:
        line += b";notes:" + t.notes.hex().encode()
    if t.user:
        line += b";username:" + t.user.hex().encode()
    return line


def tracefile(t: Tracer, regblock_size: int, tdesc: bytes) -> bytes:
    lines = [HEADER + b"R %x" % regblock_size, status_line(t)]
    # gdb lists what it uploads newest first and writes it so: the same order reads back the same.
    lines += [b"tsv " + v.upload() for v in reversed(t.variables.values())]
    for tp in reversed(t.tracepoints):
        lines += [b"tp " + piece for piece in tp.upload()]
        lines.append(b"tp V%x:%x:%x:%x" % (tp.number, tp.address, tp.hits, tp.usage))
    lines += [b"tdesc " + line for line in tdesc.splitlines()]
    definitions = b"\n".join(lines) + b"\n\n"
    frames = b"".join(f.raw() for f in t.buffer.frames)
    return definitions + frames + b"\0\0\0\0"


def save(t: Tracer, path: str, regblock_size: int, tdesc: bytes) -> None:
    with open(path, "wb") as f:
        f.write(tracefile(t, regblock_size, tdesc))
