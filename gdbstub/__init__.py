"""gdbstub: a GDB Remote Serial Protocol stub for Linux x86-64, in Python."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs the command line 2 ms
__version__ = "0.1.0"

__all__ = ["LaunchError", "StubServer", "__version__", "attach", "launch"]

if TYPE_CHECKING:
    from typing import Any

    from .api import LaunchError, StubServer, attach, launch  # the Python API: see README


def __getattr__(name: str) -> Any:
    """The Python API, imported on first use: the command line (``python -m gdbstub``) must
    not pay for the API and its client (pathlib, subprocess, threading) before it listens."""
    if name in ("LaunchError", "StubServer", "attach", "launch"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
