#!/usr/bin/env python3
"""Benchmark: the same stock-gdb sessions through gdbstub and through gdbserver, alternating.

    python integration/bench.py [--runs N] [--only NAME[,NAME...]] [--kinds gdbserver,gdbstub] [--json FILE]
                                [--gdb gdb13|gdb16|both]

Prints, per workload and server, the median wall time of the whole session (from the moment the
server is started, so start-up counts as users feel it, until gdb and the server have exited) and
the ratio gdbstub/gdbserver; then the server's CPU time (user + system of the server process and
what it reaped, from os.wait4) per stop. A workload is one row of WORKLOADS: add rows to measure
more (each has a check, so a server that silently does less work cannot look fast).
With --gdb gdb16 the client is gdb 16 and the reference gdbserver 16 (`make gdb16` root);
`both` (the default when that root exists) prints one table per gdb.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
from harness import GDB_VERSIONS, KINDS, HarnessError, ProcessTracker

BIG = 4 << 20


def _expected_big_sha256() -> str:
    """bench.c fills big[i] = (unsigned char)(i * 7)."""
    pattern = bytes((i * 7) & 0xFF for i in range(256))
    return hashlib.sha256(pattern * (BIG // 256)).hexdigest()


def _check_dump(workdir: Path) -> str | None:
    dumped = workdir / "big.bin"
    if not dumped.exists():
        return "no dump file"
    data = dumped.read_bytes()
    if len(data) != BIG:
        return f"dump is {len(data)} bytes, want {BIG}"
    if hashlib.sha256(data).hexdigest() != _expected_big_sha256():
        return "dump content differs from big[]"
    return None


@dataclass(frozen=True)
class Workload:
    """One benchmark session: a program, its arguments, the gdb script, and proof it ran."""

    name: str
    description: str
    program: str
    args: tuple[str, ...]
    commands: tuple[str, ...]  # "{workdir}" is replaced by a per-run temporary directory
    expect: str  # regex that gdb's output must contain
    check: Callable[[Path], str | None] | None = field(default=None, compare=False)
    stops: int = 0  # stops the server handles (steps, breakpoint hits), for the CPU per stop
    sessions: int = 1  # whole sessions in a row (server start, gdb, exit) per run
    startup_only: bool = False  # time exec to "Listening on port" only; no gdb
    local_file: bool = True  # False: gdb has no file and reads everything from the target (vFile)


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "stepi-3000",
        "3000 x stepi from hot()",
        "bench",
        ("100000000",),
        ("break hot", "continue", "delete", "stepi 3000", "p i"),  # a breakpoint would end the stepi early
        r"^\$1 = 120$",  # 3000 instructions = 120 calls of hot() and a bit
        stops=3001,
    ),
    Workload(
        "break-2000",
        "2000 breakpoint hits (break + ignore 1 1999 + continue)",
        "bench",
        ("2001",),
        ("break hot", "ignore 1 1999", "continue", "p i"),
        r"^\$1 = 1999$",
        stops=2000,
    ),
    Workload(
        "dump-4MiB",
        "dump binary memory of a 4 MiB global",
        "bench",
        ("10",),
        ("break hot", "continue", "dump binary memory {workdir}/big.bin &big[0] &big[4194304]"),
        r"^Breakpoint 1, hot",
        _check_dump,
        stops=1,
    ),
    Workload(
        "run-to-exit",
        "continue until the program exits (1000 calls)",
        "bench",
        ("1000",),
        ("continue",),
        r"exited normally\]$",
        stops=1,
    ),
    Workload(
        "cond-2000",
        "conditional breakpoint true once in 2000 hits (break hot if i == 1999)",
        "bench",
        ("2001",),
        ("break hot if i == 1999", "continue", "p i"),
        r"^\$1 = 1999$",
        stops=2000,  # hits, evaluated in the server (one reported)
    ),
    Workload(
        "next-200",
        "next 200 times over the call loop (range stepping)",
        "bench",
        ("1000",),
        (f"break {harness.location('loop', 'bench')}", "continue", "next 200", "p i"),
        r"^\$1 = 99$",  # 200 lines: the loop line and the call, 100 times each
        stops=200,  # gdb's stops; the steps inside each range are not counted
    ),
    Workload(
        "sessions-20",
        "20 short sessions in a row (start the server, break main, run to exit), as test suites do",
        "bench",
        ("10",),
        ("break main", "continue", "continue"),
        r"exited normally\]$",
        stops=40,  # main and the exit, 20 times
        sessions=20,
    ),
    Workload(
        "no-local-file",
        "gdb with no local file (the executable, ld.so and libc through vFile:pread), to a breakpoint in main",
        "bench",
        ("10",),
        ("break main", "continue", "bt 1"),
        r"^#0  main \(",
        stops=2,
        local_file=False,
    ),
    Workload(
        "first-stop",
        "exec of the server to gdb's first stop at the program's entry (target remote, "
        "info registers rip), then gdb quits: start-up as a session feels it",
        "bench",
        ("10",),
        ("info registers rip",),
        r"^rip\s+0x[0-9a-f]+",
        stops=1,
    ),
    Workload(
        "startup",
        "start-up: exec of the server to its 'Listening on port' line (no gdb)",
        "bench",
        ("10",),
        (),
        "",
        startup_only=True,
    ),
)


@dataclass
class Sample:
    seconds: float
    cpu: float = 0.0  # the server's user + system seconds (with the processes it reaped)
    error: str | None = None


def reap(proc: subprocess.Popen[str], timeout: float) -> float | None:
    """Wait (bounded) for the server to exit; its user + system CPU seconds, None on timeout.

    os.wait4 rather than Popen.wait: it also gives the rusage (which includes the children the
    server itself reaped, i.e. the program it debugged: the same program for both servers)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            return None
        time.sleep(0.002)


def one_session(tracker: ProcessTracker, kind: str, workload: Workload, workdir: Path) -> Sample:
    """Start the server, run gdb's commands, wait for both to exit; verify the work was done."""
    commands = [c.replace("{workdir}", str(workdir)) for c in workload.commands]
    start = time.perf_counter()
    try:
        server = harness.start_server(tracker, kind, harness.program(workload.program), workload.args)
    except HarnessError as error:
        return Sample(0.0, 0.0, str(error).splitlines()[0])
    if workload.startup_only:
        elapsed = time.perf_counter() - start
        server.stop()
        return Sample(elapsed)
    result = harness.run_gdb(tracker, server.port, commands, timeout=600,
                             file=harness.program(workload.program) if workload.local_file else None)
    cpu = reap(server.proc, 10)
    elapsed = time.perf_counter() - start
    server.stop()
    error = None
    if result.timed_out:
        error = "gdb timed out"
    elif cpu is None:
        error = "the server did not exit after gdb"
    elif not re.search(workload.expect, result.stdout, re.M):
        error = f"missing {workload.expect!r} in gdb output"
    elif workload.check is not None:
        error = workload.check(workdir)
    if error and "--verbose" in sys.argv:
        print(result.describe() + server.describe(), file=sys.stderr)
    return Sample(elapsed, cpu or 0.0, error)


def run_once(tracker: ProcessTracker, kind: str, workload: Workload) -> Sample:
    """One run: WORKLOAD.sessions whole sessions in a row, timed together."""
    total = Sample(0.0)
    for _ in range(workload.sessions):
        with tempfile.TemporaryDirectory(prefix="gdbstub-bench-") as tmp:
            sample = one_session(tracker, kind, workload, Path(tmp))
        if sample.error:
            return sample
        total.seconds += sample.seconds
        total.cpu += sample.cpu
    return total


def bare_start(runs: int) -> float:
    """Median wall seconds of `python -c pass` with the interpreter the stub runs on."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, env=harness.server_env())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="sessions per server and workload (default 5)")
    parser.add_argument("--only", action="append", default=[], help="workload name(s), comma-separated")
    parser.add_argument("--kinds", default=",".join(KINDS), help="servers to compare (default: both)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    parser.add_argument("--verbose", action="store_true", help="print gdb's output when a run fails")
    parser.add_argument("--gdb", choices=[*GDB_VERSIONS, "both"], default="both",
                        help="client gdb and reference gdbserver release (default: both, gdb16 when its root exists)")
    opts = parser.parse_args(argv)

    if opts.list:
        for w in WORKLOADS:
            print(f"{w.name:14} {w.description}")
        return 0
    wanted = {name for item in opts.only for name in item.split(",") if name}
    unknown = wanted - {w.name for w in WORKLOADS}
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}; see --list")
    workloads = [w for w in WORKLOADS if not wanted or w.name in wanted]
    kinds = [k for k in opts.kinds.split(",") if k]

    versions = list(GDB_VERSIONS) if opts.gdb == "both" else [opts.gdb]
    if opts.gdb == "both" and harness.gdb16_missing():
        versions = ["gdb13"]
    elif "gdb16" in versions and harness.gdb16_missing():
        parser.error(str(harness.gdb16_missing()))

    harness.build_programs()
    harness.become_subreaper()
    results: dict[str, dict[str, dict[str, list[Sample]]]] = {}
    failed = False
    for version in versions:
        harness.use_gdb(version)
        results[version] = {}
        failed = _table(version, workloads, kinds, opts, results[version]) or failed
    if opts.json:
        opts.json.write_text(
            json.dumps(
                {
                    version: {
                        name: {kind: [{"seconds": s.seconds, "cpu": s.cpu, "error": s.error} for s in runs]
                               for kind, runs in per.items()}
                        for name, per in table.items()
                    }
                    for version, table in results.items()
                },
                indent=2,
            )
        )
    return 1 if failed else 0


def _table(version: str, workloads: list[Workload], kinds: list[str], opts: argparse.Namespace,
           results: dict[str, dict[str, list[Sample]]]) -> bool:
    """Run every workload with the current gdb and print its table; True when a run failed."""
    tracker = ProcessTracker()
    failed = False
    pair = len(kinds) == 2
    header = f"{'workload':14} " + " ".join(f"{k:>12}" for k in kinds) + ("    ratio" if pair else "")
    header += "   cpu/stop " + " ".join(f"{k:>10}" for k in kinds) + ("    ratio" if pair else "")
    reference = {"gdb13": "gdb 13 vs gdbserver 13", "gdb16": "gdb 16 vs gdbserver 16"}[version]
    print(f"{reference}: median of {opts.runs} runs (servers alternate): wall time of the whole session "
          "from the server's start, and the server's CPU time (user + system) per stop")
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"bare start of {sys.executable} (-c pass): {bare_start(opts.runs) * 1000:.1f} ms")
    print(header)
    try:
        for workload in workloads:
            samples: dict[str, list[Sample]] = {k: [] for k in kinds}
            for _ in range(opts.runs):
                for kind in kinds:
                    samples[kind].append(run_once(tracker, kind, workload))
            results[workload.name] = samples
            cells, medians = [], {}
            for kind in kinds:
                errors = [s.error for s in samples[kind] if s.error]
                if errors:
                    failed = True
                    cells.append(f"{'FAIL':>12}")
                    print(f"  {workload.name} via {kind}: {errors[0]}", file=sys.stderr)
                else:
                    medians[kind] = statistics.median(s.seconds for s in samples[kind])
                    cells.append(f"{medians[kind]:>11.3f}s")
            ratio = ""
            if pair and len(medians) == 2 and medians[kinds[0]] > 0:
                ratio = f"  {medians[kinds[1]] / medians[kinds[0]]:6.2f}x"
            cpu = ""
            if workload.stops and not workload.startup_only:
                per_stop = {k: statistics.median(s.cpu for s in samples[k]) / workload.stops for k in medians}
                cpu = "   " + " ".join(f"{per_stop[k] * 1e6:>8.0f}us" if k in per_stop else f"{'-':>10}"
                                       for k in kinds)
                if pair and len(per_stop) == 2 and per_stop[kinds[0]] > 0:
                    cpu += f"  {per_stop[kinds[1]] / per_stop[kinds[0]]:6.2f}x"
            print(f"{workload.name:14} " + " ".join(cells) + ratio + cpu, flush=True)
    finally:
        leaked = tracker.finish(grace=5)
        if leaked:
            print(f"killed leftover processes: {leaked}", file=sys.stderr)
    return failed


if __name__ == "__main__":
    sys.exit(main())
