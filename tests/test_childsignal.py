"""SIGCHLD as a readable descriptor (target/linux/childsignal.py), signalfd and its fallback.

Each case runs in a fresh interpreter: installing changes the process's signal mask and handlers."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASE = """
import os, select, signal
from gdbstub.target.linux import childsignal
if {fallback}:
    def refuse(signum):
        raise OSError(38, "no signalfd")
    childsignal._signalfd = refuse
watch = childsignal.ChildSignal()
watch.install()
assert watch.signalfd is not {fallback}
ep = select.epoll()
ep.register(watch.fileno(), select.EPOLLIN)
assert ep.poll(0) == []
pid = os.fork()
if pid == 0:
    os._exit(0)
assert ep.poll(5), "no wake-up for the child's exit"
watch.drain()
assert ep.poll(0) == [], "drain left it readable"
assert os.waitpid(pid, 0)[0] == pid  # the child was not reaped behind our back
print("ok")
"""


@pytest.mark.parametrize("fallback", [False, True])
def test_child_exit_wakes_the_loop(fallback: bool) -> None:
    done = subprocess.run([sys.executable, "-c", CASE.format(fallback=fallback)], capture_output=True,
                          text=True, timeout=30)
    assert done.stdout.strip() == "ok", done.stderr
