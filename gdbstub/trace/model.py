"""Tracepoint definitions, trace state variables, trace frames and the trace buffer.

Target-neutral: what gdb downloads (QTDP, QTDV, QTDPsrc) as checked data, and the frames a
run collects. The buffer keeps gdbserver's byte accounting (a frame is a 6-byte header and
its blocks: ``R`` + the registers as in a ``g`` reply, ``M`` + 8-byte address + 2-byte length
+ bytes, ``V`` + 4-byte number + 8-byte value, little-endian), so that ``tstatus`` reports
the same free space and ``qTBuffer`` hands gdb the layout its trace file (``tsave``) holds.
"""

from __future__ import annotations

import struct
import time
from collections import deque
from collections.abc import Callable

from ..agent import AgentError, Expression
from ..hints import NamedTuple

DEFAULT_BUFFER_SIZE = 0x500000  # gdbserver's 5 MiB
MIN_BUFFER_SIZE = 64
MAX_BUFFER_SIZE = 1 << 30
FRAME_HEADER = 6  # tpnum (2) + data size (4); also what the end-of-buffer marker needs
MAX_BLOCK = 0xFFFF  # an M block's length field is 16 bits: longer reads are split
MAX_ACTIONS = 1024  # actions of one tracepoint
MAX_SOURCE = 1 << 16  # characters of one source string
TIMESTAMP_VARIABLE = 1  # gdbserver's built-in $trace_timestamp
HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


class TraceError(ValueError):
    """A malformed definition: refused with an error reply."""


def timestamp() -> int:
    """Microseconds of the monotonic clock, as gdbserver's start/stop times and $trace_timestamp."""
    return time.monotonic_ns() // 1000


# --- actions ----------------------------------------------------------------------------


class CollectRegisters(NamedTuple):
    """``R mask``: gdbserver collects every register whatever the mask; so does the stub."""

    mask: int


class CollectMemory(NamedTuple):
    """``M basereg,offset,length``: basereg -1 is an absolute address."""

    basereg: int
    offset: int
    length: int


class Evaluate(NamedTuple):
    """``X len,bytes``: an agent expression run for its trace opcodes (and setv)."""

    expr: Expression


Action = CollectRegisters | CollectMemory | Evaluate


def _hex_int(text: bytes, what: str) -> int:
    if not text or len(text) > 17:
        raise TraceError(f"bad {what}")
    try:
        return int(text, 16)
    except ValueError as exc:
        raise TraceError(f"bad {what}") from exc


def parse_expression(text: bytes, pos: int) -> tuple[Expression, bytes, int]:
    """``X<len>,<hex>`` at ``pos``: the expression, its text as received, the position after it."""
    if text[pos:pos + 1] != b"X":
        raise TraceError("expected X")
    comma = text.find(b",", pos)
    if comma < 0:
        raise TraceError("X without length")
    length = _hex_int(text[pos + 1:comma], "expression length")
    end = comma + 1 + 2 * length
    try:
        code = bytes.fromhex(text[comma + 1:end].decode("ascii"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TraceError("bad expression hex") from exc
    if len(code) != length or length == 0:
        raise TraceError("expression shorter than its length")
    try:
        expr = Expression.parse(code, tracing=True)
    except AgentError as exc:
        raise TraceError(str(exc)) from exc
    return expr, text[pos:end], end


def parse_actions(text: bytes) -> list[tuple[Action, bytes, bool]]:
    """A QTDP continuation's action list: (action, its text, is a while-stepping action).

    ``S`` switches the rest of the list (and later packets) to while-stepping actions."""
    out: list[tuple[Action, bytes, bool]] = []
    pos = 0
    stepping = False
    while pos < len(text):
        kind = text[pos:pos + 1]
        if kind == b"S":
            stepping = True
            pos += 1
            continue
        if kind == b"R":
            end = pos + 1
            while end < len(text) and text[end] in HEX_DIGITS:
                end += 1
            if end - pos - 1 > 256:
                raise TraceError("register mask too long")
            mask = int(text[pos + 1:end], 16) if end > pos + 1 else 0
            out.append((CollectRegisters(mask), text[pos:end], stepping))
            pos = end
        elif kind == b"M":
            end = pos + 1
            while end < len(text) and text[end:end + 1] not in (b"R", b"M", b"X", b"S"):
                end += 1
            fields = text[pos + 1:end].split(b",")
            if len(fields) != 3:
                raise TraceError("bad M action")
            base = -1 if fields[0] == b"-1" else _hex_int(fields[0], "base register")
            offset = _hex_int(fields[1].lstrip(b"-"), "offset")
            if fields[1].startswith(b"-"):
                offset = -offset
            length = _hex_int(fields[2], "length")
            out.append((CollectMemory(base, offset, length), text[pos:end], stepping))
            pos = end
        elif kind == b"X":
            expr, raw, pos = parse_expression(text, pos)
            out.append((Evaluate(expr), raw, stepping))
        else:
            raise TraceError(f"unknown action {kind!r}")
    return out


# --- tracepoints and state variables ---------------------------------------------------


class Tracepoint:
    """One location of one tracepoint (gdb numbers them; a number may have several addresses).

    The records of this module are plain classes or NamedTuples: a dataclass costs start-up time."""

    def __init__(self, number: int, address: int, enabled: bool, step_count: int, pass_count: int) -> None:
        self.number = number
        self.address = address
        self.enabled = enabled
        self.step_count = step_count
        self.pass_count = pass_count
        self.fast = 0  # F<len>: a fast tracepoint, served by the same trap
        self.cond: Expression | None = None
        self.cond_text = b""  # X<len>,<hex> as received, for upload
        self.actions: list[Action] = []
        self.step_actions: list[Action] = []
        self.action_texts: list[bytes] = []
        self.step_action_texts: list[bytes] = []
        self.sources: list[tuple[bytes, bytes]] = []  # (type, text)
        self.stepping_next = False  # the last continuation switched to while-stepping actions
        self.hits = 0
        self.usage = 0  # trace buffer bytes its frames hold (data, not headers)

    def add_actions(self, text: bytes) -> None:
        if text.startswith(b"S"):
            self.stepping_next = True
            text = text[1:]
        for action, raw, stepping in parse_actions(text):
            if stepping or self.stepping_next:
                self.stepping_next = True
                self.step_actions.append(action)
                self.step_action_texts.append(raw)
            else:
                self.actions.append(action)
                self.action_texts.append(raw)
        if len(self.actions) + len(self.step_actions) > MAX_ACTIONS:
            raise TraceError("too many actions")

    def upload(self) -> list[bytes]:
        """qTfP/qTsP pieces: the definition as gdb downloaded it, one action per piece."""
        head = b"T%x:%x:%s:%x:%x" % (self.number, self.address, b"E" if self.enabled else b"D",
                                     self.step_count, self.pass_count)
        if self.fast:
            head += b":F%x" % self.fast
        if self.cond is not None:
            head += b":" + self.cond_text
        out = [head]
        out += [b"A%x:%x:%s" % (self.number, self.address, a) for a in self.action_texts]
        out += [b"S%x:%x:%s" % (self.number, self.address, a) for a in self.step_action_texts]
        for kind, text in self.sources:
            out.append(b"Z%x:%x:%s:0:%x:%s" % (self.number, self.address, kind, len(text), text.hex().encode()))
        return out


def parse_definition(args: bytes) -> tuple[Tracepoint, bool]:
    """``N:ADDR:E|D:STEP:PASS[:Fflen][:Xlen,cond][-]`` → (tracepoint, more packets follow)."""
    more = args.endswith(b"-")
    if more:
        args = args[:-1]
    parts = args.split(b":", 5)
    if len(parts) < 5 or parts[2] not in (b"E", b"D"):
        raise TraceError("bad QTDP")
    tp = Tracepoint(_hex_int(parts[0], "number"), _hex_int(parts[1], "address"), parts[2] == b"E",
                    _hex_int(parts[3], "step count"), _hex_int(parts[4], "pass count"))
    rest = parts[5] if len(parts) > 5 else b""
    pos = 0
    while pos < len(rest):
        if rest[pos:pos + 1] == b":":
            pos += 1
        elif rest[pos:pos + 1] == b"F":
            end = rest.find(b":", pos)
            end = len(rest) if end < 0 else end
            tp.fast = _hex_int(rest[pos + 1:end], "fast length")
            pos = end
        elif rest[pos:pos + 1] == b"X":
            tp.cond, tp.cond_text, pos = parse_expression(rest, pos)
        elif rest[pos:pos + 1] == b"S":
            raise TraceError("static tracepoints are not supported")
        else:
            raise TraceError("bad QTDP option")
    return tp, more


class StateVariable:
    """A trace state variable (QTDV)."""

    def __init__(self, number: int, initial: int, builtin: bool, name: bytes, value: int | None = None) -> None:
        self.number = number
        self.initial = initial
        self.builtin = builtin  # has a getter in the stub ($trace_timestamp)
        self.name = name
        self.value = value

    def current(self) -> int | None:
        if self.builtin and self.number == TIMESTAMP_VARIABLE:
            return timestamp()
        return self.value

    def upload(self) -> bytes:
        return b"%x:%x:%d:%s" % (self.number, self.initial & ((1 << 64) - 1), int(self.builtin),
                                 self.name.hex().encode())


def parse_variable(args: bytes) -> StateVariable:
    """``N:VALUE:BUILTIN:NAMEHEX`` (QTDV)."""
    parts = args.split(b":")
    if len(parts) != 4:
        raise TraceError("bad QTDV")
    initial = _hex_int(parts[1], "initial value")
    if initial >= 1 << 63:
        initial -= 1 << 64
    try:
        name = bytes.fromhex(parts[3].decode("ascii"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TraceError("bad name") from exc
    return StateVariable(_hex_int(parts[0], "number"), initial, parts[2] == b"1", name, initial)


def timestamp_variable() -> StateVariable:
    return StateVariable(TIMESTAMP_VARIABLE, 0, True, b"trace_timestamp", 0)


# --- frames and the buffer -----------------------------------------------------------------


class Frame:
    """One trace frame: its blocks in collection order, indexed for g/m/qTV while selected."""

    __slots__ = ("address", "data", "memory", "regs_at", "regs_later", "regs_size", "tpnum", "variables")

    def __init__(self, tpnum: int, address: int) -> None:
        self.tpnum = tpnum
        self.address = address  # the tracepoint's (gdbserver's traceframe address for tfind pc/range)
        self.data = bytearray()
        self.memory: list[tuple[int, bytes]] = []
        self.variables: dict[int, int] = {}
        self.regs_at = -1  # where the R block's registers start in data (-1: none collected)
        self.regs_size = 0
        # The registers in g layout, made when first needed: converting the raw ptrace buffers
        # is most of a hit's Python time, and most frames are never looked at one by one.
        self.regs_later: Callable[[], bytes] | None = None

    def add_registers(self, size: int, later: Callable[[], bytes]) -> None:
        """The R block was just appended (zeros): its bytes come from ``later``."""
        self.regs_at, self.regs_size, self.regs_later = len(self.data) - size, size, later

    def _settle(self) -> None:
        if self.regs_later is not None:
            regs = self.regs_later()[:self.regs_size].ljust(self.regs_size, b"\0")
            self.data[self.regs_at:self.regs_at + self.regs_size] = regs
            self.regs_later = None

    @property
    def registers(self) -> bytes | None:
        if self.regs_at < 0:
            return None
        self._settle()
        return bytes(self.data[self.regs_at:self.regs_at + self.regs_size])

    def raw(self) -> bytes:
        self._settle()
        return struct.pack("<HI", self.tpnum & 0xFFFF, len(self.data)) + self.data

    def read_memory(self, addr: int, length: int) -> bytes:
        """What the frame holds at addr: the first block containing it, up to its end."""
        for start, data in self.memory:
            if start <= addr < start + len(data):
                return data[addr - start:addr - start + length]
        return b""


class TraceBuffer:
    """Frames oldest first, placed as gdbserver places them in its ring (offsets only; the data
    stays in the Frame objects), so free space and frame counts match it byte for byte: an
    allocation needs room for itself and an end marker; a full linear buffer refuses; a
    circular one drops its oldest frames, and wraps to the start when the top is too small."""

    def __init__(self) -> None:
        self.size = DEFAULT_BUFFER_SIZE
        self.circular = False
        self.frames: deque[Frame] = deque()
        self.created = 0
        self.clear()

    def clear(self) -> None:
        self.frames.clear()
        self.created = 0
        self.start = 0  # offset of the oldest frame
        self.next_free = 0
        self.end_free = self.size
        self.wrap = self.size
        self._offsets: deque[int] = deque()
        self._raw: bytes | None = None

    @property
    def free(self) -> int:
        if self.next_free <= self.end_free:
            return self.end_free - self.next_free
        return self.end_free + (self.size - self.next_free)

    def _alloc(self, amount: int, keep: Frame | None) -> bool:
        amount += FRAME_HEADER  # room for the end marker
        while True:
            if self.end_free < self.next_free:
                if self.next_free + amount <= self.size:
                    break
                self.wrap = self.next_free  # the top part is too small: start again at 0
                self.next_free = 0
            if self.next_free + amount <= self.end_free:
                break
            if not self.circular or not self.frames or self.frames[0] is keep:
                return False
            old = self.frames.popleft()
            offset = self._offsets.popleft()
            new_start = offset + FRAME_HEADER + len(old.data)
            if new_start >= self.wrap:
                new_start -= self.wrap
            if new_start < self.start:
                self.wrap = self.size
            self.start = self.end_free = new_start
        self.next_free += amount - FRAME_HEADER
        self._raw = None
        return True

    def new_frame(self, tpnum: int, address: int) -> Frame | None:
        offset = self.next_free
        if not self._alloc(FRAME_HEADER, None):
            return None
        if self.next_free - FRAME_HEADER != offset:
            offset = self.next_free - FRAME_HEADER  # it went to the bottom after a wrap
        frame = Frame(tpnum, address)
        self.frames.append(frame)
        self._offsets.append(offset)
        self.created += 1
        return frame

    def add_block(self, frame: Frame, block: bytes) -> bool:
        """Append a block to the frame being built; False when there is no room for it."""
        if not self._alloc(len(block), frame):
            return False
        frame.data += block
        return True

    def raw(self) -> bytes:
        """What qTBuffer serves: the frames oldest first, as long as gdbserver's used space (the
        rest zeros, which gdb reads as the end marker). Built once per change."""
        if self._raw is None:
            data = b"".join(f.raw() for f in self.frames)
            self._raw = data.ljust(self.size - self.free, b"\0")
        return self._raw


def register_block(regs: bytes) -> bytes:
    return b"R" + regs


def memory_block(addr: int, data: bytes) -> bytes:
    return b"M" + struct.pack("<QH", addr & ((1 << 64) - 1), len(data)) + data


def variable_block(number: int, value: int) -> bytes:
    return b"V" + struct.pack("<iq", number, _signed64(value))


def _signed64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value
