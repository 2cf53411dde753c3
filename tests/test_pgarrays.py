"""Packed PostgreSQL arrays: PostgreSQL reads exactly the values psycopg's own list adaptation would send."""

from __future__ import annotations

import struct

import pytest
from sqlalchemy import Engine, text

from ledger.storage.pgarrays import ByteaArray, Int2Array, Int8Array, PackedArray, TextArray

CASES: list[tuple[type[PackedArray], str, list[object]]] = [
    (Int2Array, "smallint[]", [0, 1, -1, 32767, -32768]),
    (Int8Array, "bigint[]", [0, -1, 2**53, 2**63 - 1, -(2**63)]),
    (ByteaArray, "bytea[]", [b"", b"\x00", bytes(range(256)), b"\x00" * 1000]),
    (TextArray, "varchar[]", ["", "COF-1", "L\u00e9 7", "\u65e5\u672c", 'a,b{c}"d\\e', "\U0001f600"]),
    (Int8Array, "bigint[]", []),
    (TextArray, "varchar[]", []),
]


@pytest.mark.parametrize(("packed", "sql_type", "values"), CASES)
def test_packed_array_reads_back_as_the_values(
    postgresql_engine: Engine, packed: type[PackedArray], sql_type: str, values: list[object]
) -> None:
    sent = packed.of(values)  # type: ignore[attr-defined]
    with postgresql_engine.connect() as conn:
        mine = conn.execute(text(f"SELECT CAST(:a AS {sql_type})"), {"a": sent}).scalar_one()
        theirs = conn.execute(text(f"SELECT CAST(:a AS {sql_type})"), {"a": values}).scalar_one()
        # and element by element, in order, through unnest (how the store uses them)
        rows = conn.execute(
            text(f"SELECT x FROM unnest(CAST(:a AS {sql_type})) WITH ORDINALITY AS t(x, n) ORDER BY n"), {"a": sent}
        )
        unnested = [row.x for row in rows]
    as_python = [bytes(v) if isinstance(v, memoryview) else v for v in mine]
    assert as_python == values
    assert [bytes(v) if isinstance(v, memoryview) else v for v in theirs] == values
    assert [bytes(v) if isinstance(v, memoryview) else v for v in unnested] == values


def test_an_element_out_of_range_is_refused_before_sending() -> None:
    with pytest.raises(struct.error):
        Int2Array.of([40_000])
