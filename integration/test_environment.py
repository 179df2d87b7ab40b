"""The environment a launched program gets: the server's own, unchanged, as gdbserver passes it on."""

from __future__ import annotations

import harness
import pytest


@pytest.mark.timeout(60)
def test_c_locale_environment_reaches_the_program_unchanged(procs):
    """Under the C locale Python adds LC_CTYPE=C.UTF-8 to its own os.environ (PEP 538 coercion);
    the program must still get exactly what the stub was started with, as through gdbserver."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/root", "SHELL": "/bin/sh", "PWD": str(harness.ROOT)}
    seen = {}
    for kind in harness.KINDS:
        server = harness.start_server(procs, kind, "/usr/bin/env", env=env)
        harness.run_gdb(procs, server.port, ["continue"], file=None)
        assert server.wait_exit() == 0, server.describe()
        server.stdout.join(1)
        seen[kind] = sorted(line for line in server.stdout.text.splitlines() if "=" in line)
    assert seen["gdbstub"] == seen["gdbserver"]
    assert not any(line.startswith("LC_CTYPE=") for line in seen["gdbstub"])
