"""PostgreSQL arrays packed in their binary wire format, for the bulk parameters appends send under the lock.

psycopg adapts a Python list element by element in Python (about 1 µs each); an append of 400 events sends about
4,000 elements, and it does so while holding the append lock that every worker waits for. Packing the same bytes
with `struct` takes a fifth of that. The format is PostgreSQL's `array_send`: a header (dimensions, null flag,
element type), each dimension's length and lower bound, then each element as a 4-byte length and its binary value.
No element may be NULL (none of ours can be).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import ClassVar, Self

from psycopg.adapt import AdaptersMap, Buffer, Dumper
from psycopg.pq import Format

_HEAD = struct.Struct(">iiiii")  # ndim = 1, no nulls, element oid, length, lower bound 1
_EMPTY = struct.Struct(">iii")  # ndim = 0, no nulls, element oid
_LENGTH = struct.Struct(">i")


class PackedArray(bytes):
    """An array's binary form; subclasses say its element type (what psycopg sends as the parameter's oid)."""

    element_oid: ClassVar[int] = 0

    @classmethod
    def _pack(cls, count: int, body: bytes) -> Self:
        if not count:
            return cls(_EMPTY.pack(0, 0, cls.element_oid))
        return cls(_HEAD.pack(1, 0, cls.element_oid, count, 1) + body)

    @classmethod
    def _of_bytes(cls, values: Sequence[bytes]) -> Self:
        pack = _LENGTH.pack
        return cls._pack(len(values), b"".join([pack(len(v)) + v for v in values]))


class _IntArray(PackedArray):
    element: ClassVar[struct.Struct]  # the element's length (4 bytes) and its value, big-endian

    @classmethod
    def of(cls, values: Sequence[int]) -> Self:
        pack, width = cls.element.pack, cls.element.size - _LENGTH.size
        return cls._pack(len(values), b"".join([pack(width, v) for v in values]))


class Int2Array(_IntArray):
    element_oid = 21
    element = struct.Struct(">ih")


class Int8Array(_IntArray):
    element_oid = 20
    element = struct.Struct(">iq")


class ByteaArray(PackedArray):
    element_oid = 17

    @classmethod
    def of(cls, values: Sequence[bytes]) -> Self:
        return cls._of_bytes(values)


class TextArray(PackedArray):
    element_oid = 25

    @classmethod
    def of(cls, values: Sequence[str]) -> Self:
        return cls._of_bytes([v.encode("utf-8") for v in values])


def _dumper(array_oid: int) -> type[Dumper]:
    class PackedArrayDumper(Dumper):
        format = Format.BINARY
        oid = array_oid

        def dump(self, obj: bytes) -> Buffer:
            return obj

    return PackedArrayDumper


# The array types' oids (fixed in PostgreSQL's catalog): int2[] 1005, int8[] 1016, bytea[] 1001, text[] 1009.
_DUMPERS = (
    (Int2Array, _dumper(1005)),
    (Int8Array, _dumper(1016)),
    (ByteaArray, _dumper(1001)),
    (TextArray, _dumper(1009)),
)


def register(connection_adapters: AdaptersMap) -> None:
    """Teach a psycopg connection to send packed arrays as they are (called for each new connection)."""
    for packed_type, dumper in _DUMPERS:
        connection_adapters.register_dumper(packed_type, dumper)
