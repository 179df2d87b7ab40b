#!/usr/bin/env python3
"""Benchmark: the same stock-gdb sessions through gdbstub and through gdbserver, alternating.

    python integration/bench.py [--runs N] [--only NAME[,NAME...]] [--kinds gdbserver,gdbstub] [--json FILE]
                                [--gdb gdb13|gdb16|both]

Prints the median wall time of each gdb session per server and the ratio gdbstub/gdbserver.
With --gdb gdb16 the client is gdb 16 and the reference gdbserver 16 (`make gdb16` root);
`both` (the default when that root exists) prints one table per gdb.
A workload is one row of WORKLOADS: add rows to measure more (each has a check, so a server that
silently does less work cannot look fast).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
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


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "stepi-3000",
        "3000 x stepi from hot()",
        "bench",
        ("100000000",),
        ("break hot", "continue", "delete", "stepi 3000", "p i"),  # a breakpoint would end the stepi early
        r"^\$1 = 120$",  # 3000 instructions = 120 calls of hot() and a bit
    ),
    Workload(
        "break-2000",
        "2000 breakpoint hits (break + ignore 1 1999 + continue)",
        "bench",
        ("2001",),
        ("break hot", "ignore 1 1999", "continue", "p i"),
        r"^\$1 = 1999$",
    ),
    Workload(
        "dump-4MiB",
        "dump binary memory of a 4 MiB global",
        "bench",
        ("10",),
        ("break hot", "continue", "dump binary memory {workdir}/big.bin &big[0] &big[4194304]"),
        r"^Breakpoint 1, hot",
        _check_dump,
    ),
    Workload(
        "run-to-exit",
        "continue until the program exits (1000 calls)",
        "bench",
        ("1000",),
        ("continue",),
        r"exited normally\]$",
    ),
    Workload(
        "cond-2000",
        "conditional breakpoint true once in 2000 hits (break hot if i == 1999)",
        "bench",
        ("2001",),
        ("break hot if i == 1999", "continue", "p i"),
        r"^\$1 = 1999$",
    ),
    Workload(
        "next-200",
        "next 200 times over the call loop (range stepping)",
        "bench",
        ("1000",),
        (f"break {harness.location('loop', 'bench')}", "continue", "next 200", "p i"),
        r"^\$1 = 99$",  # 200 lines: the loop line and the call, 100 times each
    ),
)


@dataclass
class Sample:
    seconds: float
    error: str | None = None


def run_once(tracker: ProcessTracker, kind: str, workload: Workload) -> Sample:
    """One session: start the server (not timed), time gdb from start to exit, verify the work was done."""
    with tempfile.TemporaryDirectory(prefix="gdbstub-bench-") as tmp:
        workdir = Path(tmp)
        commands = [c.replace("{workdir}", tmp) for c in workload.commands]
        try:
            server = harness.start_server(tracker, kind, harness.program(workload.program), workload.args)
        except HarnessError as error:
            return Sample(0.0, str(error).splitlines()[0])
        start = time.perf_counter()
        result = harness.run_gdb(tracker, server.port, commands, file=harness.program(workload.program), timeout=600)
        elapsed = time.perf_counter() - start
        server.wait_exit(10)
        server.stop()
        error = None
        if result.timed_out:
            error = "gdb timed out"
        elif not re.search(workload.expect, result.stdout, re.M):
            error = f"missing {workload.expect!r} in gdb output"
        elif workload.check is not None:
            error = workload.check(workdir)
        if error and "--verbose" in sys.argv:
            print(result.describe() + server.describe(), file=sys.stderr)
        return Sample(elapsed, error)


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
                        name: {kind: [{"seconds": s.seconds, "error": s.error} for s in runs]
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
    header = f"{'workload':14} " + " ".join(f"{k:>12}" for k in kinds) + ("    ratio" if len(kinds) == 2 else "")
    reference = {"gdb13": "gdb 13 vs gdbserver 13", "gdb16": "gdb 16 vs gdbserver 16"}[version]
    print(f"{reference}: median of {opts.runs} runs, wall time of the gdb session (servers alternate)")
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
            if len(kinds) == 2 and len(medians) == 2 and medians[kinds[0]] > 0:
                ratio = f"  {medians[kinds[1]] / medians[kinds[0]]:6.2f}x"
            print(f"{workload.name:14} " + " ".join(cells) + ratio, flush=True)
    finally:
        leaked = tracker.finish(grace=5)
        if leaked:
            print(f"killed leftover processes: {leaked}", file=sys.stderr)
    return failed


if __name__ == "__main__":
    sys.exit(main())
