"""gdbstub: a GDB Remote Serial Protocol stub for Linux x86-64, in Python."""

__version__ = "0.1.0"
