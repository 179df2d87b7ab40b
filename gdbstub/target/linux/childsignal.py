"""How the event loop learns that a traced thread changed state: a readable file
descriptor for SIGCHLD.

A signalfd where the kernel has one: SIGCHLD stays blocked and is read as data, so no
handler runs, no system call is interrupted (EINTR, then Python's retry) and nothing
writes to a wake-up pipe; three system calls and a signal frame less per stop. Where
signalfd is missing (seccomp, an old kernel) the fallback is the handler with
``signal.set_wakeup_fd`` on a pipe.

SIGCHLD is blocked in the stub only: ``spawn`` gives a forked program the
mask it would have had (a blocked mask survives exec, and the program's own children
would never signal it)."""

from __future__ import annotations

import os

from ... import ffi as ctypes  # ctypes names without the ctypes package
from ...hints import signal

_SFD_NONBLOCK = os.O_NONBLOCK
_SFD_CLOEXEC = os.O_CLOEXEC
_SIGSET_WORDS = 16  # sigset_t is 1024 bits in glibc
_SIGCHLD_ONLY = {signal.SIGCHLD}
SIGCHLD_ONLY = _SIGCHLD_ONLY  # for a caller that sigtimedwaits itself (the event loop, per stop)
_sigtimedwait = signal.sigtimedwait


def take_sigchld(timeout: float) -> bool:
    """Wait up to TIMEOUT seconds (0: not at all) for a SIGCHLD, which the caller has blocked,
    and take it; whether one came. Nothing pending is None here, not an exception."""
    return _sigtimedwait(_SIGCHLD_ONLY, timeout) is not None


def _signalfd(signum: int) -> int:
    """A non-blocking signalfd for SIGNUM (which the caller blocks); OSError where there is none."""
    libc = ctypes.CDLL(None, use_errno=True)
    mask = (ctypes.c_ulong * _SIGSET_WORDS)()
    mask[(signum - 1) // 64] = 1 << ((signum - 1) % 64)
    fd: int = libc.signalfd(-1, ctypes.byref(mask), _SFD_NONBLOCK | _SFD_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return fd


class ChildSignal:
    """SIGCHLD as a readable descriptor: ``fileno`` for epoll, ``drain`` once woken."""

    __slots__ = ("_fd", "_pipe_w", "signalfd")

    def __init__(self) -> None:
        self._fd = -1
        self._pipe_w = -1
        self.signalfd = False

    def install(self) -> None:
        """Start watching SIGCHLD (on the main thread, before the first resume: the program the
        command line started is stopped until then, and the target polls it once adopted)."""
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGCHLD_ONLY)
        try:
            self._fd = _signalfd(signal.SIGCHLD)
            self.signalfd = True
            return
        except (OSError, AttributeError):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGCHLD_ONLY)
        self._fd, self._pipe_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, _ignore)
        signal.set_wakeup_fd(self._pipe_w, warn_on_full_buffer=False)

    def fileno(self) -> int:
        return self._fd

    def drain(self) -> None:
        """Take what woke the loop (pending SIGCHLDs, wake-up bytes), so the next wait sleeps.

        With the signalfd, the pending SIGCHLD is taken by sigtimedwait without waiting: the
        same dequeue as the signalfd's read, and nothing pending (the target's range-step wait
        took it already) is a None, not a BlockingIOError built with its strerror text."""
        if self.signalfd:
            take_sigchld(0)  # one standard signal: at most one pending
            return
        try:
            while len(os.read(self._fd, 4096)) == 4096:  # a short read emptied it
                pass
        except BlockingIOError:
            pass


def _ignore(signum: int, frame: object) -> None:
    """The fallback's handler: set_wakeup_fd does the work; SIG_IGN would reap the children."""
