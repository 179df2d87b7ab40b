"""The non-stop stop queue: one notification outstanding, the rest via vStopped."""

from __future__ import annotations

from gdbstub.protocol.stopqueue import StopQueue


def test_first_stop_is_notified_the_rest_wait_for_vstopped() -> None:
    q = StopQueue()
    assert q.push(b"T05thread:1;") == b"Stop:T05thread:1;"
    assert q.push(b"T05thread:2;") is None  # one notification outstanding at a time
    assert q.push(b"T05thread:3;") is None
    assert q.acknowledge() == b"T05thread:2;"
    assert q.acknowledge() == b"T05thread:3;"
    assert q.acknowledge() == b"OK"
    assert q.push(b"T05thread:4;") == b"Stop:T05thread:4;"  # drained: notify again


def test_question_restarts_the_sequence() -> None:
    q = StopQueue()
    q.push(b"T05thread:1;")
    q.push(b"T05thread:2;")
    assert q.restart([b"T00thread:1;", b"T00thread:5;"]) == b"T00thread:1;"
    assert q.push(b"T05thread:6;") is None  # no notification until the sequence is drained
    assert q.acknowledge() == b"T00thread:5;"
    assert q.acknowledge() == b"T05thread:6;"
    assert q.acknowledge() == b"OK"


def test_question_with_nothing_stopped_is_ok() -> None:
    q = StopQueue()
    assert q.restart([]) == b"OK"
    assert q.push(b"T05thread:1;") == b"Stop:T05thread:1;"
