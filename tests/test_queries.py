"""qSearch:memory, qXfer:osdata and the TLS layout facts, without a live process."""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from gdbstub.protocol import osdata, search, tls


class Memory:
    """Readable bytes at BASE; reads past the end come back short, reads before it fail."""

    def __init__(self, base: int, data: bytes) -> None:
        self.base, self.data = base, data

    def read_memory(self, pid: int, addr: int, length: int) -> bytes:
        if addr < self.base:
            raise OSError(5, "unmapped")
        start = addr - self.base
        return self.data[start : start + length]


class FakeSession:
    def __init__(self, memory: Memory) -> None:
        self.target = memory

    def current_pid(self) -> int:
        return 1


def _search(memory: Memory, addr: int, length: int, pattern: bytes) -> bytes:
    args = b":memory:%x;%x;" % (addr, length) + pattern
    return search.search_memory(FakeSession(memory), args)  # type: ignore[arg-type]


def test_search_finds_across_chunks() -> None:
    data = bytearray(b"x" * 200000)
    at = search.CHUNK + 2  # half in the first read (CHUNK + 5 bytes), whole only in the second
    data[at : at + 6] = b"needle"
    memory = Memory(0x1000, bytes(data))
    assert _search(memory, 0x1000, len(data), b"needle") == b"1,%x" % (0x1000 + at)
    assert _search(memory, 0x1000, len(data), b"absent") == b"0"
    # a range that ends before the pattern is complete does not match it
    assert _search(memory, 0x1000, at + 5, b"needle") == b"0"


def test_search_pattern_with_separators_and_errors() -> None:
    memory = Memory(0x1000, b"ab;c:d" + b"z" * 10)
    assert _search(memory, 0x1000, 16, b";c:") == b"1,1002"
    assert _search(memory, 0x1000, 1000, b"nothere") == b"0"  # runs off the end: short read
    assert _search(memory, 0x10, 0x10, b"ab") == b"E00"  # unreadable start: gdbserver's E00
    assert search.search_memory(FakeSession(memory), b":memory:zz;1;a") == b"E01"  # type: ignore[arg-type]
    assert search.search_memory(FakeSession(memory), b":memory:1000;10;") == b"E01"  # type: ignore[arg-type]
    assert search.search_memory(FakeSession(memory), b":other:1;1;a") == b""  # type: ignore[arg-type]


def _xcrc32(data: bytes, crc: int = 0xFFFFFFFF) -> int:
    """libiberty's xcrc32, byte by byte: polynomial 0x04c11db7, most significant bit first."""
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def test_crc_is_gdbs() -> None:
    data = bytes(range(256)) * 3
    assert search.crc32(b"") == 0xFFFFFFFF
    assert search.crc32(data) == _xcrc32(data)
    assert search.crc32(data[100:], search.crc32(data[:100])) == _xcrc32(data)  # carried across reads


def test_memory_crc_reads_in_chunks_and_fails_like_gdbserver() -> None:
    data = bytes(range(256)) * (search.CHUNK // 128)  # two reads
    session = FakeSession(Memory(0x1000, data))
    assert search.memory_crc(session, b":1000,%x" % len(data)) == b"C%x" % _xcrc32(data)  # type: ignore[arg-type]
    assert search.memory_crc(session, b":1000,0") == b"Cffffffff"  # type: ignore[arg-type]
    for bad in (b":1000,%x" % (len(data) + 1), b":10,4", b":1000", b":zz,4", b":1000,zz"):
        assert search.memory_crc(session, bad) == b"E01", bad  # type: ignore[arg-type]


def test_osdata_documents() -> None:
    types = osdata._osdata(None, "")  # type: ignore[arg-type]
    assert b'<osdata type="types">' in types and b">processes<" in types and b">threads<" in types
    mine = str(os.getpid()).encode()
    processes = osdata._osdata(None, "processes")  # type: ignore[arg-type]
    assert b'<column name="pid">' + mine + b"</column>" in processes
    threads = osdata._osdata(None, "threads")  # type: ignore[arg-type]
    assert b'<column name="tid">' + mine + b"</column>" in threads
    assert osdata._osdata(None, "bogus") == b""  # type: ignore[arg-type]  # gdbserver's empty object


def test_osdata_escapes_values() -> None:
    doc = osdata.document("t", [[("command", "a<b>&\"c\"")]])
    assert b"a&lt;b&gt;&amp;\"c\"" in doc


def test_osdata_types_in_gdbservers_order() -> None:
    types = osdata._osdata(None, "")  # type: ignore[arg-type]
    names = [n.decode() for n in re.findall(rb'<column name="Type">([^<]*)<', types)]
    assert names == ["cpus", "files", "modules", "msg", "processes", "procgroups", "semaphores", "shm",
                     "sockets", "threads"]
    assert b'<column name="Title">Shared-memory regions</column>' in types
    assert b'<osdata type="I sockets">' in osdata._osdata(None, "sockets")  # type: ignore[arg-type]


def test_osdata_files_lists_a_descriptor_this_process_holds(tmp_path: Any) -> None:
    path = tmp_path / "held"
    with open(path, "w") as f:
        row = [("pid", str(os.getpid())), ("command", osdata._comm(os.getpid())),
               ("file descriptor", str(f.fileno())), ("name", str(path))]
        assert row in osdata.files()


def test_osdata_procgroups_leaders_first() -> None:
    rows = [dict(r) for r in osdata.procgroups()]
    mine = os.getpid()
    assert {"pgid": str(os.getpgid(0)), "leader command": osdata._comm(os.getpgid(0)), "pid": str(mine),
            "command line": osdata._command(mine)} in rows
    keys = [(int(r["pgid"]), r["pid"] != r["pgid"], int(r["pid"])) for r in rows]
    assert keys == sorted(keys) and all(pgid > 0 for pgid, _, _ in keys)


def test_osdata_short_command_as_gdbserver_scans_it(tmp_path: Any, monkeypatch: Any) -> None:
    """The first word of the name, at most 17 characters with the parentheses."""
    assert osdata._comm(2**22 + 12345) == str(2**22 + 12345)  # no such process: the pid
    stats = {1: "1 (tmux: server) S 0", 2: "2 (kworker/u8:0-events_unbound) I 2", 3: "3 (a) R 1"}
    real_open = open
    monkeypatch.setattr("builtins.open", lambda p, *a: io.BytesIO(stats[int(p.split("/")[2])].encode())
                        if p.startswith("/proc/") else real_open(p, *a))
    assert [osdata._comm(pid) for pid in (1, 2, 3)] == ["tmux", "kworker/u8:0-ev", "a"]


def test_osdata_modules_rows() -> None:
    text = ("nf_nat 61440 2 xt_MASQUERADE,nft_chain_nat, Live 0xffffffffc0a1b000\n"
            "mine 16384 0 - Loading 0x0000000000000000 (OE)\nbroken line\n")
    assert osdata.module_rows(text) == [
        [("name", "nf_nat"), ("size", "61440"), ("num uses", "2"), ("dependencies", "xt_MASQUERADE,nft_chain_nat,"),
         ("status", "Live"), ("address", "ffffffffc0a1b000")],
        [("name", "mine"), ("size", "16384"), ("num uses", "0"), ("dependencies", "-"), ("status", "Loading"),
         ("address", "0")]]


@pytest.mark.parametrize("words", [
    "00000000000000000000000001000000", "00000000000000000000000000000000", "0000000000000000FFFF00000100007F",
    "00000000000000000000000001020304", "B80D0120000000000000000001000000", "000080FE00000000FFFFFFFFFFFFFFFF",
    "B80D0120010000000000000001000000", "B80D0120000000000100000000000000", "01000100010001000100010001000100",
    "0000000000000000FFFF000000000000", "00000000000000000000000000010000", "0000000001000000000000000000FFFF"])
def test_osdata_ipv6_addresses_as_inet_ntop(words: str) -> None:
    """The same text as glibc's inet_ntop (through Python's socket module, which uses it)."""
    import socket

    raw = b"".join(int(words[i : i + 8], 16).to_bytes(4, "little") for i in range(0, 32, 8))
    assert osdata._address(words, ipv6=True) == socket.inet_ntop(socket.AF_INET6, raw)
    assert osdata._address("0100007F", ipv6=False) == "127.0.0.1"


def test_osdata_socket_rows() -> None:
    text = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
            "   0: 0100007F:A971 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6471301 1\n"
            "   1: 0100007F:A98F 0100007F:0050 01 00000000:00000000 00:00000000 00000000  4242424        0 7 1\n"
            "   2: 0100007F:A98F 0100007F:0050 1F 00000000:00000000 00:00000000 00000000     0        0 7 1\n")
    rows = osdata.socket_rows(text, ipv6=False, tcp=True)
    assert rows[0] == [("local address", "127.0.0.1"), ("local port", "43377"), ("remote address", "0.0.0.0"),
                       ("remote port", "0"), ("state", "LISTEN"), ("user", "root"), ("family", "INET"),
                       ("protocol", "STREAM")]
    assert rows[1][3:6] == [("remote port", "80"), ("state", "ESTABLISHED"), ("user", "")]  # no such user
    assert rows[2][4] == ("state", "(unknown)") and len(rows) == 3
    udp6 = ("  sl  local_address                         remote_address                        st\n"
            "  9: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 07 "
            "00000000:00000000 00:00000000 00000000     0        0 1 2\n")
    assert osdata.socket_rows(udp6, ipv6=True, tcp=False) == [[
        ("local address", "::1"), ("local port", "53"), ("remote address", "::"), ("remote port", "0"),
        ("state", "CLOSE"), ("user", "root"), ("family", "INET6"), ("protocol", "DGRAM")]]


def test_osdata_sysvipc_rows() -> None:
    shm = ("       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime"
           "      dtime      ctime                   rss                  swap\n"
           " 305419896         7  1600           4294971392 4194305     0      0     0     0     0     0          0"
           "          0 1700000000                     0                     0\n")
    row = dict(osdata.sysvipc_rows("shm", shm)[0])
    assert list(row) == ["key", "shmid", "permissions", "size", "creator command", "last op. command",
                         "num attached", "user", "group", "creator user", "creator group", "last shmat() time",
                         "last shmdt() time", "last shmctl() time"]
    assert (row["key"], row["shmid"], row["permissions"], row["size"]) == ("305419896", "7", "1600", "4096")
    assert (row["creator command"], row["last op. command"]) == ("4194305", "0")  # gone: the pid
    assert (row["user"], row["group"], row["last shmat() time"]) == ("root", "root", "")
    assert row["last shmctl() time"] == time.ctime(1700000000) + "\n"  # ctime's newline, as gdbserver
    msg = ("       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid\n"
           "        -1          3   644          5           1 1 0 0 0 0 0 0 0 1700000000\n")
    assert [c for c, _ in osdata.sysvipc_rows("msg", msg)[0]][3:7] == [
        "num used bytes", "num messages", "last msgsnd() command", "last msgrcv() command"]
    assert osdata.sysvipc_rows("msg", msg)[0][0] == ("key", "-1")
    sem = "key semid perms nsems\n 0 2 600 3 0 0 0 0 0 1700000000\n 0 2 600\n"
    assert len(osdata.sysvipc_rows("sem", sem)) == 1


def test_tls_layout_from_this_libc() -> None:
    path = tls.libc_path(os.getpid())
    assert path is not None
    layout = tls.layout_from_libc(path)
    assert layout is not None
    word_bits = 64 if os.uname().machine == "x86_64" else 32
    assert layout.pthread_dtvp.bits == word_bits
    assert layout.dtv_slot.bits == 2 * word_bits  # dtv_t: a pointer and to_free
    assert layout.l_tls_modid.bits == word_bits and layout.l_tls_modid.offset > 0


def test_tls_layout_of_a_file_without_descriptors(tmp_path: Any) -> None:
    assert tls.layout_from_libc("/bin/true") is None
    junk = tmp_path / "junk"
    junk.write_bytes(b"not an elf")
    assert tls.layout_from_libc(str(junk)) is None
    assert tls.layout_from_libc(str(tmp_path / "missing")) is None
    # A real header whose section table points past the end of the file: refused, not a crash.
    cut = tmp_path / "cut"
    cut.write_bytes(Path("/bin/true").read_bytes()[:4096])
    assert tls.layout_from_libc(str(cut)) is None


def test_finds_libthread_db_along_a_search_path(tmp_path: Any) -> None:
    """gdbserver's search: $pdir is ignored, $sdir is the system's, a directory must hold the file."""
    assert not tls.finds_libthread_db("/nonexistent")
    assert not tls.finds_libthread_db("$pdir")
    assert not tls.finds_libthread_db(f"{tmp_path}:")
    (tmp_path / tls.LIBTHREAD_DB).write_bytes(b"")
    assert tls.finds_libthread_db(f"/nonexistent:$pdir:{tmp_path}")
    system = any(os.path.isfile(f"{d}/{tls.LIBTHREAD_DB}") for d in tls.SYSTEM_DIRS)
    assert tls.finds_libthread_db(tls.DEFAULT_SEARCH_PATH) == system


def test_tls_layout_of_a_static_executable(tmp_path: Any) -> None:
    """A -static -pthread program carries the descriptors in .symtab (no .dynsym)."""
    static = Path(__file__).resolve().parent.parent / "build" / "tlsfind-static"
    if not static.exists():
        pytest.skip("make programs builds build/tlsfind-static")
    layout = tls.layout_from_libc(str(static))
    assert layout is not None and layout.pthread_dtvp.bits == 64 and layout.dtv_slot.bits == 128


def test_monitor_libthread_db_search_path() -> None:
    """Set, then reset to gdbserver's default with no argument; qGetTLSAddr then depends on it."""
    from gdbstub.protocol import monitor
    from gdbstub.protocol.registry import new_session
    from gdbstub.target.linux.process import LinuxTarget

    s = new_session(LinuxTarget())
    sent: list[bytes] = []
    s.notify = sent.append
    assert monitor.run_command(s, "set libthread-db-search-path /x:/y")
    assert tls.thread_db(s.target).search_path == "/x:/y"
    assert monitor.run_command(s, "set libthread-db-search-path")
    assert tls.thread_db(s.target).search_path == tls.DEFAULT_SEARCH_PATH
    assert bytes.fromhex(sent[-1][1:].decode()) == b"libthread-db-search-path set to `$sdir:$pdir'\n"
    assert not monitor.run_command(s, "set libthread-db-search-pathX /x")
    assert s.handle(b"qSymbol::") == b"OK"  # no process: nothing to load, still OK
    assert s.handle(b"qGetTLSAddr:1,0,0") == b"E01"
