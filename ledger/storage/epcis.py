"""The EPCIS query index: one row per log entry with the business step and event time of the EPCIS event it
exports as (registrations and entries that are not batch events: NULL), so a query by time, step and batch
reads an index, not the log.

A read cache, not a projection written by appends: a query first indexes the entries its checkpoint holds that
the table does not (contiguous chunks, each one statement; several workers may race and only repeat work), then
reads it. Nothing in it is trusted: each answer is rebuilt from the entries' own leaves, and `db rebuild` empties
it (the next query fills it again). Created by migration 0009.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, MetaData, String, Table, and_, func, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from ledger.entry import parse_leaf
from ledger.epcis.export import BIZ_STEP_OF_TYPE, event_time
from ledger.epcis.query import EventQuery
from ledger.errors import LedgerError
from ledger.events import gtin14, parse_time, validate_statement
from ledger.sla import epoch_us
from ledger.storage.schema import entries, gtin_batches

_metadata = MetaData()
epcis_events = Table(
    "epcis_events",
    _metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("sku", String(64), nullable=False),
    Column("lot", String(64), nullable=False),
    Column("biz_step", String(32)),
    Column("event_time_us", BigInteger),
)
CHUNK = 5000


def index_row(index: int, leaf: bytes) -> dict[str, Any]:
    """An entry's row: its batch, and its EPCIS business step and event time (None if it exports no event)."""
    none = {"idx": index, "sku": "", "lot": "", "biz_step": None, "event_time_us": None}
    try:
        parsed = parse_leaf(leaf)
    except LedgerError:  # not a readable entry
        return none
    raw = parsed.statement
    none |= {"sku": str(raw.get("sku", ""))[:64], "lot": str(raw.get("lot", ""))[:64]}
    try:
        statement, data = validate_statement(raw)
    except LedgerError:  # a registration, or an entry that does not validate (the verifier reports those)
        return none
    moment = parse_time(event_time(data, parsed.logged_at))
    return {
        "idx": index,
        "sku": statement.sku,
        "lot": statement.lot,
        "biz_step": BIZ_STEP_OF_TYPE[statement.type],
        "event_time_us": epoch_us(moment),
    }


def catch_up(conn: Connection, size: int, *, postgres: bool) -> int:
    """Index the entries below `size` the table does not hold yet; returns how many it indexed."""
    start = int(conn.execute(select(func.coalesce(func.max(epcis_events.c.idx) + 1, 0))).scalar_one())
    done = 0
    while start < size:
        end = min(start + CHUNK, size)
        leaves = conn.execute(
            select(entries.c.idx, entries.c.leaf).where(entries.c.idx >= start, entries.c.idx < end)
        ).all()
        rows = [index_row(int(index), bytes(leaf)) for index, leaf in leaves]
        if rows:
            if postgres:
                conn.execute(pg_insert(epcis_events).on_conflict_do_nothing(), rows)
            else:
                conn.execute(epcis_events.insert().prefix_with("OR IGNORE"), rows)
        done += len(rows)
        start = end
    return done


def batches_of(conn: Connection, query: EventQuery) -> list[tuple[str, str]] | None:
    """The batches the query's classes name (None: no class filter; empty: none of them is in the ledger)."""
    if not query.classes:
        return None
    found: set[tuple[str, str]] = set()
    for wanted in query.classes:
        if wanted.sku is not None and wanted.lot is not None:
            found.add((wanted.sku, wanted.lot))
            continue
        if wanted.gtin is None:
            continue
        selected = select(gtin_batches.c.sku, gtin_batches.c.lot).where(gtin_batches.c.gtin == gtin14(wanted.gtin))
        if wanted.lot is not None:
            selected = selected.where(gtin_batches.c.lot == wanted.lot)
        found.update((str(sku), str(lot)) for sku, lot in conn.execute(selected))
    return sorted(found)


def page(conn: Connection, query: EventQuery, size: int, limit: int) -> Sequence[Any]:
    """(idx, sku, lot, event_time_us) of the events below `size` the query selects, after its token's event, in
    event-time order (then log order), at most `limit`."""
    where = [epcis_events.c.idx < size, epcis_events.c.biz_step.is_not(None)]
    if query.since_us is not None:
        where.append(epcis_events.c.event_time_us >= query.since_us)
    if query.before_us is not None:
        where.append(epcis_events.c.event_time_us < query.before_us)
    if query.biz_steps:
        where.append(epcis_events.c.biz_step.in_(sorted(query.biz_steps)))
    batches = batches_of(conn, query)
    if batches is not None:
        if not batches:
            return []
        where.append(tuple_(epcis_events.c.sku, epcis_events.c.lot).in_(batches))
    if query.after is not None:
        at, index = query.after
        where.append(
            or_(
                epcis_events.c.event_time_us > at,
                and_(epcis_events.c.event_time_us == at, epcis_events.c.idx > index),
            )
        )
    selected = (
        select(epcis_events.c.idx, epcis_events.c.sku, epcis_events.c.lot, epcis_events.c.event_time_us)
        .where(*where)
        .order_by(epcis_events.c.event_time_us, epcis_events.c.idx)
        .limit(limit)
    )
    return conn.execute(selected).all()


def forget(conn: Connection) -> None:
    """Empty the index (a rebuilt log is indexed again by the next query)."""
    conn.execute(epcis_events.delete())


def context_of(
    conn: Connection, batches: set[tuple[str, str]], orders: set[tuple[str, str, str]]
) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str, str], str | None]]:
    """What events read one by one need from their batches: each batch's GTIN, and each named order's unit."""
    gtins: dict[tuple[str, str], str] = {}
    for sku, lot in batches:
        found = conn.execute(
            select(gtin_batches.c.gtin).where(gtin_batches.c.sku == sku, gtin_batches.c.lot == lot)
        ).scalar()
        if found is not None:
            gtins[(sku, lot)] = str(found)
    units: dict[tuple[str, str, str], str | None] = {}
    for sku, lot, shipment_id in orders:
        units[(sku, lot, shipment_id)] = conn.execute(
            text("SELECT unit FROM sla_shipments WHERE sku = :s AND lot = :l AND shipment_id = :i"),
            {"s": sku, "l": lot, "i": shipment_id},
        ).scalar()
    return gtins, units


def leaves_at(conn: Connection, indices: Sequence[int]) -> dict[int, bytes]:
    rows = conn.execute(select(entries.c.idx, entries.c.leaf).where(entries.c.idx.in_(list(indices)))).all()
    return {int(index): bytes(leaf) for index, leaf in rows}


@dataclass(frozen=True)
class EpcisRows:
    """One page of a query: the checkpoint size it reads, each event's entry (log order within equal times),
    what the events need from their batches, and where the next page starts (None: this is the last)."""

    size: int
    entries: list[tuple[int, bytes]]
    gtins: dict[tuple[str, str], str]
    units: dict[tuple[str, str, str], str | None]
    next_after: tuple[int, int] | None


__all__ = [
    "CHUNK",
    "EpcisRows",
    "batches_of",
    "catch_up",
    "context_of",
    "epcis_events",
    "forget",
    "index_row",
    "leaves_at",
    "page",
]
