"""Host I/O (vFile) and the SVR4 library list, below the socket.

vFile handlers run on real files (tmp_path) through a Session whose target is
never touched by them; the library-list walk runs on a synthetic inferior
memory image built with the same construct layouts, for both word sizes.
"""

from __future__ import annotations

import errno
import os
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdbstub.protocol import framing, hostio, svr4
from gdbstub.protocol.registry import new_session
from gdbstub.protocol.session import PACKET_SIZE, Session
from gdbstub.target.linux import svr4 as lsvr4


class NoTarget:
    """vFile never asks the target anything."""

    def __init__(self) -> None:
        self.pid = 1
        self.threads: dict[int, Any] = {}
        self.processes: dict[int, Any] = {}


@pytest.fixture
def session() -> Session:
    s = new_session(NoTarget())  # type: ignore[arg-type]
    yield s
    s.close()


def hexpath(path: object) -> bytes:
    return str(path).encode().hex().encode()


def vfile(s: Session, request: bytes) -> bytes:
    reply = s.handle(b"vFile:" + request)
    assert reply is not None
    return reply


# --------------------------------------------------------------------------- constants and layouts


def test_fio_stat_layout_is_gdbs_big_endian_64_bytes(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1234)
    os.chmod(path, 0o640)
    raw = hostio.encode_stat(os.stat(path))
    assert len(raw) == hostio.FioStat.sizeof() == 64
    mode, nlink = struct.unpack_from(">II", raw, 8)
    assert mode == 0o100640 and nlink == 1
    assert struct.unpack_from(">Q", raw, 28)[0] == 1234  # st_size after seven 32-bit fields
    assert struct.unpack_from(">I", raw, 56)[0] == int(os.stat(path).st_mtime)


def test_fileio_modes():
    assert hostio.fileio_mode(0o040755) == 0o040755
    assert hostio.fileio_mode(0o020620) == 0o020620  # character device
    assert hostio.fileio_mode(0o120777) == 0o777  # a symlink: no type gdb knows
    assert hostio.fileio_mode(0o104755) == 0o100755  # set-uid is not in gdb's mode bits


@pytest.mark.parametrize(
    ("host", "fileio"),
    [(errno.ENOENT, 2), (errno.EACCES, 13), (errno.EISDIR, 21), (errno.ENAMETOOLONG, 91), (errno.ELOOP, 9999)],
)
def test_errno_mapping(host, fileio):
    assert hostio.fileio_errno(host) == fileio
    assert hostio.error_reply(host) == b"F-1,%x" % fileio


def test_open_flags():
    assert hostio.open_flags(0) == os.O_RDONLY
    assert hostio.open_flags(0x601) == os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    assert hostio.open_flags(0x80A) == os.O_RDWR | os.O_APPEND | os.O_EXCL
    with pytest.raises(hostio.HostIOError):
        hostio.open_flags(0x10)


@given(st.binary(max_size=300) | st.lists(st.sampled_from(b"a$#}*]"), max_size=300).map(bytes),
       st.integers(min_value=0, max_value=400))
def test_fit_is_the_longest_prefix_that_fits(data, room):
    def escaped_length(data: bytes) -> int:  # by definition: '$', '#', '}' and '*' take two bytes
        return sum(2 if byte in b"$#}*" else 1 for byte in data)

    count, escaped, end = hostio.fit(data, room)
    cut = data[:count]
    assert data.startswith(cut)
    assert escaped_length(cut) <= room
    assert hostio.escaped_length(cut) == escaped_length(cut)
    if len(cut) < len(data):
        assert escaped_length(data[: len(cut) + 1]) > room
    assert escaped[:end] == framing.escape(cut)


@settings(deadline=None)  # no timing here: a loaded machine must not fail it
@given(st.binary(max_size=1200) | st.lists(st.sampled_from(b"a$#}*]\x80"), max_size=1200).map(bytes),
       st.integers(min_value=0, max_value=1300), st.sampled_from([b"", b"b", None]))
def test_a_fitted_reply_is_framed_as_its_payload_would_be(data, room, head):
    """framing sends the body fitted_reply made (cut, its checksum less the cut-off end's)
    exactly as it would frame the payload from scratch."""
    reply = hostio.fitted_reply(head, data, room)
    count = hostio.fit(data, room)[0]
    assert reply == (b"F%x;" % count if head is None else head) + data[:count]
    assert framing.encode(reply) == framing.encode(bytes(bytearray(reply)))


# --------------------------------------------------------------------------- vFile requests


def test_open_pread_fstat_close(session, tmp_path):
    data = bytes(range(256)) * 200  # longer than one packet, full of bytes to escape
    path = tmp_path / "blob"
    path.write_bytes(data)
    reply = vfile(session, b"open:%s,0,0" % hexpath(path))
    assert reply.startswith(b"F") and b"," not in reply
    fd = reply[1:]
    got = bytearray()
    while True:
        reply = vfile(session, b"pread:%s,%x,%x" % (fd, 0x100000, len(got)))
        head, _, chunk = reply.partition(b";")
        assert int(head[1:], 16) == len(chunk)
        assert hostio.escaped_length(reply) <= PACKET_SIZE
        assert framing.encode(reply) == framing.encode(bytes(bytearray(reply)))  # the body it was framed with is right
        if not chunk:
            break
        got += chunk
    assert bytes(got) == data
    st_reply = vfile(session, b"fstat:%s" % fd)
    assert st_reply.startswith(b"F40;") and len(st_reply) == 68
    assert vfile(session, b"close:%s" % fd) == b"F0"
    assert vfile(session, b"close:%s" % fd) == b"F-1,16"


def test_pread_reads_ahead_little_at_a_new_place_and_more_as_reads_go_on(session, tmp_path):
    """gdb asks for a whole packet at every read: a read at a new place gets 4 KiB (the rest of
    the file when that is 32 KiB or less), each read that goes on where the last ended four
    times more, up to the packet; a seek starts over."""
    data = os.urandom(600_000)
    path = tmp_path / "blob"
    path.write_bytes(data)
    fd = vfile(session, b"open:%s,0,0" % hexpath(path))[1:]

    def pread(offset: int, count: int = PACKET_SIZE) -> int:
        head, _, chunk = vfile(session, b"pread:%s,%x,%x" % (fd, count, offset)).partition(b";")
        assert chunk == data[offset:offset + len(chunk)] and int(head[1:], 16) == len(chunk)
        return len(chunk)

    assert pread(0x40) == hostio.READ_AHEAD_FIRST
    sizes, offset = [], 0x40 + hostio.READ_AHEAD_FIRST
    while offset < len(data):
        sizes.append(pread(offset))
        offset += sizes[-1]
    assert sizes[:2] == [hostio.READ_AHEAD_FIRST * 4, hostio.READ_AHEAD_FIRST * 16]
    assert max(sizes) > PACKET_SIZE // 2  # up to a packet (less what escapes take)
    assert pread(0x1000) == hostio.READ_AHEAD_FIRST  # a seek back
    assert pread(0x8000, 0x10) == 0x10  # never more than asked
    assert pread(0x8010) == hostio.READ_AHEAD_FIRST * 4
    assert pread(len(data) - 0x6000) == 0x6000  # a new place near the end: the rest, whole
    assert pread(len(data) - hostio.READ_AHEAD_REST - 1) == hostio.READ_AHEAD_FIRST
    assert vfile(session, b"close:%s" % fd) == b"F0"
    fd = vfile(session, b"open:%s,0,0" % hexpath(path))[1:]  # the same number, a new file
    assert pread(0x3010) == hostio.READ_AHEAD_FIRST


def test_errors(session, tmp_path):
    assert vfile(session, b"open:%s,0,0" % hexpath(tmp_path / "none")) == b"F-1,2"
    assert vfile(session, b"open:%s,1,0" % hexpath(tmp_path)) == b"F-1,15"
    assert vfile(session, b"open:%s,0,0" % hexpath("/" + "x" * 5000)) == b"F-1,16"  # over PATH_MAX, as gdbserver
    assert vfile(session, b"open:%s,0,0" % hexpath("/" + "x" * 4000)) == b"F-1,5b"  # ENAMETOOLONG from open
    assert vfile(session, b"open:%s,10,0" % hexpath(tmp_path)) == b"F-1,16"  # unknown flag bit
    assert vfile(session, b"open:,0,0") == b"F-1,2"
    assert vfile(session, b"open:00,0,0") == b"F-1,2"  # cut at the NUL: an empty path
    assert vfile(session, b"open:%s00%s,0,0" % (hexpath(tmp_path / "none"), hexpath("/x"))) == b"F-1,2"
    assert vfile(session, b"open:zz,0,0") == b"F-1,16"
    assert vfile(session, b"open:2f") == b"F-1,16"
    assert vfile(session, b"pread:0,10,0") == b"F-1,16"  # stdin is not the client's to read
    assert vfile(session, b"pread:-1,10,0") == b"F-1,16"
    assert vfile(session, b"pwrite:2,0,x") == b"F-1,16"
    assert vfile(session, b"close:") == b"F-1,16"
    assert vfile(session, b"setfs:-5") == b"F-1,16"
    assert vfile(session, b"frobnicate:1") == b""
    assert vfile(session, b"open") == b""


def test_offsets_beyond_off_t_are_einval(session, tmp_path):
    """pread/pwrite take a signed off_t: 2^63 and above cannot reach the system call."""
    (tmp_path / "f").write_bytes(b"data")
    fd = vfile(session, b"open:%s,2,0" % hexpath(tmp_path / "f"))[1:]
    assert vfile(session, b"pread:%s,10,8000000000000000" % fd) == b"F-1,16"
    assert vfile(session, b"pread:%s,10,ffffffffffffff00" % fd) == b"F-1,16"
    assert vfile(session, b"pwrite:%s,ffffffffffffff00,x" % fd) == b"F-1,16"
    assert vfile(session, b"pread:%s,10,0" % fd) == b"F4;data"


def test_pread_of_a_directory_is_eisdir(session, tmp_path):
    fd = vfile(session, b"open:%s,0,0" % hexpath(tmp_path))[1:]
    assert vfile(session, b"pread:%s,10,0" % fd) == b"F-1,15"


def test_unlink_readlink_stat(session, tmp_path):
    (tmp_path / "t").write_text("x")
    (tmp_path / "l").symlink_to("t")
    assert vfile(session, b"readlink:%s" % hexpath(tmp_path / "l")) == b"F1;t"
    # pwndbg's form: upper-case hex and the C string's NUL, cut there as gdbserver does
    assert vfile(session, b"readlink:%s00" % hexpath(tmp_path / "l").upper()) == b"F1;t"
    assert vfile(session, b"readlink:%s" % hexpath(tmp_path / "t")) == b"F-1,16"
    assert vfile(session, b"stat:%s" % hexpath(tmp_path / "l"))[:4] == b"F40;"
    assert vfile(session, b"unlink:%s" % hexpath(tmp_path / "l")) == b"F0"
    assert not (tmp_path / "l").exists()
    assert vfile(session, b"unlink:%s" % hexpath(tmp_path / "l")) == b"F-1,2"


def test_pwrite_binary(session, tmp_path):
    path = tmp_path / "w"
    fd = vfile(session, b"open:%s,602,1a4" % hexpath(path))[1:]
    assert vfile(session, b"pwrite:%s,0,%s" % (fd, b"a,b;c}$")) == b"F7"
    assert vfile(session, b"pread:%s,100,0" % fd) == b"F7;a,b;c}$"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644 & ~umask


def test_session_close_closes_every_descriptor(tmp_path):
    s = new_session(NoTarget())  # type: ignore[arg-type]
    (tmp_path / "f").write_text("x")
    fds = [int(vfile(s, b"open:%s,0,0" % hexpath(tmp_path / "f"))[1:], 16) for _ in range(3)]
    for fd in fds:
        os.fstat(fd)
    s.close()
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)
    s.close()  # idempotent


def test_forbidden_path_is_eacces(tmp_path):
    """The stub opens files with its own rights only: run the handler as an unprivileged user."""
    secret = tmp_path / "secret"
    secret.write_text("no")
    os.chmod(secret, 0o600)
    os.chmod(tmp_path, 0o755)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop to nobody, then ask
        try:
            os.close(r)
            if os.getuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            s = new_session(NoTarget())  # type: ignore[arg-type]
            reply = s.handle(b"vFile:open:%s,0,0" % hexpath(secret)) or b""
            os.write(w, reply)
        finally:
            os._exit(0)
    os.close(w)
    reply = os.read(r, 100)
    os.close(r)
    os.waitpid(pid, 0)
    if os.getuid() != 0 and os.access(secret, os.R_OK):
        pytest.skip("cannot make a file unreadable for ourselves")
    assert reply == b"F-1,d"


def test_setfs_to_our_own_namespace_is_plain(session, tmp_path):
    (tmp_path / "f").write_text("same")
    assert vfile(session, b"setfs:%x" % os.getpid()) == b"F0"
    fd = vfile(session, b"open:%s,0,0" % hexpath(tmp_path / "f"))[1:]
    assert vfile(session, b"pread:%s,10,0" % fd) == b"F4;same"
    assert vfile(session, b"setfs:7fffffff") == b"F0"  # no such process: later opens fail
    assert vfile(session, b"open:%s,0,0" % hexpath(tmp_path / "f")) == b"F-1,2"


# --------------------------------------------------------------------------- the SVR4 walk


class Image:
    """A sparse inferior address space for the walk to read."""

    def __init__(self, word: int) -> None:
        self.word = word
        self.layouts = lsvr4.LAYOUTS[word]
        self.chunks: dict[int, bytes] = {}

    def put(self, addr: int, data: bytes) -> None:
        self.chunks[addr] = data

    def read(self, addr: int, length: int) -> bytes:
        for start, data in self.chunks.items():
            if start <= addr < start + len(data):
                return data[addr - start : addr - start + length]
        raise OSError(errno.EIO, "unmapped")

    def link_map(self, at: int, l_addr: int, name: int, l_ld: int, nxt: int, prev: int) -> None:
        fields = {"l_addr": l_addr, "l_name": name, "l_ld": l_ld, "l_next": nxt, "l_prev": prev}
        self.put(at, self.layouts.link_map.build(fields))

    def r_debug(self, at: int, version: int, r_map: int, r_next: int = 0) -> None:
        fields = {"r_version": version, "r_map": r_map, "r_brk": 0, "r_state": 0, "r_ldbase": 0, "r_next": r_next}
        self.put(at, self.layouts.r_debug.build(fields))


def _two_namespaces(word: int) -> Image:
    img = Image(word)
    img.put(0x9000, b"\0")
    img.put(0x9100, b"/lib/libc.so.6\0")
    img.put(0x9200, b'/odd/"name"&<.so\0')
    img.put(0x9300, b"/lib/ld.so\0")
    img.r_debug(0x1000, 2, 0x2000, r_next=0x1800)
    img.link_map(0x2000, 0, 0x9000, 0x3000, 0x2100, 0)  # the main program (empty name)
    img.link_map(0x2100, 0x7000, 0x9100, 0x7100, 0x2200, 0x2000)
    img.link_map(0x2200, 0x8000, 0x9200, 0x8100, 0, 0x2100)
    img.r_debug(0x1800, 2, 0x2400)  # a dlmopen namespace
    img.link_map(0x2400, 0x6000, 0x9300, 0x6100, 0, 0)
    return img


@pytest.mark.parametrize("word", [4, 8])
def test_library_list_walks_every_namespace(word):
    img = _two_namespaces(word)
    listing = lsvr4.library_list(img.read, word, 0x1000)
    assert listing.main_lm == 0x2000
    assert [(o.name, o.lm, o.l_addr, o.l_ld, o.lmid) for o in listing.objects] == [
        (b"/lib/libc.so.6", 0x2100, 0x7000, 0x7100, 0x1000),
        (b'/odd/"name"&<.so', 0x2200, 0x8000, 0x8100, 0x1000),
        (b"/lib/ld.so", 0x2400, 0x6000, 0x6100, 0x1800),
    ]
    doc = svr4.document(listing).decode()
    assert doc.startswith('<library-list-svr4 version="1.0" main-lm="0x2000"><library name="/lib/libc.so.6" ')
    assert 'name="/odd/&quot;name&quot;&amp;&lt;.so" lm="0x2200" l_addr="0x8000" l_ld="0x8100" lmid="0x1000"/>' in doc
    assert doc.endswith('lmid="0x1800"/></library-list-svr4>')


@pytest.mark.parametrize("word", [4, 8])
def test_walk_from_start_and_corruption(word):
    img = _two_namespaces(word)
    objs = list(lsvr4.walk_link_maps(img.read, word, 0x2200, 0x2100, 0x1000))
    assert [o.lm for o in objs] == [0x2200]
    assert list(lsvr4.walk_link_maps(img.read, word, 0x2200, 0x1234, 0)) == []  # l_prev mismatch
    img.link_map(0x2200, 0x8000, 0x9200, 0x8100, 0x2100, 0x2100)  # a cycle back to libc
    objs = list(lsvr4.walk_link_maps(img.read, word, 0x2100, 0x2000, 0))
    assert [o.lm for o in objs] == [0x2100, 0x2200]
    assert list(lsvr4.walk_link_maps(img.read, word, 0xDEAD000, 0, 0)) == []  # unreadable


@pytest.mark.parametrize("word", [4, 8])
def test_version_one_r_debug_has_no_next(word):
    img = _two_namespaces(word)
    img.r_debug(0x1000, 1, 0x2000, r_next=0x1800)
    assert [o.lm for o in lsvr4.library_list(img.read, word, 0x1000).objects] == [0x2100, 0x2200]
    img.r_debug(0x1000, 0, 0x2000)
    assert lsvr4.library_list(img.read, word, 0x1000).objects == ()


def test_empty_document_and_annex():
    assert svr4.document(None) == b'<library-list-svr4 version="1.0"></library-list-svr4>'
    assert svr4.parse_annex("") == svr4.Annex()
    assert svr4.parse_annex("lmid=7f10;start=abc;prev=0;other=zz") == svr4.Annex(0x7F10, 0xABC, 0)
    with pytest.raises(ValueError):
        svr4.parse_annex("start=xyz")


@pytest.mark.parametrize("word", [4, 8])
def test_auxv_dynamic_and_dt_debug(word):
    fmt = "<II" if word == 4 else "<QQ"
    raw = b"".join(struct.pack(fmt, t, v) for t, v in [(3, 0x56555040), (9, 0x56556000), (0, 0)])
    auxv = lsvr4.parse_auxv(raw + b"\xff" * word, word)
    phdr = auxv[lsvr4.AT_PHDR]
    info = lsvr4.ElfInfo(word, 0x1000, 0x40, 0x3000, 4 * word * 2)
    assert lsvr4.dynamic_address(info, auxv) == phdr - 0x40 + 0x3000
    no_phdr = lsvr4.ElfInfo(word, 0x1000, None, 0x3000, 0)
    assert lsvr4.dynamic_address(no_phdr, auxv) == auxv[lsvr4.AT_ENTRY] - 0x1000 + 0x3000
    with pytest.raises(lsvr4.NoDynamicSection):
        lsvr4.dynamic_address(lsvr4.ElfInfo(word, 0, None, None, 0), auxv)
    img = Image(word)
    dyn = lsvr4.LAYOUTS[word].dyn
    entries = [(1, 5), (lsvr4.DT_DEBUG, 0xABCD00), (0, 0), (lsvr4.DT_DEBUG, 0xBAD)]
    img.put(0x3000, b"".join(dyn.build({"d_tag": t, "d_val": v}) for t, v in entries))
    assert lsvr4.r_debug_address(img.read, 0x3000, 4 * dyn.sizeof(), word) == 0xABCD00
    img.put(0x3000, b"".join(dyn.build({"d_tag": t, "d_val": v}) for t, v in [(1, 5), (0, 0)]))
    assert lsvr4.r_debug_address(img.read, 0x3000, 2 * dyn.sizeof(), word) == 0


READ_ONLY_OPS = [b"setfs", b"open", b"pread", b"close", b"fstat", b"readlink", b"stat", b"bogus", b""]


@given(st.sampled_from(READ_ONLY_OPS), st.binary(max_size=40))
def test_any_arguments_get_an_f_reply_or_empty(op, params):
    """Garbage never raises out of the handler (only read-only operations: nothing is created)."""
    if op == b"open":
        head, _, _ = params.partition(b",")
        params = head + b",0,0"  # flags 0: open for reading only
    s = new_session(NoTarget())  # type: ignore[arg-type]
    try:
        reply = s.handle(b"vFile:" + op + b":" + params)
    finally:
        s.close()
    assert reply is not None
    assert reply == b"" or reply.startswith(b"F")
