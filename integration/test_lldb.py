"""lldb 14 through gdbstub (`gdb-remote HOST:PORT`), scripted with `lldb -b -o ...`, checked line by line.

gdbserver is no reference here (it misbehaves with lldb): the reference is lldb-server, which the
newer tests run the same lldb script through (`lldb(..., kind="lldb-server")`); values that gdb can
also see (registers, memory) are compared with gdb through gdbserver at the same breakpoint.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

import harness
import pytest
from harness import ProcessTracker, Server, source_line

pytestmark = [pytest.mark.lldb, pytest.mark.skipif(shutil.which("lldb") is None, reason="no lldb")]
LLDB_SERVER = shutil.which("lldb-server")
needs_lldb_server = pytest.mark.skipif(LLDB_SERVER is None, reason="no lldb-server (the reference)")

LLDB_TIMEOUT = 90.0
# lldb 14 on Debian prints this when its Python module is not installed; it changes nothing else.
LLDB_NOISE = re.compile(r"embedded_interpreter|^Traceback|^  File \"<string>\"")


@dataclass
class LldbRun:
    server: Server
    argv: list[str]
    stdout: str
    stderr: str
    returncode: int | None

    @property
    def lines(self) -> list[str]:
        return [line.rstrip() for line in (self.stdout + self.stderr).splitlines()
                if not LLDB_NOISE.search(line)]

    def describe(self) -> str:
        return (f"--- lldb rc={self.returncode}: {' '.join(self.argv)}\n" + "\n".join(self.lines)
                + f"\n{self.server.describe()}")

    def expect_lines(self, *patterns: str) -> list[re.Match[str]]:
        """Each pattern matches a whole line, in this order (other lines may come between)."""
        found = []
        lines = self.lines
        at = 0
        for pattern in patterns:
            regex = re.compile(pattern)
            for i in range(at, len(lines)):
                match = regex.fullmatch(lines[i])
                if match:
                    found.append(match)
                    at = i + 1
                    break
            else:
                raise AssertionError(f"no line matches {pattern!r} after line {at}\n{self.describe()}")
        return found

    def expect_absent(self, *patterns: str) -> None:
        for pattern in patterns:
            for line in self.lines:
                assert not re.search(pattern, line), f"unexpected {line!r}\n{self.describe()}"


def lldb(procs: ProcessTracker, prog: str, args: list[str], commands: list[str],
         extra: tuple[str, ...] = (), kind: str = "gdbstub") -> LldbRun:
    """Start KIND (gdbstub --once, or lldb-server) on PROG ARGS and run lldb's COMMANDS against it,
    then let the server end."""
    path = harness.program(prog)
    try:
        if kind == "lldb-server":
            server = start_lldb_server(procs, path, args)
        else:
            server = harness.start_server(procs, "gdbstub", path, args, extra=extra)
    except harness.HarnessError as error:
        pytest.fail(str(error), pytrace=False)
    return run_lldb(procs, server, str(path), commands)


def start_lldb_server(procs: ProcessTracker, path: os.PathLike[str], args: list[str]) -> Server:
    """`lldb-server gdbserver 127.0.0.1:0 -- PROG ARGS`: it writes the port it chose to --pipe.

    Like gdbstub --once it serves one client and leaves with it."""
    assert LLDB_SERVER is not None
    read_end, write_end = os.pipe()
    argv = [LLDB_SERVER, "gdbserver", "--pipe", str(write_end), "127.0.0.1:0", "--", os.fspath(path), *args]
    try:
        proc = procs.spawn(argv, env=harness.server_env(), pass_fds=(write_end,))
    finally:
        os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], harness.START_TIMEOUT)
        port = os.read(read_end, 32).rstrip(b"\0") if ready else b""
    finally:
        os.close(read_end)
    server = Server("lldb-server", proc, int(port) if port.isdigit() else 0,
                    harness.OutputReader(proc.stdout), harness.OutputReader(proc.stderr), argv)
    if not server.port:
        server.stop()
        raise harness.HarnessError(f"lldb-server did not give its port\n{server.describe()}")
    return server


def run_lldb(procs: ProcessTracker, server: Server, path: str, commands: list[str]) -> LldbRun:
    """lldb -b: connect to SERVER with PATH as the target file, run COMMANDS, let the stub end."""
    argv = [shutil.which("lldb") or "lldb", "--no-lldbinit", "--no-use-colors", "-b",
            "-o", "settings set auto-confirm true",
            "-o", f"gdb-remote {server.address}"]
    for command in commands:
        argv += ["-o", command]
    argv.append(path)
    env = dict(os.environ, LANG="C.UTF-8", TERM="dumb")
    env.pop("DEBUGINFOD_URLS", None)
    proc = procs.spawn(argv, env=env)
    try:
        out, err = proc.communicate(timeout=LLDB_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        err += "\n*** lldb timed out"
    server.wait_exit(harness.EXIT_TIMEOUT)
    server.stderr.join(1)
    server.stdout.join(1)
    return LldbRun(server, argv, out, err, proc.returncode)


LOOP_PROGS = pytest.mark.parametrize("prog", ["loop", pytest.param("loop-32", marks=pytest.mark.i386)])


MAIN = r"main\(argc=2, argv=0x[0-9a-f]+\)"


def _exe(prog: str) -> str:
    return re.escape(prog)


@LOOP_PROGS
def test_breakpoint_backtrace_and_variables(procs, prog):
    hot = source_line("hot-body")
    r = lldb(procs, prog, ["3"], ["b hot", "c", "bt", "frame variable i", "c", "frame variable i", "kill"])
    r.expect_lines(
        rf"Breakpoint 1: where = {_exe(prog)}`hot \+ \d+ at loop\.c:{hot}:\d+, address = 0x[0-9a-f]+",
        r"Process \d+ resuming",
        r"\* thread #1, name = '[\w-]+', stop reason = breakpoint 1\.1",
        rf"    frame #0: 0x[0-9a-f]+ {_exe(prog)}`hot\(i=0\) at loop\.c:{hot}:\d+",
        r"\(lldb\) bt",
        r"\* thread #1, name = '[\w-]+', stop reason = breakpoint 1\.1",
        rf"  \* frame #0: 0x[0-9a-f]+ {_exe(prog)}`hot\(i=0\) at loop\.c:{hot}:\d+",
        rf"    frame #1: 0x[0-9a-f]+ {_exe(prog)}`{MAIN} at loop\.c:{source_line('call-hot')}:\d+",
        r"    frame #\d+: 0x[0-9a-f]+ libc\.so\.6`.*",
        r"\(long\) i = 0",
        r"\* thread #1, name = '[\w-]+', stop reason = breakpoint 1\.1",
        rf"    frame #0: 0x[0-9a-f]+ {_exe(prog)}`hot\(i=1\) at loop\.c:{hot}:\d+",
        r"\(long\) i = 1",
        r"Process \d+ exited with status = 9 \(0x00000009\)\s*",
    )
    r.expect_absent(r"stop reason = signal SIGTRAP.*hot", r"error:")


def _gdb_values(procs: ProcessTracker, prog: str, names: list[str]) -> dict[str, str]:
    """The same values through gdb and gdbserver, stopped at the first call of hot()."""
    session = harness.debug(procs, "gdbserver", harness.program(prog), ["3"],
                            ["break hot", "continue", *(f"p/x {n}" for n in names), "kill"])
    values = re.findall(r"^\$(\d+) = (0x[0-9a-f]+)$", session.out, re.M)
    assert len(values) == len(names), session.describe()
    return {name: value for name, (_, value) in zip(names, values, strict=True)}


@LOOP_PROGS
def test_register_read_all_registers(procs, prog):
    wide = prog == "loop"
    flags = "rflags" if wide else "eflags"  # lldb's name, as lldb-server gives it
    general = (["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", *(f"r{n}" for n in range(8, 16)),
                "rip", "rflags"] if wide else
               ["eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp", "eip", "eflags"])
    segments = ["cs", "ss", "ds", "es", "fs", "gs"]
    pc, sp, fp = ("rip", "rsp", "rbp") if wide else ("eip", "esp", "ebp")
    r = lldb(procs, prog, ["3"], ["b hot", "c", "register read", "register read --all", "kill"])
    table: dict[str, str] = {}
    for line in r.lines:
        found = re.fullmatch(r"\s+(\w+) = (0x[0-9a-f]+|\{.*\})(\s.*)?", line)
        if found:
            table.setdefault(found.group(1), found.group(2))
    missing = [n for n in [*general, *segments] if n not in table]
    assert not missing, f"registers missing: {missing}\n{r.describe()}"
    fp_regs = [f"st{n}" for n in range(8)] + [f"xmm{n}" for n in range(16 if wide else 8)]
    missing = [n for n in [*fp_regs, "mxcsr"] if n not in table]
    assert not missing, f"registers missing from --all: {missing}\n{r.describe()}"
    want = _gdb_values(procs, prog, [f"${pc}", f"${sp}", f"${fp}", "$eflags", "$cs", "$ss"])
    got = {f"${n}": int(table[n], 16) for n in (pc, sp, fp, "cs", "ss")}
    got["$eflags"] = int(table[flags], 16)
    assert got == {k: int(v, 16) for k, v in want.items()}, f"lldb {got}, gdb/gdbserver {want}\n{r.describe()}"


@LOOP_PROGS
def test_memory_read(procs, prog):
    r = lldb(procs, prog, ["3"], [
        "b add", "c",
        "memory read --size 1 --count 14 --format c &message",
        "memory read --size 4 --count 1 --format x &g32",
        "memory read --size 8 --count 1 --format x &g64",
        "memory read --size 4 --count 8 --num-per-line 4 --format d &table",
        "kill"])
    r.expect_lines(
        r"\* thread #1, name = '[\w-]+', stop reason = breakpoint 1\.1",
        r"0x[0-9a-f]+: hello, gdbstub",
        r"0x[0-9a-f]+: 0x33333333",
        r"0x[0-9a-f]+: 0x4444444444444444",
        r"0x[0-9a-f]+: 1 2 3 4",
        r"0x[0-9a-f]+: 5 6 7 8",
    )
    r.expect_absent(r"error:")


@LOOP_PROGS
def test_step_inst_step_next_finish(procs, prog):
    add = source_line("add-body")
    r = lldb(procs, prog, ["3"], [
        "b add", "c", "thread step-inst", "thread step-over", "thread step-in", "thread step-out",
        "thread step-over", "kill"])
    r.expect_lines(
        rf"    frame #0: 0x[0-9a-f]+ {_exe(prog)}`add\(a=42, b=3\) at loop\.c:{add}:\d+",
        r"\(lldb\) thread step-inst",
        r"\* thread #1, name = '[\w-]+', stop reason = instruction step into",
        r"\(lldb\) thread step-over",
        r"\* thread #1, name = '[\w-]+', stop reason = step over",
        rf"    frame #0: 0x[0-9a-f]+ {_exe(prog)}`add\(a=42, b=3\) at loop\.c:{add + 1}:\d+",
        r"\(lldb\) thread step-in",
        r"\* thread #1, name = '[\w-]+', stop reason = step in",
        r"\(lldb\) thread step-out",
        r"\* thread #1, name = '[\w-]+', stop reason = step out",
        r"Return value: \(int\) \$0 = 45",
        rf"    frame #0: 0x[0-9a-f]+ {_exe(prog)}`{MAIN} at loop\.c:{source_line('call-add')}:\d+",
        r"\(lldb\) thread step-over",
        r"\* thread #1, name = '[\w-]+', stop reason = step over",
        rf"    frame #0: 0x[0-9a-f]+ {_exe(prog)}`{MAIN} at loop\.c:{source_line('print')}:\d+",
    )
    r.expect_absent(r"error:")


@LOOP_PROGS
def test_watchpoint(procs, prog):
    counter = source_line("hot-counter")
    r = lldb(procs, prog, ["3"], [
        "b hot", "c", "watchpoint set variable counter", "c", "frame variable i", "c",
        "frame variable i", "kill"])
    r.expect_lines(
        r"Watchpoint created: Watchpoint 1: addr = 0x[0-9a-f]+ size = 4 state = enabled type = w",
        r"\* thread #1, name = '[\w-]+', stop reason = watchpoint 1",
        rf"    frame #0: 0x[0-9a-f]+ {_exe(prog)}`hot\(i=0\) at loop\.c:({counter}|{counter + 1}):\d+",
        r"\(long\) i = 0",
        r"\* thread #1, name = '[\w-]+', stop reason = (watchpoint 1|breakpoint 1\.1)",
    )
    r.expect_absent(r"error:")


@pytest.mark.threads
@pytest.mark.parametrize("prog", ["threads", pytest.param("threads-32", marks=pytest.mark.i386)])
def test_threads(procs, prog):
    r = lldb(procs, prog, [], ["b worker", "c", "thread list", "bt", "kill"])
    r.expect_lines(
        r"\* thread #\d+, name = 'worker-\d', stop reason = breakpoint 1\.1",
        r"\(lldb\) thread list",
        r"Process \d+ stopped",
    )
    listed = [line for line in r.lines if re.match(r"[* ] thread #\d+: tid = \d+, 0x[0-9a-f]+ ", line)]
    names = sorted(re.search(r"name = '([\w-]+)'", line).group(1) for line in listed)  # type: ignore[union-attr]
    assert names == sorted([prog] + [f"worker-{n}" for n in range(1, 9)]), r.describe()
    current = [line for line in listed if line.startswith("*")]
    assert len(current) == 1 and "stop reason = breakpoint 1.1" in current[0], r.describe()
    assert re.search(r"`worker\(id=\d\) at threads\.c", current[0]), r.describe()


@LOOP_PROGS
def test_image_list_shows_shared_libraries(procs, prog):
    r = lldb(procs, prog, ["3"], ["b add", "c", "image list", "kill"])
    lines = "\n".join(r.lines)
    assert re.search(rf"^\[  0\] .* /\S*/build/{_exe(prog)}\s*$", lines, re.M), r.describe()
    assert re.search(r"^\[ *\d+\] .* /\S*/libc\.so\.6\s*$", lines, re.M), r.describe()
    assert re.search(r"^\[ *\d+\] .* /\S*/ld-linux[-\w.]*\.so\.2\s*$", lines, re.M), r.describe()


@LOOP_PROGS
def test_process_detach_lets_the_program_finish(procs, prog):
    r = lldb(procs, prog, ["3"], ["b add", "c", "breakpoint delete --force", "process detach"])
    r.expect_lines(r"\* thread #1, name = '[\w-]+', stop reason = breakpoint 1\.1",
                   r"Process \d+ detached")
    assert r.server.wait_exit(harness.EXIT_TIMEOUT) is not None, r.describe()
    assert harness.wait_until(lambda: "acc=110 counter=3 local=45" in r.server.stdout.text, 10), r.describe()


@LOOP_PROGS
def test_kill_ends_stub(procs, prog):
    r = lldb(procs, prog, ["3"], ["b hot", "c", "kill"])
    r.expect_lines(r"Process \d+ exited with status = 9 \(0x00000009\)\s*")
    r.expect_absent(r"failed to send")
    assert r.server.wait_exit(harness.EXIT_TIMEOUT) is not None, r.describe()


@LOOP_PROGS
def test_memory_regions(procs, prog):
    """qMemoryRegionInfo from /proc/PID/maps: lldb's `memory region` and its unwinder use it."""
    r = lldb(procs, prog, ["3"], ["b add", "c", "memory region $pc", "memory region &counter",
                                  "memory region $sp", "memory region 0", "kill"])
    r.expect_lines(
        rf"\[0x[0-9a-f]+-0x[0-9a-f]+\) r-x /\S*/build/{_exe(prog)}( PT_LOAD\[\d\])?",
        rf"\[0x[0-9a-f]+-0x[0-9a-f]+\) rw- /\S*/build/{_exe(prog)}( PT_LOAD\[\d\])?",
        r"\[0x[0-9a-f]+-0x[0-9a-f]+\) rw- \[stack\]",
        r"\[0x0+-0x[0-9a-f]+\) ---",
    )


def test_lldb_uses_its_fast_packets(procs):
    """lldb only uses what the stub answers well: binary reads, thread lists in stop replies,
    jThreadsInfo, thread suffixes, memory regions. A fallback to 'm' or Hg means a reply was wrong."""
    r = lldb(procs, "threads", [], ["b worker", "c", "bt", "thread list", "register read", "kill"],
             extra=("--debug",))
    r.expect_lines(r"\* thread #\d+, name = 'worker-\d', stop reason = breakpoint 1\.1")
    log = r.server.stderr.text
    received = re.findall(r"<- \[[0-9:]+\] (\S+)", log)
    names = {re.match(r"[A-Za-z_?!]+", p).group(0) if re.match(r"[A-Za-z_?!]+", p) else p  # type: ignore[union-attr]
             for p in received}
    for wanted in ("QThreadSuffixSupported", "QListThreadsInStopReply", "qHostInfo", "qProcessInfo",
                   "jThreadsInfo", "qMemoryRegionInfo", "x", "qShlibInfoAddr"):
        assert wanted in names, f"lldb never sent {wanted}: {sorted(names)}\n{r.describe()}"
    assert not any(p.startswith("m") and re.match(r"m[0-9a-f]+,", p) for p in received), sorted(names)
    assert not any(p.startswith("Hg") for p in received), "lldb fell back to Hg: thread suffix refused"


def test_attach_backtrace_and_detach(procs):
    """gdbstub --attach PID, then lldb: a running program is stopped, inspected and let go."""
    busy = harness.program("busy")
    proc = procs.spawn([str(busy)])
    out = harness.OutputReader(proc.stdout)
    found = out.wait_for(re.compile(r"busy pid (\d+)"), 20)
    assert found, out.text
    pid = int(found.group(1))
    try:
        server = harness.start_server(procs, "gdbstub", str(pid), extra=("--attach",))
    except harness.HarnessError as error:
        pytest.fail(str(error), pytrace=False)
    r = run_lldb(procs, server, str(busy), ["bt", "p spins > 0", "process detach"])
    r.expect_lines(
        r"\* thread #1, name = 'busy', stop reason = .*",
        r"  \* frame #0: 0x[0-9a-f]+ busy`spin at busy\.c:\d+:\d+",
        r"    frame #1: 0x[0-9a-f]+ busy`main at busy\.c:\d+:\d+",
        r"\(bool\) \$0 = true",
        rf"Process {pid} detached",
    )
    status = harness.read_proc(pid)
    assert status is not None and not status.zombie, r.describe()
    tracer = [line for line in open(f"/proc/{pid}/status").read().splitlines() if line.startswith("TracerPid:")]
    assert tracer == ["TracerPid:\t0"], tracer
    proc.kill()


@needs_lldb_server
@pytest.mark.threads
@pytest.mark.parametrize("prog", ["together", pytest.param("together-32", marks=pytest.mark.i386)])
def test_simultaneous_breakpoint_hits_each_count_once(procs, prog):
    """Three threads hit one breakpoint at once (often in the same stop): lldb counts every hit,
    through gdbstub as through lldb-server; none is lost and none is counted twice."""
    commands = ["b together", "breakpoint modify --auto-continue 1", "c", "breakpoint list"]
    counts = {}
    for kind in ("lldb-server", "gdbstub"):
        r = lldb(procs, prog, [], commands, kind=kind)
        exited, listed = r.expect_lines(
            r"Process \d+ exited with status = (\d+) .*",
            r"1: name = 'together', locations = 1, resolved = 1, hit count = (\d+) .*")
        assert exited.group(1) == "0", r.describe()  # the program saw its three calls
        counts[kind] = int(listed.group(1))
    assert counts == {"lldb-server": 3, "gdbstub": 3}


def _register_sets(r: LldbRun, command: str) -> dict[str, dict[str, str]]:
    """What one `register read` printed: each set's title and its registers' values."""
    lines = r.lines
    start = lines.index(f"(lldb) {command}")
    sets: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in lines[start + 1:]:
        if line.startswith("(lldb) "):
            break
        title = re.fullmatch(r"(\S.*):", line)
        if title:
            current = sets.setdefault(title.group(1), {})
            continue
        found = re.fullmatch(r"\s+(\w+) = (0x[0-9a-f]+|\{.*\})(\s.*)?", line)
        if found and current is not None:
            current[found.group(1)] = found.group(2)
    return sets


@needs_lldb_server
@LOOP_PROGS
def test_register_sets_as_lldb_server(procs, prog):
    """`register read` shows lldb-server's sets ("General Purpose Registers" with rflags, ...),
    every register available; gdb's target.xml is untouched (test_registers compares it)."""
    commands = ["b hot", "c", "register read", "register read --all", "kill"]
    runs = {kind: lldb(procs, prog, ["3"], commands, kind=kind) for kind in ("lldb-server", "gdbstub")}
    ref, got = runs["lldb-server"], runs["gdbstub"]
    ref_general, got_general = _register_sets(ref, "register read"), _register_sets(got, "register read")
    assert list(ref_general) == list(got_general) == ["General Purpose Registers"], got.describe()
    gpr = "General Purpose Registers"
    missing = [n for n in ref_general[gpr] if n not in got_general[gpr]]
    assert not missing, f"missing from {gpr}: {missing}\n{got.describe()}"
    wide = prog == "loop"
    same = ["rip", "rflags", "cs", "ss"] if wide else ["eip", "eflags", "cs", "ss", "ds", "es", "gs", "eax"]
    assert ({n: int(got_general[gpr][n], 16) for n in same}
            == {n: int(ref_general[gpr][n], 16) for n in same}), got.describe()
    ref_all, got_all = _register_sets(ref, "register read --all"), _register_sets(got, "register read --all")
    absent = [name for name in ref_all if name not in got_all]
    assert not absent, f"sets missing: {absent}\n{got.describe()}"
    # Partial and combined registers (eax, ax, al, mm0, ymm0) lldb makes itself from a gdb-style
    # description land in its "supplementary registers"; lldb-server lists its own in each set.
    ours = {name for title, regs in got_all.items() if title != "supplementary registers" for name in regs}
    for title, regs in ref_all.items():  # a register both servers have sits in the same set
        misplaced = [n for n in regs if n in ours and n not in got_all[title]]
        assert not misplaced, f"{title}: {misplaced} elsewhere\n{got.describe()}"
    got.expect_absent(r"registers were unavailable", r"error:")


class LldbConsole:
    """lldb reading commands from a pipe, as at a terminal: `continue` comes back at once, so
    `process interrupt` can follow (in batch mode lldb waits for every stop)."""

    def __init__(self, procs: ProcessTracker, path: str) -> None:
        env = dict(os.environ, LANG="C.UTF-8", TERM="dumb")
        env.pop("DEBUGINFOD_URLS", None)
        self.argv = [shutil.which("lldb") or "lldb", "--no-lldbinit", "--no-use-colors", path]
        self.proc = procs.spawn(self.argv, env=env, stdin=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.out = harness.OutputReader(self.proc.stdout)
        self.at = 0

    def describe(self) -> str:
        return f"--- lldb console: {' '.join(self.argv)}\n{self.out.text}"

    def expect(self, pattern: str, timeout: float = LLDB_TIMEOUT) -> re.Match[str]:
        """The next line (after the last one matched) that PATTERN matches."""
        regex = re.compile(pattern)
        found: list[re.Match[str]] = []

        def seen() -> bool:
            lines = self.out.lines[:]
            for i in range(self.at, len(lines)):
                match = regex.search(lines[i])
                if match:
                    found.append(match)
                    self.at = i + 1
                    return True
            return False

        if not harness.wait_until(seen, timeout):
            raise AssertionError(f"lldb never printed {pattern!r}\n{self.describe()}")
        return found[0]

    def run(self, command: str, expect: str | None = None) -> re.Match[str]:
        """Send COMMAND; the line lldb echoes for it, or the first after it that EXPECT matches."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        echoed = self.expect(re.escape(f"(lldb) {command}"))
        return echoed if expect is None else self.expect(expect)

    def interrupt(self, tries: int = 20) -> None:
        """`process interrupt` until the stop prints. lldb refuses it ("Process is not running")
        while its event thread has not yet taken in the running state of the last `continue`,
        which a loaded machine can delay past the program's blocking; nothing else is retried."""
        for _ in range(tries):
            said = self.run("process interrupt", r"stop reason = signal SIG(INT|STOP)|Process is not running")
            if "not running" not in said.group(0):
                return
            time.sleep(0.1)
        raise AssertionError(f"lldb never took the interrupt\n{self.describe()}")

    def close(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=harness.EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


def _blocked_in_read(pid: int) -> None:
    """Wait (bounded) until PID sleeps in its read(): running and blocked, not just about to."""
    assert harness.wait_until(lambda: (info := harness.read_proc(pid)) is not None and info.state == "S",
                              LLDB_TIMEOUT), f"pid {pid} never blocked: {harness.read_proc(pid)}"


BLOCKED_PROGS = pytest.mark.parametrize("prog", ["blocked", pytest.param("blocked-32", marks=pytest.mark.i386)])


@needs_lldb_server
@BLOCKED_PROGS
def test_expression_after_interrupting_a_blocked_read(procs, prog):
    """`process interrupt` lands in read(); `expression` then calls functions there (lldb asks
    `_M` for memory first) and the read goes on afterwards, through gdbstub as through lldb-server."""
    path = harness.program(prog)
    results = {}
    for kind in ("lldb-server", "gdbstub"):
        server = (start_lldb_server(procs, path, []) if kind == "lldb-server"
                  else harness.start_server(procs, "gdbstub", path, [], extra=("--debug",)))
        console = LldbConsole(procs, str(path))
        program_output = console.out if kind == "lldb-server" else server.stdout
        try:
            console.run("settings set auto-confirm true")
            console.run(f"gdb-remote {server.address}", r"Process \d+ stopped")
            console.run("continue", r"Process \d+ resuming")
            found = program_output.wait_for(re.compile(r"blocked pid (\d+)"), LLDB_TIMEOUT)
            assert found, console.describe()
            pid = int(found.group(1))
            _blocked_in_read(pid)
            console.interrupt()
            answer = console.run("expression (int)answer(20)", r"^\(int\) \$0 = (\d+)|error:")
            own = console.run("expression (int)getpid()", r"^\(int\) \$1 = (\d+)|error:")
            console.run("continue", r"Process \d+ resuming")
            _blocked_in_read(pid)  # the interrupted read was restarted, not lost or crashed
            console.interrupt()
            calls = console.run("expression calls", r"^\(int\) \$2 = (\d+)|error:")
            console.run("kill", r"Process \d+ exited with status = 9")
        except AssertionError as failed:
            raise AssertionError(f"{failed}\n{server.describe()}") from None
        finally:
            console.close()
        assert server.wait_exit(harness.EXIT_TIMEOUT) is not None, server.describe()
        printed = program_output.text
        assert printed.count("blocked pid") == 1 and "read returned" not in printed, console.describe()
        results[kind] = (answer.group(1), own.group(1) == str(pid), calls.group(1))
        if kind == "gdbstub":  # lldb got its memory from _M, not by calling mmap itself
            assert re.search(r"<- \[[\d:.]+\] _M1000,rwx\n-> \[[\d:.]+\] \$[0-9a-f]+#", server.stderr.text), \
                server.describe()
    assert results == {"lldb-server": ("41", True, "1"), "gdbstub": ("41", True, "1")}, results


@pytest.mark.parametrize("kind", harness.KINDS)
@BLOCKED_PROGS
def test_gdb_call_in_a_blocked_read_restores_the_system_call(procs, kind, prog):
    """gdb's `call` in a thread stopped inside read(): the new PC cancels the restart meanwhile
    (orig_rax -1) and the saved registers bring it back (pc, orig_rax, rax -ERESTARTSYS), as
    through gdbserver."""
    server = harness.start_server(procs, kind, harness.program(prog))
    pid = server.inferior_pid
    assert pid is not None, server.describe()
    pc, orig = ("$rip", "$orig_rax") if prog == "blocked" else ("$eip", "$orig_eax")
    show = [f"p/x {pc}", f"p {orig}", "p $eax"]
    done: list[harness.GdbResult] = []
    gdb = threading.Thread(target=lambda: done.append(harness.run_gdb(
        procs, server.port, ["continue", *show, "call answer(20)", *show, "p calls", "kill"],
        file=harness.program(prog))))
    gdb.start()
    try:
        _blocked_in_read(pid)
        os.kill(pid, signal.SIGINT)
    finally:
        gdb.join(harness.GDB_TIMEOUT + 15)
    result = done[0]
    assert "received signal SIGINT" in result.output, result.describe()
    values = re.findall(r"^\$\d+ = (.*)$", result.stdout, re.M)
    assert len(values) == 8, result.describe()
    before, call, after = values[:3], values[3], values[4:7]
    assert call == "41" and values[7] == "1", result.describe()
    assert after == before, result.describe()
    assert before[1] in ("0", "3") and before[2] == "-512", result.describe()  # read, -ERESTARTSYS


def _register_infos(procs: ProcessTracker, kind: str, prog: str) -> dict[str, dict[str, str]]:
    """Every qRegisterInfoN answer of KIND, by register name, until the first that is not one."""
    from rawclient import RawClient

    path = harness.program(prog)
    server = start_lldb_server(procs, path, []) if kind == "lldb-server" else harness.start_server(
        procs, "gdbstub", path)
    infos: dict[str, dict[str, str]] = {}
    try:
        with RawClient(server.port) as client:
            client.request(b"qSupported:xmlRegisters=i386,arm,mips,arc;multiprocess+;fork-events+;vfork-events+")
            client.request(b"QThreadSuffixSupported")
            for n in range(1000):
                reply = client.request(b"qRegisterInfo%x" % n)
                if not reply.startswith(b"name:"):
                    assert reply == b"E45", reply
                    break
                info = dict(item.split(":", 1) for item in reply.decode().rstrip(";").split(";"))
                infos[info["name"]] = info
            client.request(b"k")
    finally:
        server.stop()
    return infos


@needs_lldb_server
@LOOP_PROGS
def test_register_info_as_lldb_server(procs, prog):
    """qRegisterInfoN, for an lldb built without XML support: each register lldb-server also
    describes is in the same set, with the same encoding, format and role (lldb-server's own
    partial registers, eax in a 64-bit program, are lldb's to make from ours)."""
    ref, got = (_register_infos(procs, kind, prog) for kind in ("lldb-server", "gdbstub"))
    general = ["rip", "rsp", "rbp", "rax", "rflags"] if prog == "loop" else ["eip", "esp", "ebp", "eax", "eflags"]
    assert all(name in got for name in [*general, "st0", "xmm0", "mxcsr"]), got
    keys = ("set", "encoding", "format", "generic")
    differ = {name: (info, ref[name]) for name, info in got.items()
              if name in ref and any(info.get(k) != ref[name].get(k) for k in keys)}
    assert not differ, differ
    assert len([name for name in got if name in ref]) >= 40, (list(got), list(ref))


@needs_lldb_server
def test_probe_packets_answered_as_lldb_server(procs):
    """The packets lldb probes with at connection that gdb never sends: qFileLoadAddress (the
    lowest address a file is mapped at, by its exact path; lldb asks it for the vDSO),
    qGetWorkingDir and QEnableErrorStrings, answered as lldb-server answers them; after the
    last, an error that has a reason carries it hex-encoded after the number."""
    import rawclient

    path = harness.program("loop")
    probes = [b"qFileLoadAddress:" + os.fsencode(path).hex().encode(),
              b"qFileLoadAddress:" + b"linux-vdso.so.1".hex().encode(),
              b"qFileLoadAddress:" + b"loop".hex().encode(),
              b"qFileLoadAddress:",
              b"qGetWorkingDir",
              b"QEnableErrorStrings"]
    replies = {}
    for kind in ("lldb-server", "gdbstub"):
        server = (start_lldb_server(procs, path, ["3"]) if kind == "lldb-server"
                  else harness.start_server(procs, "gdbstub", path, ["3"]))
        with rawclient.RawClient(server.port) as client:
            client.handshake()
            replies[kind] = [client.request(p) for p in probes]
            if kind == "gdbstub":
                error = client.request(b"mzz,4")  # malformed: its reason goes with the E01 now
        server.stop()
    assert replies["gdbstub"] == replies["lldb-server"], replies
    assert re.fullmatch(rb"[0-9a-f]{16}", replies["gdbstub"][0]), replies  # the program is mapped
    assert bytes.fromhex(replies["gdbstub"][4].decode()).decode() == os.getcwd()
    number, _, reason = error.partition(b";")
    assert number == b"E01" and b"malformed" in bytes.fromhex(reason.decode()), error
