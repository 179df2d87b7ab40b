"""pytest fixtures for testing programs under gdbstub (registered as the 'gdbstub' pytest11 plugin).

    def test_hot_is_called(gdbstub_launch):
        server = gdbstub_launch(["./prog", "3"])
        with server.connect() as client:
            client.set_breakpoint(client.symbol("hot", "./prog"))
            assert client.cont().signal == 5

Every stub a test starts is killed, with its program, when the test ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from .api import StubServer, launch
from .client import Client

Launch = Callable[..., StubServer]


@pytest.fixture
def gdbstub_launch() -> Iterator[Launch]:
    """A factory: gdbstub_launch(argv, **launch_options) -> a started StubServer."""
    servers: list[StubServer] = []

    def start(argv: Sequence[Any], **options: Any) -> StubServer:
        server = launch(argv, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def gdbstub_client(gdbstub_launch: Launch) -> Iterator[Callable[..., Client]]:
    """A factory: gdbstub_client(argv, **launch_options) -> a Client connected to a new stub."""
    clients: list[Client] = []

    def connect(argv: Sequence[Any], **options: Any) -> Client:
        client = gdbstub_launch(argv, **options).connect()
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()
