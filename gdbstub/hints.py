"""typing's, enum's and signal's names the stub uses at run time, without importing them.

Importing typing costs a session about 16 M instructions (with ``re``), and each
``typing.NamedTuple`` class nearly 1 M more: it compiles every field's annotation string
into a ForwardRef. mypy sees typing's own names (the TYPE_CHECKING branch); at run time
``NamedTuple`` builds the class ``collections.namedtuple`` would from the class body
(fields, defaults, methods, docstring) without its ``eval`` per class (half of its 0.4 M
instructions; 28 classes load in a session): a call giving every field by position makes
the tuple directly, and the first call with a keyword or a default compiles namedtuple's own
``__new__``, which serves every later call. ``Protocol`` is a plain base (the stub's protocols
are for the type checker only: none is instantiated, subclassed or used with isinstance),
and ``Any`` is ``object`` (for aliases such as ``Callable[[bytes], Any]``).

``enum`` costs a session 6 M instructions and ``signal`` (which imports it and turns its
constants into enums) 3.4 M more. ``Enum`` and ``StrEnum`` here make each member once, an
instance of its class (a ``str`` for ``StrEnum``) kept as a plain class attribute, with
enum's ``name``, ``value``, ``repr``, ``str``, iteration and ``Cls(value)`` lookup; identity
and hashing as enum's. ``signal`` is its C half ``_signal``: the same functions and numbers,
as plain ints (``signal_name`` gives what ``signal.Signals(n).name`` would).

``collections`` (with ``keyword``, ``operator``, ``reprlib``) and ``functools``, which imports
it, cost a session ~2.5 ms of CPU while gdb starts, slowing gdb's own start: ``Callable`` and
the other ``collections.abc`` names are for annotations and aliases only (a stand-in that
takes subscripts and ``|``), ``cache`` and ``lru_cache`` are a dict per function (bounded
by clearing), and ``deque`` is the C one in ``_collections``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as signal
    from collections import deque as deque
    from collections.abc import Callable as Callable
    from collections.abc import Iterable as Iterable
    from collections.abc import Iterator as Iterator
    from collections.abc import Mapping as Mapping
    from collections.abc import Sequence as Sequence
    from enum import Enum as Enum
    from enum import StrEnum as StrEnum
    from functools import cache as cache
    from functools import lru_cache as lru_cache
    from typing import Any as Any
    from typing import NamedTuple as NamedTuple
    from typing import Protocol as Protocol
else:
    import _signal as signal
    import sys
    from _collections import _tuplegetter, deque  # noqa: F401  (for the modules that import it from here)

    class _Alias:
        """collections.abc's generic names at run time: aliases subscript and join them."""

        __slots__ = ("name",)

        def __init__(self, name):
            self.name = name

        def __getitem__(self, item):
            return self

        def __or__(self, other):
            return self

        __ror__ = __or__

        def __repr__(self):
            return f"<alias {self.name}>"

    _KEYWORDS = object()  # separates a cached call's positional arguments from its keywords
    Callable, Iterable, Iterator, Mapping, Sequence = (
        _Alias(n) for n in ("Callable", "Iterable", "Iterator", "Mapping", "Sequence"))

    def lru_cache(maxsize=128):
        """functools.lru_cache(maxsize=N) for hashable arguments: at most N results kept (all
        dropped when full: the callers' working sets are far smaller)."""
        def wrap(func):
            results = {}

            def cached(*args, **kwargs):
                key = (*args, _KEYWORDS, *kwargs.items()) if kwargs else args
                try:
                    return results[key]
                except KeyError:
                    pass
                value = func(*args, **kwargs)
                if maxsize is not None and len(results) >= maxsize:
                    results.clear()
                results[key] = value
                return value

            cached.__wrapped__ = func
            cached.__name__ = func.__name__
            cached.__qualname__ = func.__qualname__
            cached.__doc__ = func.__doc__
            cached.cache_clear = results.clear
            return cached
        return wrap

    def cache(func):
        """functools.cache for positional, hashable arguments."""
        return lru_cache(None)(func)

    Any = object
    _tuple_new = tuple.__new__

    def _compiled_new(fields, defaults):
        """collections.namedtuple's __new__: compiled, so that keywords and defaults bind in C."""
        args = repr(tuple(fields)).replace("'", "")[1:-1]
        new = eval(f"lambda _cls, {args}: _tuple_new(_cls, ({args}))", {"_tuple_new": _tuple_new, "__builtins__": {}})
        new.__defaults__ = defaults or None
        return new

    def _make(cls, iterable):
        result = _tuple_new(cls, iterable)
        if len(result) != len(cls._fields):
            raise TypeError(f"Expected {len(cls._fields)} arguments, got {len(result)}")
        return result

    def _replace(self, /, **changes):
        result = self._make(map(changes.pop, self._fields, self))
        if changes:
            raise ValueError(f"Got unexpected field names: {list(changes)!r}")
        return result

    def _repr(self):
        return f"{type(self).__name__}({', '.join(f'{f}={v!r}' for f, v in zip(self._fields, self, strict=True))})"

    def _asdict(self):
        return dict(zip(self._fields, self, strict=True))

    def _getnewargs(self):
        return tuple(self)

    class _NamedTupleMeta(type):
        """collections.namedtuple's class, its __new__ compiled only when first needed."""

        def __new__(mcls, name, bases, namespace):
            if namespace.get("_root"):  # NamedTuple itself
                return super().__new__(mcls, name, bases, namespace)
            fields = tuple(namespace.get("__annotations__", {}))
            defaults = tuple(namespace[f] for f in fields if f in namespace)
            count = len(fields)

            def __new__(_cls, *args, **kwargs):
                if not kwargs and len(args) == count:
                    return _tuple_new(_cls, args)
                compiled = _compiled_new(fields, defaults)
                cls.__new__ = staticmethod(compiled)
                return compiled(_cls, *args, **kwargs)

            body = {"__slots__": (), "_fields": fields, "__match_args__": fields, "__new__": __new__,
                    "_field_defaults": dict(zip(fields[count - len(defaults):], defaults, strict=True)),
                    "_make": classmethod(_make), "_replace": _replace, "__repr__": _repr, "_asdict": _asdict,
                    "__getnewargs__": _getnewargs}
            body.update((k, v) for k, v in namespace.items() if k not in fields)
            for index, field in enumerate(fields):
                body[field] = _tuplegetter(index, f"Alias for field number {index}")
            cls = type(name, (tuple,), body)
            return cls

        def __call__(cls, typename, fields):
            """typing's functional form, NamedTuple("Name", [("field", type), ...])."""
            module = sys._getframe(1).f_globals.get("__name__", "__main__")
            return _NamedTupleMeta(typename, (), {"__annotations__": dict(fields), "__module__": module})

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
