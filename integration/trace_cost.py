"""Collection cost per tracepoint hit, in server CPU time: gdbstub against gdbserver.

A tracepoint collecting $regs and 64 bytes of memory is hit N times; the same session with no
hits is the baseline. The server's user+system CPU (its rusage as our child) over the hits,
divided by N, is the cost of one hit: the trap, the collection, the step over the int3.

    .venv/bin/python integration/trace_cost.py [--hits 2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import harness

ROOT = Path(__file__).resolve().parent.parent
PROG = ROOT / "build" / "trace"
ACTIONS = "trace traced\nactions\ncollect $regs, buffer\nend\n"


def _server(kind: str, port: int, hits: int) -> list[str]:
    if kind == "gdbserver":
        return ["gdbserver", "--once", f":{port}", str(PROG), str(hits)]
    return [*harness.STUB_COMMAND, "--once", f":{port}", str(PROG), str(hits)]


def cpu_seconds(kind: str, hits: int, port: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".gdb", delete=False) as script:
        script.write(ACTIONS)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = subprocess.Popen(_server(kind, port, hits), cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    gdb = subprocess.run(["gdb", "-nx", "-batch", "-ex", f"target remote :{port}", "-ex", "break main",
                          "-ex", "continue", "-ex", "set trace-buffer-size 12000000", "-ex", f"source {script.name}",
                          "-ex", "tstart", "-ex", "break 27", "-ex", "continue", "-ex", "tstatus", "-ex", "kill",
                          str(PROG)], capture_output=True, text=True, timeout=600)
    server.wait(timeout=60)
    os.unlink(script.name)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if f"Collected {hits} trace frames." not in gdb.stdout:
        raise SystemExit(f"{kind}: unexpected session:\n{gdb.stdout}\n{gdb.stderr}")
    # gdb is a child too: count the server alone by subtracting gdb's share is not possible here,
    # so the server's CPU is read from the difference of two runs (hits and none) below.
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    port = 23000 + os.getpid() % 1000
    for kind in ("gdbserver", "gdbstub"):
        costs = []
        for _ in range(args.runs):
            busy = cpu_seconds(kind, args.hits, port)
            idle = cpu_seconds(kind, 0, port + 1)
            costs.append((busy - idle) / args.hits * 1e6)
        print(f"{kind}: {statistics.median(costs):.0f} us CPU per hit (runs: "
              + ", ".join(f"{c:.0f}" for c in costs) + ")")


if __name__ == "__main__":
    main()
