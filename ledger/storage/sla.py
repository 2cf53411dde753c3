"""The shipments projection: each shipment's SLA record (`ledger.sla.ShipmentRecord`) as rows, so that a report
over 100k shipments reads one table instead of folding a million entries.

Derived data like the batch heads (ADR 0003): written in the append transaction, rebuildable from the log
(`chainproof db rebuild`), and checked against it by `chainproof verify --db`, which names every row that
disagrees. The append path writes without reading: a shipment event inserts its row; a handoff appends a line to
the row's `steps`; a delivery or cancellation fills the closing columns once (the rules refuse a second). One
commit's events are merged per shipment first, so each row is written once per commit, in the same statement as
the entries on PostgreSQL.

`sla_batches` holds each batch's origin (the lane starts there) and owner; `sla_shipments` one row per shipment.
Every event keeps its log index and logged time, so that a report over an older checkpoint or at an earlier
`as_of` sees exactly the events it would have seen then (`ShipmentRecord.seen`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ledger.errors import LedgerError
from ledger.events import (
    DeliveryData,
    HandoffData,
    OriginData,
    ShipmentCancelData,
    ShipmentData,
    Statement,
    parse_time,
)
from ledger.sla import Closing, ShipmentRecord, Step, epoch_seconds, epoch_us, origin_name

ShipmentKey = tuple[str, str, str]

SHIPMENT_COLUMNS = (
    "sku",
    "lot",
    "shipment_id",
    "merchant",
    "destination",
    "placed_at",
    "promised_by",
    "quantity",
    "unit",
    "idx",
    "logged_us",
    "steps",
    "delivered_at",
    "delivered_idx",
    "delivered_logged_us",
    "delivered_by",
    "delivered_quantity",
    "cancelled_at",
    "cancelled_idx",
    "cancelled_logged_us",
    "cancelled_by",
    "last_idx",
)
_CLOSING = {
    "delivered_idx": ("delivered_at", "delivered_logged_us", "delivered_by", "delivered_quantity"),
    "cancelled_idx": ("cancelled_at", "cancelled_logged_us", "cancelled_by"),
}
_FIRST_CLOSING_WINS = ", ".join(
    f"{column} = CASE WHEN sla_shipments.{idx} IS NULL THEN excluded.{column} ELSE sla_shipments.{column} END"
    for idx, columns in _CLOSING.items()
    for column in (*columns, idx)
)
_ON_CONFLICT = (
    f"ON CONFLICT (sku, lot, shipment_id) DO UPDATE SET steps = sla_shipments.steps || excluded.steps, "
    f"{_FIRST_CLOSING_WINS}, last_idx = excluded.last_idx"
)
SQLITE_UPSERT_SHIPMENTS = (
    f"INSERT INTO sla_shipments ({', '.join(SHIPMENT_COLUMNS)}) VALUES ({', '.join('?' for _ in SHIPMENT_COLUMNS)}) "
    + _ON_CONFLICT
)
SQLITE_INSERT_BATCHES = (
    "INSERT INTO sla_batches (sku, lot, merchant, origin, idx) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
# PostgreSQL: the rows as one JSON parameter (columns may be NULL, which the packed arrays cannot carry)
PG_UPSERT_SHIPMENTS = (
    f"INSERT INTO sla_shipments ({', '.join(SHIPMENT_COLUMNS)}) SELECT {', '.join(SHIPMENT_COLUMNS)} FROM "
    "json_populate_recordset(NULL::sla_shipments, %s::json) " + _ON_CONFLICT
)
PG_INSERT_BATCHES = (
    "INSERT INTO sla_batches (sku, lot, merchant, origin, idx) SELECT sku, lot, merchant, origin, idx FROM "
    "json_populate_recordset(NULL::sla_batches, %s::json) ON CONFLICT DO NOTHING"
)


def _step_line(step: Step) -> str:
    # actor ids hold no control characters (ledger.events refuses them), so tab and newline cannot occur in them
    return f"{step.log_index}\t{step.logged_us}\t{step.at}\t{step.sender}\t{step.holder}\n"


def _steps_of(text_value: str) -> tuple[Step, ...]:
    steps = []
    for line in text_value.split("\n"):
        if not line:
            continue
        index, logged_us, at, sender, holder = line.split("\t")
        steps.append(Step(sender, holder, int(at), int(index), int(logged_us)))
    return tuple(steps)


@dataclass
class SlaRows:
    """The projection rows a commit group writes, gathered event by event; `mark`/`rewind` drop a refused
    request's events."""

    events: list[tuple[int, str, Statement, BaseModel, str | None]] = field(default_factory=list)

    def add(self, index: int, logged_at: str, statement: Statement, data: BaseModel, owner: str | None) -> None:
        if isinstance(data, (OriginData, ShipmentData, DeliveryData, ShipmentCancelData)) or (
            isinstance(data, HandoffData) and data.shipment_id is not None
        ):
            self.events.append((index, logged_at, statement, data, owner))

    def mark(self) -> int:
        return len(self.events)

    def rewind(self, mark: int) -> None:
        del self.events[mark:]

    def __bool__(self) -> bool:
        return bool(self.events)

    def rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(batch rows, shipment rows), one shipment row per shipment the events touch."""
        batches: list[dict[str, Any]] = []
        changes: dict[ShipmentKey, dict[str, Any]] = {}
        logged: dict[str, int] = {}  # a commit logs its events at one moment: read it once
        for index, logged_at, statement, data, owner in self.events:
            sku, lot = statement.sku, statement.lot
            logged_us = logged.get(logged_at)
            if logged_us is None:
                logged_us = logged[logged_at] = epoch_us(parse_time(logged_at))
            if isinstance(data, OriginData):
                origin = origin_name(data.country, data.region)
                batches.append({"sku": sku, "lot": lot, "merchant": statement.actor, "origin": origin, "idx": index})
                continue
            key = (sku, lot, data.shipment_id)  # type: ignore[attr-defined]
            row = changes.get(key)
            if row is None:
                row = changes[key] = dict.fromkeys(SHIPMENT_COLUMNS)
                row.update(sku=sku, lot=lot, shipment_id=key[2], steps="")
            row["last_idx"] = index  # events come in log order: the last one's index is the largest
            if isinstance(data, ShipmentData):
                row.update(
                    merchant=owner or statement.actor,
                    destination=data.destination,
                    placed_at=epoch_seconds(parse_time(data.placed_at)),
                    promised_by=epoch_seconds(parse_time(data.promised_by)),
                    quantity=data.quantity,
                    unit=data.unit,
                    idx=index,
                    logged_us=logged_us,
                )
            elif isinstance(data, HandoffData):
                at = epoch_seconds(parse_time(data.at))
                row["steps"] += _step_line(Step(data.from_actor, data.to, at, index, logged_us))
            elif isinstance(data, DeliveryData):
                row.update(
                    delivered_at=epoch_seconds(parse_time(data.delivered_at)),
                    delivered_idx=index,
                    delivered_logged_us=logged_us,
                    delivered_by=statement.actor,
                    delivered_quantity=data.quantity,
                )
            elif isinstance(data, ShipmentCancelData):
                row.update(
                    cancelled_at=epoch_seconds(parse_time(data.cancelled_at)),
                    cancelled_idx=index,
                    cancelled_logged_us=logged_us,
                    cancelled_by=statement.actor,
                )
        return batches, list(changes.values())

    def write_sqlite(self, conn: Connection) -> None:
        _write_sqlite(conn, *self.rows())

    def pg_parameters(self) -> tuple[str, str]:
        batches, shipments = self.rows()
        # only the columns a row sets (json_populate_recordset reads a missing key as NULL): most rows are a
        # handoff's, which sets its steps and last_idx
        compact = [{k: v for k, v in row.items() if v is not None} for row in shipments]
        return json.dumps(batches, separators=(",", ":")), json.dumps(compact, separators=(",", ":"))


def record_row(record: ShipmentRecord) -> dict[str, Any]:
    """The row a shipment's record is stored as."""
    delivery, cancel = record.delivery, record.cancel
    return {
        "sku": record.sku,
        "lot": record.lot,
        "shipment_id": record.shipment_id,
        "merchant": record.merchant,
        "destination": record.destination,
        "placed_at": record.placed_at,
        "promised_by": record.promised_by,
        "quantity": record.quantity,
        "unit": record.unit,
        "idx": record.index,
        "logged_us": record.logged_us,
        "steps": "".join(_step_line(step) for step in record.steps),
        "delivered_at": delivery.at if delivery else None,
        "delivered_idx": delivery.log_index if delivery else None,
        "delivered_logged_us": delivery.logged_us if delivery else None,
        "delivered_by": delivery.actor if delivery else None,
        "delivered_quantity": delivery.quantity if delivery else None,
        "cancelled_at": cancel.at if cancel else None,
        "cancelled_idx": cancel.log_index if cancel else None,
        "cancelled_logged_us": cancel.logged_us if cancel else None,
        "cancelled_by": cancel.actor if cancel else None,
        "last_idx": max(
            [record.index, *(s.log_index for s in record.steps), *(c.log_index for c in (delivery, cancel) if c)]
        ),
    }


_SELECT = (
    "SELECT s.sku, s.lot, s.shipment_id, s.merchant, COALESCE(b.origin, ''), s.destination, s.placed_at, "
    "s.promised_by, s.idx, s.logged_us, s.quantity, s.unit, s.steps, s.delivered_at, s.delivered_idx, "
    "s.delivered_logged_us, s.delivered_by, s.delivered_quantity, s.cancelled_at, s.cancelled_idx, "
    "s.cancelled_logged_us, s.cancelled_by, s.last_idx FROM sla_shipments s LEFT JOIN sla_batches b "
    "ON b.sku = s.sku AND b.lot = s.lot"
)


def all_rows(conn: Connection) -> list[Any]:
    """Every shipment row, as `record_of_row` and `ShipmentColumns.load_rows` read them (straight from the
    driver: 100k rows through SQLAlchemy's result objects cost a tenth of a second more)."""
    cursor = conn.exec_driver_sql(_SELECT)
    return list(cursor.fetchall())


def record_of_row(row: Sequence[Any]) -> ShipmentRecord:
    """A shipment row as its record (LedgerError for a row without its shipment event)."""
    (sku, lot, sid, merchant, origin, destination, placed_at, promised_by, index, logged_us, quantity, unit, steps,
     d_at, d_idx, d_logged, d_by, d_quantity, c_at, c_idx, c_logged, c_by, _last) = row  # fmt: skip
    if merchant is None or placed_at is None or promised_by is None or index is None or logged_us is None:
        raise LedgerError(f"sla_shipments row for shipment {sid} of {sku}/{lot} has no shipment event")
    return ShipmentRecord(
        sku=sku,
        lot=lot,
        shipment_id=sid,
        merchant=merchant,
        origin=origin,
        destination=destination,
        placed_at=int(placed_at),
        promised_by=int(promised_by),
        index=int(index),
        logged_us=int(logged_us),
        quantity=None if quantity is None else float(quantity),
        unit=unit,
        steps=_steps_of(steps or ""),
        delivery=None if d_idx is None else Closing(int(d_at), int(d_idx), int(d_logged), d_by, _float(d_quantity)),
        cancel=None if c_idx is None else Closing(int(c_at), int(c_idx), int(c_logged), c_by),
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def shipment_and_lane(
    conn: Connection, sku: str, lot: str, shipment_id: str
) -> tuple[ShipmentRecord | None, list[ShipmentRecord]]:
    """One shipment, and the shipments of its lane placed no later than it (what its lane rule compares it with),
    as stored: a product page's status reads these, not the whole projection."""
    rows = conn.execute(
        text(f"{_SELECT} WHERE s.sku = :sku AND s.lot = :lot AND s.shipment_id = :id"),
        {"sku": sku, "lot": lot, "id": shipment_id},
    ).all()
    if not rows or rows[0][6] is None:
        return None, []
    record = record_of_row(rows[0])
    lane = conn.execute(
        text(
            f"{_SELECT} WHERE s.destination = :destination AND s.placed_at <= :placed "
            "AND COALESCE(b.origin, '') = :origin"
        ),
        {"destination": record.destination, "placed": record.placed_at, "origin": record.origin},
    ).all()
    return record, [record_of_row(row) for row in lane if row[6] is not None]


def changed_records(conn: Connection, since: int) -> list[ShipmentRecord]:
    """The shipments with an event at index `since` or later (as stored: not cut to any view)."""
    rows = conn.execute(text(f"{_SELECT} WHERE s.last_idx >= :since"), {"since": since}).all()
    return [record_of_row(row) for row in rows]


def stored_records(conn: Connection) -> dict[ShipmentKey, tuple[ShipmentRecord, int | None] | str]:
    """Every stored shipment row, as a record and its stored `last_idx` (or why it cannot be read)."""
    found: dict[ShipmentKey, tuple[ShipmentRecord, int | None] | str] = {}
    for row in conn.execute(text(_SELECT)).all():
        key = (row[0], row[1], row[2])
        try:
            found[key] = (record_of_row(row), None if row[-1] is None else int(row[-1]))
        except (LedgerError, ValueError, TypeError) as exc:
            found[key] = str(exc)
    return found


def compare(
    expected: Iterable[ShipmentRecord], stored: Mapping[ShipmentKey, tuple[ShipmentRecord, int | None] | str]
) -> list[str]:
    """How the stored shipment rows differ from the records the log gives, one line per row, naming the columns
    that differ (empty: they agree)."""
    wanted = {record.key(): record for record in expected}
    differences = []
    for key in sorted(wanted.keys() | stored.keys()):
        name = f"shipment {key[2]} of {key[0]}/{key[1]}"
        want, have = wanted.get(key), stored.get(key)
        if want is None:
            differences.append(f"sla_shipments has a row for {name}, which the log does not hold")
        elif have is None:
            differences.append(f"sla_shipments has no row for {name}")
        elif isinstance(have, str):
            differences.append(f"sla_shipments row for {name} cannot be read: {have}")
        elif have[0] != want or have[1] != record_row(want)["last_idx"]:
            want_row, have_row = record_row(want), {**record_row(have[0]), "last_idx": have[1]}
            shown = [
                f"{c} is {have_row[c]!r}, the log says {want_row[c]!r}"
                for c in SHIPMENT_COLUMNS
                if want_row[c] != have_row[c]
            ]
            if have[0].origin != want.origin:
                shown.append(f"its batch's origin (sla_batches) is {have[0].origin!r}, the log says {want.origin!r}")
            differences.append(f"sla_shipments row for {name}: {'; '.join(shown)}")
    return differences


def write_all(
    conn: Connection,
    records: Iterable[ShipmentRecord],
    origins: Mapping[tuple[str, str], tuple[str, str, int]],
    *,
    postgres: bool,
) -> None:
    """Replace the projection with these records and batch origins (batch -> (merchant, origin, index)); the
    caller holds the append lock."""
    conn.exec_driver_sql("DELETE FROM sla_shipments")
    conn.exec_driver_sql("DELETE FROM sla_batches")
    batch_rows = [
        {"sku": sku, "lot": lot, "merchant": merchant, "origin": origin, "idx": index}
        for (sku, lot), (merchant, origin, index) in origins.items()
    ]
    shipment_rows = [record_row(record) for record in records]
    for start in range(0, max(len(batch_rows), len(shipment_rows)), 5000):
        batches, shipments = batch_rows[start : start + 5000], shipment_rows[start : start + 5000]
        if postgres:
            driver: Any = conn.connection.dbapi_connection
            with driver.cursor() as cursor:
                if batches:
                    cursor.execute(PG_INSERT_BATCHES, (json.dumps(batches),), prepare=False)
                if shipments:
                    cursor.execute(PG_UPSERT_SHIPMENTS, (json.dumps(shipments),), prepare=False)
        else:
            _write_sqlite(conn, batches, shipments)


def _write_sqlite(conn: Connection, batches: list[dict[str, Any]], shipments: list[dict[str, Any]]) -> None:
    if batches:
        conn.exec_driver_sql(SQLITE_INSERT_BATCHES, [tuple(b.values()) for b in batches])
    if shipments:
        conn.exec_driver_sql(SQLITE_UPSERT_SHIPMENTS, [tuple(s[c] for c in SHIPMENT_COLUMNS) for s in shipments])
