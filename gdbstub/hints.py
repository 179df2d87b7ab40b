"""typing's names the stub uses at run time, without importing typing.

Importing typing costs a session about 16 M instructions (with ``re``), and each
``typing.NamedTuple`` class nearly 1 M more: it compiles every field's annotation string
into a ForwardRef. mypy sees typing's own names (the TYPE_CHECKING branch); at run time
``NamedTuple`` builds the same ``collections.namedtuple`` typing builds from the class body
(fields, defaults, methods, docstring), ``Protocol`` is a plain base (the stub's protocols
are for the type checker only: none is instantiated, subclassed or used with isinstance),
and ``Any`` is ``object`` (for aliases such as ``Callable[[bytes], Any]``).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any as Any
    from typing import NamedTuple as NamedTuple
    from typing import Protocol as Protocol
else:
    from collections import namedtuple

    Any = object

    class _NamedTupleMeta(type):
        def __new__(mcls, name, bases, namespace):
            if namespace.get("_root"):  # NamedTuple itself
                return super().__new__(mcls, name, bases, namespace)
            types = namespace.get("__annotations__", {})
            fields = list(types)
            defaults = [namespace[f] for f in fields if f in namespace]
            cls = namedtuple(name, fields, defaults=defaults, module=namespace["__module__"])
            cls.__annotations__ = types
            for key, value in namespace.items():
                if key not in fields and key not in ("__module__", "__annotations__"):
                    setattr(cls, key, value)
            return cls

    class NamedTuple(metaclass=_NamedTupleMeta):
        _root = True

    class Protocol:
        __slots__ = ()
