"""Integration-test harness: start gdbserver or gdbstub the same way, drive stock gdb, leave nothing behind.

Used by the pytest fixtures in conftest.py and by bench.py, so it does not import pytest.
Every wait in here is bounded; every process is started in its own session so that it and
everything it forks (the inferior too, even after `setpgid`) can be found again and killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import difflib
import fcntl
import functools
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gdbstub.api

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
PROGRAM_SOURCES = ROOT / "integration" / "programs"

KINDS = ("gdbserver", "gdbstub")
# The gdb the tests drive, with the gdbserver of the same release as the reference: the machine's
# gdb 13, or Debian 13's gdb 16 from the root `make gdb16` builds (use_gdb() chooses).
GDB_VERSIONS = ("gdb13", "gdb16")
GDB16_ROOT = ROOT / os.environ.get("GDB16_ROOT", ".cache/gdb16-root")
START_TIMEOUT = float(os.environ.get("GDBSTUB_TEST_START_TIMEOUT", "20"))
GDB_TIMEOUT = float(os.environ.get("GDBSTUB_TEST_GDB_TIMEOUT", "60"))
EXIT_TIMEOUT = 10.0

LISTENING_RE = re.compile(r"Listening on port (\d+)")
CREATED_PID_RE = re.compile(r"pid = (\d+)")


class HarnessError(Exception):
    """A server or gdb did not behave (no listening line, timeout); carries what it printed."""


# --------------------------------------------------------------------------- programs


def program(name: str) -> Path:
    """Path of a built test program (`make programs` builds them)."""
    path = BUILD / name
    if not path.exists():
        raise HarnessError(f"{path} is missing: run `make programs`")
    return path


def build_programs() -> None:
    """Run `make programs` (incremental, so cheap when nothing changed).

    Under a lock: pytest-xdist workers each call this, and two makes must not write one binary at once.
    """
    BUILD.mkdir(exist_ok=True)
    with open(BUILD / ".make.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run(
            ["make", "-s", "-C", str(ROOT), "programs"],
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    if done.returncode != 0:
        raise HarnessError(f"make programs failed:\n{done.stdout}\n{done.stderr}")


def source_line(tag: str, source: str = "loop") -> int:
    """Line number of the `LINE:tag` marker in integration/programs/SOURCE.c."""
    marker = re.compile(rf"LINE:{re.escape(tag)}(?=\s|\*/|$)")
    text = (PROGRAM_SOURCES / f"{source}.c").read_text()
    for number, line in enumerate(text.splitlines(), start=1):
        if marker.search(line):
            return number
    raise KeyError(f"no LINE:{tag} in {source}.c")


def location(tag: str, source: str = "loop") -> str:
    """A gdb linespec `SOURCE.c:N` for a `LINE:tag` marker."""
    return f"{source}.c:{source_line(tag, source)}"


# --------------------------------------------------------------------------- /proc


@dataclass(frozen=True)
class ProcInfo:
    """One line of /proc/PID/stat, the fields the cleanup needs."""

    pid: int
    comm: str
    state: str
    ppid: int
    pgrp: int
    session: int

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.comm}) state {self.state} ppid {self.ppid} sid {self.session}"


def read_proc(pid: int) -> ProcInfo | None:
    """Parse /proc/PID/stat; None when the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2 :].split()
    return ProcInfo(pid, comm, rest[0], int(rest[1]), int(rest[2]), int(rest[3]))


def user_ticks(pid: int) -> int:
    """The user CPU time PID has had, in clock ticks (0 once it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    return int(raw[raw.rindex(")") + 2 :].split()[11])


def all_procs() -> Iterator[ProcInfo]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = read_proc(int(entry))
            if info is not None:
                yield info


def pid_alive(pid: int) -> bool:
    """True when PID exists and is not a zombie (a zombie has already exited)."""
    info = read_proc(pid)
    return info is not None and not info.zombie


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll PREDICATE until it holds or TIMEOUT seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Make orphaned descendants (an inferior whose server died) our children, so we can reap them."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


# --------------------------------------------------------------------------- gdb 13 or gdb 16

_gdb_version = "gdb13"

# gdb 16 runs chrooted in its root, in a mount namespace of its own (`unshare -m`): /proc, /dev,
# /tmp and this checkout are bind-mounted at their own paths, and the mounts vanish with gdb.
_GDB16_CHROOT = r"""
root=$0 checkout=$1 cwd=$(pwd); shift
mount --bind /proc "$root/proc" && mount --rbind /dev "$root/dev" && mount --bind /tmp "$root/tmp" &&
mkdir -p "$root$checkout" && mount --bind "$checkout" "$root$checkout" &&
exec chroot "$root" /bin/sh -c 'cd "$0" 2>/dev/null || cd /; exec gdb "$@"' "$cwd" "$@"
"""


def use_gdb(version: str) -> None:
    """Drive VERSION (one of GDB_VERSIONS) from now on, with its own gdbserver as the reference."""
    global _gdb_version
    if version not in GDB_VERSIONS:
        raise ValueError(f"unknown gdb version {version!r}")
    _gdb_version = version


def gdb_version() -> str:
    return _gdb_version


def gdb16_missing() -> str | None:
    """Why gdb 16 cannot run here, or None when its root is complete."""
    if not (GDB16_ROOT / ".complete").exists():
        return f"no gdb 16 root at {GDB16_ROOT}: run `make gdb16`"
    return None


def gdb_argv() -> list[str]:
    """How to start the current gdb (arguments follow)."""
    if _gdb_version == "gdb13":
        return [shutil.which("gdb") or "gdb"]
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _GDB16_CHROOT, str(GDB16_ROOT), str(ROOT)]


def gdb_env() -> dict[str, str]:
    """gdb's environment: no debuginfod, a dumb terminal."""
    env = dict(os.environ, LANG="C.UTF-8", TERM="dumb")
    env.pop("DEBUGINFOD_URLS", None)
    return env


def gdbserver_argv() -> list[str]:
    """The reference gdbserver of the current gdb's release; gdbserver 16 runs on this machine
    (its programs, its libraries) through the gdb 16 root's own loader and libraries."""
    if _gdb_version == "gdb13":
        return [shutil.which("gdbserver") or "gdbserver"]
    libs = f"{GDB16_ROOT}/lib/x86_64-linux-gnu:{GDB16_ROOT}/usr/lib/x86_64-linux-gnu"
    return [str(GDB16_ROOT / "lib64/ld-linux-x86-64.so.2"), "--library-path", libs,
            str(GDB16_ROOT / "usr/bin/gdbserver")]


# --------------------------------------------------------------------------- process tracking


OutputReader = gdbstub.api.OutputReader  # one reader for the API and the harness


class ProcessTracker:
    """Starts every process of a test in its own session and finds all of them again at the end."""

    def __init__(self) -> None:
        self.popens: list[subprocess.Popen[str]] = []
        self.extra_pids: set[int] = set()

    def spawn(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[str]:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        kwargs.setdefault("text", True)
        kwargs.setdefault("cwd", str(ROOT))
        proc: subprocess.Popen[str] = subprocess.Popen(list(argv), start_new_session=True, **kwargs)
        self.popens.append(proc)
        return proc

    def track_pid(self, pid: int) -> None:
        """Also watch a process we did not start (an inferior whose pid a server printed)."""
        self.extra_pids.add(pid)

    def _sessions(self) -> set[int]:
        return {p.pid for p in self.popens}

    def members(self) -> list[ProcInfo]:
        """Processes that belong to this tracker: our sessions, named pids, orphans reparented to us."""
        sessions = self._sessions()
        me = os.getpid()
        found = []
        for info in all_procs():
            if info.pid == me:
                continue
            if info.session in sessions or info.pid in self.extra_pids or info.pid in sessions:
                found.append(info)
            elif info.ppid == me and info.zombie:
                found.append(info)
        return found

    def alive(self) -> list[ProcInfo]:
        return [info for info in self.members() if not info.zombie]

    def kill_all(self) -> None:
        for info in self.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(info.pid, signal.SIGKILL)
        for proc in self.popens:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.reap()

    def reap(self) -> None:
        """Collect exit statuses: our Popens, and zombies reparented to us (we are a subreaper)."""
        popen_pids = set()
        for proc in self.popens:
            popen_pids.add(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        me = os.getpid()
        for info in all_procs():
            if info.ppid == me and info.zombie and info.pid not in popen_pids:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(info.pid, os.WNOHANG)

    def finish(self, grace: float = EXIT_TIMEOUT) -> list[str]:
        """Give everything GRACE seconds to end by itself, then kill it; returns what had to be killed."""
        wait_until(lambda: not self.alive(), grace)
        leaked = [str(info) for info in self.alive()]
        self.kill_all()
        still = [str(info) for info in self.alive()]
        if still:
            leaked.append(f"survived SIGKILL: {still}")
        for proc in self.popens:
            for stream in (proc.stdout, proc.stderr, proc.stdin):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        return leaked


# --------------------------------------------------------------------------- servers


# The stub as users start it: the installed command (bin/gdbstub, beside the venv's python);
# `python -m gdbstub` where it is not installed (test_transports also starts it that way).
STUB_COMMAND = ([str(Path(sys.executable).with_name("gdbstub"))]
                if Path(sys.executable).with_name("gdbstub").exists() else [sys.executable, "-m", "gdbstub"])


def server_command(
    kind: str,
    prog: Path | str,
    args: Sequence[str] = (),
    *,
    address: str = "127.0.0.1:0",
    once: bool = True,
    extra: Sequence[str] = (),
) -> list[str]:
    """The command line that starts KIND (gdbserver or gdbstub) with the same arguments for both."""
    if kind == "gdbstub":
        base = list(STUB_COMMAND)
        if os.environ.get("GDBSTUB_TEST_DEBUG"):
            base.append("--debug")
    elif kind == "gdbserver":
        base = gdbserver_argv()
    else:
        raise ValueError(f"unknown server kind {kind!r}")
    return [*base, *(["--once"] if once else []), *extra, address, str(prog), *args]


def server_env() -> dict[str, str]:
    """A small fixed environment, so that both servers give the inferior the same stack layout.

    gdbserver starts the program through `$SHELL -c exec PROG` by default; dash (/bin/sh) only adds
    PWD, so we pass PWD ourselves and the environment is the same with or without a shell. Dash
    also reorders the variables (its hash table's order), so they are passed in dash's order: the
    strings then sit at the same stack addresses, and what libc's start-up leaves in the vector
    registers (gdbserver 16 shows the AVX-512 ones) is the same through both servers.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "SHELL": "/bin/sh",
        "PWD": str(ROOT),
    }
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "GDBSTUB_TEST_DEBUG"):
        if name in os.environ:
            env[name] = os.environ[name]
    return dict(_in_shell_order(tuple(env.items())))


@functools.cache
def _in_shell_order(items: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """ITEMS in the order dash exports them (its hash table's): the program then finds the same
    bytes on its stack and in what glibc's string functions leave in ymm16-31, shell or not."""
    out = subprocess.run(["/bin/sh", "-c", "exec env -0"], env=dict(items), capture_output=True, check=True).stdout
    return tuple(tuple(item.split("=", 1)) for item in out.decode().split("\0") if item)  # type: ignore[misc]


@dataclass
class Server:
    """A running gdbserver or gdbstub, its port, and everything it printed."""

    kind: str
    proc: subprocess.Popen[str]
    port: int
    stdout: OutputReader
    stderr: OutputReader
    argv: list[str]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def inferior_pid(self) -> int | None:
        """The pid the server says it created (`Process PROG created; pid = N`), if it says so."""
        found = CREATED_PID_RE.search(self.stderr.text)
        return int(found.group(1)) if found else None

    def wait_exit(self, timeout: float = EXIT_TIMEOUT) -> int | None:
        """Exit status, or None when still running after TIMEOUT. Once the server has exited its
        output readers get (bounded) time to take in the last of it: a test reads it next."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.stderr.join(1)
        self.stdout.join(1)
        return rc

    def stop(self) -> None:
        """Kill the server's whole session (the inferior may have its own process group)."""
        sid = self.proc.pid
        for info in all_procs():
            if info.session == sid and not info.zombie:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(info.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(sid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def describe(self) -> str:
        return (
            f"--- {self.kind}: {' '.join(self.argv)} (rc={self.proc.returncode})\n"
            f"--- {self.kind} stderr:\n{self.stderr.text}--- {self.kind} stdout (inferior):\n{self.stdout.text}"
        )


def start_server(
    tracker: ProcessTracker,
    kind: str,
    prog: Path | str,
    args: Sequence[str] = (),
    *,
    once: bool = True,
    extra: Sequence[str] = (),
    timeout: float = START_TIMEOUT,
    env: dict[str, str] | None = None,
) -> Server:
    """Start KIND on an ephemeral port and wait (bounded) for `Listening on port N`."""
    argv = server_command(kind, prog, args, once=once, extra=extra)
    proc = tracker.spawn(argv, env=server_env() if env is None else env)
    out, err = OutputReader(proc.stdout), OutputReader(proc.stderr)
    found = err.wait_for(LISTENING_RE, timeout)
    server = Server(kind, proc, int(found.group(1)) if found else 0, out, err, argv)
    if found is None:
        rc = proc.poll()
        server.stop()
        err.join()
        why = f"exited with status {rc}" if rc is not None else f"was still silent after {timeout}s"
        raise HarnessError(f"{kind} did not print 'Listening on port N': it {why}\n{server.describe()}")
    pid = server.inferior_pid
    if pid is not None:
        tracker.track_pid(pid)
    return server


# --------------------------------------------------------------------------- gdb


GDB_PREAMBLE = (
    "set confirm off",
    "set pagination off",
    "set width 0",
    "set height 0",
    "set style enabled off",
)


@dataclass
class GdbResult:
    """What one gdb batch run printed."""

    argv: list[str]
    stdout: str
    stderr: str
    returncode: int | None
    timed_out: bool = False

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        return (
            f"--- gdb rc={self.returncode} timed_out={self.timed_out}\n"
            f"--- gdb stdout:\n{self.stdout}--- gdb stderr:\n{self.stderr}"
        )


def gdb_command(
    port: int,
    commands: Iterable[str],
    file: Path | str | None = None,
    before: Iterable[str] = (),
    target: str | None = None,
) -> list[str]:
    """gdb -batch argv; TARGET is the connect command (default: target remote 127.0.0.1:PORT)."""
    argv = [*gdb_argv(), "-nx", "-batch"]
    for cmd in (*GDB_PREAMBLE, *before, target or f"target remote 127.0.0.1:{port}", *commands):
        argv += ["-ex", cmd]
    if file is not None:
        argv.append(str(file))
    return argv


def run_gdb(
    tracker: ProcessTracker,
    port: int,
    commands: Iterable[str],
    *,
    file: Path | str | None = None,
    before: Iterable[str] = (),
    timeout: float = GDB_TIMEOUT,
    target: str | None = None,
) -> GdbResult:
    """Run stock gdb in batch mode against 127.0.0.1:PORT (or with the connect command TARGET);
    a timeout kills it and is reported, not raised."""
    argv = gdb_command(port, commands, file, before, target)
    proc = tracker.spawn(argv, env=gdb_env())
    try:
        out, err = proc.communicate(timeout=timeout)
        return GdbResult(argv, out, err, proc.returncode)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        return GdbResult(argv, out or "", err or "", proc.returncode, timed_out=True)


@dataclass
class Session:
    """One server + one gdb batch run against it."""

    server: Server
    gdb: GdbResult
    server_rc: int | None = None

    @property
    def out(self) -> str:
        return self.gdb.stdout

    @property
    def output(self) -> str:
        return self.gdb.output

    @property
    def inferior_output(self) -> str:
        return self.server.stdout.text

    def describe(self) -> str:
        return f"{self.gdb.describe()}{self.server.describe()}"


def debug(
    tracker: ProcessTracker,
    kind: str,
    prog: Path | str,
    args: Sequence[str] = (),
    commands: Iterable[str] = (),
    *,
    file: Path | str | bool | None = True,
    before: Iterable[str] = (),
    timeout: float = GDB_TIMEOUT,
    wait_server: float = EXIT_TIMEOUT,
) -> Session:
    """Start KIND --once on PROG ARGS, run gdb COMMANDS against it, then wait for the server to exit.

    FILE=True gives gdb the program file on its command line (the usual way); False gives none.
    """
    server = start_server(tracker, kind, prog, args)
    gdb_file: Path | str | None = prog if file is True else (None if file is False else file)
    result = run_gdb(tracker, server.port, commands, file=gdb_file, before=before, timeout=timeout)
    rc = server.wait_exit(wait_server) if wait_server > 0 else None
    if rc is None:  # wait_exit joined the readers of a server that ended
        server.stderr.join(1)
        server.stdout.join(1)
    return Session(server, result, rc)


def debug_both(
    tracker: ProcessTracker,
    prog: Path | str,
    args: Sequence[str] = (),
    commands: Iterable[str] = (),
    kinds: Sequence[str] = KINDS,
    **kwargs: Any,
) -> dict[str, Session]:
    """The same gdb script against each server kind in turn (never in parallel: same ports, same CPU)."""
    commands = list(commands)
    return {kind: debug(tracker, kind, prog, args, commands, **kwargs) for kind in kinds}


# --------------------------------------------------------------------------- normalisers


NOISE_LINES = (
    re.compile(r"^Reading .* from remote target\.\.\.$"),
    re.compile(r"^warning: File transfers from remote targets can be slow"),
    re.compile(r"^Reading symbols from "),
    re.compile(r"^Download failed"),
    re.compile(r"^Remote debugging using "),
)

PID_PATTERNS = (
    (re.compile(r"\b(process|Process|LWP|pid =|pid) \d+"), r"\1 PID"),
    (re.compile(r"\bThread (\d+)\.(\d+)"), "Thread PID.TID"),
    (re.compile(r"\bThread 0x[0-9a-f]+ \(LWP PID\)"), "Thread TADDR (LWP PID)"),
)

PID_PADDING = re.compile(r"\bPID {2,}")
ADDRESS_RE = re.compile(r"\b0x[0-9a-f]{6,16}\b")


THREADS_HEADER = re.compile(r"Target Id +Frame")


def normalise(text: str, *, pids: bool = True, addresses: bool = False, noise: bool = True) -> str:
    """Remove what legitimately differs between two runs: pids, optionally addresses, transfer chatter."""
    lines = []
    for line in text.splitlines():
        if noise and any(pattern.search(line) for pattern in NOISE_LINES):
            continue
        if pids:
            for pattern, replacement in PID_PATTERNS:
                line = pattern.sub(replacement, line)
            # A table column after a pid (`info inferiors`) is padded to the pid's width.
            line = PID_PADDING.sub("PID ", line)
            # `info threads` pads its header to the widest "Thread PID.TID" (a tid past a
            # power of ten after the pids wrap widens it).
            line = THREADS_HEADER.sub("Target Id Frame", line)
        if addresses:
            line = ADDRESS_RE.sub("0xADDR", line)
        lines.append(line.rstrip())
    return "\n".join(lines) + "\n"


def register_table(text: str) -> dict[str, str]:
    """`info registers` output -> {name: raw hex value}."""
    table: dict[str, str] = {}
    for line in text.splitlines():
        found = re.match(r"^([a-z][a-z0-9_]*)\s+(0x[0-9a-f]+|\{.*|\[.*|-?\d.*)", line)
        if found:
            table[found.group(1)] = found.group(2).split()[0] if found.group(2).startswith("0x") else found.group(2)
    return table


# --------------------------------------------------------------------------- assertions


def expect(session: Session, *patterns: str) -> list[re.Match[str]]:
    """Assert each regex (multiline) occurs in gdb's output; the failure message shows everything."""
    found = []
    for pattern in patterns:
        match = re.search(pattern, session.output, re.M)
        assert match, f"pattern not found: {pattern!r}\n{session.describe()}"
        found.append(match)
    return found


def expect_not(session: Session, *patterns: str) -> None:
    for pattern in patterns:
        match = re.search(pattern, session.output, re.M)
        assert not match, f"unexpected {match.group(0)!r} (pattern {pattern!r})\n{session.describe()}"


def assert_same(ours: Session, ref: Session, **options: bool) -> None:
    """gdb printed the same through both servers, after `normalise(text, **options)`.

    Register lines gdbserver 13 cannot get right on this CPU (AVX-512 state on AMD's XSAVE
    layout, see regquirks.py) are left out; test_registers.py checks those values instead."""
    from regquirks import without_misread_lines

    got = without_misread_lines(normalise(ours.out, **options)) + "\n"
    want = without_misread_lines(normalise(ref.out, **options)) + "\n"
    if got != want:
        diff = "".join(
            difflib.unified_diff(
                want.splitlines(keepends=True),
                got.splitlines(keepends=True),
                "gdbserver",
                ours.server.kind,
                n=2,
            )
        )
        raise AssertionError(
            f"gdb output differs from gdbserver's (normalised, - gdbserver + {ours.server.kind}):\n{diff}"
            f"=== {ours.server.kind} session:\n{ours.describe()}=== gdbserver session:\n{ref.describe()}"
        )


# --------------------------------------------------------------------------- gdb/MI (for Ctrl-C)


@dataclass
class MIClient:
    """A gdb --interpreter=mi3 process with a parsed-record queue; every wait is bounded."""

    tracker: ProcessTracker
    file: Path | str | None = None
    proc: subprocess.Popen[str] = field(init=False)
    records: queue.Queue[dict[str, Any]] = field(init=False)
    log: list[str] = field(init=False)
    _token: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        argv = [*gdb_argv(), "-nx", "-q", "--interpreter=mi3"]
        if self.file is not None:
            argv.append(str(self.file))
        self.proc = self.tracker.spawn(argv, stdin=subprocess.PIPE, stderr=subprocess.STDOUT, env=gdb_env())
        self.records = queue.Queue()
        self.log = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        from pygdbmi.gdbmiparser import parse_response

        assert self.proc.stdout is not None
        try:
            for line in iter(self.proc.stdout.readline, ""):
                self.log.append(line)
                stripped = line.rstrip("\n")
                if stripped and stripped != "(gdb) ":
                    self.records.put(parse_response(stripped))
        except (OSError, ValueError):
            pass

    def send(self, command: str, timeout: float = GDB_TIMEOUT) -> dict[str, Any]:
        """Send an MI command and return its result record (`^done`, `^running`, `^error`...)."""
        self._token += 1
        token = self._token
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{token}{command}\n")
        self.proc.stdin.flush()
        return self.wait_for(lambda r: r.get("type") == "result" and r.get("token") == token, timeout)

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HarnessError("gdb/MI: timed out; transcript:\n" + "".join(self.log))
            try:
                record = self.records.get(timeout=remaining)
            except queue.Empty:
                continue
            if predicate(record):
                return record

    def wait_stopped(self, timeout: float = GDB_TIMEOUT) -> dict[str, Any]:
        return self.wait_for(lambda r: r.get("type") == "notify" and r.get("message") == "stopped", timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.write("-gdb-exit\n")
            self.proc.stdin.flush()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
