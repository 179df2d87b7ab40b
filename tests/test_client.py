"""gdbstub.client against a scripted peer on a socket pair: acks, retransmission, run-length
encoding, stop replies, the register layout from target.xml (with xi:include, as gdbserver sends it).

The end-to-end tests against the real stub are in integration/test_api.py.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from gdbstub.client import Client, ClientError, ReplyFramer, parse_stop_reply
from gdbstub.protocol import framing

TARGET_XML = b"""<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target xmlns:xi="http://www.w3.org/2001/XInclude">
<architecture>i386:x86-64</architecture>
<xi:include href="core.xml"/>
<feature name="org.gnu.gdb.i386.linux"><reg name="orig_rax" bitsize="64" type="int" regnum="5"/></feature>
</target>"""
CORE_XML = b"""<feature name="org.gnu.gdb.i386.core">
<reg name="rax" bitsize="64" type="int64"/><reg name="rbx" bitsize="64" type="int64"/>
<reg name="eflags" bitsize="32" type="i386_eflags"/></feature>"""


class Peer:
    """A fake stub: answers each packet from a function; counts acks; can NAK the first packet."""

    def __init__(self, sock: socket.socket, answer: Callable[[bytes], bytes | None],
                 nak_first: bool = False) -> None:
        self.sock, self.answer, self.nak_first = sock, answer, nak_first
        self.received: list[bytes] = []
        self.acks = 0
        self.no_ack = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        framer = framing.Framer()
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            if not data:
                return
            for event in framer.feed(data):
                if isinstance(event, framing.Ack):
                    self.acks += 1
                elif isinstance(event, framing.Packet):
                    if self.nak_first:
                        self.nak_first = False
                        self.sock.sendall(b"-")
                        continue
                    if not self.no_ack:
                        self.sock.sendall(b"+")
                    self.received.append(event.data)
                    if event.data == b"QStartNoAckMode":
                        self.sock.sendall(framing.encode(b"OK"))
                        self.no_ack = True
                        continue
                    reply = self.answer(event.data)
                    if reply is not None:
                        try:
                            self.sock.sendall(framing.encode(reply) if not reply.startswith(b"$") else reply)
                        except OSError:
                            return


def raw_frame(body: bytes) -> bytes:
    """A packet exactly as given: no escaping, so run-length encoding can be sent as a stub would."""
    return b"$%s#%02x" % (body, framing.checksum(body))


def xfer(doc: bytes, args: bytes) -> bytes:
    offset, _, length = args.rpartition(b":")[2].partition(b",")
    start, size = int(offset, 16), int(length, 16)
    piece = doc[start : start + size]
    return (b"m" if start + size < len(doc) else b"l") + piece


def fake_stub(packet: bytes) -> bytes | None:
    if packet.startswith(b"qSupported"):
        return b"PacketSize=4000;QStartNoAckMode+;multiprocess+"
    if packet == b"?":
        return b"T0506:0100000000000000;thread:p64.64;core:1;"
    if packet.startswith(b"qXfer:features:read:target.xml:"):
        return xfer(TARGET_XML, packet)
    if packet.startswith(b"qXfer:features:read:core.xml:"):
        return xfer(CORE_XML, packet)
    if packet == b"g":
        # rbx is run-length encoded: '2' and 15 more
        body = b"11" * 8 + b"2*" + bytes([29 + 15]) + b"03000000" + b"ffffffffffffffff"
        return raw_frame(body)
    if packet == b"p1":
        return b"2222222222222222"
    if packet.startswith(b"m1000,"):
        return b"68656c6c6f"
    if packet.startswith(b"m"):
        return b"E14"
    if packet.startswith((b"Z0,", b"P")):
        return b"OK"
    if packet == b"vCont;c":
        return b"W07;process:64"
    return b""


@pytest.fixture
def connect() -> Iterator[Callable[..., tuple[Client, Peer]]]:
    socks: list[socket.socket] = []

    def make(answer: Callable[[bytes], bytes | None] = fake_stub, nak_first: bool = False) -> tuple[Client, Peer]:
        ours, theirs = socket.socketpair()
        socks.extend((ours, theirs))
        peer = Peer(theirs, answer, nak_first)
        client = Client(ours, timeout=5)
        client.handshake()
        return client, peer

    yield make
    for sock in socks:
        sock.close()


def test_parse_stop_replies():
    stop = parse_stop_reply(b"T0506:0100000000000000;07:02;thread:p1f.20;core:3;swbreak:;")
    assert (stop.kind, stop.signal, stop.thread, stop.tid) == ("T", 5, "p1f.20", 0x20)
    assert stop.registers == {6: bytes([1, 0, 0, 0, 0, 0, 0, 0]), 7: b"\x02"}
    assert stop.info == {"core": "3", "swbreak": ""}
    assert not stop.exited
    exited = parse_stop_reply(b"W07;process:1f")
    assert exited.exited and exited.exit_status == 7 and exited.info == {"process": "1f"}
    killed = parse_stop_reply(b"X09")
    assert killed.exited and killed.signal == 9
    with pytest.raises(ClientError):
        parse_stop_reply(b"OK")
    with pytest.raises(ClientError):
        parse_stop_reply(b"")


def test_reply_framer_expands_runs_before_unescaping():
    """gdbserver may use '}' as a repeat count: it must not be taken for an escape."""
    framer = ReplyFramer()
    events = framer.feed(b"+" + raw_frame(b"0*}") + raw_frame(b"a}]b")[:4])
    assert events == [framing.Ack(), framing.Packet(b"0" * 97)]
    events = framer.feed(raw_frame(b"a}]b")[4:] + b"%Stop:T05#00" + b"$bad#00-")
    assert events == [framing.Packet(b"a}]b"), framing.BadPacket("bad checksum"), framing.Nak()]
    assert framing.unescape(events[0].data) == b"a}b"


def test_handshake_negotiates_no_ack(connect):
    client, peer = connect()
    assert client.no_ack and client.features["multiprocess"] == "+"
    assert client.last_stop is not None and client.last_stop.thread == "p64.64"
    assert peer.received[:3] == [peer.received[0], b"QStartNoAckMode", b"?"]
    assert peer.received[0].startswith(b"qSupported:")
    assert peer.acks == 2  # the replies to qSupported and QStartNoAckMode, none after


def test_nak_makes_the_client_resend(connect):
    _, peer = connect(nak_first=True)
    assert peer.received[0].startswith(b"qSupported:")  # arrived on the second try


def test_register_layout_follows_includes(connect):
    client, _ = connect()
    layout = client.register_layout()
    assert [(r.name, r.regnum, r.offset, r.size) for r in layout.values()] == [
        ("rax", 0, 0, 8), ("rbx", 1, 8, 8), ("eflags", 2, 16, 4), ("orig_rax", 5, 20, 8)]


def test_registers_expand_run_length_encoding(connect):
    client, _ = connect()
    regs = client.registers()
    assert regs == {"rax": 0x1111111111111111, "rbx": 0x2222222222222222, "eflags": 3,
                    "orig_rax": 0xFFFFFFFFFFFFFFFF}
    assert client.register("rbx") == 0x2222222222222222


def test_memory_and_errors(connect):
    client, _ = connect()
    assert client.read_memory(0x1000, 5) == b"hello"
    with pytest.raises(ClientError, match="E14"):
        client.read_memory(0x2000, 4)


def test_breakpoint_continue_and_exit(connect):
    client, peer = connect()
    client.set_breakpoint(0x401000)
    client.write_register("rax", -1)
    stop = client.cont()
    assert stop.exited and stop.exit_status == 7
    assert b"Z0,401000,1" in peer.received
    assert b"P0=ffffffffffffffff" in peer.received


def test_unanswered_request_times_out(connect):
    client, _ = connect(answer=lambda p: None if p == b"g" else fake_stub(p))
    client.timeout = 0.2
    with pytest.raises(ClientError, match="timed out"):
        client.read_registers()


def test_closed_connection_is_an_error(connect):
    client, peer = connect()
    peer.sock.close()
    with pytest.raises(ClientError):
        client.request(b"g")
