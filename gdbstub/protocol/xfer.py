"""qXfer objects: each is a document built on request and served in windows.

An object is listed in qSupported only when its ``available`` test passes, so
the stub never offers a document it cannot build.
"""

from __future__ import annotations

from ..hints import TYPE_CHECKING
from ..xmltext import xml_attr
from . import grammar as g
from .session import E01, Feature, Handler, XferObject

if TYPE_CHECKING:
    from .session import Session


def target_description(s: Session, annex: str) -> bytes:
    if annex != "target.xml":
        raise KeyError(annex)
    pid = s.current_pid() if s.target.threads else s.target.pid
    return s.target.arch(pid).features_xml.encode()


def _annex_pid(s: Session, annex: str) -> int:
    return int(annex, 16) if annex else (s.current_pid() if s.target.threads else s.target.pid)


def _auxv(s: Session, annex: str) -> bytes:
    return s.target.auxv(_annex_pid(s, annex))


def _exec_file(s: Session, annex: str) -> bytes:
    pid = _annex_pid(s, annex)
    try:
        return s.target.exec_file(pid).encode()
    except OSError:
        return f"/proc/{pid}/exe".encode()  # as gdbserver answers when the link is unreadable


def _threads(s: Session, annex: str) -> bytes:
    lines = ["<threads>\n"]
    for pid, tid in s.target.thread_ids():
        ident = s.format_thread(pid, tid).decode()
        attrs = f'id="{ident}"'
        core = s.target.thread_core(pid, tid)
        if core is not None:
            attrs += f' core="{core:x}"'
        name = s.target.thread_name(pid, tid)
        if name:
            attrs += f" name={xml_attr(name)}"
        handle = s.target.thread_handle(pid, tid)  # the pthread_t, as gdbserver's libthread_db gives
        if handle is not None:
            attrs += f' handle="{handle.hex()}"'
        lines.append(f"<thread {attrs}/>\n")
    lines.append("</threads>\n")
    return "".join(lines).encode()


OBJECTS: dict[str, XferObject] = {
    "features": XferObject(target_description),
    "auxv": XferObject(_auxv),
    "exec-file": XferObject(_exec_file),
    "threads": XferObject(_threads),
}


def window(document: bytes, offset: int, length: int) -> bytes:
    """One qXfer reply: 'm' with more to come, 'l' for the last piece."""
    piece = document[offset : offset + length]
    more = offset + length < len(document)
    return (b"m" if more else b"l") + piece


# Objects whose reads gdbserver refuses (E01) when they start past the end, by how far before
# the end that is (its handlers return -1 there; the others answer 'l' with nothing).
_END_SLACK = {"features": 0, "exec-file": 0, "siginfo": 1}


def q_xfer(s: Session, args: bytes) -> bytes:
    parts = args.lstrip(b":").split(b":", 3)
    if len(parts) < 3:
        return E01
    name, op = parts[0].decode("ascii", "replace"), parts[1]
    obj = s.tables.objects.get(name)
    if obj is None or not obj.available(s):
        return b""
    annex = parts[2].decode("utf-8", "replace")
    if op == b"read" and len(parts) == 4:
        req = g.parse(g.XferWindow, parts[3])
        cache_key = (name, annex)
        # gdb reads a document in windows: build it once per request series.
        if req.offset == 0 or s.xfer_cache.get("key") != cache_key:
            s.xfer_cache = {"key": cache_key, "doc": obj.read(s, annex)}
        doc = s.xfer_cache["doc"]
        assert isinstance(doc, bytes)
        slack = _END_SLACK.get(name)
        if slack is not None and req.offset > len(doc) - slack:
            return E01
        return window(doc, req.offset, req.length)
    if op == b"write" and obj.write is not None and len(parts) == 4:
        offset_s, _, data = parts[3].partition(b":")
        written = obj.write(s, annex, int(offset_s, 16), data)
        return b"%x" % written
    return b""


HANDLERS: dict[str, Handler] = {"qXfer": q_xfer}


def _features() -> list[Feature]:
    """qSupported entries for the objects above, offered as each one's own test says."""
    out: list[Feature] = []
    for name, obj in OBJECTS.items():
        out.append((f"qXfer:{name}:read+", obj.available))
        if obj.write is not None:
            out.append((f"qXfer:{name}:write+", obj.available))
    return out


FEATURES = _features()
