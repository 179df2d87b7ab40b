"""qSearch:memory, qXfer:osdata and the TLS layout facts, without a live process."""

from __future__ import annotations

import os
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
