"""Fixed-size C structures declared as named ``struct`` fields.

construct is the project's tool for declaring layouts, but importing it costs
more than the stub's whole start-up; the few fixed records gdb's first packets
need (auxv, r_debug, link_map, gdb's File-I/O stat) are declared with this
instead, keeping construct's ``parse``/``build``/``sizeof`` so they read the same.
"""

from __future__ import annotations

import struct

from .hints import Any, Iterator, Mapping


class Fields(dict[str, Any]):
    """Parsed fields, also as attributes (``entry.a_type``), as construct's Container."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Record:
    """A C structure: ORDER ('<' little, '>' big endian) and (name, struct code) fields;
    a field named None is padding (its code is a count of 'x')."""

    def __init__(self, order: str, *fields: tuple[str | None, str]) -> None:
        self.names = tuple(name for name, _ in fields if name is not None)
        self._struct = struct.Struct(order + "".join(code for _, code in fields))

    def sizeof(self) -> int:
        return self._struct.size

    def parse(self, data: bytes) -> Fields:
        """The fields of DATA's first sizeof() bytes (struct.error when DATA is shorter)."""
        return Fields(zip(self.names, self._struct.unpack_from(data), strict=True))

    def values_each(self, data: bytes) -> Iterator[tuple[Any, ...]]:
        """The field values (in declaration order) of each whole record DATA holds, one after
        another: a table (auxv, a dynamic section) read without a Fields made per entry."""
        size = self._struct.size
        return self._struct.iter_unpack(data[:len(data) - len(data) % size])

    def build(self, values: Mapping[str, int]) -> bytes:
        return self._struct.pack(*(values[name] for name in self.names))
