"""gdbstub: a GDB Remote Serial Protocol stub for Linux x86-64, in Python."""

__version__ = "0.1.0"

from .api import LaunchError, StubServer, attach, launch  # the Python API: see README

__all__ = ["LaunchError", "StubServer", "__version__", "attach", "launch"]
