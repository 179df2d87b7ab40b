"""A small RSP client: drive gdbstub (or gdbserver) from Python without gdb.

Meant for test suites: connect, read and write registers by name, read and
write memory, set breakpoints, continue and step, all with bounded waits.
It uses the stub's own framer, so the two ends share one implementation of
escaping and checksums. This is the only client-side module that opens sockets.

    with Client.connect("127.0.0.1", port) as c:
        c.set_breakpoint(c.symbol("hot", "./prog"))
        stop = c.cont()
        print(stop.signal, c.register("rip"), c.read_memory(c.register("rsp"), 16))
"""

from __future__ import annotations

import socket
import struct
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from .protocol import framing

DEFAULT_TIMEOUT = 30.0
AT_ENTRY = 9


class ClientError(Exception):
    """The stub replied with an error, or not at all, or the connection broke."""


@dataclass(frozen=True)
class RegisterInfo:
    """One register as the target description lays it out in the 'g' packet."""

    name: str
    regnum: int
    bitsize: int
    offset: int
    type: str

    @property
    def size(self) -> int:
        return self.bitsize // 8


@dataclass
class StopReply:
    """A parsed stop reply: 'T'/'S' (stopped), 'W' (exited), 'X' (killed by a signal)."""

    kind: str
    signal: int = 0  # gdb's signal number for T/S/X
    exit_status: int | None = None  # for W
    thread: str | None = None  # as the stub wrote it: "p1f.1f" or "1f"
    registers: dict[int, bytes] = field(default_factory=dict)  # expedited, by gdb regnum
    info: dict[str, str] = field(default_factory=dict)  # every other key: swbreak, watch, core...
    raw: bytes = b""

    @property
    def exited(self) -> bool:
        return self.kind in ("W", "X")

    @property
    def tid(self) -> int | None:
        """The thread id as a number (the part after the '.' in the multiprocess form)."""
        if self.thread is None:
            return None
        return int(self.thread.rpartition(".")[2].lstrip("p"), 16)


def parse_stop_reply(data: bytes) -> StopReply:
    """Parse a stop reply payload; raises ClientError for anything else."""
    if not data:
        raise ClientError("empty stop reply")
    kind = chr(data[0])
    if kind in "WX":
        value, _, rest = data[1:].partition(b";")
        reply = StopReply(kind, raw=data)
        if kind == "W":
            reply.exit_status = int(value, 16)
        else:
            reply.signal = int(value, 16)
        for item in rest.split(b";"):
            key, _, val = item.decode("ascii", "replace").partition(":")
            if key:
                reply.info[key] = val
        return reply
    if kind not in "TS" or len(data) < 3:
        raise ClientError(f"not a stop reply: {data[:40]!r}")
    reply = StopReply(kind, signal=int(data[1:3], 16), raw=data)
    for item in data[3:].split(b";"):
        if not item:
            continue
        key, _, val = item.decode("ascii", "replace").partition(":")
        if key == "thread":
            reply.thread = val
        elif all(c in "0123456789abcdefABCDEF" for c in key):
            reply.registers[int(key, 16)] = bytes.fromhex(val)
        else:
            reply.info[key] = val
    return reply


class ReplyFramer:
    """Splits the stub's byte stream into acks and packets, expanding run-length encoding.

    Unlike the stub's own framer this leaves escapes in place: RLE applies to the raw body
    (gdbserver may use '}' as a repeat count), and only binary replies are then unescaped.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[framing.Event]:
        self._buf += data
        events: list[framing.Event] = []
        while self._buf:
            c = self._buf[0]
            if c in b"$%":
                end = self._buf.find(b"#")
                if end < 0 or len(self._buf) < end + 3:
                    break
                body = bytes(self._buf[1:end])
                checksum = bytes(self._buf[end + 1 : end + 3])
                del self._buf[: end + 3]
                if c == 0x25:  # a notification ('%'): not a reply to anything we send
                    continue
                try:
                    good = int(checksum, 16) == framing.checksum(body)
                except ValueError:
                    good = False
                events.append(framing.Packet(framing.run_length_decode(body)) if good
                              else framing.BadPacket("bad checksum"))
                continue
            del self._buf[:1]
            if c == 0x2B:
                events.append(framing.Ack())
            elif c == 0x2D:
                events.append(framing.Nak())
        return events


class Client:
    """One RSP connection. Every method waits at most ``timeout`` seconds."""

    def __init__(self, sock: socket.socket, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.sock = sock
        self.timeout = timeout
        self.no_ack = False
        self.features: dict[str, str] = {}
        self.last_stop: StopReply | None = None
        self._framer = ReplyFramer()
        self._pending: list[framing.Event] = []
        self._layout: dict[str, RegisterInfo] | None = None
        self.breakpoints: dict[int, int] = {}  # address -> kind, of the Z0 breakpoints we set

    # --- connecting ----------------------------------------------------------------

    @classmethod
    def connect(cls, host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT,
                handshake: bool = True) -> Client:
        """Connect, negotiate (qSupported, no-ack mode) and ask why the program stopped."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection((host, port), timeout=timeout)
                break
            except ConnectionRefusedError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
        client = cls(sock, timeout=timeout)
        if handshake:
            client.handshake()
        return client

    def handshake(self) -> StopReply:
        """What gdb does first: qSupported, QStartNoAckMode, '?'."""
        reply = self.request(b"qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+;xmlRegisters=i386")
        for item in reply.decode("ascii", "replace").split(";"):
            if "=" in item:
                key, _, value = item.partition("=")
                self.features[key] = value
            elif item:
                self.features[item[:-1]] = item[-1]
        if self.features.get("QStartNoAckMode") == "+" and self.request(b"QStartNoAckMode") == b"OK":
            self.no_ack = True
        return self.stop_reason()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- packets -------------------------------------------------------------------

    def send(self, payload: bytes) -> None:
        """Send one packet; in ack mode wait for the '+' (resending on '-')."""
        packet = framing.encode(payload)
        for _ in range(10):
            self._sendall(packet)
            if self.no_ack:
                return
            event = self._next_event(lambda e: isinstance(e, framing.Ack | framing.Nak))
            if isinstance(event, framing.Ack):
                return
        raise ClientError(f"packet {payload[:40]!r} refused ten times")

    def receive(self, timeout: float | None = None) -> bytes:
        """The next packet's payload (run-length encoding expanded, escapes kept), acknowledged."""
        event = self._next_event(lambda e: isinstance(e, framing.Packet | framing.BadPacket), timeout)
        if isinstance(event, framing.BadPacket):
            if not self.no_ack:
                self._sendall(b"-")
            return self.receive(timeout)
        assert isinstance(event, framing.Packet)
        if not self.no_ack:
            self._sendall(b"+")
        return event.data

    def _sendall(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise ClientError(f"cannot send to the stub: {exc}") from exc

    def request(self, payload: bytes, timeout: float | None = None) -> bytes:
        """Send a packet and return the reply's payload."""
        self.send(payload)
        return self.receive(timeout)

    def checked(self, payload: bytes) -> bytes:
        """Like request, but an empty or 'Exx' reply raises ClientError."""
        reply = self.request(payload)
        if not reply or (len(reply) == 3 and reply[:1] == b"E"):
            raise ClientError(f"{payload[:40]!r} -> {reply!r}")
        return reply

    def _next_event(self, wanted: object, timeout: float | None = None) -> framing.Event:
        assert callable(wanted)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for i, event in enumerate(self._pending):
                if wanted(event):
                    del self._pending[i]
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ClientError("timed out waiting for the stub")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                raise ClientError(f"cannot read from the stub: {exc}") from exc
            if not data:
                raise ClientError("the stub closed the connection")
            self._pending += self._framer.feed(data)

    # --- state ---------------------------------------------------------------------

    def stop_reason(self) -> StopReply:
        """'?': why the program is stopped."""
        self.last_stop = parse_stop_reply(self.request(b"?"))
        return self.last_stop

    def threads(self) -> list[str]:
        """Thread ids as the stub writes them (qfThreadInfo / qsThreadInfo)."""
        out: list[str] = []
        reply = self.request(b"qfThreadInfo")
        while reply.startswith(b"m"):
            out += reply[1:].decode().split(",")
            reply = self.request(b"qsThreadInfo")
        return out

    def select_thread(self, thread: str) -> None:
        """Hg: the thread later register reads and writes act on."""
        self.checked(b"Hg" + thread.encode())

    def xfer(self, obj: str, annex: str = "") -> bytes:
        """Read a whole qXfer object (features, auxv, threads, libraries-svr4...)."""
        out = b""
        while True:
            reply = self.request(f"qXfer:{obj}:read:{annex}:{len(out):x},fff".encode())
            if not reply or reply[:1] not in (b"m", b"l"):
                raise ClientError(f"qXfer:{obj}:{annex} -> {reply[:40]!r}")
            out += framing.unescape(reply[1:])
            if reply[:1] == b"l":
                return out

    # --- registers -----------------------------------------------------------------

    def register_layout(self) -> dict[str, RegisterInfo]:
        """Register names, numbers and 'g' offsets, from the stub's target.xml."""
        if self._layout is None:
            regs: list[tuple[str, int | None, int, str]] = []
            self._collect_regs("target.xml", regs)
            layout: dict[str, RegisterInfo] = {}
            regnum, offset = 0, 0
            for name, num, bits, typ in regs:
                regnum = regnum if num is None else num
                layout[name] = RegisterInfo(name, regnum, bits, offset, typ)
                offset += bits // 8
                regnum += 1
            self._layout = layout
        return self._layout

    def _collect_regs(self, annex: str, out: list[tuple[str, int | None, int, str]]) -> None:
        root = ET.fromstring(self.xfer("features", annex))
        for el in root.iter():
            tag = el.tag.rpartition("}")[2]
            if tag == "include" and el.get("href"):
                self._collect_regs(str(el.get("href")), out)
            elif tag == "reg":
                num = el.get("regnum")
                out.append((str(el.get("name")), int(num) if num else None,
                            int(el.get("bitsize", "0")), str(el.get("type", "int"))))

    def read_registers(self) -> bytes:
        """The 'g' packet: the whole register file of the selected thread."""
        reply = self.checked(b"g")
        return bytes.fromhex(reply.decode().replace("x", "0"))

    def registers(self) -> dict[str, int]:
        """Every register in the 'g' packet, by name, as unsigned little-endian numbers."""
        raw = self.read_registers()
        out = {}
        for info in self.register_layout().values():
            if info.offset + info.size <= len(raw):
                out[info.name] = int.from_bytes(raw[info.offset:info.offset + info.size], "little")
        return out

    def register(self, name: str) -> int:
        """One register by name ('p' packet), e.g. register('rip')."""
        info = self.register_layout()[name]
        reply = self.request(b"p%x" % info.regnum)
        if not reply:  # gdbserver has no 'p': take it from the whole register file
            return self.registers()[name]
        if reply[:1] == b"E" and len(reply) == 3:
            raise ClientError(f"p{info.regnum:x} -> {reply!r}")
        return int.from_bytes(bytes.fromhex(reply.decode().replace("x", "0")), "little")

    def write_register(self, name: str, value: int) -> None:
        info = self.register_layout()[name]
        data = (value & ((1 << info.bitsize) - 1)).to_bytes(info.size, "little")
        self.checked(b"P%x=%s" % (info.regnum, data.hex().encode()))

    # --- memory --------------------------------------------------------------------

    def read_memory(self, addr: int, length: int) -> bytes:
        out = b""
        while len(out) < length:
            chunk = min(length - len(out), 0x800)
            reply = self.checked(b"m%x,%x" % (addr + len(out), chunk))
            data = bytes.fromhex(reply.decode())
            if not data:
                raise ClientError(f"cannot read memory at {addr + len(out):#x}")
            out += data
        return out

    def write_memory(self, addr: int, data: bytes) -> None:
        for i in range(0, len(data), 0x800):
            chunk = data[i:i + 0x800]
            self.checked(b"M%x,%x:%s" % (addr + i, len(chunk), chunk.hex().encode()))

    # --- breakpoints ---------------------------------------------------------------

    def set_breakpoint(self, addr: int, kind: int = 1) -> None:
        """A software breakpoint (Z0)."""
        self.checked(b"Z0,%x,%x" % (addr, kind))
        self.breakpoints[addr] = kind

    def remove_breakpoint(self, addr: int, kind: int = 1) -> None:
        self.checked(b"z0,%x,%x" % (addr, kind))
        self.breakpoints.pop(addr, None)

    def set_watchpoint(self, addr: int, length: int, access: str = "w") -> None:
        """A hardware watchpoint: access 'w' (Z2), 'r' (Z3) or 'a' (Z4)."""
        self.checked(b"Z%d,%x,%x" % ("wra".index(access) + 2, addr, length))

    def remove_watchpoint(self, addr: int, length: int, access: str = "w") -> None:
        self.checked(b"z%d,%x,%x" % ("wra".index(access) + 2, addr, length))

    # --- running -------------------------------------------------------------------

    def _resume(self, payload: bytes, timeout: float | None) -> StopReply:
        self.send(payload)
        while True:
            reply = self.receive(timeout)
            if reply[:1] == b"O" and reply != b"OK":
                continue  # console output from the stub
            self.last_stop = parse_stop_reply(reply)
            return self.last_stop

    def cont(self, signal: int = 0, timeout: float | None = None) -> StopReply:
        """Continue all threads until the next stop."""
        stepped = self._step_over_breakpoint(timeout)
        if stepped is not None:
            return stepped
        return self._resume(b"vCont;C%02x" % signal if signal else b"vCont;c", timeout)

    def step(self, thread: str | None = None, timeout: float | None = None) -> StopReply:
        """Single-step one thread (the last stop's thread by default)."""
        addr = self._breakpoint_here()
        if addr is not None:
            self.remove_breakpoint(addr, self.breakpoints[addr])
        try:
            return self._single_step(thread, timeout)
        finally:
            if addr is not None and not (self.last_stop and self.last_stop.exited):
                self.set_breakpoint(addr)

    def _single_step(self, thread: str | None, timeout: float | None) -> StopReply:
        thread = thread or (self.last_stop.thread if self.last_stop else None)
        return self._resume(b"vCont;s:" + thread.encode() if thread else b"vCont;s", timeout)

    def _breakpoint_here(self) -> int | None:
        """Our breakpoint at the stopped thread's PC, which must be stepped over to go on."""
        if not self.breakpoints or self.last_stop is None or self.last_stop.exited:
            return None
        layout = self.register_layout()
        name = next((n for n in ("rip", "eip", "pc") if n in layout), None)
        if name is None:
            return None
        pc = self.last_stop.registers.get(layout[name].regnum)
        addr = int.from_bytes(pc, "little") if pc is not None else self.register(name)
        return addr if addr in self.breakpoints else None

    def _step_over_breakpoint(self, timeout: float | None) -> StopReply | None:
        """As gdb does (gdbserver leaves it to the client): lift the breakpoint, step, put it back.

        Returns the step's stop when it is not a plain step (the program exited, a signal came).
        """
        addr = self._breakpoint_here()
        if addr is None:
            return None
        stop = self.step(timeout=timeout)
        if stop.exited or stop.signal != 5 or self._breakpoint_here() is not None:
            return stop
        return None

    def interrupt(self, timeout: float | None = None) -> StopReply:
        """Ctrl-C a running program; returns the stop it causes."""
        self._sendall(b"\x03")
        return parse_stop_reply(self.receive(timeout))

    def cont_async(self) -> None:
        """Continue without waiting; follow with interrupt() or wait_stop()."""
        self.send(b"vCont;c")

    def wait_stop(self, timeout: float | None = None) -> StopReply:
        self.last_stop = parse_stop_reply(self.receive(timeout))
        return self.last_stop

    def kill(self) -> None:
        """Kill the program; the stub exits unless it runs in extended mode."""
        pid = self._pid()
        try:
            if pid is not None and self.features.get("multiprocess") == "+":
                self.request(b"vKill;%x" % pid, timeout=5)
            else:
                self.send(b"k")
        except ClientError:
            pass

    def detach(self) -> None:
        """Let the program run on without the debugger."""
        self.checked(b"D")

    def _pid(self) -> int | None:
        thread = self.last_stop.thread if self.last_stop else None
        if thread and thread.startswith("p"):
            return int(thread[1:].partition(".")[0], 16)
        return None

    # --- symbols -------------------------------------------------------------------

    def load_bias(self, program: str | Path) -> int:
        """How far the program was relocated: AT_ENTRY from auxv minus the ELF entry point."""
        from elftools.elf.elffile import ELFFile

        with open(program, "rb") as f:
            elf = ELFFile(f)
            entry = int(elf.header["e_entry"])
            word = 8 if elf.elfclass == 64 else 4
        auxv = self.xfer("auxv")
        fmt = "<QQ" if word == 8 else "<II"
        for key, value in struct.iter_unpack(fmt, auxv[: len(auxv) // (2 * word) * 2 * word]):
            if key == AT_ENTRY:
                return int(value) - entry
        raise ClientError("no AT_ENTRY in auxv")

    def symbol(self, name: str, program: str | Path) -> int:
        """The run-time address of a function or variable of PROGRAM (its symbol table)."""
        from elftools.elf.elffile import ELFFile
        from elftools.elf.sections import SymbolTableSection

        with open(program, "rb") as f:
            elf = ELFFile(f)
            for section in elf.iter_sections():
                if isinstance(section, SymbolTableSection):
                    for sym in section.get_symbol_by_name(name) or []:
                        if sym["st_value"]:
                            return int(sym["st_value"]) + self.load_bias(program)
        raise ClientError(f"no symbol {name!r} in {program}")
