"""Host I/O (issue 6): a gdb with no local files gets everything through the stub.

gdb is started with no program file: it learns the path from qXfer:exec-file, reads the
executable, ld.so, libc and their debug info with vFile, and the library list with
qXfer:libraries-svr4, exactly as through gdbserver. Each test runs once per server kind;
against gdbserver it checks the test itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import harness
import pytest
from harness import assert_same, expect, source_line
from rawclient import RawClient, fd_count, wire_framer

from gdbstub.protocol import framing
from gdbstub.protocol.session import PACKET_SIZE

ROOT = harness.ROOT
NOFILE_BREAK = ["break distance2", "continue", "bt", "info sharedlibrary", "continue", "bt 1"]


def hexpath(path: str | Path) -> bytes:
    return str(path).encode().hex().encode()


def packet_data(client: RawClient, payload: bytes) -> bytes:
    """A reply's bytes as sent (unescaped only): binary attachments must not be RLE-expanded."""
    client.send(payload)
    while True:
        event = client.next_event()
        if isinstance(event, framing.Packet):
            if not client.no_ack:
                client.send_raw(b"+")
            return event.data


# --------------------------------------------------------------------------- gdb with no file


@pytest.mark.parametrize(
    "prog",
    [
        "sample",
        "sample-nopie",
        pytest.param("sample-32", marks=pytest.mark.i386),
        pytest.param("sample-32-nopie", marks=pytest.mark.i386),
    ],
)
def test_no_local_file_same_as_gdbserver(debug, reference, prog):
    """No file on gdb's side: breakpoints, bt with source lines and the library list all work."""
    ours = debug(prog, [], NOFILE_BREAK, file=False)
    call = source_line("call", "sample")
    expect(
        ours,
        rf"^Reading .*/build/{prog} from remote target\.\.\.$",
        rf"^Breakpoint 1, distance2 \(a=0x[0-9a-f]+, dx=0, dy=0\) at .*sample\.c:{source_line('distance2', 'sample')}$",
        rf"^#1  0x[0-9a-f]+ in main \(\) at .*sample\.c:{call}$",
        r"^0x[0-9a-f]+ +0x[0-9a-f]+ +Yes( \(\*\))? +target:/lib(64)?/ld-linux[-.a-z0-9_]*\.so\.2$",
        r"^0x[0-9a-f]+ +0x[0-9a-f]+ +Yes( \(\*\))? +target:/lib[^ ]*/libc\.so\.6$",
        r"^Breakpoint 1, distance2 \(a=0x[0-9a-f]+, dx=1, dy=-1\)",
    )
    assert "Remote gdbserver does not support determining executable" not in ours.output
    assert_same(ours, reference(prog, [], NOFILE_BREAK, file=False))


@pytest.mark.parametrize("prog", ["dlhost", pytest.param("dlhost-32", marks=pytest.mark.i386)])
def test_puts_in_libc_and_pending_breakpoint_in_dlopened_library(debug, reference, prog):
    script = [
        "set breakpoint pending on",
        "break plugin_entry",
        "break puts",
        "continue",
        "bt 2",
        "continue",
        "bt",
        "info sharedlibrary",
        "continue",
    ]
    ours = debug(prog, [], script, file=False)
    expect(
        ours,
        r"^Breakpoint 1 \(plugin_entry\) pending\.$",
        # with libc's debug info (64-bit here) gdb shows the argument; without it, the library
        r"^Breakpoint 2, (.*puts \(str=0x[0-9a-f]+ \"dlhost: loading the plugin\"\)"
        r"|0x[0-9a-f]+ in puts \(\) from target:/lib[^ ]*/libc\.so\.6$)",
        rf"^#1  0x[0-9a-f]+ in main \(\) at .*dlhost\.c:{source_line('puts', 'dlhost')}$",
        rf"^Breakpoint 1, plugin_entry \(value=21\) at .*plugin\.c:{source_line('plugin_entry', 'lib/plugin')}$",
        rf"^#1  0x[0-9a-f]+ in main \(\) at .*dlhost\.c:{source_line('call', 'dlhost')}$",
        rf"Yes +target:{ROOT}/build/libplugin(-32)?\.so$",
        r"\[Inferior 1 \(process \d+\) exited normally\]",
    )
    assert_same(ours, reference(prog, [], script, file=False))


@pytest.mark.parametrize("prog", ["dlhost", pytest.param("dlhost-32", marks=pytest.mark.i386)])
def test_libraries_svr4_documents_same_as_gdbserver(debug, reference, prog):
    """The whole list, and the augmented form gdb's probes interface asks for
    (``lmid=..;start=..;prev=..``: only what follows ``start``)."""
    script = [
        "set breakpoint pending on",
        "break plugin_entry",
        "continue",
        "python doc = gdb.execute('maint packet qXfer:libraries-svr4:read::0,fff', to_string=True)",
        "python print(doc)",
        "python import re; lms = re.findall(r' lm=\"0x([0-9a-f]+)\"', doc); "
        "lmid = re.findall(r'lmid=\"0x([0-9a-f]+)\"', doc)[0]; "
        "print(gdb.execute('maint packet qXfer:libraries-svr4:read:lmid=%s;start=%s;prev=%s:0,fff'"
        " % (lmid, lms[1], lms[0]), to_string=True))",
        "kill",
    ]
    ours = debug(prog, [], script, file=False)
    expect(
        ours,
        r'^received: "l<library-list-svr4 version="1\.0" main-lm="0x[0-9a-f]+"><library name="linux-(vdso|gate)'
        r'.*<library name="/lib.*libplugin(-32)?\.so" lm="0x[0-9a-f]+" l_addr="0x[0-9a-f]+" l_ld="0x[0-9a-f]+"'
        r' lmid="0x[0-9a-f]+"/></library-list-svr4>"$',
        # from libc on: the vDSO (before start) is left out
        r'^received: "l<library-list-svr4 version="1\.0"><library name="/lib[^"]*/libc\.so\.6" ',
    )
    assert_same(ours, reference(prog, [], script, file=False))


def test_static_program_has_no_svr4_list_but_debugs(procs, kind, tmp_path):
    """No PT_DYNAMIC: the stub says E01, as gdbserver does, and gdb carries on without libraries.
    To gdb 16, which offers error-message+, gdbstub says why (E.reason) where gdbserver 16 says E01."""
    exe = tmp_path / "static-sample"
    subprocess.run(
        ["gcc", "-g", "-O0", "-static", "-o", str(exe), str(ROOT / "integration/programs/sample.c")],
        check=True,
        timeout=120,
    )
    script = ["maint packet qXfer:libraries-svr4:read::0,fff", "break distance2", "continue", "bt 1"]
    s = harness.debug(procs, kind, exe, (), script, file=False)
    error = r"E01" if kind == "gdbserver" or harness.gdb_version() == "gdb13" else r"E\.no PT_DYNAMIC"
    expect(s, rf'^received: "{error}"$', r"^Breakpoint 1, distance2 \(a=0x[0-9a-f]+, dx=0, dy=0\)")


# --------------------------------------------------------------------------- remote get/put/delete


def test_remote_get_copies_the_program_byte_for_byte(debug, tmp_path):
    copy = tmp_path / "copy"
    program = harness.program("sample")
    s = debug("sample", [], [f"remote get {program} {copy}", "kill"], file=False)
    assert copy.exists(), s.describe()
    assert copy.read_bytes() == program.read_bytes()


def test_remote_put_and_delete(debug, tmp_path):
    # every byte value, the protocol's special characters in runs, and a size over one packet
    payload = bytes(range(256)) * 80 + b"$#}*" * 3000 + os.urandom(20000)
    src = tmp_path / "src"
    src.write_bytes(payload)
    kept, removed = tmp_path / "kept", tmp_path / "removed"
    s = debug(
        "sample",
        [],
        [f"remote put {src} {kept}", f"remote put {src} {removed}", f"remote delete {removed}", "kill"],
        file=False,
    )
    assert kept.exists(), s.describe()
    assert kept.read_bytes() == payload
    assert not removed.exists(), s.describe()


def test_info_proc_mappings(debug, reference):
    script = ["break distance2", "continue", "info proc mappings"]
    ours = debug("sample", [], script, file=False)
    expect(ours, rf"r-xp +{ROOT}/build/sample *$", r"r-xp +/usr/lib/x86_64-linux-gnu/libc\.so\.6 *$",
           r"\[stack\] *$")  # gdb 16 pads the lines
    assert_same(ours, reference("sample", [], script, file=False))


# --------------------------------------------------------------------------- raw vFile packets


@pytest.fixture
def client(server):
    srv = server("sample")
    with RawClient(srv.port) as c:
        c.framer = wire_framer()
        c.handshake()
        yield c


def test_vfile_errno_values(client, tmp_path):
    """gdb's File-I/O errno numbers in hex, as gdbserver sends them."""
    assert client.request(b"vFile:setfs:0") == b"F0"
    assert client.request(b"vFile:open:%s,0,0" % hexpath(tmp_path / "missing")) == b"F-1,2"  # ENOENT
    assert client.request(b"vFile:open:%s,1,0" % hexpath(tmp_path)) == b"F-1,15"  # EISDIR (21)
    assert client.request(b"vFile:open:%s,0,0" % hexpath(tmp_path / "missing/x")) == b"F-1,2"
    (tmp_path / "file").write_text("x")
    assert client.request(b"vFile:open:%s,0,0" % hexpath(tmp_path / "file/x")) == b"F-1,14"  # ENOTDIR (20)
    assert client.request(b"vFile:open:%s,a01,1a4" % hexpath(tmp_path / "file")) == b"F-1,11"  # EEXIST (17)
    assert client.request(b"vFile:unlink:%s" % hexpath(tmp_path / "missing")) == b"F-1,2"
    assert client.request(b"vFile:readlink:%s" % hexpath(tmp_path / "file")) == b"F-1,16"  # EINVAL
    assert client.request(b"vFile:pread:7ffe,10,0") == b"F-1,16"  # a descriptor never given out
    assert client.request(b"vFile:close:7ffe") == b"F-1,16"
    assert client.request(b"vFile:open:zz,0,0") == b"F-1,16"  # malformed
    assert client.request(b"vFile:nosuchop:0") == b""


def test_forbidden_path_is_eacces_for_an_unprivileged_stub(procs, kind):
    """The server opens files with its own rights only: run it as nobody, ask for root's file."""
    if os.getuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to start the server as another user")
    folder = tempfile.mkdtemp(prefix="hostio-", dir="/tmp")
    try:
        os.chmod(folder, 0o755)
        secret = Path(folder) / "secret"
        secret.write_text("root only")
        os.chmod(secret, 0o600)
        drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        # The client (root) is not the stub's user: gdbstub refuses it unless told otherwise.
        extra = ["--allow-any-user"] if kind == "gdbstub" else []
        argv = drop + harness.server_command(kind, harness.program("sample"), extra=extra)
        proc = procs.spawn(argv, env=harness.server_env())
        err = harness.OutputReader(proc.stderr)
        harness.OutputReader(proc.stdout)
        found = err.wait_for(harness.LISTENING_RE, harness.START_TIMEOUT)
        assert found, err.text
        with RawClient(int(found.group(1))) as c:
            c.handshake()
            assert c.request(b"vFile:open:%s,0,0" % hexpath(secret)) == b"F-1,d"  # EACCES (13)
            assert c.request(b"vFile:open:%s,0,0" % hexpath(Path(folder) / "missing")) == b"F-1,2"
            assert c.request(b"vFile:unlink:%s" % hexpath(secret)) == b"F-1,d"
            c.send(b"k")  # kill: the server ends (--once)
        proc.wait(timeout=harness.EXIT_TIMEOUT)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_vfile_open_pread_fstat_close(client, tmp_path):
    data = bytes(range(256)) * 4 + b"}}}$$$###***"
    path = tmp_path / "blob"
    path.write_bytes(data)
    reply = client.request(b"vFile:open:%s,0,0" % hexpath(path))
    assert re.fullmatch(rb"F[0-9a-f]+", reply), reply
    fd = reply[1:]
    got = packet_data(client, b"vFile:pread:%s,%x,0" % (fd, len(data) + 100))
    assert got == b"F%x;" % len(data) + data
    assert packet_data(client, b"vFile:pread:%s,10,%x" % (fd, len(data))) == b"F0;"
    st = packet_data(client, b"vFile:fstat:%s" % fd)
    assert st[:4] == b"F40;" and len(st) == 4 + 64
    body = st[4:]
    assert int.from_bytes(body[28:36], "big") == len(data)  # st_size, big-endian
    assert int.from_bytes(body[8:12], "big") & 0o170000 == 0o100000  # S_IFREG
    assert client.request(b"vFile:close:%s" % fd) == b"F0"
    assert client.request(b"vFile:close:%s" % fd) == b"F-1,16"


def test_vfile_readlink_and_pwrite(client, tmp_path):
    link = tmp_path / "link"
    link.symlink_to("some/target$#}*")
    assert packet_data(client, b"vFile:readlink:%s" % hexpath(link)) == b"Ff;some/target$#}*"
    path = tmp_path / "out"
    fd = client.request(b"vFile:open:%s,601,180" % hexpath(path))[1:]  # O_WRONLY|O_CREAT|O_TRUNC, 0600
    assert client.request(b"vFile:pwrite:%s,0,%s" % (fd, b"ab$c")) == b"F4"
    assert client.request(b"vFile:pwrite:%s,2,%s" % (fd, b"XY")) == b"F2"
    assert client.request(b"vFile:close:%s" % fd) == b"F0"
    assert path.read_bytes() == b"abXY"
    assert path.stat().st_mode & 0o777 == 0o600


def test_pread_reply_fits_the_packet_size(client):
    """A large read comes back cut so the escaped reply fits; the count is the bytes sent."""
    program = harness.program("sample")
    fd = client.request(b"vFile:open:%s,0,0" % hexpath(program))[1:]
    content = program.read_bytes()
    got = bytearray()
    while len(got) < len(content):
        reply = packet_data(client, b"vFile:pread:%s,%x,%x" % (fd, 0x10000, len(got)))
        head, _, data = reply.partition(b";")
        count = int(head[1:], 16)
        assert 0 < count <= PACKET_SIZE
        assert len(data) == count
        got += data
    assert bytes(got) == content
    client.request(b"vFile:close:%s" % fd)


def test_a_file_read_through_sees_writes_between_its_parts(client, tmp_path):
    """A file read through in big parts has its next part read ahead; a pwrite into that part
    in between makes it read again, and a read of another length or place reads what is there."""
    data = bytes(range(256)) * 2048  # 512 KiB, full of bytes to escape
    path = tmp_path / "blob"
    path.write_bytes(data)
    fd = client.request(b"vFile:open:%s,2,0" % hexpath(path))[1:]  # O_RDWR
    got = bytearray()

    def pread(offset: int, count: int = 0x20000) -> bytes:
        head, _, chunk = packet_data(client, b"vFile:pread:%s,%x,%x" % (fd, count, offset)).partition(b";")
        assert int(head[1:], 16) == len(chunk)
        return chunk

    while len(got) < 0x30000:  # into the big parts, the next one read ahead
        got += pread(len(got))
    assert client.request(b"vFile:pwrite:%s,%x,%s" % (fd, len(got) + 5, b"written")) == b"F7"
    chunk = pread(len(got))
    assert chunk[5:12] == b"written" and chunk[:5] + chunk[12:] == data[len(got):len(got) + len(chunk)][:5] + \
        data[len(got) + 12:len(got) + len(chunk)]
    got += chunk
    assert pread(len(got), 0x100) == data[len(got):len(got) + 0x100]  # another length
    while len(got) < len(data):
        got += pread(len(got))
    assert bytes(got[:0x30000]) == data[:0x30000] and pread(len(data)) == b""
    assert client.request(b"vFile:close:%s" % fd) == b"F0"


def test_descriptors_are_closed_when_the_client_goes(server, kind):
    if kind != "gdbstub":
        pytest.skip("looks at the stub's own descriptors")
    srv = server("sample", once=False)
    program = harness.program("sample")
    with RawClient(srv.port) as first:
        first.handshake()
        before = fd_count(srv.proc.pid)
        for _ in range(5):
            assert first.request(b"vFile:open:%s,0,0" % hexpath(program)).startswith(b"F")
        assert fd_count(srv.proc.pid) == before + 5
    with RawClient(srv.port) as second:
        second.handshake()
        assert harness.wait_until(lambda: fd_count(srv.proc.pid) == before, 10), (
            fd_count(srv.proc.pid),
            before,
        )
    srv.stop()


def test_setfs_reads_the_process_mount_namespace(procs, kind, tmp_path):
    """A program in its own mount namespace (a container's view) sees files the stub does not."""
    script = (
        "mount -t tmpfs none /mnt && echo inside > /mnt/hostio-marker"
        " && ln -s /mnt/hostio-marker /mnt/hostio-link && exec sleep 60"
    )
    holder = procs.spawn(["unshare", "--mount", "--propagation", "private", "sh", "-c", script])
    marker = "/mnt/hostio-marker"
    pid = holder.pid

    def ready() -> bool:
        try:
            return os.readlink(f"/proc/{pid}/exe").endswith("sleep") and os.path.exists(f"/proc/{pid}/root{marker}")
        except OSError:
            return False

    assert harness.wait_until(ready, 10)
    assert not os.path.exists(marker)
    srv = harness.start_server(procs, kind, str(pid), extra=["--attach"])
    with RawClient(srv.port) as c:
        c.handshake()
        assert c.request(b"vFile:setfs:0") == b"F0"
        assert c.request(b"vFile:open:%s,0,0" % hexpath(marker)) == b"F-1,2"
        assert c.request(b"vFile:setfs:%x" % pid) == b"F0"
        reply = c.request(b"vFile:open:%s,0,0" % hexpath(marker))
        assert re.fullmatch(rb"F[0-9a-f]+", reply), reply
        assert c.request(b"vFile:pread:%s,100,0" % reply[1:]) == b"F7;inside\n"
        assert c.request(b"vFile:close:%s" % reply[1:]) == b"F0"
        # an absolute symlink inside their tree resolves inside their tree
        link = "/mnt/hostio-link"
        assert c.request(b"vFile:readlink:%s" % hexpath(link)) == b"F12;/mnt/hostio-marker"
        reply = c.request(b"vFile:open:%s,0,0" % hexpath(link))
        assert re.fullmatch(rb"F[0-9a-f]+", reply), reply
        assert c.request(b"vFile:pread:%s,100,0" % reply[1:]) == b"F7;inside\n"
        assert c.request(b"vFile:close:%s" % reply[1:]) == b"F0"
        assert c.request(b"vFile:unlink:%s" % hexpath(link)) == b"F0"
        assert not os.path.lexists(f"/proc/{pid}/root{link}")
        assert c.request(b"vFile:setfs:0") == b"F0"
        assert c.request(b"vFile:readlink:%s" % hexpath(link)) == b"F-1,2"
        c.request(b"D;%x" % pid)
    srv.wait_exit()
    holder.kill()


@pytest.mark.parametrize("prog", ["busy", pytest.param("busy-32", marks=pytest.mark.i386)])
def test_attach_with_no_local_file(procs, kind, prog):
    """--attach PID and a gdb with no file: the path comes from qXfer:exec-file with the PID."""
    holder = procs.spawn([str(harness.program(prog))])
    assert harness.wait_until(lambda: os.path.exists(f"/proc/{holder.pid}/exe") and _spinning(holder.pid), 10)
    srv = harness.start_server(procs, kind, str(holder.pid), extra=["--attach"])
    result = harness.run_gdb(procs, srv.port, ["bt", "info sharedlibrary", "detach"])
    session = harness.Session(srv, result, srv.wait_exit())
    expect(
        session,
        rf"^Reading {ROOT}/build/{prog} from remote target\.\.\.$",
        r"^#0  (0x[0-9a-f]+ in )?spin \(\) at .*busy\.c:\d+$",
        r"^#1  0x[0-9a-f]+ in main \(\) at .*busy\.c:\d+$",
        r"Yes( \(\*\))? +target:/lib[^ ]*/libc\.so\.6$",
        r"^\[Inferior 1 \(process \d+\) detached\]$",
    )
    assert harness.pid_alive(holder.pid)
    holder.kill()


def _spinning(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/maps") as maps:
            return "libc" in maps.read()
    except OSError:
        return False


@pytest.mark.parametrize("prog", ["sample-pie", pytest.param("sample-32-pie", marks=pytest.mark.i386)])
def test_info_auxv_same_as_gdbserver(debug, reference, prog):
    """The raw vector in the inferior's own word size: gdb decodes it the same way through both."""
    script = ["info auxv", "break main", "continue", "info auxv"]
    ours = debug(prog, [], script, file=False)
    expect(
        ours,
        r"^3 +AT_PHDR +Program headers for program +0x[0-9a-f]+$",
        r"^9 +AT_ENTRY +Entry point of program +0x[0-9a-f]+$",
        r"^0 +AT_NULL +End of vector +0x0$",
        r"^Breakpoint 1, main \(\) at .*sample\.c:\d+$",
    )
    assert_same(ours, reference(prog, [], script, file=False))


def logged_session(fixture, prog: str, script: list[str], log: Path) -> tuple[Any, bytes]:
    """A session of gdb with no local file, and gdb's remote-protocol log of it."""
    before = [
        f"set logging file {log}",
        "set logging overwrite on",
        "set logging debugredirect on",
        "set logging enabled on",
        "set debug remote 1",
    ]
    session = fixture(prog, [], script, file=False, before=before)
    return session, log.read_bytes()


def test_library_list_takes_no_more_packets_than_gdbserver(debug, reference, tmp_path):
    """With libraries-svr4 gdb does not walk link_map itself: no more `m` reads than through gdbserver
    (without the packet it needs about twice as many)."""
    script = ["set breakpoint pending on", "break plugin_entry", "continue", "kill"]

    def run(fixture, name: str) -> tuple[int, int]:
        session, text = logged_session(fixture, "dlhost", script, tmp_path / name)
        expect(session, r"^Breakpoint 1, plugin_entry \(value=21\)")
        return len(re.findall(rb"Sending packet: \$m", text)), text.count(b"Sending packet: $qXfer:libraries-svr4:read")

    (our_m, our_svr4), (ref_m, ref_svr4) = run(debug, "ours.log"), run(reference, "ref.log")
    assert our_svr4 == ref_svr4 > 0
    assert our_m <= ref_m + 10, (our_m, ref_m)


def test_files_come_in_fewer_bytes_than_through_gdbserver(debug, reference, tmp_path):
    """gdb asks for a whole packet at every vFile:pread whatever it needs (its read-ahead): the
    stub sends 4 KiB at a new place and more only as reads go on, so gdb, which pays for every
    byte it receives, gets the executable, ld.so and libc in fewer bytes than from gdbserver,
    with few more reads, and debugs the same."""
    script = ["break distance2", "continue", "bt 1", "kill"]

    def run(fixture, name: str) -> tuple[int, int]:
        session, text = logged_session(fixture, "sample", script, tmp_path / name)
        expect(session, r"^Breakpoint 1, distance2 ", r"^#0  distance2 \(")
        reads = total = 0
        asked = False
        for line in text.splitlines():
            if b"Sending packet: $vFile:pread:" in line:
                asked, reads = True, reads + 1
            elif asked and b"Packet received: F" in line:
                total += int(re.search(rb"Packet received: F(-?[0-9a-f]+)", line).group(1), 16)
                asked = False
        return reads, total

    (our_reads, our_bytes), (ref_reads, ref_bytes) = run(debug, "ours.log"), run(reference, "ref.log")
    assert ref_reads > 0 and our_bytes <= ref_bytes, (our_bytes, ref_bytes)
    assert our_reads <= 2 * ref_reads, (our_reads, ref_reads)
