"""qXfer:osdata:read: gdb's ``info os`` (processes, threads, process groups, cpus) from /proc,
as tables of items and named columns in gdbserver's XML form."""

from __future__ import annotations

import os
import pwd

from ..xmltext import xml_attr, xml_escape
from .session import Feature, Session, XferObject

Row = list[tuple[str, str]]


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _pids() -> list[int]:
    return sorted(int(name) for name in os.listdir("/proc") if name.isdigit())


def _comm(pid: int) -> str:
    """The name in /proc/PID/stat cut to TASK_COMM_LEN - 1 (kernel workers have longer ones
    now), as gdbserver shows it."""
    stat = _read(f"/proc/{pid}/stat")
    return stat[stat.find("(") + 1 : stat.rfind(")")][:15]


def _command(pid: int) -> str:
    """The command line, or for a kernel thread (none) its name in brackets, as gdbserver."""
    cmdline = _read(f"/proc/{pid}/cmdline").rstrip("\0").replace("\0", " ")
    return cmdline or f"[{_comm(pid)}]"


def _user(pid: int) -> str:
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return ""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _stat_fields(pid: int, tid: int | None = None) -> list[str]:
    path = f"/proc/{pid}/task/{tid}/stat" if tid is not None else f"/proc/{pid}/stat"
    stat = _read(path)
    close = stat.rfind(")")
    return stat[close + 2 :].split() if close > 0 else []


def _core(fields: list[str]) -> str:
    return fields[36] if len(fields) > 36 else ""


def _tids(pid: int) -> list[int]:
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return []


def processes() -> list[Row]:
    rows = []
    for pid in _pids():
        tids = _tids(pid)
        if not tids:
            continue
        cores = sorted({c for c in (_core(_stat_fields(pid, t)) for t in tids) if c}, key=int)
        rows.append([("pid", str(pid)), ("user", _user(pid)), ("command", _command(pid)),
                     ("cores", ",".join(cores))])
    return rows


def threads() -> list[Row]:
    rows = []
    for pid in _pids():
        command = _comm(pid)
        for tid in _tids(pid):
            rows.append([("pid", str(pid)), ("command", command), ("tid", str(tid)),
                         ("core", _core(_stat_fields(pid, tid)))])
    return rows


def procgroups() -> list[Row]:
    rows = []
    for pid in _pids():
        fields = _stat_fields(pid)
        if len(fields) > 2:
            rows.append([("pgid", fields[2]), ("leader command", _command(int(fields[2])) if fields[2] != "0"
                                                else ""), ("pid", str(pid)), ("command line", _command(pid))])
    rows.sort(key=lambda r: (int(r[0][1]), int(r[2][1])))
    return rows


def cpus() -> list[Row]:
    rows: list[Row] = []
    current: Row = []
    for line in _read("/proc/cpuinfo").splitlines():
        if not line.strip():
            if current:
                rows.append(current)
            current = []
            continue
        key, _, value = line.partition(":")
        current.append((key.strip(), value.strip()))
    if current:
        rows.append(current)
    return rows


TYPES = {
    "cpus": ("Listing of all cpus/cores on the system", "CPUs", cpus),
    "processes": ("Listing of all processes", "Processes", processes),
    "procgroups": ("Listing of all process groups", "Process groups", procgroups),
    "threads": ("Listing of all threads", "Threads", threads),
}


def _types() -> list[Row]:
    return [[("Type", name), ("Description", desc), ("Title", title)] for name, (desc, title, _) in TYPES.items()]


def document(kind: str, rows: list[Row]) -> bytes:
    out = ['<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "osdata.dtd">\n', f"<osdata type={xml_attr(kind)}>\n"]
    for row in rows:
        out.append("<item>\n")
        for name, value in row:
            out.append(f"<column name={xml_attr(name)}>{xml_escape(value)}</column>\n")
        out.append("</item>\n")
    out.append("</osdata>\n")
    return "".join(out).encode()


def _osdata(s: Session, annex: str) -> bytes:
    if not annex:
        return document("types", _types())
    entry = TYPES.get(annex)
    if entry is None:  # an empty object, as gdbserver answers: gdb says "Wrong osdata type?"
        return b""
    return document(annex, entry[2]())


OBJECTS: dict[str, XferObject] = {"osdata": XferObject(_osdata)}
FEATURES: list[Feature] = [("qXfer:osdata:read+", lambda s: True)]
