"""Start a stub on a program from Python, for test suites and scripts.

    with gdbstub.launch(["./prog", "arg"], port=0) as server:
        subprocess.run(["gdb", "-batch", "-ex", f"target remote :{server.port}", ...])
        # or, without gdb:
        with server.connect() as client:
            client.cont()

The stub runs as its own process (the command line, ``--once``), exactly as a
user would start it: a test then exercises the real command line, and a stub
that crashes or hangs cannot take the test runner down with it. Leaving the
``with`` block kills the stub and the program.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .client import DEFAULT_TIMEOUT, Client

LISTENING = re.compile(r"Listening on port (\d+)")
CREATED = re.compile(r"pid = (\d+)")
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class LaunchError(Exception):
    """The stub did not come up; carries what it printed."""


class OutputReader:
    """Collects a pipe's lines on a daemon thread, so the writer never blocks on a full pipe.

    Also the integration harness's reader for the servers it starts."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: IO[str] | None) -> None:
        try:
            for line in iter(stream.readline if stream else str, ""):
                with self._cond:
                    self.lines.append(line)
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    @property
    def text(self) -> str:
        with self._cond:
            return "".join(self.lines)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str] | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    found = pattern.search(line)
                    if found:
                        return found
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def join(self, timeout: float = 2.0) -> None:
        """Wait (bounded) until the pipe's writer has closed it and every line is in."""
        self._thread.join(timeout)


class StubServer:
    """A running stub: its port, its output, and the program's pid."""

    def __init__(self, process: subprocess.Popen[str], host: str, port: int,
                 stderr: OutputReader, stdout: OutputReader | None, *, attached: bool = False) -> None:
        self.process = process
        self.attached = attached  # the program is not ours: close() lets it go on
        self.host = host
        self.port = port
        self._stderr = stderr
        self._stdout = stdout

    @property
    def address(self) -> str:
        """HOST:PORT, as gdb's `target remote` and lldb's `gdb-remote` take it."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The debugged program's pid (the stub prints it when it starts the program)."""
        found = CREATED.search(self._stderr.text)
        return int(found.group(1)) if found else None

    @property
    def log(self) -> str:
        """Everything the stub printed on stderr (the packet log with debug=True)."""
        return self._stderr.text

    @property
    def output(self) -> str:
        """What the program printed, when launched with capture_output=True."""
        return self._stdout.text if self._stdout is not None else ""

    def connect(self, *, timeout: float = DEFAULT_TIMEOUT) -> Client:
        """A new RSP client connected to this stub, past the handshake."""
        return Client.connect(self.host, self.port, timeout=timeout)

    def wait(self, timeout: float | None = None) -> int | None:
        """The stub's exit status, or None if it still runs after TIMEOUT seconds."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        """Kill the stub and everything it started (they share a process session).

        An attached program is not killed: the stub is asked to end (SIGTERM), which
        detaches from it and takes its breakpoints out first.
        """
        if self.attached and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        pid = None if self.attached else self.pid
        if pid is not None and self.process.poll() is None:
            # Still the stub's child (a zombie at worst), so the pid cannot have been reused.
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.process.poll() is None or _session_alive(self.process.pid):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> StubServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _session_alive(sid: int) -> bool:
    try:
        os.killpg(sid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def attach(pid: int, **options: Any) -> StubServer:
    """Start the stub with ``--once --attach HOST:PORT PID``: debug a running process.

    Takes launch()'s keyword options. Leaving the ``with`` block detaches; the process runs on.
    """
    extra = [*options.pop("extra_args", ()), "--attach"]
    return _start([str(pid)], extra, attached=True, **options)


def launch(
    argv: Sequence[str | os.PathLike[str]],
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    debug: bool = False,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    capture_output: bool = True,
    timeout: float = 20.0,
    python: str = sys.executable,
) -> StubServer:
    """Start the stub (``gdbstub --once HOST:PORT PROG ARGS...``, with PYTHON) and wait until it listens.

    PORT 0 picks a free port (read it back from ``server.port``). DEBUG adds the
    packet log to ``server.log``. EXTRA_ARGS go to the stub's command line
    (``["--multi"]``, ``["--disable-packet=..."]``). ENV is the program's
    environment (the stub passes its own on). The program's output is kept in
    ``server.output`` unless CAPTURE_OUTPUT is False.
    """
    if not argv:
        raise ValueError("launch needs a program to run")
    return _start([os.fspath(a) for a in argv], list(extra_args), port=port, host=host, debug=debug,
                  env=env, cwd=cwd, capture_output=capture_output, timeout=timeout, python=python)


# The command line's code, run as `python -c` rather than `python -m gdbstub`: -m goes through
# runpy, whose imports (importlib.util, contextlib, collections) took a fifth of the stub's
# start-up.
_RUN_COMMAND = "from gdbstub.cli import main; raise SystemExit(main())"


def _start(
    tail: list[str],
    extra_args: list[str],
    *,
    attached: bool = False,
    port: int = 0,
    host: str = "127.0.0.1",
    debug: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    capture_output: bool = True,
    timeout: float = 20.0,
    python: str = sys.executable,
) -> StubServer:
    command = [python, "-c", _RUN_COMMAND, "--once", *(["--debug"] if debug else []), *extra_args,
               f"{host}:{port}", *tail]
    child_env = dict(os.environ if env is None else env)
    # Make the package importable by the child even when it is not installed.
    paths = [str(PACKAGE_ROOT), *filter(None, child_env.get("PYTHONPATH", "").split(os.pathsep))]
    child_env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    process: subprocess.Popen[str] = subprocess.Popen(
        command, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture_output else None, stderr=subprocess.PIPE,
        text=True, env=child_env, cwd=cwd, start_new_session=True)
    stderr = OutputReader(process.stderr)
    stdout = OutputReader(process.stdout) if capture_output else None
    found = stderr.wait_for(LISTENING, timeout)
    server = StubServer(process, host, int(found.group(1)) if found else 0, stderr, stdout,
                        attached=attached)
    if found is None:
        try:
            rc: int | None = process.wait(timeout=2)  # its stderr ended: it is exiting
        except subprocess.TimeoutExpired:
            rc = None
        server.close()
        why = f"exited with status {rc}" if rc is not None else f"did not listen within {timeout}s"
        raise LaunchError(f"gdbstub {why}:\n{stderr.text}")
    return server
