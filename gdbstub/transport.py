"""The one module that owns sockets and stdio: TCP (IPv4/IPv6), Unix-domain
sockets and the stdin/stdout pipe, all as byte pipes with a file descriptor
the event loop can watch.

The command line listens through this module before it imports the rest of the stub, so it
imports no more than ``_socket`` (``socket`` brings ``selectors``, ``enum`` and ``array``;
``ipaddress`` costs a millisecond), and ``select`` only for a send that must wait.
"""

from __future__ import annotations

import _socket
import errno
import os
import sys

_DONTWAIT = MSG_DONTWAIT = _socket.MSG_DONTWAIT
QUICK_SEND = 4096  # a reply up to this long goes out in one send of the whole (a socket's buffer takes it)
SEND_TIMEOUT = 30.0  # seconds a reply may make no progress before the client counts as gone


class Connection:
    """A connected client: bytes in, bytes out."""

    def __init__(self, rfd: int, wfd: int, peer: str, sock: _socket.socket | None = None) -> None:
        self.rfd = rfd
        self.wfd = wfd
        self.peer = peer
        self._sock = sock
        # The socket's own send, for a caller that sends small replies itself (the event loop:
        # one call a reply instead of two) and hands anything else to ``send``; None on stdio.
        self.quick_send = sock.send if sock is not None else None
        self.quick_recv = sock.recv if sock is not None else None  # the same for reads (``recv``'s)
        self.send_timeout = SEND_TIMEOUT  # 0: wait for ever
        self.stalled = False  # a send made no progress for send_timeout: the client counts as gone

    def fileno(self) -> int:
        return self.rfd

    def recv(self) -> bytes:
        """What is there to read; b'' when the client has gone."""
        try:
            if self._sock is not None:
                return self._sock.recv(65536)
            return os.read(self.rfd, 65536)
        except (ConnectionError, OSError) as exc:
            if isinstance(exc, BlockingIOError):
                raise
            return b""

    def hung_up(self) -> bool:
        """True when the peer has closed its end (EOF is next), without consuming data."""
        if self._sock is None:
            return False
        try:
            return self._sock.recv(1, _socket.MSG_PEEK | _socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def send(self, data: bytes) -> None:
        """Send all of DATA, or give up on a client that reads nothing for send_timeout seconds.

        A client that stops reading would otherwise block the stub for ever (and with it
        the program it holds). Any progress, however slow, restarts the wait. A gone or
        stalled client's sends are dropped: the event loop sees ``stalled`` or EOF."""
        if self.stalled:
            return
        sock = self._sock
        if sock is not None and len(data) <= QUICK_SEND:
            # A reply the socket takes whole at once (all but the largest): one call, no view.
            try:
                sent = sock.send(data, _DONTWAIT)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.EBADF):
                    raise
                return
            if sent == len(data):
                return
            data = data[sent:]  # a full buffer (rare): the loop below waits and sends the rest
        view = memoryview(data)
        try:
            while view:
                if self._sock is not None:
                    try:
                        n = self._sock.send(view, _socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        n = 0
                elif self._writable():
                    # stdio: after POLLOUT, a pipe takes PIPE_BUF bytes without blocking.
                    n = os.write(self.wfd, view[:PIPE_BUF])
                else:
                    return
                view = view[n:]
                if view and self._sock is not None and not self._writable():
                    return
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.EBADF):
                raise

    def _writable(self) -> bool:
        """Wait until the client can take more; False (and ``stalled``) after send_timeout."""
        import select  # here: a reply that did not fit at once

        poller = select.poll()
        poller.register(self.wfd, select.POLLOUT)
        if poller.poll(self.send_timeout * 1000 if self.send_timeout > 0 else None):
            return True
        self.stalled = True
        return False

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
            self._sock = None
            self.quick_send = self.quick_recv = None


PIPE_BUF = 4096  # select.PIPE_BUF on Linux: a pipe takes this much at once when writable


class Address:
    """Where to listen (a slotted class: a NamedTuple would import typing before Listening)."""

    __slots__ = ("family", "host", "kind", "path", "port")

    def __init__(self, kind: str, host: str = "127.0.0.1", port: int = 0, path: str = "",
                 family: int = _socket.AF_INET) -> None:
        self.kind = kind  # "tcp", "unix", "stdio"
        self.host = host
        self.port = port
        self.path = path
        self.family = family

    def _key(self) -> tuple[str, str, int, str, int]:
        return (self.kind, self.host, self.port, self.path, self.family)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Address) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Address(kind={!r}, host={!r}, port={!r}, path={!r}, family={!r})".format(*self._key())


class AddressError(ValueError):
    pass


def parse_address(text: str) -> Address:
    """gdbserver's COMM forms: [HOST]:PORT, tcp:/tcp4:/tcp6: prefixes, [v6]:PORT,
    unix:PATH, and '-' or 'stdio' for the pipe."""
    if text in ("-", "stdio"):
        return Address("stdio")
    if text.startswith("unix:"):
        path = text[5:]
        if not path:
            raise AddressError(f"Invalid unix socket path: {text}")
        return Address("unix", path=path)
    family = 0
    rest = text
    for prefix, fam in (("tcp4:", _socket.AF_INET), ("tcp6:", _socket.AF_INET6), ("tcp:", 0)):
        if rest.startswith(prefix):
            rest, family = rest[len(prefix):], fam
            break
    host, sep, port_s = rest.rpartition(":")
    if not sep or not port_s:
        raise AddressError(f"Invalid port or address: {text}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        host = "::1" if family == _socket.AF_INET6 else "127.0.0.1"
    if host == "localhost":
        host = "::1" if family == _socket.AF_INET6 else "127.0.0.1"
    if port_s.isdigit() and int(port_s) > 65535:  # gdbserver wraps it round; say so instead
        raise AddressError(f"Invalid port or address: {text}")
    fam = _numeric_family(host)
    if not fam or not port_s.isdigit():
        # A name (or a port that is not a number): the resolver decides, and a failure is
        # worded as gdbserver's, which is what test harnesses look for to give up at once.
        try:
            info = _socket.getaddrinfo(host, port_s, family or _socket.AF_UNSPEC, _socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise AddressError(f"{text}: cannot resolve name: {why}") from None
        fam = info[0][0]
        host, port = str(info[0][4][0]), int(info[0][4][1])
        port_s = str(port)
    if family and fam != family:
        raise AddressError(f"Address family mismatch: {text}")
    return Address("tcp", host=host, port=int(port_s), family=fam)


def _numeric_family(host: str) -> int:
    """AF_INET or AF_INET6 for a numeric address, 0 for a name."""
    for fam in (_socket.AF_INET, _socket.AF_INET6):
        try:
            _socket.inet_pton(fam, host)
            return fam
        except OSError:
            pass
    return 0


def _packed(host: str) -> bytes:
    """A numeric address's bytes, an IPv4-mapped IPv6 one (::ffff:a.b.c.d) as the IPv4 it is;
    b'' for anything else (a name, a scoped address)."""
    fam = _numeric_family(host)
    if not fam:
        return b""
    raw = _socket.inet_pton(fam, host)
    return raw[12:] if raw[:12] == _V4_MAPPED else raw


_V4_MAPPED = bytes(10) + b"\xff\xff"
_V6_LOOPBACK = bytes(15) + b"\x01"


def is_loopback(addr: Address) -> bool:
    """127.0.0.0/8 or ::1 (ipaddress's is_loopback, without importing it)."""
    if addr.kind != "tcp":
        return True
    fam = _numeric_family(addr.host)
    if fam == _socket.AF_INET:
        return addr.host.startswith("127.")
    return fam == _socket.AF_INET6 and _socket.inet_pton(fam, addr.host) == _V6_LOOPBACK


def peer_uid(conn: _socket.socket) -> int | None:
    """The user running the other end of CONN, when the kernel can tell.

    A Unix socket carries its peer's credentials (SO_PEERCRED). A TCP peer on this
    machine owns its end of the connection, and /proc/net/tcp and tcp6 name the owner
    of every socket in this network namespace; a peer on another machine is in
    neither, and gets None. The kernel's sock_diag is asked first: it looks the peer's
    socket up by its addresses, where /proc/net/tcp walks every bucket of the connection
    table (8 ms of system time on a 2-core test machine, before gdb's first packet got an
    answer); the tables are read when it cannot tell. Only their rows with the peer's port
    in them are parsed."""
    if conn.family == _socket.AF_UNIX:
        cred = conn.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)  # struct ucred: 3 ints
        return int.from_bytes(cred[4:8], sys.byteorder)
    ours, theirs = conn.getsockname(), conn.getpeername()
    want = (_packed(theirs[0]), int(theirs[1]), _packed(ours[0]), int(ours[1]))
    uid = _diag_uid(*want)
    if uid is not None:
        return uid
    needle = f":{want[1]:04X} ".encode()  # the peer's own row: its port ends the local address
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, "rb") as f:
                data = f.read()
        except OSError:
            continue
        for line in data.splitlines()[1:]:
            if needle not in line:
                continue
            fields = line.split()
            if len(fields) > 7 and (*_endpoint(fields[1]), *_endpoint(fields[2])) == want:
                return int(fields[7])
    return None


NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20  # the request, and the type of a reply that found the socket
NLM_F_REQUEST = 1
INET_DIAG_NOCOOKIE = b"\xff" * 8
DIAG_UID_AT = 80  # nlmsghdr (16) + inet_diag_msg's family..retrans (4), id (48), expires..wqueue (12)


def _diag_uid(addr: bytes, port: int, peer_addr: bytes, peer_port: int) -> int | None:
    """The owner of the local TCP socket whose own end is ADDR:PORT and other end
    PEER_ADDR:PEER_PORT, as sock_diag tells it (linux/inet_diag.h: one SOCK_DIAG_BY_FAMILY
    request for that socket, no dump); None when it cannot tell."""
    if len(addr) not in (4, 16) or len(peer_addr) != len(addr):
        return None
    family = _socket.AF_INET if len(addr) == 4 else _socket.AF_INET6
    order = sys.byteorder
    # inet_diag_req_v2: family, protocol, ext, pad, states; inet_diag_sockid: ports and
    # addresses in network order, interface, cookie (none: any socket with these addresses)
    request = (bytes((family, _socket.IPPROTO_TCP, 0, 0)) + b"\xff\xff\xff\xff"
               + port.to_bytes(2, "big") + peer_port.to_bytes(2, "big")
               + addr.ljust(16, b"\0") + peer_addr.ljust(16, b"\0") + bytes(4) + INET_DIAG_NOCOOKIE)
    header = ((16 + len(request)).to_bytes(4, order) + SOCK_DIAG_BY_FAMILY.to_bytes(2, order)
              + NLM_F_REQUEST.to_bytes(2, order) + (1).to_bytes(4, order) + bytes(4))
    try:
        link = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
    except OSError:
        return None
    try:
        link.settimeout(1.0)  # the kernel answers at once; bounded all the same
        link.sendto(header + request, (0, 0))
        reply = link.recv(4096)
    except OSError:
        return None
    finally:
        link.close()
    if len(reply) < DIAG_UID_AT + 4 or int.from_bytes(reply[4:6], order) != SOCK_DIAG_BY_FAMILY:
        return None  # NLMSG_ERROR: no such socket here, or sock_diag refused
    return int.from_bytes(reply[DIAG_UID_AT:DIAG_UID_AT + 4], order)


def _endpoint(field: bytes | str) -> tuple[bytes, int]:
    """/proc/net/tcp's ADDR:PORT: the address as 32-bit words in host order, in hex; the
    address as bytes (IPv4-mapped IPv6 as its IPv4), the port."""
    text = field.decode() if isinstance(field, bytes) else field
    addr, _, port = text.partition(":")
    raw = b"".join(int(addr[i:i + 8], 16).to_bytes(4, sys.byteorder) for i in range(0, len(addr), 8))
    return (raw[12:] if raw[:12] == _V4_MAPPED else raw), int(port, 16)


class Listener:
    """A listening endpoint handing out one Connection per client.

    With ``check_peer`` (the default) only a client run by this process's user is
    served (see peer_uid); any other is closed at once, with nothing sent, and named
    in one line on stderr."""

    def __init__(self, addr: Address, *, check_peer: bool = True) -> None:
        self.addr = addr
        self.check_peer = check_peer
        self._sock: _socket.socket | None = None
        self._stdio_used = False
        if addr.kind == "tcp":
            sock = _socket.socket(addr.family, _socket.SOCK_STREAM)
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            if addr.family == _socket.AF_INET6:
                sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 0)
            try:
                sock.bind((addr.host, addr.port))
            except OSError:
                sock.close()
                raise
            sock.listen(1)
            self._sock = sock
        elif addr.kind == "unix":
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            umask = os.umask(0o177)  # the socket file is created owner-only (0600): no window
            try:
                sock.bind(addr.path)
            except OSError:
                sock.close()
                raise
            finally:
                os.umask(umask)
            sock.listen(1)
            self._sock = sock

    def announce(self) -> None:
        """Tell whoever started the stub that a client may connect now (stderr, flushed):
        harnesses wait for this line, so it comes only once the socket listens."""
        if self.addr.kind == "tcp":
            print(f"Listening on port {self.port}", file=sys.stderr, flush=True)
        elif self.addr.kind == "unix":
            print(f"Listening on Unix socket {self.addr.path}", file=sys.stderr, flush=True)
        else:
            print("Remote debugging using stdio", file=sys.stderr, flush=True)

    @property
    def port(self) -> int:
        if self._sock is not None and self.addr.kind == "tcp":
            return int(self._sock.getsockname()[1])
        return 0

    def fileno(self) -> int:
        return self._sock.fileno() if self._sock is not None else 0

    def accept(self) -> Connection:
        if self.addr.kind == "stdio":
            self._stdio_used = True
            return Connection(0, 1, "stdio")
        assert self._sock is not None
        while True:
            conn, peer = self._accept()
            if self._allowed(conn, peer):
                break
            conn.close()
        conn.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1) if self.addr.kind == "tcp" else None
        if isinstance(peer, tuple):
            return Connection(conn.fileno(), conn.fileno(), f"{peer[0]}, port {peer[1]}", conn)
        return Connection(conn.fileno(), conn.fileno(), f"local, Unix socket {self.addr.path}", conn)

    def _accept(self) -> tuple[_socket.socket, object]:
        """socket.socket.accept, on the _socket object: the new connection (close-on-exec)."""
        assert self._sock is not None
        fd, peer = self._sock._accept()  # type: ignore[attr-defined]  # what socket.accept calls
        return _socket.socket(self._sock.family, self._sock.type, 0, fd), peer

    def _allowed(self, conn: _socket.socket, peer: object) -> bool:
        """Whether CONN's user may be served; says why not on stderr."""
        if not self.check_peer:
            return True
        try:
            uid = peer_uid(conn)
        except (OSError, ValueError):
            uid = None
        me = os.geteuid()
        if uid == me or (uid is None and not is_loopback(self.addr)):
            return True  # the stub's user; or a host elsewhere, which the start-up warning covers
        who = f"uid {uid}" if uid is not None else "an unknown user"
        where = f" ({peer[0]}, port {peer[1]})" if isinstance(peer, tuple) else ""
        print(f"Refused a connection from {who}{where}: only uid {me} may connect "
              "(--allow-any-user turns this check off)", file=sys.stderr, flush=True)
        return False

    def refuse_pending(self) -> None:
        """Accept and drop a second client while one is being served."""
        if self._sock is None:
            return
        try:
            self._sock.setblocking(False)
            conn, _ = self._accept()
            conn.close()
        except OSError:
            pass
        finally:
            self._sock.setblocking(True)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            if self.addr.kind == "unix":
                try:
                    os.unlink(self.addr.path)
                except OSError:
                    pass
