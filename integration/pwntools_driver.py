"""Run one pwntools `gdb.debug` session the way an exploit script does, and print what it saw.

Run as its own process by test_pwntools.py (pwntools sets up logging, temp files and child
processes of its own; a separate interpreter keeps the test process clean). pwntools finds the
server as `gdbserver` on PATH and starts it as `gdbserver --multi ... localhost:0 PROG ARGS`,
then points gdb at it with plain `target remote`.

Usage: pwntools_driver.py PROG GDB_LOG -- prints one JSON object on stdout.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    prog, gdb_log = sys.argv[1], sys.argv[2]
    from pwnlib import gdb
    from pwnlib.context import context

    context.arch = "amd64"
    context.log_level = "error"
    # No terminal here: pwntools runs TERMINAL + [script that execs gdb]; env just runs it.
    context.terminal = ["env"]
    script = "\n".join([
        f"set logging file {gdb_log}", "set logging overwrite on", "set logging enabled on",
        "break reached", "continue", "print count", "continue", "",
    ])
    io = gdb.debug([prog, "pwned"], gdbscript=script, gdb_args=["-batch"], api=False)
    try:
        # Both return only once the server has gone: the end of its output, then its exit.
        output = io.recvall(timeout=60)
        io.wait(timeout=30)
        status = io.poll()
    finally:
        io.close()
    json.dump({"output": output.decode(errors="replace"), "status": status}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
