"""Issue 14 item 5 and "Also": a real pwntools `gdb.debug` session through each server.

pwntools starts `gdbserver --multi localhost:0 PROG`, connects gdb with plain `target remote`,
and its `io.recvall()` / `io.wait()` return only when the server exits after the program has
ended. gdbstub stands in for gdbserver through a `gdbserver` shim first on PATH (pwntools looks
the server up by that name).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import harness
import pytest

DRIVER = Path(__file__).with_name("pwntools_driver.py")

pytestmark = pytest.mark.timeout(150)


def _shim(directory: Path) -> Path:
    """A `gdbserver` that is gdbstub, for programs that find gdbserver on PATH."""
    directory.mkdir()
    shim = directory / "gdbserver"
    if len(harness.STUB_COMMAND) == 1:  # README's way: the installed command under gdbserver's name
        shim.symlink_to(harness.STUB_COMMAND[0])
    else:
        shim.write_text(f'#!/bin/sh\nexec {" ".join(harness.STUB_COMMAND)} "$@"\n')
        shim.chmod(0o755)
    return directory


def test_pwntools_gdb_debug(procs, kind, tmp_path):
    prog = harness.program("envargs")
    env = harness.server_env()
    if kind == "gdbstub":
        env["PATH"] = f"{_shim(tmp_path / 'bin')}{os.pathsep}{env['PATH']}"
    # pwntools' temporary files (gdb scripts, terminal scripts) and cache stay in the test's folder
    env.update(TMPDIR=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"), PWNLIB_NOTERM="1")
    gdb_log = tmp_path / "gdb.log"
    proc = procs.spawn([sys.executable, str(DRIVER), str(prog), str(gdb_log)], env=env)
    out, err = proc.communicate(timeout=120)
    log = gdb_log.read_text() if gdb_log.exists() else ""
    context = f"--- driver rc={proc.returncode}\n{out}\n--- stderr\n{err}\n--- gdb log\n{log}"
    assert proc.returncode == 0, context
    seen = json.loads(out)
    # the program's output came through, the server said the program ended, and then exited 0
    output = seen["output"].splitlines()
    assert "argv[1]=[pwned]" in output and "Child exited with status 3" in output, context
    assert seen["status"] == 0, context
    # gdb (in batch, from pwntools' script) stopped at the breakpoint and saw the exit
    for line in ("Breakpoint 1, reached () at", "$1 = 0", "[Inferior 1 (process"):
        assert line in log, context
    assert "exited with code 03]" in log, context
