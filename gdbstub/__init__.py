"""gdbstub: a GDB Remote Serial Protocol stub for Linux x86-64, in Python."""

__version__ = "0.1.0"

# The submodule gdbstub/launch.py (the stub's program launcher) has the API function's name: load it
# first, so the function bound below stays gdbstub.launch. Loaded later (by `import gdbstub.cli`, say),
# it would replace the function with the module.
from . import launch as _launcher  # noqa: F401
from .api import LaunchError, StubServer, attach, launch  # the Python API: see README

__all__ = ["LaunchError", "StubServer", "__version__", "attach", "launch"]
