"""The stub's loggers, which import ``logging`` only when a message is to be written.

``logging`` brings ``traceback``, ``tokenize``, ``threading``, ``string`` and ``weakref``:
6 ms of every start, for a debug log that is off in nearly every session. Until something
imports ``logging`` (``--debug``, ``monitor set debug``, a warning, or a host such as pytest)
nothing can have configured it, so a record below WARNING would be dropped and one at
WARNING or above would reach ``logging.lastResort`` (stderr, the bare message: what the
command line's handler writes too). A ``Logger`` here does exactly that without
``logging``, and hands every record to ``logging.getLogger(name)`` once it is imported.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging

DEBUG = 10
INFO = 20
WARNING = 30
ERROR = 40

_modules = sys.modules
_standalone = False  # the command line owns logging: its handler is installed on demand
_debug_file: str | None = None
_configured = False


class Logger:
    """A stand-in for ``logging.getLogger(name)`` with the methods the stub uses."""

    __slots__ = ("_logger", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger: logging.Logger | None = None

    def _real(self) -> logging.Logger | None:
        if self._logger is None:
            module = sys.modules.get("logging")
            if module is None:
                return None
            self._logger = module.getLogger(self.name)
        return self._logger

    def isEnabledFor(self, level: int) -> bool:  # logging's name
        """Asked twice a packet: without ``logging`` loaded, one dict look-up and no call."""
        real = self._logger
        if real is None:
            if "logging" not in _modules:
                return level >= WARNING
            real = self._real()
            if real is None:
                return level >= WARNING
        return real.isEnabledFor(level)

    def _log(self, level: int, msg: str, args: tuple[object, ...], exc_info: bool = False) -> None:
        real = self._logger or self._real()
        if real is None:
            if level < WARNING:
                return
            import logging  # a warning or an error: written as logging would write it

            real = self._logger = logging.getLogger(self.name)
        if real.isEnabledFor(level):
            real.log(level, msg, *args, exc_info=exc_info, stacklevel=3)

    def debug(self, msg: str, *args: object) -> None:
        self._log(DEBUG, msg, args)

    def info(self, msg: str, *args: object) -> None:
        self._log(INFO, msg, args)

    def warning(self, msg: str, *args: object) -> None:
        self._log(WARNING, msg, args)

    def error(self, msg: str, *args: object) -> None:
        self._log(ERROR, msg, args)

    def exception(self, msg: str, *args: object) -> None:
        self._log(ERROR, msg, args, exc_info=True)


def get_logger(name: str) -> Logger:
    return Logger(name)


def configure(debug: bool, debug_file: str | None) -> None:
    """The command line's logging: its handler on the 'gdbstub' logger (stderr or DEBUG_FILE,
    bare messages), installed now with ``--debug``, else when something turns logging on."""
    global _standalone, _debug_file
    _standalone, _debug_file = True, debug_file
    if debug:
        root = ready()
        if root is not None:
            root.setLevel(DEBUG)


def ready() -> logging.Logger | None:
    """Install the command line's handler if it is due and not yet there (``monitor set
    debug``, ``--debug-format``); the 'gdbstub' logger, or None outside the command line."""
    global _configured
    if not _standalone:
        return None
    import logging

    root = logging.getLogger("gdbstub")
    if not _configured:
        _configured = True
        handler: logging.Handler
        if _debug_file:
            handler = logging.FileHandler(_debug_file)
        else:
            handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
        root.setLevel(WARNING)
    return root
