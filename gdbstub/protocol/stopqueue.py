"""The non-stop stop-reply queue: at most one %Stop notification outstanding;
the client drains the rest with vStopped."""

from __future__ import annotations

from collections import deque

OK = b"OK"


class StopQueue:
    """Stop replies waiting for the client's vStopped, and whether one is out."""

    def __init__(self) -> None:
        self.pending: deque[bytes] = deque()
        self.outstanding = False

    def push(self, reply: bytes) -> bytes | None:
        """Queue a stop reply; returns the notification to send now, if any."""
        if self.outstanding:
            self.pending.append(reply)
            return None
        self.outstanding = True
        return b"Stop:" + reply

    def acknowledge(self) -> bytes:
        """vStopped: the next queued reply, or OK when the queue is drained."""
        if self.pending:
            return self.pending.popleft()
        self.outstanding = False
        return OK

    def restart(self, replies: list[bytes]) -> bytes:
        """'?': abandon any sequence and report ``replies`` afresh (OK if none)."""
        self.pending.clear()
        if not replies:
            self.outstanding = False
            return OK
        self.pending.extend(replies[1:])
        self.outstanding = True  # no notification until this sequence is drained
        return replies[0]
