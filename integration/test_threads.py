"""Threads (acceptance for the threads issue): named threads, a breakpoint in a worker, switching threads."""

from __future__ import annotations

import re

import pytest
from harness import expect


@pytest.mark.threads
@pytest.mark.parametrize("prog", ["threads", "threads-32"])
def test_break_in_worker_and_list_threads(debug, prog):
    s = debug(
        prog,
        [],
        ["break worker", "continue", "info threads", "bt 2", "thread 1", "bt 1", "delete", "continue"],
    )
    expect(
        s,
        r"^Thread \d+ \"worker-\d\" hit Breakpoint 1, worker \(id=\d\)",
        r"^\* \d+\s+Thread \d+\.\d+ \"worker-\d\"\s+worker \(id=\d\)",
        r"^\[Switching to thread 1 \(Thread \d+\.\d+\)\]",
        r"^\[Inferior 1 \(process \d+\) exited normally\]$",
    )
    listed = re.findall(r"^\*?\s+\d+\s+Thread \d+\.\d+ \"([\w-]+)\"", s.out, re.M)
    assert len(listed) == 9, f"want main + 8 workers, got {listed}\n{s.describe()}"
    assert listed[0] == prog, listed
    assert sorted(listed[1:]) == [f"worker-{n}" for n in range(1, 9)], listed
    assert "counter=36" in s.inferior_output, s.describe()
