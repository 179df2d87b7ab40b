"""qXfer:osdata:read: gdb's ``info os`` (cpus, files, modules, msg, processes, procgroups,
semaphores, shm, sockets, threads) from /proc, as tables of items and named columns in
gdbserver's XML form, with gdbserver's columns and its rules for each row."""

from __future__ import annotations

import os
import pwd
import re
import time

from ..hints import Callable
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
    """gdbserver's short command of PID: the first word of the name in /proc/PID/stat, at most
    17 characters with its parentheses, without the first and the last (so a name cut to 15, and
    ``tmux: server`` gives ``tmux``); the pid itself when the process is gone."""
    stat = _read(f"/proc/{pid}/stat")  # never empty when it can be read
    if not stat:
        return str(pid)
    words = stat.split(None, 2)
    return words[1][:17][1:-1] if len(words) > 1 else ""


def _command(pid: int) -> str:
    """The command line, or for a kernel thread (none) its name in brackets, as gdbserver (each
    NUL a space, the last one too)."""
    cmdline = _read(f"/proc/{pid}/cmdline").replace("\0", " ")
    return cmdline or f"[{_comm(pid)}]"


def _user_name(uid: int) -> str:
    """gdbserver's user_from_uid: the name, empty for a uid with no entry."""
    try:
        return pwd.getpwuid(uid).pw_name[:31]
    except (KeyError, OverflowError):
        return ""


def _group_name(gid: int) -> str:
    import grp  # only the System V IPC tables name groups

    try:
        return grp.getgrgid(gid).gr_name[:31]
    except (KeyError, OverflowError):
        return ""


def _user(pid: int) -> str:
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return "?"
    return _user_name(uid)


def _stat_fields(pid: int, tid: int | None = None) -> list[str]:
    path = f"/proc/{pid}/task/{tid}/stat" if tid is not None else f"/proc/{pid}/stat"
    stat = _read(path)
    close = stat.rfind(")")
    return stat[close + 2 :].split() if close > 0 else []


def _core(fields: list[str]) -> str:
    return fields[36] if len(fields) > 36 else ""


def _numbered(path: str) -> list[int]:
    """The numeric entries of directory PATH in order (tasks, file descriptors); none when it
    cannot be read (another user's process, or one gone), which gdbserver skips."""
    try:
        return sorted(int(name) for name in os.listdir(path) if name.isdigit())
    except OSError:
        return []


def _tids(pid: int) -> list[int]:
    return _numbered(f"/proc/{pid}/task")


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
    """Processes by group (getpgid; none for the kernel's threads, in group 0), each group's
    leader first, with the leader's short command, as gdbserver."""
    members = []
    for pid in _pids():
        try:
            pgid = os.getpgid(pid)
        except OSError:
            continue
        if pgid > 0:
            members.append((pgid, pid != pgid, pid))
    return [[("pgid", str(pgid)), ("leader command", _comm(pgid)), ("pid", str(pid)),
             ("command line", _command(pid))] for pgid, _, pid in sorted(members)]


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


def files() -> list[Row]:
    """Every open file descriptor of every process whose /proc/PID/fd can be read: the link's
    target, or the descriptor's number when the link cannot be read (as gdbserver)."""
    rows = []
    for pid in _pids():
        fds = _numbered(f"/proc/{pid}/fd")
        command = _comm(pid) if fds else ""
        for fd in fds:
            try:
                name = os.readlink(f"/proc/{pid}/fd/{fd}")[:999]
            except OSError:
                name = str(fd)
            rows.append([("pid", str(pid)), ("command", command), ("file descriptor", str(fd)),
                         ("name", name)])
    return rows


def module_rows(text: str) -> list[Row]:
    """/proc/modules: name, size, uses, dependencies, state and load address (hex, no 0x)."""
    rows = []
    for line in text.splitlines():
        words = line.split(" ", 5)
        address = re.match(r"\s*(?:0[xX])?([0-9a-fA-F]+)", words[5]) if len(words) == 6 else None
        if address is None or not words[1].isdigit() or not re.fullmatch(r"-?\d+", words[2]):
            continue
        rows.append([("name", words[0]), ("size", words[1]), ("num uses", words[2]),
                     ("dependencies", words[3]), ("status", words[4]),
                     ("address", f"{int(address.group(1), 16):x}")])
    return rows


def modules() -> list[Row]:
    return module_rows(_read("/proc/modules"))


TCP_STATES = ("(unknown)", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
              "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING")

SOCKET_LINE = re.compile(r"\s*-?\d+:\s*([0-9A-F]{1,32}):([0-9A-Fa-f]+)\s+([0-9A-F]{1,32}):([0-9A-Fa-f]+)\s+"
                         r"([0-9A-Fa-f]+)\s+[0-9A-Fa-f]+:[0-9A-Fa-f]+\s+[0-9A-Fa-f]+:[0-9A-Fa-f]+\s+"
                         r"[0-9A-Fa-f]+\s+(-?\d+)")


def _address(text: str, ipv6: bool) -> str:
    """An address of /proc/net/{tcp,udp}[6] (32-bit words in host order) as getnameinfo's
    NI_NUMERICHOST writes it: dotted IPv4, or IPv6 as glibc's inet_ntop."""
    raw = b"".join(int(text[i : i + 8], 16).to_bytes(4, "little") for i in range(0, len(text), 8))
    if not ipv6:
        return ".".join(str(b) for b in raw[:4])
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, 16, 2)]
    best, best_len, start = -1, 1, -1  # the first longest run of two zero words or more
    for i, word in enumerate([*words, 1]):
        if word == 0 and start < 0:
            start = i
        elif word != 0 and start >= 0:
            if i - start > best_len:
                best, best_len = start, i - start
            start = -1
    if best == 0 and (best_len == 6 or (best_len == 5 and words[5] == 0xFFFF)):  # IPv4 inside
        return ("::" if best_len == 6 else "::ffff:") + ".".join(str(b) for b in raw[12:])
    if best < 0:
        return ":".join(f"{w:x}" for w in words)
    head = ":".join(f"{w:x}" for w in words[:best])
    tail = ":".join(f"{w:x}" for w in words[best + best_len :])
    return f"{head}::{tail}"


def socket_rows(text: str, ipv6: bool, tcp: bool) -> list[Row]:
    """One /proc/net table: lines that do not scan (the heading) are skipped, as gdbserver."""
    rows = []
    for line in text.splitlines():
        m = SOCKET_LINE.match(line)
        if m is None or len(m.group(1)) != (32 if ipv6 else 8) or len(m.group(3)) != len(m.group(1)):
            continue
        state = int(m.group(5), 16) & 0xFF
        rows.append([("local address", _address(m.group(1), ipv6)), ("local port", str(int(m.group(2), 16))),
                     ("remote address", _address(m.group(3), ipv6)),
                     ("remote port", str(int(m.group(4), 16))),
                     ("state", TCP_STATES[state] if state < len(TCP_STATES) else TCP_STATES[0]),
                     ("user", _user_name(int(m.group(6)))), ("family", "INET6" if ipv6 else "INET"),
                     ("protocol", "STREAM" if tcp else "DGRAM")])
    return rows


def sockets() -> list[Row]:
    """Internet sockets in gdbserver's order: TCP then UDP over IPv4, then the same over IPv6."""
    rows = []
    for ipv6 in (False, True):
        for tcp in (True, False):
            path = f"/proc/net/{'tcp' if tcp else 'udp'}{'6' if ipv6 else ''}"
            rows += socket_rows(_read(path), ipv6, tcp)
    return rows


def _time(seconds: int) -> str:
    """ctime_r's text (with its newline, which gdbserver keeps), empty for never."""
    return time.ctime(seconds) + "\n" if seconds else ""


def _int32(value: int) -> int:
    """A number scanned with %d: wrapped to a C int."""
    return (value + 2**31) % 2**32 - 2**31


# The columns of each /proc/sysvipc table, in its order: (column, kind) where kind says how
# gdbserver shows the number: "d" decimal, "o" octal, "u"/"g" user/group name, "c" a pid's
# command, "t" a time, "" a field gdbserver does not show.
SYSVIPC: dict[str, list[tuple[str, str]]] = {
    "shm": [("key", "d"), ("shmid", "d"), ("permissions", "o"), ("size", "d"), ("creator command", "c"),
            ("last op. command", "c"), ("num attached", "d"), ("user", "u"), ("group", "g"),
            ("creator user", "u"), ("creator group", "g"), ("last shmat() time", "t"),
            ("last shmdt() time", "t"), ("last shmctl() time", "t")],
    "sem": [("key", "d"), ("semid", "d"), ("permissions", "o"), ("num semaphores", "d"), ("user", "u"),
            ("group", "g"), ("creator user", "u"), ("creator group", "g"), ("last semop() time", "t"),
            ("last semctl() time", "t")],
    "msg": [("key", "d"), ("msqid", "d"), ("permissions", "o"), ("num used bytes", "d"),
            ("num messages", "d"), ("last msgsnd() command", "c"), ("last msgrcv() command", "c"),
            ("user", "u"), ("group", "g"),
            ("creator user", "u"), ("creator group", "g"), ("last msgsnd() time", "t"),
            ("last msgrcv() time", "t"), ("last msgctl() time", "t")],
}

_SHOW: dict[str, Callable[[int], str]] = {
    "d": lambda v: str(_int32(v)), "o": lambda v: f"{v:o}", "u": _user_name, "g": _group_name,
    "c": _comm, "t": _time,
}


def sysvipc_rows(table: str, text: str) -> list[Row]:
    """One /proc/sysvipc table: lines with fewer numbers than gdbserver scans (the heading)
    are skipped; the kernel's later columns (rss, swap) are not shown."""
    columns = SYSVIPC[table]
    rows = []
    for line in text.splitlines():
        words = line.split()[: len(columns)]
        try:
            values = [int(w, 8 if kind == "o" else 10) for w, (_, kind) in zip(words, columns, strict=False)]
        except ValueError:
            continue
        if len(values) == len(columns):
            rows.append([(name, _SHOW[kind](value))
                         for (name, kind), value in zip(columns, values, strict=True)])
    return rows


def shm() -> list[Row]:
    return sysvipc_rows("shm", _read("/proc/sysvipc/shm"))


def semaphores() -> list[Row]:
    return sysvipc_rows("sem", _read("/proc/sysvipc/sem"))


def msg() -> list[Row]:
    return sysvipc_rows("msg", _read("/proc/sysvipc/msg"))


# type -> (description, title, the osdata element's type, rows), in gdbserver's order.
TYPES: dict[str, tuple[str, str, str, Callable[[], list[Row]]]] = {
    "cpus": ("Listing of all cpus/cores on the system", "CPUs", "cpus", cpus),
    "files": ("Listing of all file descriptors", "File descriptors", "files", files),
    "modules": ("Listing of all loaded kernel modules", "Kernel modules", "modules", modules),
    "msg": ("Listing of all message queues", "Message queues", "message queues", msg),
    "processes": ("Listing of all processes", "Processes", "processes", processes),
    "procgroups": ("Listing of all process groups", "Process groups", "process groups", procgroups),
    "semaphores": ("Listing of all semaphores", "Semaphores", "semaphores", semaphores),
    "shm": ("Listing of all shared-memory regions", "Shared-memory regions", "shared memory", shm),
    "sockets": ("Listing of all internet-domain sockets", "Sockets", "I sockets", sockets),
    "threads": ("Listing of all threads", "Threads", "threads", threads),
}


def _types() -> list[Row]:
    return [[("Type", name), ("Description", desc), ("Title", title)]
            for name, (desc, title, _, _) in TYPES.items()]


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
    return document(entry[2], entry[3]())


OBJECTS: dict[str, XferObject] = {"osdata": XferObject(_osdata)}
FEATURES: list[Feature] = [("qXfer:osdata:read+", lambda s: True)]
