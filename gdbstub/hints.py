"""typing's, enum's and signal's names the stub uses at run time, without importing them.

Importing typing costs a session about 16 M instructions (with ``re``), and each
``typing.NamedTuple`` class nearly 1 M more: it compiles every field's annotation string
into a ForwardRef. mypy sees typing's own names (the TYPE_CHECKING branch); at run time
``NamedTuple`` builds the same ``collections.namedtuple`` typing builds from the class body
(fields, defaults, methods, docstring), ``Protocol`` is a plain base (the stub's protocols
are for the type checker only: none is instantiated, subclassed or used with isinstance),
and ``Any`` is ``object`` (for aliases such as ``Callable[[bytes], Any]``).

``enum`` costs a session 6 M instructions and ``signal`` (which imports it and turns its
constants into enums) 3.4 M more. ``Enum`` and ``StrEnum`` here make each member once, an
instance of its class (a ``str`` for ``StrEnum``) kept as a plain class attribute, with
enum's ``name``, ``value``, ``repr``, ``str``, iteration and ``Cls(value)`` lookup; identity
and hashing as enum's. ``signal`` is its C half ``_signal``: the same functions and numbers,
as plain ints (``signal_name`` gives what ``signal.Signals(n).name`` would).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as signal
    from enum import Enum as Enum
    from enum import StrEnum as StrEnum
    from typing import Any as Any
    from typing import NamedTuple as NamedTuple
    from typing import Protocol as Protocol
else:
    import _signal as signal
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

    class _EnumMeta(type):
        def __new__(mcls, name, bases, namespace):
            members = {k: v for k, v in namespace.items() if not k.startswith("_") and not callable(v)}
            cls = super().__new__(mcls, name, bases, {k: v for k, v in namespace.items() if k not in members})
            cls._members = {}
            for key, value in members.items():
                member = str.__new__(cls, value) if issubclass(cls, str) else object.__new__(cls)
                member.name, member.value = key, value
                cls._members[value] = member
                setattr(cls, key, member)
            return cls

        def __call__(cls, value):
            try:
                return cls._members[value]
            except KeyError:
                raise ValueError(f"{value!r} is not a valid {cls.__name__}") from None

        def __iter__(cls):
            return iter(cls._members.values())

        def __len__(cls):
            return len(cls._members)

    class Enum(metaclass=_EnumMeta):
        def __repr__(self):
            return f"<{type(self).__name__}.{self.name}: {self.value!r}>"

        def __str__(self):
            return f"{type(self).__name__}.{self.name}"

        def __reduce__(self):
            return type(self), (self.value,)

        def __copy__(self):
            return self

        def __deepcopy__(self, memo):
            return self

    class StrEnum(str, Enum):
        __repr__ = Enum.__repr__
        __str__ = str.__str__
        __format__ = str.__format__


def signal_name(signo: int) -> str:
    """signal.Signals(SIGNO).name (the first name in order, for SIGIOT/SIGABRT and the like);
    ValueError for a number with no name."""
    names = sorted((v, k) for k, v in vars(signal).items()
                   if k.startswith("SIG") and not k.startswith("SIG_") and isinstance(v, int))
    for value, name in names:
        if value == signo:
            return name
    raise ValueError(f"{signo} is not a valid signal")
