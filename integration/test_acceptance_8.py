"""Acceptance check for issue 8: the Python API is "documented in README with a worked example".

The README's Python example (the fenced ```python block that calls `gdbstub.launch`) is run as
written, with `./prog` standing for build/loop (loop.c has the `hot` and `message` it uses), so the
documentation cannot drift from the API.
"""

from __future__ import annotations

import re
import sys

import harness
from harness import ProcessTracker

BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def readme_examples() -> list[str]:
    text = (harness.ROOT / "README.md").read_text()
    return [block for block in BLOCK.findall(text) if "gdbstub.launch(" in block]


def test_readme_has_a_worked_python_api_example() -> None:
    assert readme_examples(), "README.md has no ```python example using gdbstub.launch (issue 8)"


def test_readme_python_example_runs(procs: ProcessTracker, capsys) -> None:  # type: ignore[no-untyped-def]
    examples = readme_examples()
    assert examples, "README.md has no ```python example using gdbstub.launch (issue 8)"
    loop = str(harness.program("loop"))
    for code in examples:
        code = code.replace('"./prog"', repr(loop))
        namespace: dict[str, object] = {"__name__": "readme_example"}
        exec(compile(code, "README.md example", "exec"), namespace)
    out = capsys.readouterr().out
    sys.stdout.write(out)
    assert "acc=" in out or "hello, gdbstub" in out, out
