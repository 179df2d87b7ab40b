"""Which threads' stops the non-stop queue still holds (a resume must leave them alone)."""

from gdbstub.protocol.stopqueue import StopQueue


def test_threads_until_acknowledged() -> None:
    q = StopQueue()
    assert q.push(b"T05", 10) == b"Stop:T05"
    assert q.push(b"T05", 11) is None
    assert q.threads() == {10, 11}
    assert q.acknowledge() == b"T05"  # 10 acknowledged, 11 sent
    assert q.threads() == {11}
    assert q.acknowledge() == b"OK"
    assert q.threads() == set()


def test_restart_forgets_threads() -> None:
    q = StopQueue()
    q.push(b"T05", 10)
    assert q.restart([b"T00", b"T05"]) == b"T00"
    assert q.threads() == set()
