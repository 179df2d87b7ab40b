"""Host I/O (``vFile:``): gdb opens and reads files on the stub's side.

This is how a gdb with no local copy of the program gets the executable, ld.so,
the libraries and their separate debug info (its sysroot is ``target:`` by
default), and how ``remote get/put/delete`` and ``info proc mappings`` work.

Replies are ``F result[,errno][;binary attachment]`` with gdb's own File-I/O
errno numbering (hex) and its big-endian ``struct stat``; the framer escapes the
binary attachment. Paths are the client's: the stub opens them as its own user,
never with more rights, and only descriptors this session opened can be used.
They are all closed when the session ends.

``vFile:setfs:PID`` makes later paths resolve in that process's mount namespace
(and root) when it differs from ours, as gdbserver's setns dance does; here it
is ``openat2(/proc/PID/root, path, RESOLVE_IN_ROOT)``, so even absolute symlinks
inside the path stay inside the process's view and no helper process is needed.
"""

from __future__ import annotations

import binascii
import errno
import os
import stat

from .. import ffi as ctypes  # ctypes names without the ctypes package
from ..binary import Record
from ..hints import TYPE_CHECKING, Callable
from .framing import escape, ready_reply
from .session import BULK_READ, PACKET_SIZE, Handler

if TYPE_CHECKING:
    from .session import Session

# gdb's File-I/O errno values (GDB manual, "Errno Values"); anything else is EUNKNOWN.
FILEIO_EUNKNOWN = 9999
FILEIO_ERRNO: dict[int, int] = {
    errno.EPERM: 1,
    errno.ENOENT: 2,
    errno.EINTR: 4,
    errno.EBADF: 9,
    errno.EACCES: 13,
    errno.EFAULT: 14,
    errno.EBUSY: 16,
    errno.EEXIST: 17,
    errno.ENODEV: 19,
    errno.ENOTDIR: 20,
    errno.EISDIR: 21,
    errno.EINVAL: 22,
    errno.ENFILE: 23,
    errno.EMFILE: 24,
    errno.EFBIG: 27,
    errno.ENOSPC: 28,
    errno.ESPIPE: 29,
    errno.EROFS: 30,
    errno.ENAMETOOLONG: 91,
}

# gdb's open flags ("Open Flags") -> the host's.
FILEIO_O_FLAGS: dict[int, int] = {
    0x1: os.O_WRONLY,
    0x2: os.O_RDWR,
    0x8: os.O_APPEND,
    0x200: os.O_CREAT,
    0x400: os.O_TRUNC,
    0x800: os.O_EXCL,
}
FILEIO_S_IFREG = 0o100000
FILEIO_S_IFDIR = 0o40000
FILEIO_S_IFCHR = 0o20000
FILEIO_PERMS = 0o777

# gdb's struct stat ("struct stat" in the File-I/O appendix): big-endian, 64 bytes.
FioStat = Record(
    ">",
    ("st_dev", "I"),
    ("st_ino", "I"),
    ("st_mode", "I"),
    ("st_nlink", "I"),
    ("st_uid", "I"),
    ("st_gid", "I"),
    ("st_rdev", "I"),
    ("st_size", "Q"),
    ("st_blksize", "Q"),
    ("st_blocks", "Q"),
    ("st_atime", "I"),
    ("st_mtime", "I"),
    ("st_ctime", "I"),
)

# openat2(2)'s struct open_how (flags, mode, resolve), native little-endian u64s.
OpenHow = Record("<", ("flags", "Q"), ("mode", "Q"), ("resolve", "Q"))
SYS_OPENAT2 = 437  # x86_64
RESOLVE_IN_ROOT = 0x10

OFF_T_END = 1 << 63  # pread/pwrite offsets are a signed off_t: beyond, EINVAL as gdbserver's
HOSTIO_PATH_MAX = 4096  # gdbserver's path buffer, NUL included
# vFile:pread's read-ahead (op_pread): the first read at a new place, and the growth of each
# read that continues where the last one ended.
READ_AHEAD_FIRST = 4096
READ_AHEAD_GROWTH = 4
READ_AHEAD_REST = 0x8000  # a read at a new place this near the end takes the rest of the file
_HEADER_ROOM = 32  # "F<count>;" and framing around a data reply


class HostIOError(Exception):
    """A failed request: its reply carries the File-I/O errno of ``code``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def fileio_errno(host_errno: int | None) -> int:
    return FILEIO_ERRNO.get(host_errno or 0, FILEIO_EUNKNOWN)


def error_reply(host_errno: int | None) -> bytes:
    return b"F-1,%x" % fileio_errno(host_errno)


def open_flags(fileio_flags: int) -> int:
    """gdb's open flags -> os.open flags; unknown bits are EINVAL, as in gdbserver."""
    known = 0
    flags = 0
    for bit, host in FILEIO_O_FLAGS.items():
        if fileio_flags & bit:
            flags |= host
            known |= bit
    if fileio_flags & ~known:
        raise HostIOError(errno.EINVAL)
    return flags


def fileio_mode(mode: int) -> int:
    out = mode & FILEIO_PERMS
    if stat.S_ISREG(mode):
        out |= FILEIO_S_IFREG
    elif stat.S_ISDIR(mode):
        out |= FILEIO_S_IFDIR
    elif stat.S_ISCHR(mode):
        out |= FILEIO_S_IFCHR
    return out


def encode_stat(st: os.stat_result) -> bytes:
    """A host stat result in gdb's layout (values wider than a field are truncated, like gdbserver)."""
    u32 = 0xFFFFFFFF
    u64 = (1 << 64) - 1
    return bytes(
        FioStat.build(
            {
                "st_dev": st.st_dev & u32,
                "st_ino": st.st_ino & u32,
                "st_mode": fileio_mode(st.st_mode),
                "st_nlink": st.st_nlink & u32,
                "st_uid": st.st_uid & u32,
                "st_gid": st.st_gid & u32,
                "st_rdev": st.st_rdev & u32,
                "st_size": st.st_size & u64,
                "st_blksize": st.st_blksize & u64,
                "st_blocks": st.st_blocks & u64,
                "st_atime": int(st.st_atime) & u32,
                "st_mtime": int(st.st_mtime) & u32,
                "st_ctime": int(st.st_ctime) & u32,
            }
        )
    )


def escaped_length(data: bytes) -> int:
    """The length of DATA once escaped. escape's replaces run on memchr; counting the four
    bytes with bytes.count takes four times as many instructions on real data (libc's text)."""
    return len(escape(data))


def fit(data: bytes, room: int) -> tuple[int, bytes, int]:
    """How many bytes of ``data`` (a prefix) fit in ``room`` bytes once escaped, the escaped
    form of a little more, and where in it to cut (its first END bytes are those COUNT's).

    gdb checks that the count in ``F<count>;`` is the number of bytes it
    unescapes, so the data is cut before the reply, never after escaping.
    Every '}' of the escaped form starts an escape (the byte after it is never '}': that
    one is sent as ']'), so the bytes whose escapes fit whole in the first ``room``
    bytes number ``room`` less the '}'s there, whether or not the last escape is cut.
    Those are all the escapes less the ones past ``room``: only the short tail is counted."""
    head = data[:room]
    escaped = escape(head)
    if len(escaped) <= room:
        return len(head), escaped, len(escaped)
    if room <= 0:
        return 0, b"", 0
    escapes_in_room = len(escaped) - len(head) - escaped.count(b"}", room)
    end = room - 1 if escaped[room - 1] == 0x7D else room  # an escape cut in two is left out
    return room - escapes_in_room, escaped, end


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (malloc.h)
BIG_REPLY = 16384  # data from which a reply's buffers go past glibc's default trim threshold together


class _Heap:
    """Whether keep_heap has run (once per process)."""

    kept = False


def keep_heap() -> None:
    """Have malloc keep the memory of freed big buffers instead of giving it back at once.

    A 64-128 KiB reply takes several buffers that size (the data read, its escaped form, the
    payload, the framed packet). glibc's defaults trim the heap's top when they are freed
    and grow it again for the next reply, so every reply paid brk calls and page faults on
    fresh zeroed pages: a gdb 16 session reading libc and its debug file through vFile:pread
    and dumping 4 MiB made ~190 brk calls and 3,500 page faults more than with the heap
    kept (8,300 -> 4,800). 16 MiB of top is kept, buffers up to 4 MiB come from the heap."""
    _Heap.kept = True
    mallopt = getattr(_libc, "mallopt", None)  # glibc's; others may lack it
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, 4 << 20)
        mallopt(M_TRIM_THRESHOLD, 16 << 20)


def trim_heap() -> None:
    """Give the free memory inside malloc's heap back to the system (once per client gone).

    A relaunch between clients frees the old session's buffers in between longer-lived ones,
    and malloc does not reuse all those holes: without this the stub's RSS grew 4-6 KiB per
    reconnection, without end (2000 reconnections: +11 MiB, while the memory in use stayed the
    same)."""
    trim = getattr(_libc, "malloc_trim", None)  # glibc's; others may lack it
    if trim is not None:
        trim(0)


def fitted_reply(head: bytes | None, data: bytes, room: int) -> bytes:
    """HEAD (None: vFile's ``F<count>;``) and the longest prefix of DATA that fits ROOM once
    escaped, as a reply that framing sends without escaping it again: the kept data is
    copied once, into the payload, and its escaped form not at all."""
    return fitted_count(head, data, room)[0]


def fitted_count(head: bytes | None, data: bytes, room: int) -> tuple[bytes, int]:
    """fitted_reply's reply, and how many bytes of DATA it carries."""
    if not _Heap.kept and len(data) > BIG_REPLY:
        keep_heap()
    count, escaped, end = fit(data, room)
    if head is None:
        head = b"F%x;" % count
    return ready_reply(head, data if count == len(data) else memoryview(data)[:count], escaped, end=end), count


# --- where paths resolve ----------------------------------------------------------------


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def openat2(dirfd: int, path: str, flags: int, mode: int, resolve: int) -> int:
    how = ctypes.create_string_buffer(bytes(OpenHow.build({"flags": flags, "mode": mode, "resolve": resolve})))
    fd = _syscall(
        ctypes.c_long(SYS_OPENAT2),
        ctypes.c_int(dirfd),
        ctypes.c_char_p(os.fsencode(path)),
        how,
        ctypes.c_size_t(OpenHow.sizeof()),
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(fd)


def mount_ns(pid: int | str) -> tuple[int, int]:
    st = os.stat(f"/proc/{pid}/ns/mnt")
    return st.st_dev, st.st_ino


_OWN_TREE: list[tuple[int, int]] = []  # the stub's mount namespace and root, once read


def _own_tree() -> tuple[tuple[int, int], tuple[int, int]]:
    """The stub's mount namespace and root (st_dev, st_ino): the stub never changes them, so
    they are read once, not at every open of gdb's."""
    if not _OWN_TREE:
        root = os.stat("/")
        _OWN_TREE.extend((mount_ns("self"), (root.st_dev, root.st_ino)))
    return _OWN_TREE[0], _OWN_TREE[1]


def _root_differs(pid: int) -> bool:
    """True when PID sees another file tree than the stub (mount namespace or root)."""
    ns, root = _own_tree()
    if mount_ns(pid) != ns:
        return True
    theirs = os.stat(f"/proc/{pid}/root")
    return (theirs.st_dev, theirs.st_ino) != root


class FileSystem:
    """Resolves the client's paths: in the stub's own tree, or in a process's."""

    def __init__(self, pid: int = 0) -> None:
        self.pid = pid

    def _foreign_root(self) -> int | None:
        """A directory fd of the process's root when its tree differs from ours, else None."""
        if self.pid == 0:
            return None
        if not _root_differs(self.pid):
            return None
        return os.open(f"/proc/{self.pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def open(self, path: str, flags: int, mode: int) -> int:
        flags |= os.O_CLOEXEC
        if not flags & os.O_PATH:
            flags |= os.O_NOCTTY | os.O_NONBLOCK  # opening a FIFO must not hang the stub
        root = self._foreign_root()
        if root is None:
            fd = os.open(path, flags, mode)
        else:
            try:
                fd = openat2(root, path, flags, mode if flags & os.O_CREAT else 0, RESOLVE_IN_ROOT)
            finally:
                os.close(root)
        if not flags & os.O_PATH:
            try:
                os.set_blocking(fd, True)
            except OSError:
                os.close(fd)
                raise
        return fd

    def _in_parent(self, path: str, action: Callable[[str, int | None], object]) -> object:
        root = self._foreign_root()
        if root is None:
            return action(path, None)
        try:
            head, _, name = path.rpartition("/")
            parent = openat2(root, head or "/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0, RESOLVE_IN_ROOT)
        finally:
            os.close(root)
        try:
            return action(name, parent)
        finally:
            os.close(parent)

    def unlink(self, path: str) -> None:
        self._in_parent(path, lambda p, d: os.unlink(p, dir_fd=d))

    def readlink(self, path: str) -> bytes:
        target = self._in_parent(path, lambda p, d: os.readlink(os.fsencode(p), dir_fd=d))
        assert isinstance(target, bytes)
        return target

    def stat(self, path: str) -> os.stat_result:
        fd = self.open(path, os.O_PATH, 0)
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)


# --- per-session state -----------------------------------------------------------------


class HostIO:
    """One session's open files and file-system choice (not a dataclass: start-up cost)."""

    __slots__ = ("ahead", "fds", "fs")

    def __init__(self) -> None:
        self.fs = FileSystem()
        self.fds: set[int] = set()
        self.ahead: dict[int, tuple[int, int]] = {}  # fd -> (where its last read ended, that read's size)

    def read_size(self, fd: int, offset: int, room: int) -> int:
        """How much of FD to read at OFFSET, whatever the client asked for (a short read).

        gdb asks for a whole packet at every read (to fill its read-ahead cache), needs a few
        hundred bytes at most places (ELF and section headers, notes, a symbol), and pays about
        18 ns per byte it receives: gdb 13 at its first stop took 1.27 MB of 128 KiB reads from
        the stub where gdbserver 13's 18 KiB packets sent 206 KB, and the session took 30 ms
        longer. So a read at a new place gets 4 KiB, and each read that goes on where the last
        ended four times more, up to the packet: a long file still comes in big reads. A small
        file's rest (32 KiB or less) comes whole: gdb reads a small executable's headers at
        both ends and in between (six 4 KiB reads of a 16 KiB one, where one read did)."""
        end, size = self.ahead.get(fd, (-1, 0))
        if offset == end:
            return min(size * READ_AHEAD_GROWTH, room)
        rest = os.fstat(fd).st_size - offset
        return rest if READ_AHEAD_FIRST < rest <= READ_AHEAD_REST else READ_AHEAD_FIRST

    def read_done(self, fd: int, offset: int, size: int, sent: int) -> None:
        self.ahead[fd] = (offset + sent, size)

    def fd(self, text: bytes) -> int:
        fd = _int(text)
        if fd not in self.fds:
            raise HostIOError(errno.EINVAL)  # gdbserver's answer to a descriptor it never gave out
        return fd

    def close_all(self) -> None:
        for fd in sorted(self.fds):
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds.clear()
        self.ahead.clear()


def state(s: Session) -> HostIO:
    """The session's Host I/O state, created on first use with a close hook."""
    hio = s.module_state.get("hostio")
    if not isinstance(hio, HostIO):
        hio = s.module_state["hostio"] = HostIO()
        s.close_hooks.append(hio.close_all)
    return hio


# --- the operations ---------------------------------------------------------------------


def _int(text: bytes) -> int:
    """A File-I/O number: hex with an optional minus sign."""
    if not text or len(text) > 17:
        raise HostIOError(errno.EINVAL)
    try:
        return int(text, 16)
    except ValueError:
        raise HostIOError(errno.EINVAL) from None


def _path(text: bytes) -> str:
    """A hex-encoded path, either case, cut at its first NUL as gdbserver's C string is
    (pwndbg sends ``/proc/PID/cwd`` with its terminating NUL). Like gdbserver's, a path
    that does not fit its PATH_MAX buffer is EINVAL."""
    try:
        raw = binascii.unhexlify(text)
    except ValueError:  # binascii.Error: odd length or not hex
        raise HostIOError(errno.EINVAL) from None
    if len(raw) >= HOSTIO_PATH_MAX - 1:
        raise HostIOError(errno.EINVAL)
    raw = raw.partition(b"\0")[0]
    if not raw:
        raise HostIOError(errno.ENOENT)
    return os.fsdecode(raw)


def _args(params: bytes, count: int) -> list[bytes]:
    parts = params.split(b",", count - 1)
    if len(parts) != count:
        raise HostIOError(errno.EINVAL)
    return parts


def _data_reply(result: int, data: bytes) -> bytes:
    return b"F%x;" % result + data


def op_setfs(s: Session, params: bytes) -> bytes:
    pid = _int(params)
    if pid < 0:
        raise HostIOError(errno.EINVAL)
    state(s).fs = FileSystem(pid)
    return b"F0"


def op_open(s: Session, params: bytes) -> bytes:
    path_s, flags_s, mode_s = _args(params, 3)
    path = _path(path_s)
    flags = open_flags(_int(flags_s))
    mode = _int(mode_s) & 0o7777
    hio = state(s)
    fd = hio.fs.open(path, flags, mode)
    hio.fds.add(fd)
    return b"F%x" % fd


def op_close(s: Session, params: bytes) -> bytes:
    hio = state(s)
    fd = hio.fd(params)
    hio.fds.discard(fd)
    hio.ahead.pop(fd, None)
    os.close(fd)
    return b"F0"


def op_pread(s: Session, params: bytes) -> bytes:
    fd_s, count_s, offset_s = _args(params, 3)
    fd = state(s).fd(fd_s)
    count, offset = _int(count_s), _int(offset_s)
    if count < 0 or not 0 <= offset < OFF_T_END:
        raise HostIOError(errno.EINVAL)
    room = PACKET_SIZE - _HEADER_ROOM
    hio = state(s)
    size = hio.read_size(fd, offset, room)
    reply, sent = fitted_count(None, os.pread(fd, min(count, size), offset), room)
    hio.read_done(fd, offset, size, sent)
    if sent >= BULK_READ:  # reading a file through (gdb 16: libc and its debug file): the next part
        s.read_next = b"vFile:pread:%s,%s,%x" % (fd_s, count_s, offset + sent)
    return reply


def op_pwrite(s: Session, params: bytes) -> bytes:
    fd_s, offset_s, data = _args(params, 3)
    fd = state(s).fd(fd_s)
    offset = _int(offset_s)
    if not 0 <= offset < OFF_T_END:
        raise HostIOError(errno.EINVAL)
    return b"F%x" % os.pwrite(fd, data, offset)


def op_fstat(s: Session, params: bytes) -> bytes:
    fd = state(s).fd(params)
    return _data_reply(FioStat.sizeof(), encode_stat(os.fstat(fd)))


def op_stat(s: Session, params: bytes) -> bytes:
    return _data_reply(FioStat.sizeof(), encode_stat(state(s).fs.stat(_path(params))))


def op_unlink(s: Session, params: bytes) -> bytes:
    state(s).fs.unlink(_path(params))
    return b"F0"


def op_readlink(s: Session, params: bytes) -> bytes:
    target = state(s).fs.readlink(_path(params))
    room = PACKET_SIZE - _HEADER_ROOM
    if escaped_length(target) > room:
        raise HostIOError(errno.ENAMETOOLONG)
    return _data_reply(len(target), target)


Operation = Callable[["Session", bytes], bytes]
OPERATIONS: dict[bytes, Operation] = {
    b"setfs": op_setfs,
    b"open": op_open,
    b"close": op_close,
    b"pread": op_pread,
    b"pwrite": op_pwrite,
    b"fstat": op_fstat,
    b"stat": op_stat,
    b"unlink": op_unlink,
    b"readlink": op_readlink,
}


def v_file(s: Session, args: bytes) -> bytes:
    """``vFile:OPERATION:PARAMS``: unknown operations get the empty reply."""
    operation, sep, params = args.removeprefix(b":").partition(b":")
    handler = OPERATIONS.get(operation)
    if handler is None or not sep:
        return b""
    try:
        return handler(s, params)
    except HostIOError as exc:
        return error_reply(exc.code)
    except OSError as exc:
        return error_reply(exc.errno)


HANDLERS: dict[str, Handler] = {"vFile": v_file}
