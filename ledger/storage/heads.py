"""Per-batch heads: each batch's rule state as of its last entry, kept in `batch_heads` and `batch_shipments` so
that an append after a restart reads a row instead of replaying the batch's chain (0.9 s for 6.8k events).

They are derived tables (ADR 0003): written in the append transaction, exempt from the append-only triggers
(a head changes with every event of its batch), rebuildable from the log (`chainproof rebuild`) and checked
against it by `chainproof verify --db`. They are never trusted blindly: an append reads each batch's head
together with the batch's last index in `entries`, and a head that disagrees (missing, stale, or edited to point
elsewhere) is replaced by replaying that batch's entries, so a doctored head cannot fork a chain.

Only the shipments an append names are read: a batch of 10,000 shipments costs a commit the rows it touches.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ledger.entry import parse_leaf
from ledger.errors import LedgerError
from ledger.events import validate_statement
from ledger.hashing import b64decode, b64encode
from ledger.identities import is_registration, validate_registration
from ledger.rules import BatchState, ShipmentState

BatchId = tuple[str, str]
ShipmentKey = tuple[str, str, str]
_PER_QUERY = 400  # batches (or shipments) per lookup: SQLite takes at most 32,766 parameters a statement


def head_state(state: BatchState) -> str:
    """The head row's `state`: everything of a BatchState but its shipments (rows of their own) and its index."""
    return json.dumps(
        {
            "owner": state.owner,
            "gtin": state.gtin,
            "custodian": state.custodian,
            "last_hash": None if state.last_hash is None else b64encode(state.last_hash),
            "length": state.length,
            "recalled_at": state.recalled_at,
            "recall_reason": state.recall_reason,
        },
        separators=(",", ":"),
        sort_keys=True,
    )


def state_from_head(sku: str, lot: str, last_index: int, state_json: str) -> BatchState:
    """Raises LedgerError for a row that cannot be read (the caller replays the batch instead)."""
    try:
        data = json.loads(state_json)
        last_hash = data["last_hash"]
        return BatchState(
            sku,
            lot,
            owner=data["owner"],
            gtin=data["gtin"],
            last_hash=None if last_hash is None else b64decode(last_hash, what="last hash", size=32),
            last_index=last_index,
            length=int(data["length"]),
            custodian=data["custodian"],
            recalled_at=data["recalled_at"],
            recall_reason=data["recall_reason"],
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise LedgerError(f"batch head of {sku}/{lot} cannot be read: {exc}") from exc


def shipment_state(shipment: ShipmentState) -> str:
    state: dict[str, Any] = {
        "custodian": shipment.custodian,
        "promised_by": shipment.promised_by,
        "delivered": shipment.delivered,
    }
    if shipment.cancelled:  # only when set: rows written before cancellations existed stay as they were
        state["cancelled"] = True
    return json.dumps(state, separators=(",", ":"), sort_keys=True)


def state_of_shipment(state_json: str) -> ShipmentState:
    try:
        data = json.loads(state_json)
        return ShipmentState(
            str(data["custodian"]),
            str(data["promised_by"]),
            bool(data["delivered"]),
            bool(data.get("cancelled", False)),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise LedgerError(f"shipment row cannot be read: {exc}") from exc


def replay_batches(
    leaves: Iterable[bytes], states: dict[BatchId, BatchState] | None = None
) -> dict[BatchId, BatchState]:
    """Batch states from entries in log order (continuing `states`, if given), without checking them (that is
    the verifier's work): what the derived tables should hold. Unreadable entries are skipped; the verifier
    reports them."""
    states = {} if states is None else states
    for leaf in leaves:
        try:
            parsed = parse_leaf(leaf)
            if is_registration(parsed.statement):  # an actor's registrations: a chain, no batch rules
                registered, _ = validate_registration(parsed.statement)
                chain = states.setdefault((registered.sku, registered.lot), BatchState(registered.sku, registered.lot))
                chain.link(parsed.hash, parsed.index)
                continue
            statement, data = validate_statement(parsed.statement)
        except LedgerError:
            continue
        batch_id = (statement.sku, statement.lot)
        state = states.get(batch_id)
        if state is None:
            state = states[batch_id] = BatchState(*batch_id)
        state.apply(statement, data, parsed.hash, parsed.index, parsed.logged_at)
    return states


# -- reading ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeadRow:
    sku: str
    lot: str
    last_logged: int | None  # the batch's last index in `entries`, the truth the head must agree with
    head_index: int | None
    state: str | None

    def state_if_current(self) -> BatchState | None:
        """The head, if it is exactly the batch's last entry; None if the batch must be replayed instead."""
        if self.state is None or self.head_index is None or self.head_index != self.last_logged:
            return None
        try:
            return state_from_head(self.sku, self.lot, self.head_index, self.state)
        except LedgerError:
            return None


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _PER_QUERY):
        yield items[start : start + _PER_QUERY]


def read_heads(conn: Connection, batch_ids: Iterable[BatchId], *, postgres: bool) -> list[HeadRow]:
    """Each batch's head row beside its last index in `entries` (one index probe each), a few hundred batches a
    query."""
    rows: list[HeadRow] = []
    for chunk in _chunks(sorted(batch_ids)):
        if postgres:
            from ledger.storage.pgarrays import TextArray

            result = conn.execute(
                text(
                    "SELECT b.sku, b.lot, (SELECT max(e.idx) FROM entries e WHERE e.sku = b.sku AND e.lot = b.lot), "
                    "h.last_index, h.state FROM unnest(CAST(:skus AS varchar[]), CAST(:lots AS varchar[])) "
                    "AS b(sku, lot) LEFT JOIN LATERAL (SELECT last_index, state FROM batch_heads "
                    "WHERE sku = b.sku AND lot = b.lot) AS h ON true"
                ),
                {"skus": TextArray.of([s for s, _l in chunk]), "lots": TextArray.of([lot for _s, lot in chunk])},
            )
        else:
            values = ",".join(["(?, ?)"] * len(chunk))
            result = conn.exec_driver_sql(
                f"WITH b(sku, lot) AS (VALUES {values}) "
                "SELECT b.sku, b.lot, (SELECT max(e.idx) FROM entries e WHERE e.sku = b.sku AND e.lot = b.lot), "
                "h.last_index, h.state FROM b LEFT JOIN batch_heads h ON h.sku = b.sku AND h.lot = b.lot",
                tuple(value for batch_id in chunk for value in batch_id),
            )
        rows.extend(HeadRow(r[0], r[1], r[2], r[3], r[4]) for r in result)
    return rows


def read_shipments(conn: Connection, keys: Iterable[ShipmentKey], *, postgres: bool) -> dict[ShipmentKey, str]:
    """The stored state of these shipments (absent: no such shipment)."""
    found: dict[ShipmentKey, str] = {}
    for chunk in _chunks(sorted(keys)):
        if postgres:
            from ledger.storage.pgarrays import TextArray

            result = conn.execute(
                text(
                    "SELECT s.sku, s.lot, s.shipment_id, s.state FROM unnest(CAST(:skus AS varchar[]), "
                    "CAST(:lots AS varchar[]), CAST(:ids AS varchar[])) AS k(sku, lot, shipment_id) "
                    "JOIN LATERAL (SELECT sku, lot, shipment_id, state FROM batch_shipments WHERE sku = k.sku "
                    "AND lot = k.lot AND shipment_id = k.shipment_id) AS s ON true"
                ),
                {
                    "skus": TextArray.of([k[0] for k in chunk]),
                    "lots": TextArray.of([k[1] for k in chunk]),
                    "ids": TextArray.of([k[2] for k in chunk]),
                },
            )
        else:
            values = ",".join(["(?, ?, ?)"] * len(chunk))
            result = conn.exec_driver_sql(
                f"WITH k(sku, lot, shipment_id) AS (VALUES {values}) "
                "SELECT s.sku, s.lot, s.shipment_id, s.state FROM k JOIN batch_shipments s ON s.sku = k.sku "
                "AND s.lot = k.lot AND s.shipment_id = k.shipment_id",
                tuple(value for key in chunk for value in key),
            )
        found.update({(r[0], r[1], r[2]): r[3] for r in result})
    return found


# -- writing ----------------------------------------------------------------------------------------------------

_SQLITE_UPSERT_HEADS = (
    "INSERT INTO batch_heads (sku, lot, last_index, state) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (sku, lot) DO UPDATE SET last_index = excluded.last_index, state = excluded.state"
)
_SQLITE_UPSERT_SHIPMENTS = (
    "INSERT INTO batch_shipments (sku, lot, shipment_id, state) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (sku, lot, shipment_id) DO UPDATE SET state = excluded.state"
)
PG_UPSERT_HEADS = (
    "INSERT INTO batch_heads (sku, lot, last_index, state) "
    "SELECT * FROM unnest(%b::varchar[], %b::varchar[], %b::bigint[], %b::text[]) "
    "ON CONFLICT (sku, lot) DO UPDATE SET last_index = excluded.last_index, state = excluded.state"
)
PG_UPSERT_SHIPMENTS = (
    "INSERT INTO batch_shipments (sku, lot, shipment_id, state) "
    "SELECT * FROM unnest(%b::varchar[], %b::varchar[], %b::varchar[], %b::text[]) "
    "ON CONFLICT (sku, lot, shipment_id) DO UPDATE SET state = excluded.state"
)


@dataclass(slots=True)
class HeadRows:
    """The derived rows one commit writes: a head per batch it touched, a row per shipment it touched."""

    heads: list[tuple[str, str, int, str]]
    shipments: list[tuple[str, str, str, str]]

    @classmethod
    def of(
        cls, states: Mapping[BatchId, BatchState], batches: Iterable[BatchId], shipments: Iterable[ShipmentKey]
    ) -> HeadRows:
        heads = []
        for batch_id in batches:
            state = states[batch_id]
            if state.last_index is not None:
                heads.append((state.sku, state.lot, state.last_index, head_state(state)))
        shipment_rows = []
        for sku, lot, shipment_id in shipments:
            shipment = states[(sku, lot)].shipments.get(shipment_id)
            if shipment is not None:
                shipment_rows.append((sku, lot, shipment_id, shipment_state(shipment)))
        return cls(heads, shipment_rows)

    def pg_parameters(self) -> tuple[Any, ...]:
        from ledger.storage.pgarrays import Int8Array, TextArray

        return (
            TextArray.of([h[0] for h in self.heads]),
            TextArray.of([h[1] for h in self.heads]),
            Int8Array.of([h[2] for h in self.heads]),
            TextArray.of([h[3] for h in self.heads]),
            TextArray.of([s[0] for s in self.shipments]),
            TextArray.of([s[1] for s in self.shipments]),
            TextArray.of([s[2] for s in self.shipments]),
            TextArray.of([s[3] for s in self.shipments]),
        )

    def write_sqlite(self, conn: Connection) -> None:
        if self.heads:
            conn.exec_driver_sql(_SQLITE_UPSERT_HEADS, self.heads)
        if self.shipments:
            conn.exec_driver_sql(_SQLITE_UPSERT_SHIPMENTS, self.shipments)


def write_all(conn: Connection, states: Mapping[BatchId, BatchState], *, postgres: bool) -> None:
    """Replace both tables' rows with these states (the rebuild; the caller holds the append lock)."""
    conn.exec_driver_sql("DELETE FROM batch_shipments")
    conn.exec_driver_sql("DELETE FROM batch_heads")
    shipment_keys = [(sku, lot, sid) for (sku, lot), state in states.items() for sid in state.shipments]
    rows = HeadRows.of(states, list(states), shipment_keys)
    for start in range(0, max(len(rows.heads), len(rows.shipments)), 5000):
        part = HeadRows(rows.heads[start : start + 5000], rows.shipments[start : start + 5000])
        if postgres:
            driver: Any = conn.connection.dbapi_connection
            with driver.cursor() as cursor:
                parameters = part.pg_parameters()
                cursor.execute(PG_UPSERT_HEADS, parameters[:4], prepare=False)
                cursor.execute(PG_UPSERT_SHIPMENTS, parameters[4:], prepare=False)
        else:
            part.write_sqlite(conn)


# -- checking ---------------------------------------------------------------------------------------------------


def stored_rows(conn: Connection) -> tuple[dict[BatchId, tuple[int, str]], dict[ShipmentKey, str]]:
    heads = {
        (r[0], r[1]): (int(r[2]), str(r[3]))
        for r in conn.exec_driver_sql("SELECT sku, lot, last_index, state FROM batch_heads")
    }
    shipments = {
        (r[0], r[1], r[2]): str(r[3])
        for r in conn.exec_driver_sql("SELECT sku, lot, shipment_id, state FROM batch_shipments")
    }
    return heads, shipments


def compare(
    expected: Mapping[BatchId, BatchState],
    heads: Mapping[BatchId, tuple[int, str]],
    shipments: Mapping[ShipmentKey, str],
) -> list[str]:
    """How the stored derived rows differ from what the log says, one line per row (empty: they agree)."""
    differences: list[str] = []
    for batch_id in sorted(expected.keys() | heads.keys()):
        state = expected.get(batch_id)
        stored = heads.get(batch_id)
        name = "/".join(batch_id)
        if state is None or state.last_index is None:
            differences.append(f"batch_heads has a row for {name}, a batch the log does not hold")
            continue
        if stored is None:
            differences.append(f"batch_heads has no row for {name} (its last entry is index {state.last_index})")
            continue
        want = (state.last_index, head_state(state))
        if stored != want:
            differences.append(
                f"batch_heads row for {name} says index {stored[0]} {stored[1]}; the log says index {want[0]} {want[1]}"
            )
    wanted_shipments = {
        (sku, lot, sid): shipment_state(shipment)
        for (sku, lot), state in expected.items()
        for sid, shipment in state.shipments.items()
    }
    for key in sorted(wanted_shipments.keys() | shipments.keys()):
        want_state, stored_state = wanted_shipments.get(key), shipments.get(key)
        if want_state == stored_state:
            continue
        name = f"shipment {key[2]} of {key[0]}/{key[1]}"
        if want_state is None:
            differences.append(f"batch_shipments has a row for {name}, which the log does not hold")
        elif stored_state is None:
            differences.append(f"batch_shipments has no row for {name}")
        else:
            differences.append(f"batch_shipments row for {name} says {stored_state}; the log says {want_state}")
    return differences
