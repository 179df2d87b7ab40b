"""The non-stop stop-reply queue: at most one %Stop notification outstanding;
the client drains the rest with vStopped."""

from __future__ import annotations

from ..hints import deque

OK = b"OK"


class StopQueue:
    """Stop replies waiting for the client's vStopped, and whether one is out.

    A reply stays queued until the client's next vStopped acknowledges it; the
    threads of queued replies are known (``threads``) so that a resume does not
    take a thread whose stop the client has not seen yet (as gdbserver does)."""

    def __init__(self) -> None:
        self.pending: deque[bytes] = deque()
        self.pending_tids: deque[int] = deque()
        self.outstanding = False
        self.sent_tid = 0  # the thread of the reply sent last and not yet acknowledged

    def push(self, reply: bytes, tid: int = 0) -> bytes | None:
        """Queue a stop reply; returns the notification to send now, if any."""
        if self.outstanding:
            self.pending.append(reply)
            self.pending_tids.append(tid)
            return None
        self.outstanding = True
        self.sent_tid = tid
        return b"Stop:" + reply

    def acknowledge(self) -> bytes:
        """vStopped: the next queued reply, or OK when the queue is drained."""
        if self.pending:
            self.sent_tid = self.pending_tids.popleft()
            return self.pending.popleft()
        self.outstanding = False
        self.sent_tid = 0
        return OK

    def threads(self) -> set[int]:
        """Threads whose stop is queued or sent and not yet acknowledged."""
        found = set(self.pending_tids)
        if self.outstanding and self.sent_tid:
            found.add(self.sent_tid)
        found.discard(0)
        return found

    def restart(self, replies: list[bytes]) -> bytes:
        """'?': abandon any sequence and report ``replies`` afresh (OK if none)."""
        self.pending.clear()
        self.pending_tids.clear()
        self.sent_tid = 0
        if not replies:
            self.outstanding = False
            return OK
        self.pending.extend(replies[1:])
        self.pending_tids.extend([0] * (len(replies) - 1))
        self.outstanding = True  # no notification until this sequence is drained
        return replies[0]
