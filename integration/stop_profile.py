#!/usr/bin/env python3
"""Where the stub's CPU per stop goes, by phase: the README's profile of the stop path.

    python integration/stop_profile.py [--gdb gdb13|gdb16] [--runs 3] [--top N] [--json FILE]

For each workload (`stepi`, breakpoint hits through `ignore`) the same gdb session runs twice
with a long and a short count, through the stub under cProfile on the CPU clock
(`time.process_time`, so system time inside a call counts and waiting does not). The difference
of each function's own time between the two sessions, over the difference of stops, is its cost
per stop; start-up and the connect sequence cancel out. Functions are summed into phases by the
module and name that hold them (PHASES; built-in calls go by their name, or else to the phase of
the code that called them). The profiler slows Python calls more than system calls, so the
phases are then scaled to the stub's CPU per stop measured without it (os.wait4 of the same
sessions unprofiled, medians of --runs): the split is cProfile's, the total is real.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from pstats import Stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
from bench import reap
from harness import GDB_VERSIONS, ProcessTracker

# (long count, short count, gdb commands for a count, program arguments for a count)
WORKLOADS = {
    "stepi": (3000, 1000, lambda n: ["break hot", "continue", "delete", f"stepi {n}"], lambda n: ["100000000"]),
    "breakpoint hit": (2000, 500, lambda n: ["break hot", f"ignore 1 {n - 1}", "continue"], lambda n: [str(n + 1)]),
}

PROFILED = """\
import cProfile, sys, time
from gdbstub import cli
out = sys.argv.pop(1)
profile = cProfile.Profile(time.process_time)
profile.enable()
try:
    code = cli.main(sys.argv[1:])
finally:
    profile.disable()
    profile.dump_stats(out)
sys.exit(code)
"""

# Phase of a built-in call, by a part of its name; first match wins.
BUILTINS = (
    ("recv", "receive"),
    ("send", "send"),
    ("epoll", "wait"),
    ("poll", "wait"),
    ("select", "wait"),
    ("waitpid", "wait"),
    ("wait4", "wait"),
    ("posix.read", "wait"),  # the signalfd or wake-up pipe
    ("pread", "ptrace"),
    ("pwrite", "ptrace"),
    ("hexlify", "encode"),
    ("unhexlify", "decode"),
)

# Phase of Python code, by its file (under gdbstub/) and, for the framer and transport, its name.
FILES = (
    ("target/linux/registers.py", "registers"),
    ("target/linux/regs", "registers"),
    ("target/linux/ptrace.py", "ptrace"),
    ("target/linux/memory", "ptrace"),
    ("target/linux/childsignal.py", "wait"),
    ("target/", "bookkeeping"),
    ("protocol/grammar.py", "decode"),
    ("protocol/", "dispatch"),
    ("server.py", "dispatch"),
    ("agent", "dispatch"),
)

PHASES = {
    "dispatch": "dispatch: server loop, session.handle, handlers (vCont, Z/z, m), conditions",
    "bookkeeping": "target bookkeeping: resume, wait-status decoding, stop events, threads",
    "decode": "decode: framing, checksum, packet name, argument grammars",
    "registers": "registers: GETREGS cache, get_pc, expedited registers",
    "ptrace": "ptrace system calls, /proc/PID/mem",
    "wait": "wait: epoll, waitpid, SIGCHLD (signalfd)",
    "encode": "encode: stop reply, `core:`, framing.encode",
    "send": "send",
    "receive": "receive",
}


def _phase_of_code(path: str, name: str) -> str | None:
    where = path.replace(os.sep, "/")
    if "/gdbstub/" not in where:
        return None
    where = where.split("/gdbstub/", 1)[1]
    if where.endswith("framing.py"):
        return "encode" if any(w in name for w in ("encode", "escape", "frame", "reply")) else "decode"
    if where.endswith("transport.py"):
        return "send" if "send" in name else "receive" if "recv" in name else "wait"
    if "reply" in name or "expedite" in name or name == "thread_core":
        return "encode"
    if name == "packet_name" or name.startswith("parse"):
        return "decode"
    for prefix, phase in FILES:
        if where.startswith(prefix):
            return phase
    return "dispatch"


def phase_times(stats: Stats, functions: dict[str, float] | None = None) -> dict[str, float]:
    """Own time of every function, in seconds, summed by phase (and by function into FUNCTIONS)."""
    table = stats.stats  # type: ignore[attr-defined]
    phases: dict[str, float] = defaultdict(float)

    def phase_of(key: tuple[str, int, str], depth: int = 0) -> str:
        path, _, name = key
        if path != "~":
            return _phase_of_code(path, name) or "dispatch"
        for part, phase in BUILTINS:
            if part in name:
                return phase
        callers = table[key][4]
        if not callers or depth > 3:
            return "dispatch"
        return phase_of(max(callers, key=lambda k: callers[k][2]), depth + 1)

    def shares(key: tuple[str, int, str]) -> list[tuple[str, float]]:
        """A built-in's own time goes to the phase of each caller, in the caller's share."""
        callers = table[key][4]
        own = table[key][2]
        if key[0] != "~" or any(part in key[2] for part, _ in BUILTINS) or not callers:
            return [(phase_of(key), own)]
        spent = sum(c[2] for c in callers.values()) or 1.0
        return [(phase_of(caller), own * c[2] / spent) for caller, c in callers.items()]

    for key in table:
        for phase, own in shares(key):
            phases[phase] += own
            if functions is not None:
                where = key[0].split("/gdbstub/")[-1] if key[0] != "~" else ""
                name = f"{phase:11} {where}:{key[2]}"
                functions[name] = functions.get(name, 0.0) + own
    return phases


def session(tracker: ProcessTracker, name: str, count: int, profile: Path | None) -> float:
    """One gdb session of WORKLOAD with COUNT stops; the stub's CPU seconds (wait4)."""
    _, _, commands, args = WORKLOADS[name]
    prog = harness.program("bench")
    argv = harness.server_command("gdbstub", prog, args(count))
    if profile is not None:
        argv = [argv[0], "-c", PROFILED, str(profile), *argv[3:]]
    proc = tracker.spawn(argv, env=harness.server_env())
    err = harness.OutputReader(proc.stderr)
    found = err.wait_for(harness.LISTENING_RE, harness.START_TIMEOUT)
    if found is None:
        raise SystemExit(f"the stub did not listen: {err.text}")
    result = harness.run_gdb(tracker, int(found.group(1)), commands(count), file=prog, timeout=600)
    cpu = reap(proc, 30)
    if cpu is None or result.timed_out:
        raise SystemExit(f"{name} x {count}: the session did not end\n{result.describe()}{err.text}")
    return cpu


def measure(runs: int, top: int) -> dict[str, dict[str, float]]:
    """Per workload: microseconds per stop by phase, scaled to the unprofiled CPU per stop."""
    results: dict[str, dict[str, float]] = {}
    tracker = ProcessTracker()
    with tempfile.TemporaryDirectory(prefix="gdbstub-profile-") as tmp:
        for name, (long, short, _, _) in WORKLOADS.items():
            stops = long - short
            cpu = statistics.median(
                session(tracker, name, long, None) - session(tracker, name, short, None)
                for _ in range(runs)
            ) / stops
            split: dict[str, float] = defaultdict(float)
            for run in range(runs):
                files = [Path(tmp, f"{name}-{run}-{n}.prof") for n in (long, short)]
                for n, path in zip((long, short), files, strict=True):
                    session(tracker, name, n, path)
                per: list[dict[str, float]] = [{}, {}]
                more, fewer = (phase_times(Stats(str(p)), f) for p, f in zip(files, per, strict=True))
                for phase in PHASES:
                    split[phase] += max(more.get(phase, 0.0) - fewer.get(phase, 0.0), 0.0)
                if top and run == 0:
                    costs = {f: (t - per[1].get(f, 0.0)) / stops * 1e6 for f, t in per[0].items()}
                    print(f"{name}: profiled own time per stop, top {top}")
                    for function, cost in sorted(costs.items(), key=lambda kv: -kv[1])[:top]:
                        print(f"  {cost:7.1f} µs  {function}")
            total = sum(split.values()) or 1.0
            results[name] = {phase: cpu * split[phase] / total * 1e6 for phase in PHASES}
            results[name]["total"] = cpu * 1e6
    tracker.finish()
    return results


def table(results: dict[str, dict[str, float]]) -> str:
    names = list(results)
    lines = ["| phase | " + " | ".join(f"`{n}`" if n == "stepi" else n for n in names) + " |",
             "|---" * (len(names) + 1) + "|"]
    for phase, title in [*PHASES.items(), ("total", "total (wait4 CPU per stop, no profiler)")]:
        lines.append(f"| {title} | " + " | ".join(f"{results[n][phase]:.0f} µs" for n in names) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gdb", choices=GDB_VERSIONS, default=GDB_VERSIONS[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--top", type=int, default=0, help="also list the N costliest functions per stop")
    opts = parser.parse_args()
    harness.build_programs()
    harness.become_subreaper()
    harness.use_gdb(opts.gdb)
    results = measure(opts.runs, opts.top)
    load = os.getloadavg()[0]
    print(f"stub CPU per stop by phase ({opts.gdb}, median of {opts.runs}, load {load:.1f})")
    print(table(results))
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
