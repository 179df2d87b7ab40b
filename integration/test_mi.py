"""IDE front ends (VS Code's C/C++ extension, CLion, Eclipse) drive gdb through MI: the same MI session
through gdbstub and through gdbserver must produce the same records.

Each session is a list of steps; a step's records are everything gdb printed for it (result, async
*stopped/*running, =notifications), parsed with pygdbmi, with pids and ports normalised. The
gdbserver-vs-gdbserver run proves the comparison is deterministic.
"""

from __future__ import annotations

import re
from typing import Any

import harness
import pytest
from harness import MIClient, ProcessTracker, source_line

pytest.importorskip("pygdbmi")

BARRIER = "-data-evaluate-expression 1234567"
# Notifications that depend on when, not whether, gdb learns of libraries (svr4 vs r_debug walking),
# and the trace state variable gdb creates when the server supports tracepoints (gdbstub does not).
UNORDERED = ("library-loaded", "library-unloaded", "tsv-created")


def _normalise(value: Any, pids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v, pids) for k, v in value.items() if k not in ("core", "cores")}
    if isinstance(value, list):
        return [_normalise(v, pids) for v in value]
    if isinstance(value, str):
        if value.isdigit():  # a number (a register's, a line's): only the decimal pid is the pid
            return "PID" if pids.get(value) == "PID" else value
        for pid, name in pids.items():
            value = re.sub(rf"\b{pid}\b", name, value)
        value = re.sub(r"\bThread PID\.\d+", "Thread PID.TID", value)
        return re.sub(r"127\.0\.0\.1:\d+", "HOST:PORT", value)
    return value


class MISession:
    """One gdb/MI process against one server, recording each step's records."""

    def __init__(self, procs: ProcessTracker, kind: str, prog: str, args: list[str]) -> None:
        self.server = harness.start_server(procs, kind, harness.program(prog), args)
        self.mi = MIClient(procs, harness.program(prog))
        self.steps: list[tuple[str, list[dict[str, Any]]]] = []
        self._mark = 0
        self.run("-gdb-set confirm off")
        self.run("-gdb-set mi-async on")

    def _records(self) -> list[dict[str, Any]]:
        from pygdbmi.gdbmiparser import parse_response

        lines = self.mi.log[self._mark:]
        self._mark = len(self.mi.log)
        out = []
        for line in lines:
            text = line.rstrip("\n")
            if not text or text == "(gdb) ":
                continue
            record = parse_response(text)
            if record["type"] in ("console", "log", "target", "output"):
                continue
            if record["type"] == "result" and record["payload"] == {"value": "1234567"}:
                continue  # the barrier's own result
            if record["type"] == "notify" and record["message"] in UNORDERED:
                continue
            out.append({k: record[k] for k in ("type", "message", "payload")})
        return out

    def run(self, command: str, wait_stop: bool = False) -> dict[str, Any]:
        """Send COMMAND (and wait for *stopped if it resumes); record what gdb printed for it."""
        result = self.mi.send(command)
        if wait_stop and result["message"] == "running":
            self.mi.wait_stopped()
        self.mi.send(BARRIER)  # everything gdb prints for COMMAND comes before the barrier's result
        self.steps.append((command, self._records()))
        return result

    def close(self) -> None:
        self.mi.close()
        self.server.wait_exit(harness.EXIT_TIMEOUT)

    def normalised(self) -> list[tuple[str, list[dict[str, Any]]]]:
        pids: dict[str, str] = {}
        pid = self.server.inferior_pid
        if pid is not None:
            pids[str(pid)] = "PID"
            pids[f"{pid:x}"] = "PIDHEX"
        steps = [(cmd.replace(self.server.address, "HOST:PORT"), _normalise(recs, pids))
                 for cmd, recs in self.steps]
        return steps


def _without_other_threads_frames(record: dict[str, Any]) -> dict[str, Any]:
    """Where threads other than the stopped one wait (which futex call) varies from run to run."""
    payload = record.get("payload")
    if not isinstance(payload, dict):
        return record
    payload = dict(payload)
    if "threads" in payload:
        current = payload.get("current-thread-id")
        payload["threads"] = [t if t.get("id") == current else {k: v for k, v in t.items() if k != "frame"}
                              for t in payload["threads"]]
    if "new-thread-id" in payload:
        payload.pop("frame", None)
    return {**record, "payload": payload}


def _compare(ours: MISession, ref: MISession, threads: bool = False) -> None:
    got, want = ours.normalised(), ref.normalised()
    if threads:
        got = [(cmd, [_without_other_threads_frames(r) for r in recs]) for cmd, recs in got]
        want = [(cmd, [_without_other_threads_frames(r) for r in recs]) for cmd, recs in want]
    diffs = [f"{cmd!r}\n  {ours.server.kind}: {mine}\n  {ref.server.kind}: {theirs}"
             for (cmd, mine), (_, theirs) in zip(got, want, strict=True) if mine != theirs]
    assert not diffs, (
        "MI records differ:\n" + "\n".join(diffs)
        + f"\n=== transcript ({ours.server.kind}):\n{''.join(ours.mi.log)}\n{ours.server.describe()}"
    )


def _session(procs: ProcessTracker, kind: str, prog: str, script: list[tuple[str, bool]],
             args: list[str]) -> MISession:
    try:
        s = MISession(procs, kind, prog, args)
    except harness.HarnessError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        s.run(f"-target-select remote {s.server.address}")
        for command, wait in script:
            s.run(command, wait)
    finally:
        s.close()
    return s


LOOP_SCRIPT = [
    ("-break-insert hot", False),
    (f"-break-insert loop.c:{source_line('call-add')}", False),
    ("-exec-continue", True),
    ("-stack-list-frames", False),
    ("-stack-list-variables --all-values", False),
    ("-stack-list-arguments --simple-values", False),
    ("-data-list-register-values x 0 1 2 3 4 5 6 7 8", False),
    ("-var-create v_i * i", False),
    ("-var-create v_msg * message", False),
    ("-var-list-children --all-values v_msg 0 4", False),
    ("-exec-next", True),
    ("-var-update --all-values *", False),
    ("-exec-finish", True),
    ("-thread-info", False),
    ("-break-delete 1", False),
    ("-exec-continue", True),
    ("-stack-list-locals --simple-values", False),
    ("-exec-step", True),
    ("-data-evaluate-expression a+b", False),
    ("-exec-continue", True),
]


@pytest.mark.parametrize("prog", ["loop", pytest.param("loop-32", marks=pytest.mark.i386)])
def test_mi_session_same_as_gdbserver(procs, kind, prog):
    ours = _session(procs, kind, prog, LOOP_SCRIPT, ["3"])
    ref = _session(procs, "gdbserver", prog, LOOP_SCRIPT, ["3"])
    stops = [recs for cmd, recs in ref.steps if cmd in ("-exec-continue", "-exec-next", "-exec-finish")]
    assert any(r["message"] == "stopped" and r["payload"].get("reason") == "breakpoint-hit"
               for recs in stops for r in recs), ref.steps
    assert any(r["message"] == "stopped" and r["payload"].get("reason") == "exited"
               for recs in stops for r in recs), ref.steps
    _compare(ours, ref)


@pytest.mark.threads
def test_mi_threads_same_as_gdbserver(procs, kind):
    script = [
        (f"-break-insert -t threads.c:{source_line('all-done', 'threads')}", False),
        ("-exec-continue", True),
        ("-thread-list-ids", False),
        ("-thread-info", False),
        ("-thread-select 2", False),
        ("-thread-select 1", False),
        ("-stack-list-frames", False),
        ("-exec-continue", True),
    ]
    ours = _session(procs, kind, "threads", script, [])
    _compare(ours, _session(procs, "gdbserver", "threads", script, []), threads=True)


def user_ticks(pid: int) -> int:
    """User CPU time of PID in clock ticks (/proc/PID/stat field 14); 0 once it is gone."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return 0
    return int(stat[stat.rindex(")") + 2 :].split()[11])


def test_mi_interrupt_same_as_gdbserver(procs, kind):
    """-exec-interrupt while running: where it stops varies, so compare the stop's shape only."""
    seen: dict[str, dict[str, Any]] = {}
    for which in (kind, "gdbserver"):
        try:
            s = MISession(procs, which, "busy", [])
        except harness.HarnessError as error:
            pytest.fail(str(error), pytrace=False)
        try:
            assert s.run(f"-target-select remote {s.server.address}")["message"] == "connected"
            assert s.run("-exec-continue")["message"] == "running"
            started = s.server.stdout.wait_for(re.compile(r"busy pid (\d+)"), 20)
            assert started, s.server.describe()
            # Past its printf and spinning (else the stop may land in write()): 30 ms of user CPU.
            pid = int(started.group(1))
            assert harness.wait_until(lambda pid=pid: user_ticks(pid) >= 3, 20), s.server.describe()
            assert s.mi.send("-exec-interrupt")["message"] == "done"
            stopped = s.mi.wait_stopped()["payload"]
            seen[which] = {"reason": stopped.get("reason"), "signal-name": stopped.get("signal-name"),
                           "func": stopped.get("frame", {}).get("func"),
                           "stopped-threads": stopped.get("stopped-threads")}
            s.run('-interpreter-exec console "kill"')
        finally:
            s.close()
    assert seen[kind] == seen["gdbserver"], seen
    assert seen[kind]["signal-name"] == "SIGINT", seen


# What VS Code's C/C++ extension (cppdbg with miDebuggerServerAddress) sends on connect and at a stop.
VSCODE_SCRIPT = [
    ("-gdb-set target-async on", False),
    ("-interpreter-exec console \"set print pretty on\"", False),
    (f"-break-insert -f loop.c:{source_line('add-body')}", False),
    ("-exec-continue", True),
    ("-thread-info", False),
    ("-stack-info-depth --thread 1 100", False),
    ("-stack-list-frames --thread 1 0 1000", False),
    ("-stack-list-variables --thread 1 --frame 0 --simple-values", False),
    ("-var-create - * \"a + b\"", False),
    ("-var-evaluate-expression var1", False),
    ("-data-list-register-names", False),
    ("-data-list-register-values --skip-unavailable x 0 1 2 3 4 5 6 7 8 9 10", False),
    ("-data-read-memory-bytes &message 14", False),
    ("-data-disassemble -s $pc -e \"$pc + 8\" -- 0", False),
    ("-data-evaluate-expression counter", False),
    ("-exec-next --thread 1", True),
    ("-var-update --all-values *", False),
    ("-exec-finish --thread 1", True),
    ("-break-delete 1", False),
    ("-exec-continue", True),
]


@pytest.mark.parametrize("prog", ["loop", pytest.param("loop-32", marks=pytest.mark.i386)])
def test_mi_vscode_style_session_same_as_gdbserver(procs, kind, prog):
    ours = _session(procs, kind, prog, VSCODE_SCRIPT, ["3"])
    ref = _session(procs, "gdbserver", prog, VSCODE_SCRIPT, ["3"])
    names = next(recs for cmd, recs in ref.steps if cmd == "-data-list-register-names")
    assert names and names[0]["payload"]["register-names"][:2] in (["rax", "rbx"], ["eax", "ecx"]), names
    _compare(ours, ref)


# Eclipse CDT and CLion also ask for thread groups, changed registers and the feature list.
ECLIPSE_SCRIPT = [
    ("-list-features", False),
    ("-list-thread-groups", False),
    (f"-break-insert -f loop.c:{source_line('hot-body')}", False),
    ("-exec-continue", True),
    ("-list-thread-groups i1", False),
    ("-thread-list-ids", False),
    ("-data-list-changed-registers", False),
    ("-exec-continue", True),
    ("-data-list-changed-registers", False),
    ("-stack-list-arguments 1 0 1", False),
    ("-break-delete", False),
    ("-exec-continue", True),
]


def test_mi_eclipse_style_session_same_as_gdbserver(procs, kind):
    _compare(_session(procs, kind, "loop", ECLIPSE_SCRIPT, ["3"]),
             _session(procs, "gdbserver", "loop", ECLIPSE_SCRIPT, ["3"]))
