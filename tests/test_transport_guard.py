"""The transport's guards, in-process: bounded sends, the peer's user, the socket file's mode.
The same behaviour over a real stub is in integration/test_faults.py."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from gdbstub import cli
from gdbstub.transport import (
    SEND_TIMEOUT,
    Address,
    Connection,
    Listener,
    _diag_uid,
    _endpoint,
    _packed,
    is_loopback,
    parse_address,
    peer_uid,
)

pytestmark = pytest.mark.timeout(60)


def test_options() -> None:
    opts = cli.parse_args(["--allow-any-user", "--send-timeout=2.5", ":1", "p"])
    assert opts.allow_any_user and opts.send_timeout == 2.5
    plain = cli.parse_args([":1", "p"])
    assert not plain.allow_any_user and plain.send_timeout == SEND_TIMEOUT == 30
    for bad in ("--send-timeout=x", "--send-timeout=-1", "--send-timeout=nan", "--send-timeout"):
        with pytest.raises(cli.UsageError):
            cli.parse_args([bad, ":1", "p"])


def test_proc_net_tcp_endpoints() -> None:
    assert _endpoint("0100007F:1F90") == (_endpoint("0100007F:0")[0], 8080)
    assert _endpoint(b"0100007F:1F90") == (socket.inet_aton("127.0.0.1"), 8080)
    assert _endpoint("00000000000000000000000001000000:0016") == (socket.inet_pton(socket.AF_INET6, "::1"), 22)
    assert _endpoint("0000000000000000FFFF00000100007F:0016")[0] == socket.inet_aton("127.0.0.1")  # v4-mapped


def test_numeric_addresses_and_loopback() -> None:
    assert parse_address(":1") == Address("tcp", "127.0.0.1", 1)
    assert parse_address("[::1]:2") == Address("tcp", "::1", 2, family=socket.AF_INET6)
    for host, loopback in (("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("10.0.0.1", False),
                           ("::", False), ("::ffff:127.0.0.1", False), ("0.0.0.0", False)):
        assert is_loopback(Address("tcp", host)) is loopback, host  # as ipaddress's is_loopback


def test_peer_uid_of_a_unix_socket_and_a_loopback_connection() -> None:
    a, b = socket.socketpair()
    with a, b:
        assert peer_uid(a) == os.geteuid()
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            server = socket.socket(family)
            server.bind((host, 0))
        except OSError:
            continue  # no IPv6 here
        with server:
            server.listen(1)
            client = socket.create_connection(server.getsockname()[:2])
            conn, _ = server.accept()
            with client, conn:
                assert peer_uid(conn) == os.geteuid(), host


def test_sock_diag_finds_the_peer_socket_and_only_it() -> None:
    """peer_uid asks sock_diag first: the peer's own socket by its two ends; a port that no
    socket has gives None (then /proc/net/tcp is read)."""
    server = socket.socket(socket.AF_INET)
    server.bind(("127.0.0.1", 0))
    with server:
        server.listen(1)
        client = socket.create_connection(server.getsockname())
        conn, _ = server.accept()
        with client, conn:
            (ours, our_port), (theirs, their_port) = conn.getsockname(), conn.getpeername()
            assert _diag_uid(_packed(theirs), their_port, _packed(ours), our_port) == os.geteuid()
            assert _diag_uid(_packed(theirs), their_port, _packed(ours), 1) is None


def test_unix_socket_file_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "stub.sock"
    old = os.umask(0o022)
    try:
        listener = Listener(parse_address(f"unix:{path}"))
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert os.umask(old) == old  # bind put the umask back
    finally:
        listener.close()


def stuck_pair(timeout: float) -> tuple[Connection, socket.socket]:
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn = Connection(ours.fileno(), ours.fileno(), "test", ours)
    conn.send_timeout = timeout
    return conn, theirs


def test_send_to_a_client_that_reads_nothing_gives_up() -> None:
    conn, theirs = stuck_pair(0.5)
    with theirs:
        start = time.monotonic()
        conn.send(b"x" * (4 << 20))
        assert conn.stalled
        assert time.monotonic() - start < 20  # bounded (0.5 s without progress), not for ever
        conn.send(b"more")  # a stalled client's sends are dropped at once
        conn.close()


def test_send_to_a_slow_reader_is_never_dropped() -> None:
    """The reader pauses for most of the bound between reads: every pause is under it, so the
    whole reply goes through although it takes many times the bound."""
    conn, theirs = stuck_pair(1.0)
    payload = bytes(range(256)) * 1024  # 256 KiB
    got = bytearray()

    def read_slowly() -> None:
        while len(got) < len(payload):
            time.sleep(0.3)  # 8 pauses: 2.4 s in all, over twice the bound
            data = theirs.recv(32768)
            if not data:
                return
            got.extend(data)

    reader = threading.Thread(target=read_slowly)
    reader.start()
    conn.send(payload)
    reader.join(30)
    assert not conn.stalled and bytes(got) == payload
    theirs.close()
    conn.close()


def test_send_on_a_stdio_pipe_nobody_reads_gives_up() -> None:
    """`target remote | gdbstub - PROG`: the same bound on the stdout pipe (written in PIPE_BUF
    pieces after poll, so no write can block)."""
    r, w = os.pipe()
    try:
        conn = Connection(r, w, "stdio")
        conn.send_timeout = 0.5
        conn.send(b"y" * (1 << 20))  # a pipe holds 64 KiB
        assert conn.stalled
    finally:
        os.close(r)
        os.close(w)
