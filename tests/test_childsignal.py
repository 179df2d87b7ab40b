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


KILL_CASE = """
import os, select
from gdbstub.target.linux import childsignal, ptrace
from gdbstub.target.linux.process import LinuxTarget
watch = childsignal.ChildSignal()
watch.install()
assert watch.signalfd
target = LinuxTarget()
target.sigchld_blocked = True
killed = target.launch(["/bin/sleep", "60"])
other = target.launch(["/bin/true"])
ep = select.epoll()
ep.register(watch.fileno(), select.EPOLLIN)
watch.drain()
ptrace.cont(other)  # it ends: its status waits, not reaped, its SIGCHLD pending
os.waitid(os.P_PID, other, os.WEXITED | os.WSTOPPED | os.WNOWAIT | ptrace.WALL)
target.kill(killed)  # awaits the end by SIGCHLD: it may take the other's
assert not os.path.exists(f"/proc/{killed}"), "the killed process is left behind"
assert ep.poll(5), "the other process's status no longer wakes the loop"
got, status = os.waitpid(other, os.WNOHANG | ptrace.WALL)
assert got == other, "the other process's status was taken"
target.kill()
assert not target.processes and not os.path.exists(f"/proc/{other}")
print("ok")
"""


def test_kill_leaves_the_loop_its_wake_up() -> None:
    """Killing one process awaits its end with sigtimedwait where SIGCHLD is blocked; a SIGCHLD
    taken there may have stood for another process's status too, which the event loop must
    still wake for (and find unreaped)."""
    done = subprocess.run([sys.executable, "-c", KILL_CASE], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
