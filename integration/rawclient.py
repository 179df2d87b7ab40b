"""A raw RSP client for the fault, fuzz and long-session tests: it can send anything,
well-formed or not (bad checksums, half packets, megabytes of garbage), and every
wait is bounded. It keeps gdb's ack discipline until QStartNoAckMode, and parses
replies with the stub's own framer.

Also: the program's symbols (pyelftools), and what a process holds (/proc: RSS, fds).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import socket
import sys
import time
from pathlib import Path

from gdbstub.protocol import framing

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from rsp_corpus import allowed, client_packets, mutate

__all__ = [
    "ProtocolTimeout",
    "RawClient",
    "allowed",
    "client_packets",
    "fd_count",
    "load_bias",
    "mutate",
    "rss_kib",
    "symbol_address",
]

TIMEOUT = 20.0
_HEX = re.compile(rb"[0-9a-fA-F]+")


class ProtocolTimeout(Exception):
    """No (complete) reply within the bound."""


def wire_framer() -> framing.Framer:
    """A framer that decodes replies as gdb does, run-length before escapes: in `0*}` the `}`
    is a count (a run of 97), not an escape (gdbserver uses both)."""
    framer = framing.Framer(max_packet=1 << 22)
    framer.decode_run_length = True
    return framer


class RawClient:
    def __init__(self, port: int, timeout: float = TIMEOUT) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.framer = wire_framer()  # gdbserver's long runs of zeros are `0*}`: decoded as gdb does
        self.events: list[framing.Event] = []
        self.no_ack = False
        self.closed = False  # the stub closed the connection
        self.sent = 0  # packets (well-formed or not) written
        self.console = b""  # what 'O' packets carried

    # --- raw bytes ------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        """Read once; False at EOF."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProtocolTimeout("no reply in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 16)
        except TimeoutError:
            raise ProtocolTimeout("no reply in time") from None
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.events += self.framer.feed(data)
        return True

    def next_event(self, timeout: float | None = None) -> framing.Event:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.events:
            if not self._fill(deadline):
                raise ConnectionError("stub closed the connection")
        return self.events.pop(0)

    def receive(self, timeout: float | None = None) -> bytes:
        """The next reply's payload (acks and NAKs skipped); acks it unless in no-ack mode.

        Console output ('O' + hex, as qRcmd sends before its reply) is collected in
        ``console``, as gdb prints it and goes on waiting for the reply."""
        while True:
            event = self.next_event(timeout)
            if isinstance(event, framing.Packet):
                if not self.no_ack:
                    self.send_raw(b"+")
                data = event.data
                if len(data) > 1 and data[:1] == b"O" and _HEX.fullmatch(data[1:]):
                    self.console += bytes.fromhex(data[1:].decode()) if len(data) % 2 else b""
                    continue
                return data
            if isinstance(event, framing.BadPacket):
                raise AssertionError(f"stub sent a damaged packet: {event.reason}")

    def drain(self, quiet: float = 0.05) -> list[framing.Event]:
        """Whatever arrives until QUIET seconds pass without data."""
        got: list[framing.Event] = []
        while True:
            try:
                got.append(self.next_event(quiet))
            except ProtocolTimeout:
                return got

    # --- packets ----------------------------------------------------------------------

    def send(self, payload: bytes) -> None:
        self.sent += 1
        self.send_raw(framing.encode(payload))

    def request(self, payload: bytes, timeout: float | None = None) -> bytes:
        self.send(payload)
        return self.receive(timeout)

    def handshake(self, no_ack: bool = True) -> bytes:
        """gdb's opening: qSupported, optionally no-ack mode; returns the '?' stop reply."""
        self.request(b"qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+;"
                     b"fork-events+;vfork-events+;exec-events+")
        if no_ack:
            assert self.request(b"QStartNoAckMode") == b"OK"
            self.no_ack = True
        return self.request(b"?")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the program and the stub process ---------------------------------------------------


@functools.cache  # the fuzz tests look the same few symbols up twice per input; the programs do not change
def symbol_address(exe: Path | str, name: str) -> int:
    """st_value of NAME in EXE's symbol table (add the load bias for PIE)."""
    from elftools.elf.elffile import ELFFile

    with open(exe, "rb") as f:
        syms = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)
    if not syms:
        raise KeyError(name)
    return int(syms[0]["st_value"])


def load_bias(pid: int, exe: Path | str) -> int:
    """Where a PIE's first mapping starts (0 for a fixed-address executable)."""
    from elftools.elf.elffile import ELFFile

    with open(exe, "rb") as f:
        if ELFFile(f).header["e_type"] != "ET_DYN":
            return 0
    real = os.path.realpath(exe)
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == real:
                return int(parts[0].split("-")[0], 16) - int(parts[2], 16)
    raise KeyError(f"{exe} not mapped in {pid}")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise KeyError("VmRSS")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def tracer_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0


def read_mem(pid: int, addr: int, length: int) -> bytes:
    """The program's own bytes, read by the test itself (root), not through the stub."""
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as f:
        f.seek(addr)
        return f.read(length)


def line_address(exe: Path | str, line: int) -> int:
    """The first statement address of source LINE (DWARF line table; add the load bias for PIE)."""
    from elftools.elf.elffile import ELFFile

    with open(exe, "rb") as f:
        dwarf = ELFFile(f).get_dwarf_info()
        for cu in dwarf.iter_CUs():
            program = dwarf.line_program_for_CU(cu)
            if program is None:
                continue
            for entry in program.get_entries():
                state = entry.state
                if state is not None and state.line == line and state.is_stmt:
                    return int(state.address)
    raise KeyError(f"no code for line {line} in {exe}")
