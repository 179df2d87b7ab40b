"""Acceptance checks for issues 2 and 3 (register file) not made exactly elsewhere.

- Stop replies expedite the frame registers (ebp, esp, eip on i386; rbp, rsp, rip on x86_64),
  the same register numbers as gdbserver's, with the values `p` then reads.
- gdb prints no complaint about the register description or `g` packet sizes (issue 2: "gdb must
  show no register-size complaints"), for 64- and 32-bit programs, over the whole register file.
"""

from __future__ import annotations

import re

import harness
import pytest
from harness import ProcessTracker
from rawclient import RawClient, read_mem, symbol_address, wire_framer

STOP_KEY = re.compile(rb"([0-9a-zA-Z_]+):([^;]*);")


def expedited(reply: bytes) -> dict[int, bytes]:
    """The register number -> value pairs of a T stop reply (named keys like thread: left out)."""
    return {int(k, 16): v for k, v in STOP_KEY.findall(reply[3:]) if re.fullmatch(rb"[0-9a-f]+", k)}


@pytest.mark.parametrize(("prog", "numbers"), [("loop-nopie", {6, 7, 16}), ("loop-32-nopie", {5, 4, 8})])
def test_stop_reply_expedites_frame_registers_as_gdbserver(procs: ProcessTracker, prog: str, numbers: set[int]) -> None:
    hot = symbol_address(harness.program(prog), "hot")
    seen = {}
    for kind in harness.KINDS:
        srv = harness.start_server(procs, kind, harness.program(prog), ["2"])
        with RawClient(srv.port) as client:
            client.handshake()
            assert client.request(b"Z0,%x,1" % hot) == b"OK"
            reply = client.request(b"vCont;c")
            assert reply.startswith(b"T05"), (kind, reply)
            regs = expedited(reply)
            pc_size = 8 if numbers == {6, 7, 16} else 4
            pc = max(numbers)
            assert int.from_bytes(bytes.fromhex(regs[pc].decode()), "little") == hot, (kind, reply)
            assert len(regs[pc]) == 2 * pc_size, (kind, reply)
            # the expedited values are the ones a `p` read gives (gdbserver 13 answers this `p` empty)
            for number, value in regs.items():
                assert client.request(b"p%x" % number) in (value, b"" if kind == "gdbserver" else value), (
                    kind,
                    number,
                    reply,
                )
            seen[kind] = set(regs)
            client.send(b"vKill;%x" % (srv.inferior_pid or 0))
            client.receive()
        srv.wait_exit()
    assert seen["gdbstub"] == seen["gdbserver"] == numbers, seen


@pytest.mark.parametrize("prog", ["loop", "loop-32"])
def test_gdb_has_no_register_complaints(procs: ProcessTracker, prog: str) -> None:
    s = harness.debug(
        procs, "gdbstub", harness.program(prog), [], ["break add", "continue", "info all-registers", "p $pc", "kill"]
    )
    assert re.search(r"^Breakpoint 1, add ", s.out, re.M), s.describe()
    bad = re.compile(r"register|'g' packet|too long|truncated|Bogus|target description|warning", re.IGNORECASE)
    lines = [line for line in s.gdb.stderr.splitlines() if "File transfers from remote targets" not in line]
    complaints = [line for line in lines if bad.search(line)]
    assert not complaints, s.describe()


def test_issue_2_packet_replies(procs: ProcessTracker) -> None:
    """The small packets of issue 2's list, through the real stub: the replies the issue names."""
    prog = harness.program("loop-nopie")
    srv = harness.start_server(procs, "gdbstub", prog)
    pid = srv.inferior_pid
    assert pid is not None
    with RawClient(srv.port) as client:
        supported = client.request(b"qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386")
        assert re.search(rb"(^|;)PacketSize=[0-9a-f]+(;|$)", supported), supported
        for feature in (
            b"qXfer:features:read+",
            b"qXfer:auxv:read+",
            b"qXfer:exec-file:read+",
            b"multiprocess+",
            b"swbreak+",
        ):
            assert feature in supported.split(b";"), (feature, supported)
        assert client.request(b"QStartNoAckMode") == b"OK"
        client.no_ack = True
        assert client.request(b"vMustReplyEmpty") == b""
        assert client.request(b"qGdbstubNoSuchPacket") == b""
        stop = client.request(b"?")
        assert stop.startswith(b"T05") and b"thread:p%x.%x;" % (pid, pid) in stop, stop
        assert client.request(b"qC") == b"QCp%x.%x" % (pid, pid)
        assert client.request(b"qfThreadInfo") == b"mp%x.%x" % (pid, pid)
        assert client.request(b"qsThreadInfo") == b"l"
        assert client.request(b"qAttached:%x" % pid) == b"0"  # launched, so `kill` on quit
        assert client.request(b"Hgp%x.%x" % (pid, pid)) == b"OK"
        assert client.request(b"Hc-1") == b"OK"
        assert client.request(b"Tp%x.%x" % (pid, pid)) == b"OK"
        assert client.request(b"Tp%x.7fffffff" % pid).startswith(b"E")
        assert client.request(b"qSymbol::") == b"OK"
        assert client.request(b"qTStatus").startswith(b"T0;tnotrun:0;")  # tracepoints (issue 17): none run yet
        assert client.request(b"qOffsets") == b""  # a Linux ELF program: no offsets, as gdbserver
        vcont = client.request(b"vCont?")
        assert vcont == b"vCont;c;C;t;s;S;r", vcont  # gdbserver's reply; r: range steps (issue 5)
        exe = client.request(b"qXfer:exec-file:read:%x:0,fff" % pid)
        assert exe == b"l" + str(prog).encode(), exe
        xml = client.request(b"qXfer:features:read:target.xml:0,fff")
        assert xml[:1] in (b"m", b"l") and b"i386:x86-64" in xml, xml[:200]
        auxv = client.request(b"qXfer:auxv:read::0,fff")
        assert auxv[:1] == b"l" and len(auxv) > 16, auxv[:40]
        g = client.request(b"g")
        assert re.fullmatch(rb"[0-9a-fx]+", g) and len(g) >= 2 * 8 * 17, g[:80]
        client.send(b"vKill;%x" % pid)
        assert client.receive() == b"OK"
    assert srv.wait_exit() is not None, srv.describe()


def test_software_breakpoint_hidden_from_memory_reads(procs: ProcessTracker) -> None:
    """Issue 2: an inserted int3 is in the program's memory (seen through /proc) but `m` shows the
    original bytes, in reads that start before it, end after it or hold several; also after a hit."""
    prog = harness.program("loop-nopie")
    hot, add = symbol_address(prog, "hot"), symbol_address(prog, "add")
    srv = harness.start_server(procs, "gdbstub", prog, ["3"])
    pid = srv.inferior_pid
    assert pid is not None
    with RawClient(srv.port) as client:
        client.handshake()
        before = {a: client.request(b"m%x,10" % (a - 4)) for a in (hot, add)}
        for a in (hot, add):
            assert client.request(b"Z0,%x,1" % a) == b"OK"
        for a in (hot, add):
            assert client.request(b"m%x,10" % (a - 4)) == before[a]
            assert client.request(b"m%x,1" % a) == before[a][8:10]
        assert client.request(b"vCont;c").startswith(b"T05")  # hits hot: int3 written for sure now
        assert read_mem(pid, hot, 1) == b"\xcc", "the breakpoint is not in the program's memory"
        assert client.request(b"m%x,10" % (hot - 4)) == before[hot]
        span = client.request(b"m%x,%x" % (hot - 4, add - hot + 20))
        assert span[:32] == before[hot] and span[2 * (add - hot) : 2 * (add - hot) + 32] == before[add]
        assert client.request(b"vCont;c").startswith(b"T05")  # stepped over hot's int3, stops in add
        assert client.request(b"m%x,10" % (hot - 4)) == before[hot]
        client.send(b"vKill;%x" % pid)
        client.receive()
    srv.wait_exit()


@pytest.mark.parametrize(("prog", "core_bytes"), [("loop", 164), ("loop-32", 64)])
def test_first_stop_is_the_first_instruction_as_gdbserver(procs: ProcessTracker, prog: str, core_bytes: int) -> None:
    """Issue 2: launched stopped at its first instruction (ld.so's entry): the core registers of the
    first stop equal gdbserver's (ASLR off, the same environment and arguments)."""
    seen = {}
    for kind in harness.KINDS:
        srv = harness.start_server(procs, kind, harness.program(prog), ["3"])
        with RawClient(srv.port) as client:
            client.framer = wire_framer()
            stop = client.handshake()
            assert stop.startswith(b"T05"), (kind, stop)
            g = client.request(b"g")
            seen[kind] = g[: 2 * core_bytes]
            client.send(b"vKill;%x" % (srv.inferior_pid or 0))
            client.receive()
        srv.wait_exit()
    assert seen["gdbstub"] == seen["gdbserver"], seen
