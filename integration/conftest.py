"""Fixtures for the integration tests: built programs, server kinds, gdb sessions, no leftovers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import harness
import pytest
from harness import GDB_VERSIONS, KINDS, HarnessError, ProcessTracker, Server, Session

# The test modules that also run with gdb 16 as the client and gdbserver 16 as the reference: the
# comparison sets (a second gdb doubles a module's time, so not every module gets it).
GDB16_MODULES = frozenset({
    "test_basic", "test_control", "test_registers", "test_threads", "test_watch", "test_conditions",
    "test_mi", "test_signals", "test_events", "test_nonstop", "test_hostio", "test_compat",
})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give the modules in GDB16_MODULES the gdb version dimension (ids gdb13, gdb16)."""
    if "gdb_version" in metafunc.fixturenames and metafunc.module.__name__ in GDB16_MODULES:
        metafunc.parametrize("gdb_version", GDB_VERSIONS, indirect=True)


@pytest.fixture(autouse=True)
def gdb_version(request: pytest.FixtureRequest) -> Iterator[str]:
    """The gdb that drives this test and the gdbserver it is compared with (gdb 13 unless parametrised)."""
    version = str(getattr(request, "param", "gdb13"))
    if version != "gdb13":
        missing = harness.gdb16_missing()
        if missing:
            pytest.skip(missing)
    harness.use_gdb(version)
    yield version
    harness.use_gdb("gdb13")


def pytest_configure(config: pytest.Config) -> None:
    # Inferiors orphaned by a dying server are reparented to us, so the leak check can see and reap them.
    harness.become_subreaper()


@pytest.fixture(scope="session", autouse=True)
def programs() -> None:
    """Build the C programs once per test session (`make programs` is incremental)."""
    harness.build_programs()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(autouse=True)
def procs(request: pytest.FixtureRequest) -> Iterator[ProcessTracker]:
    """Every process a test starts goes through this tracker; anything still alive at the end fails it."""
    tracker = ProcessTracker()
    yield tracker
    leaked = tracker.finish()
    call = getattr(request.node, "rep_call", None)
    if leaked and call is not None and call.passed:
        pytest.fail("processes left behind (killed now):\n  " + "\n  ".join(leaked), pytrace=False)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """The server under test: GNU gdbserver (the reference) or our gdbstub."""
    return str(request.param)


Debug = Callable[..., Session]


def _or_fail(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call FUNCTION; a HarnessError (server did not start, ...) fails the test with its message only."""
    try:
        return function(*args, **kwargs)
    except HarnessError as error:
        message = str(error)
    pytest.fail(message, pytrace=False)


@pytest.fixture
def debug(procs: ProcessTracker, kind: str) -> Debug:
    """debug(PROGRAM, ARGS, COMMANDS, **kw) -> Session: one gdb batch run against KIND --once PROGRAM."""

    def run(name: str, args: Sequence[str] = (), commands: Sequence[str] = (), **kwargs: Any) -> Session:
        return _or_fail(harness.debug, procs, kind, harness.program(name), args, commands, **kwargs)

    return run


@pytest.fixture
def reference(procs: ProcessTracker) -> Debug:
    """Like `debug`, always against gdbserver: the behaviour the stub must reproduce."""

    def run(name: str, args: Sequence[str] = (), commands: Sequence[str] = (), **kwargs: Any) -> Session:
        return _or_fail(harness.debug, procs, "gdbserver", harness.program(name), args, commands, **kwargs)

    return run


@pytest.fixture
def debug_both(procs: ProcessTracker) -> Callable[..., dict[str, Session]]:
    """debug_both(PROGRAM, ARGS, COMMANDS) -> {"gdbserver": Session, "gdbstub": Session}, same script."""

    def run(name: str, args: Sequence[str] = (), commands: Sequence[str] = (), **kwargs: Any) -> dict[str, Session]:
        prog = harness.program(name)
        result: dict[str, Session] = _or_fail(harness.debug_both, procs, prog, args, commands, **kwargs)
        return result

    return run


@pytest.fixture
def server(procs: ProcessTracker, kind: str) -> Callable[..., Server]:
    """server(PROGRAM, ARGS, once=True) -> a started Server of KIND (killed at teardown if still up)."""

    def start(name: str, args: Sequence[str] = (), **kwargs: Any) -> Server:
        return _or_fail(harness.start_server, procs, kind, harness.program(name), args, **kwargs)

    return start


def program_path(name: str) -> Path:
    return harness.program(name)
