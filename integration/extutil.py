"""Helpers for the extended-remote, CLI and transport tests: start a server with any command
line (no program, --multi, --attach, other addresses), run gdb with any `target` command, and
speak raw RSP where gdb cannot send what a test needs."""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterable, Sequence
from pathlib import Path

import harness
from harness import GDB_TIMEOUT, START_TIMEOUT, GdbResult, HarnessError, ProcessTracker, Server


def base_command(kind: str) -> list[str]:
    if kind == "gdbstub":
        return list(harness.STUB_COMMAND)
    return harness.gdbserver_argv()


def spawn_server(
    procs: ProcessTracker,
    kind: str,
    args: Sequence[str],
    *,
    wait: re.Pattern[str] | None = harness.LISTENING_RE,
    env: dict[str, str] | None = None,
    **kwargs: object,
) -> Server:
    """Start KIND with exactly ARGS (after the program name); wait for WAIT on stderr."""
    argv = [*base_command(kind), *args]
    proc = procs.spawn(argv, env=env or harness.server_env(), **kwargs)  # type: ignore[arg-type]
    out = harness.OutputReader(proc.stdout) if proc.stdout is not None else harness.OutputReader(_empty())
    err = harness.OutputReader(proc.stderr)
    port = 0
    if wait is not None:
        found = err.wait_for(wait, START_TIMEOUT)
        if found is None:
            srv = Server(kind, proc, 0, out, err, argv)
            srv.stop()
            err.join()
            raise HarnessError(f"{kind} did not print {wait.pattern!r}\n{srv.describe()}")
        if found.groups():
            with contextlib.suppress(ValueError):
                port = int(found.group(1))
    srv = Server(kind, proc, port, out, err, argv)
    pid = srv.inferior_pid
    if pid is not None:
        procs.track_pid(pid)
    return srv


def _empty() -> object:
    import io

    return io.StringIO("")


def gdb(
    procs: ProcessTracker,
    target: str,
    commands: Iterable[str],
    *,
    file: Path | str | None = None,
    before: Iterable[str] = (),
    timeout: float = GDB_TIMEOUT,
) -> GdbResult:
    """gdb -batch with TARGET as the connect command (e.g. 'target extended-remote 127.0.0.1:N')."""
    return harness.run_gdb(procs, 0, commands, file=file, before=before, timeout=timeout, target=target)


def expect_in(text: str, *patterns: str, context: str = "") -> None:
    for pattern in patterns:
        assert re.search(pattern, text, re.M), f"pattern not found: {pattern!r}\n{text}\n{context}"


def proc_status(pid: int, field: str) -> str | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


class RawClient:
    """A minimal RSP client (ack mode, blocking, bounded by a socket timeout)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 20.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _read(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("server closed the connection")
        self.buf += data

    def send_raw(self, payload: bytes) -> None:
        packet = b"$%s#%02x" % (payload, sum(payload) & 0xFF)
        self.sock.sendall(packet)

    def receive(self) -> bytes:
        """The next packet's payload (acked), skipping acks."""
        while True:
            start = self.buf.find(b"$")
            if start >= 0:
                end = self.buf.find(b"#", start)
                if end >= 0 and len(self.buf) >= end + 3:
                    payload = self.buf[start + 1 : end]
                    self.buf = self.buf[end + 3 :]
                    self.sock.sendall(b"+")
                    return payload
            self._read()

    def request(self, payload: bytes) -> bytes:
        """Send PAYLOAD; return the reply, with any O packets before it collected in .console."""
        self.send_raw(payload)
        self.console = b""
        while True:
            reply = self.receive()
            if reply.startswith(b"O") and reply != b"OK" and all(c in b"0123456789abcdef" for c in reply[1:]):
                self.console += bytes.fromhex(reply[1:].decode())
                continue
            return reply


def hexs(text: str) -> bytes:
    return text.encode().hex().encode()
