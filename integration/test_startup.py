"""Issue 16: what the stub imports before it listens and before gdb's first stop.

Start-up is paid on every launch (test suites start a stub per test), so the modules that
only some packets need are imported by those packets: the real stub runs under
``python -X importtime``, whose report on stderr lists every module as it is imported, in
order with the stub's own ``Listening on port`` line. A test of what is imported, not of time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import harness
import pytest

pytestmark = pytest.mark.timeout(120)

IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", re.M)

# Modules no plain gdb session needs before its first stop, and what each costs when it is
# imported anyway (more than a bare start of the interpreter, for several of them).
HEAVY = (
    "construct",  # packet and layout declarations: compiled forms or struct serve the hot paths
    "elftools",  # pyelftools: the API client only; ELF headers and TLS symbols are read with struct
    "xml.sax",  # and through it urllib, http, email, ssl
    "urllib.request",
    "http.client",
    "email",
    "ssl",
    "gdbstub.api",  # the Python API and its RSP client: for test suites, not the command line
    "gdbstub.client",
    "json",  # lldb's jstopinfo and jThreadsInfo only
)


# The packet modules gdb's session needs late or never: the registry imports each on the first
# of its packets (lldb serves target.xml), or once the stub listens (tls: qSymbol comes in
# every session).
LATE = (
    "gdbstub.protocol.extended",
    "gdbstub.protocol.lldb",
    "gdbstub.protocol.monitor",
    "gdbstub.protocol.osdata",
    "gdbstub.protocol.search",
    "gdbstub.protocol.tls",
    "gdbstub.protocol.tracepoints",
)


# Imported by no gdb session (`target remote`, a run to main, `kill`): extended-remote's
# packets wait for an extended-remote client; lldb's packets stand
# aside until one of them comes (the registry's passive modules), and gdbstub.hints stands in
# for enum and signal. The tracepoint packets, the trace model and the agent load with the
# first tracepoint (gdb's connect-time qTStatus, qTfV and qTfP get a fresh tracer's replies
# from the registry) or breakpoint condition; hostio and tls keep their state without weakref.
# The i386 register tables load for a 32-bit program only; ctypes' names come from gdbstub.ffi.
# collections and functools (with keyword, operator, reprlib) are ~2.5 ms of CPU while gdb
# starts, which slows gdb itself: gdbstub.hints stands in for collections.abc's names, cache,
# lru_cache and deque.
NOT_IN_A_GDB_SESSION = ("enum", "signal", "ctypes", "collections", "functools", "operator",
                        "gdbstub.protocol.extended",
                        "gdbstub.protocol.lldb", "gdbstub.arch.lldbxml",
                        "gdbstub.target.linux.inferior_syscall", "gdbstub.target.linux.procfs",
                        "gdbstub.protocol.tracepoints", "gdbstub.trace.tfile", "gdbstub.trace.tracer",
                        "gdbstub.trace.model", "gdbstub.trace.stepping", "gdbstub.agent", "gdbstub.agent_compile",
                        "weakref",
                        "gdbstub.arch.i386")  # a 64-bit program's session


# Before it listens the stub starts its program and binds its socket, and loads no more than
# this: the command line, the launcher, the spawn module (fork, exec, ptrace through _ctypes),
# the transport (through _socket), and the standard modules they use. The target, the session,
# the packet handlers and logging load after `Listening`, while gdb starts and connects.
BEFORE_LISTENING = (
    "gdbstub",
    "gdbstub.cli",
    "gdbstub.ffi",
    "gdbstub.launcher",
    "gdbstub.logs",
    "gdbstub.target",
    "gdbstub.target.linux",
    "gdbstub.target.linux.ptrace_abi",
    "gdbstub.target.linux.spawn",
    "gdbstub.transport",
)
# Standard modules each costing about a millisecond or more of every start, none needed to
# start a program and listen (a bare start of the interpreter imports none of them).
NOT_BEFORE_LISTENING = ("logging", "typing", "enum", "signal", "socket", "selectors", "ipaddress", "re",
                        "threading", "traceback", "dataclasses", "inspect", "pathlib",
                        "ctypes")  # the package: gdbstub.ffi makes the names the stub uses from _ctypes


def stub_modules_in(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if m == "gdbstub" or m.startswith("gdbstub."))


def late_in(modules: list[str]) -> list[str]:
    return sorted(set(modules) & set(LATE))


def imported(text: str) -> list[str]:
    return IMPORT_LINE.findall(text)


def heavy_in(modules: list[str]) -> list[str]:
    return sorted({m for m in modules for h in HEAVY if m == h or m.startswith(h + ".")})


# The installed command, as its first line runs it (`-m` would add runpy's imports, collections
# among them); `python -m gdbstub` where the command is not installed.
SCRIPT = harness.STUB_COMMAND[0] if len(harness.STUB_COMMAND) == 1 else None


def importtime_command(*args: str) -> list[str]:
    if SCRIPT is not None:
        return [sys.executable, "-X", "importtime", SCRIPT, *args]
    return [sys.executable, "-X", "importtime", "-m", "gdbstub", *args]


def test_version_imports_nothing_heavy(procs):
    proc = procs.spawn(importtime_command("--version"), env=harness.server_env())
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.startswith("gdbstub ")
    modules = imported(err)
    assert "gdbstub.cli" in modules  # the report is there: the check below can fail
    assert heavy_in(modules) == []
    assert late_in(modules) == []
    assert set(stub_modules_in(modules)) <= set(BEFORE_LISTENING)


def test_nothing_heavy_before_listening_or_the_first_stop(procs):
    """Listening, then a whole `target remote` (gdb reads the program, ld.so, the library
    list and the registers through the stub), a run to main (libc loads: gdb's qSymbol, where
    the TLS layout is read) and `info registers rip`: none of it needs them."""
    argv = importtime_command("--once", "127.0.0.1:0", str(harness.program("loop")))
    proc = procs.spawn(argv, env=harness.server_env())
    err = harness.OutputReader(proc.stderr)
    out = harness.OutputReader(proc.stdout)
    found = err.wait_for(harness.LISTENING_RE, harness.START_TIMEOUT)
    assert found, err.text
    before = imported(err.text[: err.text.index("Listening on port")])
    assert "gdbstub.target.linux.spawn" in before  # the report is there: the checks below can fail
    assert stub_modules_in(before) == sorted(BEFORE_LISTENING)
    assert sorted(set(before) & set(NOT_BEFORE_LISTENING)) == []
    assert heavy_in(before) == []
    assert late_in(before) == []
    result = harness.run_gdb(procs, int(found.group(1)), ["break main", "continue", "info registers rip", "kill"])
    assert re.search(r"^rip\s+0x[0-9a-f]+", result.stdout, re.M), result.describe()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    err.join()
    out.join()
    after = imported(err.text)
    assert "gdbstub.server" in after and "gdbstub.protocol.session" in after
    assert heavy_in(after) == [], "imported by the connect sequence"
    assert "logging" not in after, "no debug log was asked for"
    assert "typing" not in after, "gdbstub.hints stands in for it at run time"
    assert "re" not in after, "packet names are split with bytes.find; printf's pattern compiles at a dprintf"
    unwanted = set(NOT_IN_A_GDB_SESSION) - (set() if SCRIPT is not None else {"collections", "functools", "operator"})
    assert sorted(set(after) & unwanted) == []


def test_attach_loads_no_more_before_listening(procs):
    """--attach stops the program's leader thread with the same few modules; the target
    attaches to its other threads once loaded, and every thread is listed."""
    program = harness.program("schedlock")
    inferior = procs.spawn([str(program)])
    assert harness.wait_until(lambda: len(os.listdir(f"/proc/{inferior.pid}/task")) == 3, 10)
    argv = importtime_command("--once", "--attach", "127.0.0.1:0", str(inferior.pid))
    proc = procs.spawn(argv, env=harness.server_env())
    err = harness.OutputReader(proc.stderr)
    found = err.wait_for(harness.LISTENING_RE, harness.START_TIMEOUT)
    assert found, err.text
    before = imported(err.text[: err.text.index("Listening on port")])
    assert f"Attached; pid = {inferior.pid}" in err.text
    assert set(stub_modules_in(before)) <= set(BEFORE_LISTENING)
    assert sorted(set(before) & set(NOT_BEFORE_LISTENING)) == []
    result = harness.run_gdb(procs, int(found.group(1)), ["info threads", "set var stop = 1", "detach"],
                             file=program)
    assert len(re.findall(r"^\*?\s+\d+\s+Thread \d+\.\d+ ", result.stdout, re.M)) == 3, result.describe()
    out, _ = inferior.communicate(timeout=20)
    assert inferior.returncode == 0 and "schedlock done" in out, result.describe()
    proc.wait(timeout=30)
    err.join()


def test_second_start_loads_the_session_modules_from_the_code_file(procs):
    """A start with bytecode writing on (as users run it) keeps the modules a session loads
    after Listening in one code file (gdbstub/codecache.py); the next start loads them from it
    and serves the same session. `python -v` names each module's loader."""
    env = harness.server_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    rips = []
    for verbose in ([], ["-v"]):
        argv = [sys.executable, *verbose, "-m", "gdbstub", "--once", "127.0.0.1:0", str(harness.program("loop"))]
        proc = procs.spawn(argv, env=env)
        err = harness.OutputReader(proc.stderr)
        out = harness.OutputReader(proc.stdout)
        found = err.wait_for(harness.LISTENING_RE, harness.START_TIMEOUT)
        assert found, err.text
        result = harness.run_gdb(procs, int(found.group(1)), ["break main", "continue", "info registers rip", "kill"])
        rip = re.search(r"^rip\s+(0x[0-9a-f]+)", result.stdout, re.M)
        assert rip, result.describe()
        rips.append(rip.group(1))
        proc.wait(timeout=30)
        err.join()
        out.join()
        cache = sorted((harness.ROOT / "gdbstub" / "__pycache__").glob("session.*.code"))
        assert cache, "the first start wrote no code file"
    assert rips[0] == rips[1]
    loaders = dict(re.findall(r"^import '(gdbstub[\w.]*)' # <([\w.]+) object", err.text, re.M))
    assert loaders.get("gdbstub.server") == "gdbstub.codecache.Finder", loaders
    assert loaders.get("gdbstub.protocol.session") == "gdbstub.codecache.Finder", loaders
