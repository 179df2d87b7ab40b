"""RSP framing: a byte stream in, packets and control events out; no I/O.

The framer never blocks and never rescans: bytes can arrive in any chunking
and each byte is examined once.
"""

from __future__ import annotations

import zlib
from io import BytesIO
from itertools import repeat

MAX_PACKET = 0x20100  # payload bytes we accept (above session.PACKET_SIZE); larger packets are refused
HEAD = 64  # bytes of an oversized packet kept: enough for its name, never its body


class _Event:
    """Immutable, compared by type and fields. Plain classes with __slots__ rather than
    frozen dataclasses: a Packet is made for every packet (a frozen dataclass's __init__
    costs a microsecond more), and the dataclass machinery costs start-up time."""

    __slots__: tuple[str, ...] = ()

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._fields() == self._fields()

    def __hash__(self) -> int:
        return hash((type(self), self._fields()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(repr(v) for v in self._fields())})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")


class Packet(_Event):
    """A well-formed packet; ``data`` is unescaped."""

    __slots__ = ("data",)
    data: bytes

    def __init__(self, data: bytes) -> None:
        object.__setattr__(self, "data", data)


class Ack(_Event):
    """The peer acknowledged our last packet ('+')."""

    __slots__ = ()


class Nak(_Event):
    """The peer asks for a retransmission ('-')."""

    __slots__ = ()


class Interrupt(_Event):
    """Ctrl-C (0x03) outside a packet: stop the running program."""

    __slots__ = ()


class BadPacket(_Event):
    """A packet with a bad checksum; reply '-' (the client sends it again)."""

    __slots__ = ("reason",)
    reason: str

    def __init__(self, reason: str) -> None:
        object.__setattr__(self, "reason", reason)


class Oversized(_Event):
    """A packet over the size limit, its body skipped as it arrived: acknowledge it and
    refuse it. A NAK would make the client send the same packet again, forever.

    ``head`` holds the first bytes of the payload (unescaped), so the refusal can
    be the one its name deserves (an error, or the empty reply for an unknown
    packet); ``size`` is how many body bytes were skipped. The checksum is not
    checked: a packet that would be refused whole gains nothing from a retransmission."""

    __slots__ = ("head", "size")
    head: bytes
    size: int

    def __init__(self, head: bytes, size: int) -> None:
        object.__setattr__(self, "head", head)
        object.__setattr__(self, "size", size)


Event = Packet | Ack | Nak | Interrupt | BadPacket | Oversized

_HEX_PAIRS = [b"%02x" % i for i in range(256)]  # a checksum's two characters
_adler32 = zlib.adler32
SMALL = 1024  # payloads up to this size skip escape's four scans when they hold nothing to escape
DIRECT = 256  # encode frames a plain payload up to this size at once (no ready_reply needed); at
# most 256: adler32 of so few bytes is their plain sum plus one (no modulo), the checksum it takes

# Replies sent again and again, framed once.
_FRAMED = {payload: b"$%s#%s" % (payload, _HEX_PAIRS[sum(payload) & 0xFF])
           for payload in (b"", b"OK", b"E01", b"E02", b"E03", b"E08", b"N")}
FRAMED = _FRAMED  # the event loop looks its replies up here itself (OK: four a breakpoint hit)


def checksum(data: bytes, step: int = 0) -> int:
    """The packet checksum, the byte sum mod 256, summed in C.

    zlib's Adler-32 of a chunk is (B << 16) | (1 + the chunk's byte sum mod 65521): the
    exact sum while it stays below 65521, so for 256 bytes of anything or 512 of ASCII
    (hex replies: every m). Added up whole, the B halves only add multiples of 65536,
    which vanish mod 256, and each chunk adds its 1. The chunks are cut and summed by
    C (BytesIO.read mapped over a repeat of the step: no sentinel compared per chunk, as
    iter(partial(read), b"") did), never by an interpreted loop: a 64 KiB
    reply costs one pass of adler32 and ~100 ns per chunk. (sum() over bytes walks
    them in the interpreter: 1.4 us for a stop reply.) STEP 512 says DATA is ASCII: its
    maker knows (hex), and the isascii pass is saved."""
    size = len(data)
    if size <= 256:
        return (_adler32(data) - 1) & 0xFF
    if not step:
        step = 512 if data.isascii() else 256
    count = (size + step - 1) // step
    return (sum(map(_adler32, map(BytesIO(data).read, repeat(step, count)))) - count) & 0xFF


def escape(data: bytes) -> bytes:
    """Escape '$', '#', '}' and '*' as '}' followed by the byte xor 0x20.

    bytes.replace runs in C: hundreds of times faster than a Python loop on
    the large binary replies of vFile:pread and x. '}' goes first so the
    escapes added later are not escaped again."""
    if b"}" in data:
        data = data.replace(b"}", b"}]")
    if b"$" in data:
        data = data.replace(b"$", b"}\x04")
    if b"#" in data:
        data = data.replace(b"#", b"}\x03")
    if b"*" in data:
        data = data.replace(b"*", b"}\x0a")
    return data


def unescape(data: bytes) -> bytes:
    if b"}" not in data:
        return data
    out = bytearray()
    pos = 0
    while True:
        i = data.find(b"}", pos)
        if i < 0 or i + 1 >= len(data):
            out += data[pos:i] if i >= 0 else data[pos:]
            return bytes(out)
        out += data[pos:i]
        out.append(data[i + 1] ^ 0x20)
        pos = i + 2


def run_length_decode(data: bytes) -> bytes:
    """Expand 'X*N' runs (N = count + 29) as a client would."""
    if b"*" not in data:
        return data
    out = bytearray()
    i = 0
    while i < len(data):
        c = data[i]
        if c == 0x2A and out and i + 1 < len(data):
            out.extend(out[-1:] * (data[i + 1] - 29))
            i += 2
            continue
        out.append(c)
        i += 1
    return bytes(out)


class _Ready:
    """The reply a handler framed half-way: its payload, and the head and tail of the body
    to send for it. One slot, taken by the next encode of that very payload object."""

    __slots__ = ("end", "head", "payload", "step", "tail")

    def __init__(self) -> None:
        self.payload: bytes | None = None
        self.head = self.tail = b""
        self.step = self.end = 0


_ready = _Ready()


def ready_reply(head: bytes, data: bytes | memoryview, tail: bytes, ascii: bool = False, end: int = -1) -> bytes:
    """The payload HEAD + DATA (nothing in HEAD to escape), whose body encode sends as HEAD +
    TAIL[:END]: DATA escaped (made while the handler cut DATA to fit PacketSize: x, vFile:pread),
    or DATA itself (hex, ASCII: m). The payload stays plain bytes for whoever else reads it;
    sending it costs no second escape, no isascii pass for hex, and two copies of the data
    and a zeroing less than the bytes subclass that carried the escaped form did (a fifth of
    a 64 KiB x reply's instructions). TAIL cut at END is sent through a memoryview, its
    checksum the whole one's less the cut-off end's: no copy of the kept part."""
    payload = head + data if head else data if type(data) is bytes else bytes(data)
    ready = _ready
    ready.payload, ready.head, ready.tail, ready.step = payload, head, tail, 512 if ascii else 0
    ready.end = len(tail) if end < 0 else end
    return payload


def _plain(payload: bytes) -> bool:
    """Nothing in PAYLOAD to escape. Each test is one memchr: ``int in bytes`` (a bytes operand
    goes through a TypeError raised and cleared first), cheaper than translate's table."""
    return 0x7D not in payload and 0x24 not in payload and 0x23 not in payload and 0x2A not in payload


def _body(payload: bytes) -> bytes:
    """PAYLOAD escaped. A small one of plain text (isalnum, or ``_plain``) is returned as it
    is, without escape's four replaces; a large one goes straight to escape."""
    if len(payload) <= SMALL and (payload.isalnum() or _plain(payload)):
        return payload
    return escape(payload)


def encode(payload: bytes) -> bytes:
    """Frame a reply payload: escape it and add the checksum (one copy of the body).

    A small plain reply (a stop reply, an `m` of a few words: two a step) is framed here
    without the calls of ``_body`` and ``checksum``: adler32 sums it exactly. A payload a
    handler made ready (``ready_reply``) is framed from its head and escaped tail."""
    size = len(payload)
    if size <= DIRECT and type(payload) is bytes:
        if size <= 3:
            framed = _FRAMED.get(payload)
            if framed is not None:
                return framed
        if payload.isalnum() or (0x7D not in payload and 0x24 not in payload and 0x23 not in payload
                                 and 0x2A not in payload):  # _plain, inlined
            return b"".join((b"$", payload, b"#", _HEX_PAIRS[(_adler32(payload) - 1) & 0xFF]))
    ready = _ready
    if payload is ready.payload:
        ready.payload = None
        head, tail, end = ready.head, ready.tail, ready.end
        total = checksum(tail, ready.step) + (checksum(head) if head else 0)
        if end < len(tail):
            total -= checksum(tail[end:], ready.step)
            return b"".join((b"$", head, memoryview(tail)[:end], b"#", _HEX_PAIRS[total & 0xFF]))
        return b"".join((b"$", head, tail, b"#", _HEX_PAIRS[total & 0xFF]))
    body = _body(payload)
    return b"".join((b"$", body, b"#", _HEX_PAIRS[checksum(body)]))


def encode_notification(payload: bytes) -> bytes:
    body = _body(payload)
    return b"".join((b"%", body, b"#", _HEX_PAIRS[checksum(body)]))


SEEN_SIZE = 72  # whole_packet remembers packets up to this long (payloads up to 68 bytes)


class Framer:
    """Incremental packet parser.

    States: idle (between packets), body (after '$'), checksum (after '#').
    An unescaped '$' cannot occur inside a packet (clients escape it), so one
    seen in the body or checksum means the packet in progress was cut short
    (a client died mid-packet, a line lost bytes): it is dropped without a
    NAK (the client never finished it, so no ack is owed) and a new one starts.
    """

    decode_run_length = False  # a client's framer: replies may be run-length encoded (`0*}`)

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self._max = max_packet
        self.state = 0  # 0 idle, 1 body, 2 checksum
        self._body = bytearray()
        self._cs = bytearray()
        self._overflow = False
        self._head = b""  # of an oversized packet: its first HEAD bytes
        self._skipped = 0  # of an oversized packet: body bytes seen
        self.dropped = 0  # packets cut short by a new '$'
        # Whole plain packets seen lately (up to SEEN_SIZE bytes) -> their payload: a repeat is
        # one look-up, and its payload the same object each time (its hash kept for the
        # look-ups keyed on it after this one).
        self.seen: dict[bytes, bytes] = {}

    def whole_packet(self, data: bytes) -> bytes | None:
        """The payload when DATA is exactly one whole, plain packet with a good lowercase
        checksum (what a client sends per read almost always); None for anything else,
        which ``feed`` then takes as usual. No event object, no byte loop: the hot path."""
        if self.state:
            return None
        seen = self.seen
        body = seen.get(data)
        if body is not None:  # checked before: gdb sends the same few packets around every stop
            return body
        n = len(data)
        if n < 4 or data[0] != 0x24 or data[n - 3] != 0x23 or n > 260 or self.decode_run_length:
            return None
        body = data[1:-3]
        if 0x24 in body or 0x23 in body or 0x7D in body:  # another packet, a cut one, an escape
            return None
        if _HEX_PAIRS[(_adler32(body) - 1) & 0xFF] != data[-2:]:  # a bad or uppercase checksum: feed says
            return None
        if n <= SEEN_SIZE:
            if len(seen) >= 256:
                seen.clear()
            seen[data] = body
        return body

    def feed(self, data: bytes) -> list[Event]:
        if self.state == 0 and data[:1] == b"$" and data[-3:-2] == b"#":
            # The usual read: exactly one whole packet. Framed without the byte loop when
            # it holds no other '$' or '#' (a cut-short packet, a second one), and with
            # no copy through the packet buffer when it holds no escape either.
            body = data[1:-3]
            if data.count(b"$") == 1 and b"#" not in body and len(body) <= self._max:
                cs = data[-2:]
                if b"}" not in body and not self.decode_run_length and cs.isalnum() and cs.isascii():
                    try:
                        ok = checksum(body) == int(cs, 16)
                    except ValueError:
                        return [BadPacket("malformed checksum")]
                    return [Packet(body) if ok else BadPacket("bad checksum")]
                self._body[:] = body
                self._cs[:] = cs
                return [self._finish()]
        events: list[Event] = []
        i = 0
        n = len(data)
        while i < n:
            if self.state == 1:
                j = data.find(b"#", i)
                end = n if j < 0 else j
                restart = data.rfind(b"$", i, end)
                if restart >= 0:  # each '$' before the last one cut a packet short too
                    self._restart()
                    self.dropped += data.count(b"$", i, restart)
                    i = restart + 1
                    continue
                if self._overflow:
                    self._skipped += end - i
                else:
                    self._body += data[i:end]
                    if len(self._body) > self._max * 2 + 16:  # escaped, it may be up to twice as long
                        self._overflow = True
                        self._head = bytes(self._body[:HEAD])
                        self._skipped = len(self._body)
                        self._body.clear()
                if j < 0:
                    return events
                i = j + 1
                self.state = 2
                continue
            c = data[i]
            i += 1
            if self.state == 2:
                if c == 0x24:  # '$'
                    self._restart()
                    continue
                self._cs.append(c)
                if len(self._cs) == 2:
                    events.append(self._finish())
                    self.state = 0
                continue
            if c == 0x24:  # '$'
                self.state = 1
                self._body.clear()
                self._cs.clear()
                self._overflow = False
            elif c == 0x2B:
                events.append(Ack())
            elif c == 0x2D:
                events.append(Nak())
            elif c == 0x03:
                events.append(Interrupt())
            # anything else between packets is noise and ignored
        return events

    def _restart(self) -> None:
        """Drop the packet in progress; a new one starts after the '$' just seen."""
        self.dropped += 1
        self.state = 1
        self._body.clear()
        self._cs.clear()
        self._overflow = False

    def _finish(self) -> Event:
        body = bytes(self._body)
        self._body.clear()
        if self._overflow:
            self._overflow = False
            return Oversized(unescape(self._head), self._skipped)  # a '}' cut off at the end is dropped
        if len(body) > self._max:
            data = unescape(body)
            if len(data) > self._max:
                # Refused whatever its checksum: a NAK would only bring the same packet back.
                return Oversized(data[:HEAD], len(body))
        try:
            want = int(self._cs.decode("ascii"), 16)
        except ValueError:
            return BadPacket("malformed checksum")
        if checksum(body) != want:
            return BadPacket("bad checksum")
        return Packet(unescape(run_length_decode(body) if self.decode_run_length else body))

