"""Issue 16: what the stub imports before it listens and before gdb's first stop.

Start-up is paid on every launch (test suites start a stub per test), so the modules that
only some packets need are imported by those packets: the real stub runs under
``python -X importtime``, whose report on stderr lists every module as it is imported, in
order with the stub's own ``Listening on port`` line. A test of what is imported, not of time.
"""

from __future__ import annotations

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


def imported(text: str) -> list[str]:
    return IMPORT_LINE.findall(text)


def heavy_in(modules: list[str]) -> list[str]:
    return sorted({m for m in modules for h in HEAVY if m == h or m.startswith(h + ".")})


def importtime_command(*args: str) -> list[str]:
    return [sys.executable, "-X", "importtime", "-m", "gdbstub", *args]


def test_version_imports_nothing_heavy(procs):
    proc = procs.spawn(importtime_command("--version"), env=harness.server_env())
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.startswith("gdbstub ")
    modules = imported(err)
    assert "gdbstub.cli" in modules  # the report is there: the check below can fail
    assert heavy_in(modules) == []


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
    assert "gdbstub.server" in before and "gdbstub.protocol.session" in before
    assert heavy_in(before) == []
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
    assert heavy_in(after) == [], "imported by the connect sequence"
