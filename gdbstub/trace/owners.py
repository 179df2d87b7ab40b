"""Who wants each int3: the client (Z0) and the trace may share one. Kept by the target from the
start (a plain gdb session needs only this of the trace), without loading the tracer."""

from __future__ import annotations

CLIENT = "client"
TRACE = "trace"


class Int3Owners:
    """(pid, address) -> the owners of the int3 there; a plain Z0 may have no entry (the client's)."""

    def __init__(self, owners: dict[tuple[int, int], set[str]] | None = None) -> None:
        self.owners: dict[tuple[int, int], set[str]] = {} if owners is None else owners

    def own(self, pid: int, addr: int, owner: str) -> None:
        self.owners.setdefault((pid, addr), set()).add(owner)

    def client_owns(self, pid: int, addr: int) -> bool:
        """Whether the client has a breakpoint of its own in the int3 at addr (a plain Z0 has
        no entry here: the client's)."""
        return CLIENT in self.owners.get((pid, addr), (CLIENT,))

    def still_owned(self, pid: int, addr: int, owner: str) -> bool:
        """``owner`` lets go of the int3 at addr: True when another owner still needs it."""
        holders = self.owners.get((pid, addr))
        if holders is None:
            return False
        holders.discard(owner)
        if holders:
            return True
        del self.owners[(pid, addr)]
        return False

    def forget_process(self, pid: int) -> None:
        for key in [k for k in self.owners if k[0] == pid]:
            del self.owners[key]
