"""The ptrace target's layout stays as its package docstring draws it: every module it
names holds what the map says, modules stay readable in one sitting, and no layer
imports one above it."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import gdbstub.target.linux as package

LAYERS = ["threads", "registers", "breakpoints", "decode", "stops", "resume", "process"]
HERE = Path(package.__file__).parent


def test_every_name_in_the_map_exists() -> None:
    doc = package.__doc__ or ""
    refs = re.findall(r"``(\w+)\.(\w+(?:\.\w+)*)``", doc)
    assert len(refs) > 15
    for module_name, dotted in refs:
        obj: object = importlib.import_module(f"gdbstub.target.linux.{module_name}")
        names = dotted.split(".")
        if module_name in LAYERS and len(names) == 1 and not hasattr(obj, names[0]):
            # ``resume._resume_one``: a method of the layer's class
            obj = next(v for v in vars(obj).values()
                       if isinstance(v, type) and v.__module__ == obj.__name__ and hasattr(v, names[0]))
        for name in names:
            assert hasattr(obj, name), f"{module_name}.{dotted}"
            obj = getattr(obj, name)


def test_no_module_of_the_package_is_over_600_lines() -> None:
    for path in HERE.glob("*.py"):
        assert len(path.read_text().splitlines()) < 600, path.name


def test_layers_import_only_layers_below() -> None:
    for i, layer in enumerate(LAYERS):
        tree = ast.parse((HERE / f"{layer}.py").read_text())
        imported = {node.module for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module}
        above = imported & set(LAYERS[i:])
        assert not above, f"{layer} imports {above}"
