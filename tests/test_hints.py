"""gdbstub.hints stands in for typing.NamedTuple, enum and signal at run time: each behaves
as the real one does wherever the stub uses it."""

from __future__ import annotations

import copy
import enum
import pickle
import signal
import typing

import pytest

from gdbstub import hints


class Real(typing.NamedTuple):
    """a record"""

    a: int
    b: str = "x"
    c: int = 3

    @property
    def twice(self) -> int:
        return self.a * 2


class Ours(hints.NamedTuple):  # type: ignore[misc]
    """a record"""

    a: int
    b: str = "x"
    c: int = 3

    @property
    def twice(self) -> int:
        return self.a * 2


@pytest.mark.parametrize("make", [
    lambda cls: cls(1, "y", 4),  # every field by position first: the direct path
    lambda cls: cls(1),
    lambda cls: cls(a=2, c=9),
    lambda cls: cls(1, "y", 4),  # and again, through the compiled __new__
    lambda cls: cls._make([1, "z", 2]),
    lambda cls: cls(5)._replace(b="w"),
])
def test_named_tuple_as_typing_builds_it(make) -> None:
    ours, real = make(Ours), make(Real)
    assert tuple(ours) == tuple(real) and repr(ours) == repr(real).replace("Real", "Ours")
    assert ours._asdict() == real._asdict() and ours.twice == real.twice
    assert copy.deepcopy(ours) == ours and pickle.loads(pickle.dumps(ours)) == ours
    assert hash(ours) == hash(tuple(real))


def test_named_tuple_class() -> None:
    assert Ours._fields == Real._fields and Ours._field_defaults == Real._field_defaults
    assert Ours.__doc__ == Real.__doc__ and Ours.__match_args__ == Real.__match_args__
    assert Ours.__module__ == __name__ and Ours.__qualname__ == "Ours"
    for bad in ((), (1, 2, 3, 4)):
        with pytest.raises(TypeError):
            Ours(*bad)
    with pytest.raises(TypeError):
        Ours._make([1])
    with pytest.raises(ValueError, match="unexpected field"):
        Ours(1)._replace(d=1)


def test_enum_and_str_enum() -> None:
    class Kind(hints.Enum):  # type: ignore[misc]
        A = "a"
        B = "b"

    class State(hints.StrEnum):  # type: ignore[misc]
        RUNNING = "running"

    class RealKind(enum.Enum):
        A = "a"
        B = "b"

    class RealState(enum.StrEnum):
        RUNNING = "running"

    assert repr(Kind.A) == repr(RealKind.A).replace("RealKind", "Kind")
    assert str(Kind.A) == "Kind.A" and f"{Kind.A}" == f"{RealKind.A}".replace("RealKind", "Kind")
    assert (Kind.A.name, Kind.A.value) == ("A", "a") and Kind("b") is Kind.B and list(Kind) == [Kind.A, Kind.B]
    assert Kind.A != "a" and copy.deepcopy(Kind.A) is Kind.A and copy.copy(Kind.B) is Kind.B
    with pytest.raises(ValueError):
        Kind("c")
    assert repr(State.RUNNING) == repr(RealState.RUNNING).replace("RealState", "State")
    assert str(State.RUNNING) == f"{State.RUNNING}" == "running" == State.RUNNING
    assert hash(State.RUNNING) == hash("running") and State("running") is State.RUNNING


def test_signal_numbers_and_names() -> None:
    assert hints.signal.SIGTRAP == signal.SIGTRAP and type(hints.signal.SIGTRAP) is int
    for signo in range(70):
        try:
            name = signal.Signals(signo).name
        except ValueError:
            with pytest.raises(ValueError):
                hints.signal_name(signo)
        else:
            assert hints.signal_name(signo) == name


def test_named_tuple_functional_form() -> None:
    ours = hints.NamedTuple("Request", [("addr", int), ("length", int)])
    real = typing.NamedTuple("Request", [("addr", int), ("length", int)])  # noqa: UP014 (the form compared)
    assert ours._fields == real._fields and ours.__module__ == real.__module__ == __name__
    assert repr(ours(1, length=2)) == repr(real(1, length=2)) and tuple.__new__(ours, (3, 4)).length == 4
