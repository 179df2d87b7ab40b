"""The Python API end to end: gdbstub.launch, gdbstub.client and the pytest fixtures (gdbstub_launch,
gdbstub_client, from the package's pytest11 plugin) against real programs; the same client also talks
to GNU gdbserver, and both must report the same registers and memory.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import harness
import pytest
from harness import ProcessTracker, pid_alive, wait_until

import gdbstub
from gdbstub.client import Client, ClientError

LOOP = str(harness.BUILD / "loop")  # built by the session fixture `programs` before any test runs
GENERAL = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12",
           "r13", "r14", "r15", "rip", "eflags", "cs", "ss", "ds", "es", "fs", "gs", "fs_base"]


def test_launch_break_read_step_continue():
    with gdbstub.launch([LOOP, "3"], port=0) as server:
        assert server.port > 0 and server.pid is not None
        with server.connect() as client:
            hot = client.symbol("hot", LOOP)
            client.set_breakpoint(hot)
            stop = client.cont()
            assert (stop.kind, stop.signal, stop.tid) == ("T", 5, server.pid)
            assert "swbreak" in stop.info  # the client offers swbreak+, as gdb does
            assert client.register("rip") == hot
            assert client.register("rdi") == 0  # hot(0)
            assert client.read_memory(client.symbol("message", LOOP), 14) == b"hello, gdbstub"
            assert client.read_memory(client.symbol("g64", LOOP), 8) == bytes([0x44] * 8)
            client.write_memory(client.symbol("g32", LOOP), (7).to_bytes(4, "little"))
            assert client.read_memory(client.symbol("g32", LOOP), 4) == (7).to_bytes(4, "little")
            assert client.cont().signal == 5 and client.register("rdi") == 1
            client.remove_breakpoint(hot)
            rip = client.register("rip")
            step = client.step()
            assert step.signal == 5 and client.register("rip") != rip
            exited = client.cont()
            assert exited.exited and exited.exit_status == 7
        assert server.wait(harness.EXIT_TIMEOUT) == 0
    assert "acc=110 counter=3 local=45" in server.output


def test_registers_by_name_and_write():
    with gdbstub.launch([LOOP, "3"]) as server, server.connect() as client:
        client.set_breakpoint(client.symbol("add", LOOP))
        client.cont()
        regs = client.registers()
        assert set(GENERAL) <= set(regs)
        assert regs["rip"] == client.register("rip") == client.symbol("add", LOOP)
        assert (regs["rdi"], regs["rsi"]) == (42, 3)  # add(local_int, n)
        client.write_register("rsi", 100)
        assert client.register("rsi") == 100
        client.remove_breakpoint(client.symbol("add", LOOP))
        client.cont()
    assert "local=142" in server.output


def test_same_registers_and_memory_as_gdbserver(procs: ProcessTracker):
    """The client is a generic RSP client: gdbserver and gdbstub must agree through it."""
    seen = {}
    for kind in harness.KINDS:
        srv = harness.start_server(procs, kind, harness.program("loop"), ["3"])
        with Client.connect("127.0.0.1", srv.port) as client:
            client.set_breakpoint(client.symbol("hot", LOOP))
            client.cont()
            client.cont()
            regs = client.registers()
            seen[kind] = ({name: regs[name] for name in GENERAL},
                          client.read_memory(regs["rsp"], 64), client.threads() != [])
            client.kill()
        srv.wait_exit(harness.EXIT_TIMEOUT)
    assert seen["gdbstub"] == seen["gdbserver"]


def test_gdb_through_launched_server():
    with gdbstub.launch([LOOP, "2"]) as server:
        done = subprocess.run(
            [shutil.which("gdb") or "gdb", "-nx", "-batch", "-ex", f"target remote {server.address}",
             "-ex", "break add", "-ex", "continue", "-ex", "p a+b", "-ex", "kill", LOOP],
            capture_output=True, text=True, timeout=harness.GDB_TIMEOUT, stdin=subprocess.DEVNULL)
        assert re.search(r"^\$1 = 44$", done.stdout, re.M), done.stdout + done.stderr
        assert server.wait(harness.EXIT_TIMEOUT) is not None


def test_leaving_the_block_kills_stub_and_program():
    with gdbstub.launch([str(harness.program("busy"))]) as server, server.connect() as client:
        client.cont_async()
        assert harness.wait_until(lambda: "busy pid" in server.output, 20), server.log
        stop = client.interrupt()
        assert stop.signal == 2  # gdb's SIGINT
        stub, program = server.process.pid, server.pid
    assert program is not None
    assert wait_until(lambda: not pid_alive(stub) and not pid_alive(program), 10)


def test_launch_error_is_reported():
    with pytest.raises(gdbstub.LaunchError, match=r"(?s)gdbstub exited.*"):
        gdbstub.launch(["/nonexistent/program"])


def test_debug_log_has_packets():
    with gdbstub.launch([LOOP], debug=True) as server:
        with server.connect() as client:
            client.kill()
        # As gdbserver after vKill, the --once stub ends when its client hangs up (not before).
        assert server.wait(harness.EXIT_TIMEOUT) == 0, server.log
    assert "qSupported" in server.log


def test_fixture_gdbstub_launch(gdbstub_launch):
    server = gdbstub_launch([LOOP, "1"])
    with server.connect() as client:
        client.set_breakpoint(client.symbol("add", LOOP))
        assert client.cont().signal == 5
        assert client.register("rsi") == 1
    # the fixture kills the stub at teardown; the procs leak check (conftest) proves it


def test_fixture_gdbstub_client(gdbstub_client):
    client = gdbstub_client([LOOP, "1"])
    assert client.last_stop is not None and client.last_stop.signal == 5
    threads = client.threads()
    assert len(threads) == 1
    with pytest.raises(ClientError):
        client.read_memory(0, 4)  # unmapped


def test_attach_and_leave_running(procs: ProcessTracker):
    busy = harness.program("busy")
    proc = procs.spawn([str(busy)])
    out = harness.OutputReader(proc.stdout)
    found = out.wait_for(re.compile(r"busy pid (\d+)"), 20)
    assert found, out.text
    pid = int(found.group(1))
    with gdbstub.attach(pid) as server, server.connect() as client:
        assert client.last_stop is not None and client.last_stop.tid == pid
        spins = client.symbol("spins", busy)
        before = int.from_bytes(client.read_memory(spins, 8), "little")
        ran = harness.user_ticks(pid)
        client.cont_async()
        # It spins in user space: two more ticks of its user time and the counter has moved
        # (a fixed sleep is not enough on a loaded machine that gives it no CPU meanwhile).
        assert wait_until(lambda: harness.user_ticks(pid) >= ran + 2, 60, 0.01), "the program never ran"
        client.interrupt()
        assert int.from_bytes(client.read_memory(spins, 8), "little") > before
        stub = server.process.pid
    assert wait_until(lambda: not pid_alive(stub), 10)
    status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines() if ":" in line)
    assert status["TracerPid"].strip() == "0" and status["State"].split()[0] in ("R", "S"), status
    proc.kill()


def test_client_watchpoint(gdbstub_client):
    client = gdbstub_client([LOOP, "3"])
    counter = client.symbol("counter", LOOP)
    client.set_watchpoint(counter, 4, "w")
    stop = client.cont()
    assert stop.signal == 5 and int(stop.info["watch"], 16) == counter, stop
    assert int.from_bytes(client.read_memory(counter, 4), "little") == 1
    client.remove_watchpoint(counter, 4, "w")
    assert client.cont().exit_status == 7


@pytest.mark.i386
def test_client_on_a_32_bit_program():
    prog = str(harness.BUILD / "loop-32")
    with gdbstub.launch([prog, "3"]) as server, server.connect() as client:
        add = client.symbol("add", prog)  # 4-byte auxv entries for the load bias
        client.set_breakpoint(add)
        assert client.cont().signal == 5
        regs = client.registers()
        assert regs["eip"] == add and "rip" not in regs
        args = client.read_memory(regs["esp"] + 4, 8)  # cdecl: arguments above the return address
        assert (int.from_bytes(args[:4], "little"), int.from_bytes(args[4:], "little")) == (42, 3)
        client.remove_breakpoint(add)
        assert client.cont().exit_status == 7
