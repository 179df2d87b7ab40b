"""Issue 19: what `pip install pygdbstub` would give a user. A wheel built from the checkout's
tracked files alone goes into a fresh venv, with nothing else of the checkout on the path, and
its `gdbstub` command serves stock gdb a real session over stdio."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import harness
import pytest
from extutil import expect_in, gdb

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

DISTRIBUTION = "pygdbstub"  # "gdbstub" on PyPI is another project


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> str:
    """Run a build step; its output is the failure message."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV")}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the fresh venv it is installed in), built once for the module."""
    if shutil.which("git") is None or not (harness.ROOT / ".git").exists():
        pytest.skip("not a git checkout: no way to tell its tracked files")
    base = tmp_path_factory.mktemp("wheel")
    clean = base / "checkout"
    tracked = _run(["git", "ls-files", "-z"], harness.ROOT).split("\0")
    for name in filter(None, tracked):
        source = harness.ROOT / name
        if source.is_file():  # a file deleted in the work tree but still tracked is left out
            (clean / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clean / name)
    dist = base / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(clean)], base)
    wheels = list(dist.glob("*.whl"))
    assert len(wheels) == 1, wheels
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], base)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheels[0])], base)
    return wheels[0], venv


def test_pyproject_names_the_distribution():
    project = tomllib.loads((harness.ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION
    assert "scripts" not in project  # the command is bin/gdbstub itself (pip's wrapper imports re)
    assert tomllib.loads((harness.ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["script-files"] == [
        "bin/gdbstub"]
    assert project["entry-points"]["pytest11"] == {"gdbstub": "gdbstub.pytest_plugin"}
    assert f"pip install {DISTRIBUTION}" in (harness.ROOT / "README.md").read_text()


def test_wheel_holds_the_package_and_no_tests(installed):
    wheel, _ = installed
    assert wheel.name.startswith(f"{DISTRIBUTION}-")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    data = f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.data"
    assert tops == {"gdbstub", data, next(t for t in tops if t.endswith(".dist-info"))}, tops
    assert [n for n in names if n.startswith(data)] == [f"{data}/scripts/gdbstub"]
    assert "gdbstub/arch/features/" not in names or any(n.endswith(".xml") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "gdbstub = gdbstub.pytest_plugin" in text and "console_scripts" not in text, text


def test_installed_command_serves_gdb_over_stdio(procs, installed, tmp_path):
    """The venv's own `gdbstub` (run from outside the checkout) debugs a program for stock gdb."""
    _, venv = installed
    command = venv / "bin" / "gdbstub"
    assert command.read_text().splitlines()[0] == f"#!{venv / 'bin' / 'python'}"  # no wrapper: the script itself
    where = _run([str(venv / "bin" / "python"), "-c", "import gdbstub; print(gdbstub.__file__)"], tmp_path)
    assert str(venv) in where and str(harness.ROOT) not in where, where
    program = harness.program("loop")
    result = gdb(procs, f"target remote | {command} - {program} 2",
                 ["break add", "continue", "p a", "p b", "continue"], file=program)
    expect_in(result.stdout, r"^Breakpoint 1, add \(a=42, b=2\)", r"^\$1 = 42$", r"^\$2 = 2$",
              r"exited with code 07\]$", context=result.describe())
