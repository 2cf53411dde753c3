"""The shipments as columns (numpy arrays), so that statuses and reports over 100k shipments are array operations.

`ShipmentColumns` holds every shipment's record as rows of arrays: one row per shipment, one per custody step.
It is kept up to date by `update` (the store feeds it the projection rows that changed), and `evaluate` takes a
view (the entries of a checkpoint logged by an `as_of`) and works out every shipment's status at once; the report
then adds each group's figures from arrays.

The rules are those of `ledger.sla` (`status_of`, `statuses`, the definitions), which stay the reference: tests
compare this module's statuses and reports with them, and with a plain tally, for random histories.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ledger.sla import (
    _CANCELLED,
    _IN_TRANSIT,
    _LATE,
    _ON_TIME,
    GROUP_BY,
    STATUSES,
    Filters,
    Parameters,
    ShipmentRecord,
    Status,
    format_seconds,
    iso_week,
    lane_name,
    nearest_rank,
    span,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Ints = NDArray[np.int64]
    Bools = NDArray[np.bool_]

IN_TRANSIT, AT_RISK, OVERDUE, ON_TIME, LATE, CANCELLED = range(6)
_NONE = -1
_NOT_DUE, _OTIF_UNKNOWN, _OTIF_MET, _OTIF_MISSED = range(4)


class ShipmentColumns:
    """Every shipment (as stored: not cut to a view), as columns, updated in place as shipments change."""

    def __init__(self) -> None:
        self._records: list[ShipmentRecord | None] = []  # None: built from `_raw` when first asked for
        self._raw: list[Any] = []
        self._make_record: Callable[[Any], ShipmentRecord] | None = None
        self.keys: list[tuple[str, str, str]] = []  # (sku, lot, shipment id) of each row
        self._by_id: dict[str, list[int]] = {}
        self._rows: dict[tuple[str, str, str], int] = {}
        self._actors: dict[str, int] = {}
        self._lanes: dict[str, int] = {}
        self._weeks: dict[int, int] = {}  # day number -> week code
        self._week_codes: dict[str, int] = {}
        self.actor_names: list[str] = []
        self.lane_names: list[str] = []
        self.week_names: list[str] = []
        self._ship: dict[str, list[Any]] = {name: [] for name in _SHIP_COLUMNS}
        self._steps: dict[str, list[int]] = {name: [] for name in _STEP_COLUMNS}
        self._step_counts: list[int] = []
        self._arrays: _Arrays | None = None

    @classmethod
    def of(cls, records: Iterable[ShipmentRecord]) -> ShipmentColumns:
        columns = cls()
        columns.update(records)
        return columns

    def __len__(self) -> int:
        return len(self.keys)

    def record(self, row: int) -> ShipmentRecord:
        """The shipment at `row`, as stored (not cut to a view)."""
        found = self._records[row]
        if found is None:
            assert self._make_record is not None
            found = self._records[row] = self._make_record(self._raw[row])
        return found

    def row_of(self, sku: str, lot: str, shipment_id: str) -> int | None:
        """The row of one shipment, None if the columns do not hold it."""
        return self._rows.get((sku, lot, shipment_id))

    def rows_with_id(self, shipment_id: str) -> list[int]:
        """The rows of shipments with this id (one per batch that has it)."""
        return list(self._by_id.get(shipment_id, ()))

    def _add_key(self, key: tuple[str, str, str]) -> int:
        row = self._rows[key] = len(self.keys)
        self.keys.append(key)
        self._by_id.setdefault(key[2], []).append(row)
        return row

    def _code(self, table: dict[str, int], names: list[str], name: str) -> int:
        code = table.get(name)
        if code is None:
            code = table[name] = len(names)
            names.append(name)
        return code

    def _codes(self, table: dict[str, int], names: list[str], values: Sequence[str]) -> list[int]:
        """`_code` of many values: each distinct value looked up once."""
        codes = {value: self._code(table, names, value) for value in dict.fromkeys(values)}
        return list(map(codes.__getitem__, values))

    def _week(self, placed_at: int) -> int:
        day = placed_at // 86400
        code = self._weeks.get(day)
        if code is None:
            code = self._weeks[day] = self._code(self._week_codes, self.week_names, iso_week(placed_at))
        return code

    def update(self, records: Iterable[ShipmentRecord]) -> None:
        """Add new shipments, and replace changed ones (a shipment's steps only ever grow)."""
        ship, steps = self._ship, self._steps
        actor = self._actors
        for record in records:
            row = self._rows.get(record.key())
            values = (
                record.placed_at,
                record.promised_by,
                record.index,
                record.logged_us,
                self._code(actor, self.actor_names, record.merchant),
                self._code(self._lanes, self.lane_names, record.lane),
                self._week(record.placed_at),
                math.nan if record.quantity is None else record.quantity,
                *_closing(record.delivery),
                math.nan if record.delivery is None or record.delivery.quantity is None else record.delivery.quantity,
                *_closing(record.cancel),
            )
            if row is None:
                row = self._add_key(record.key())
                self._records.append(record)
                self._raw.append(None)
                for name, value in zip(_SHIP_COLUMNS, values, strict=True):
                    ship[name].append(value)
                self._step_counts.append(0)
            else:
                self._records[row] = record
                for name, value in zip(_SHIP_COLUMNS, values, strict=True):
                    ship[name][row] = value
            for step in record.steps[self._step_counts[row] :]:
                steps["ship"].append(row)
                steps["holder"].append(self._code(actor, self.actor_names, step.holder))
                steps["at"].append(step.at)
                steps["idx"].append(step.log_index)
                steps["logged"].append(step.logged_us)
            self._step_counts[row] = len(record.steps)
        self._arrays = None

    def load_rows(self, rows: Sequence[Sequence[Any]], make_record: Callable[[Any], ShipmentRecord]) -> None:
        """Fill empty columns from the projection's rows in bulk (the first read after a start): columns straight
        from the rows, steps parsed from all rows' text at once, and each record built only when asked for
        (`make_record`). Rows are (sku, lot, shipment id, merchant, origin, destination, placed_at, promised_by,
        idx, logged_us, quantity, unit, steps, delivered at/idx/logged/by/quantity, cancelled at/idx/logged/by,
        ...), as ledger/storage/sla.py reads them; a row without its shipment event fails `make_record`."""
        if self.keys:
            raise ValueError("load_rows fills empty columns; update() changes filled ones")
        for raw in rows:
            if raw[6] is None or raw[3] is None or raw[8] is None:
                make_record(raw)  # raises, naming the row
        self._make_record = make_record
        if not rows:
            return
        columns = list(zip(*rows, strict=True))
        sku, lot, sid, merchant, origin, destination, placed, promised, idx, logged, quantity = columns[:11]
        steps, d_at, d_idx, d_logged, _d_by, d_quantity, c_at, c_idx, c_logged = columns[12:21]
        actors, lanes = self._actors, self._lanes
        self.keys = list(zip(sku, lot, sid, strict=True))
        self._rows = {key: row for row, key in enumerate(self.keys)}
        for row, shipment_id in enumerate(sid):
            self._by_id.setdefault(shipment_id, []).append(row)
        self._raw.extend(rows)
        self._records.extend([None] * len(rows))
        ship = self._ship
        ship["placed"] = list(placed)
        ship["promised"] = list(promised)
        ship["idx"] = list(idx)
        ship["logged"] = list(logged)
        ship["merchant"] = self._codes(actors, self.actor_names, merchant)
        ship["lane"] = [
            self._code(lanes, self.lane_names, lane_name(o, d)) for o, d in zip(origin, destination, strict=True)
        ]
        ship["week"] = [self._week(p) for p in placed]
        ship["quantity"] = [math.nan if q is None else q for q in quantity]
        ship["d_at"] = [0 if v is None else v for v in d_at]
        ship["d_idx"] = [_NONE if v is None else v for v in d_idx]
        ship["d_logged"] = [0 if v is None else v for v in d_logged]
        ship["d_quantity"] = [math.nan if v is None else v for v in d_quantity]
        ship["c_at"] = [0 if v is None else v for v in c_at]
        ship["c_idx"] = [_NONE if v is None else v for v in c_idx]
        ship["c_logged"] = [0 if v is None else v for v in c_logged]
        texts = [text or "" for text in steps]
        counts = [text.count("\n") for text in texts]
        self._step_counts = counts
        fields = "".join(texts).replace("\n", "\t").split("\t")[:-1]  # index, logged_us, at, sender, holder
        self._steps = {
            "ship": np.repeat(np.arange(len(rows), dtype=np.int64), counts).tolist(),
            "holder": self._codes(actors, self.actor_names, fields[4::5]),
            "at": list(map(int, fields[2::5])),
            "idx": list(map(int, fields[0::5])),
            "logged": list(map(int, fields[1::5])),
        }
        self._arrays = None

    def arrays(self) -> _Arrays:
        if self._arrays is None:
            self._arrays = _Arrays(self._ship, self._steps)
        return self._arrays

    def evaluate(self, size: int, as_of_us: int, as_of: int, parameters: Parameters) -> Evaluation:
        return Evaluation(self, size, as_of_us, as_of, parameters)


_SHIP_COLUMNS = (
    "placed", "promised", "idx", "logged", "merchant", "lane", "week", "quantity",
    "d_at", "d_idx", "d_logged", "d_quantity", "c_at", "c_idx", "c_logged",
)  # fmt: skip
_STEP_COLUMNS = ("ship", "holder", "at", "idx", "logged")


def _closing(closing: Any) -> tuple[int, int, int]:
    if closing is None:
        return (0, _NONE, 0)
    return (closing.at, closing.log_index, closing.logged_us)


class _Arrays:
    """The columns as numpy arrays; steps ordered by shipment, then log index."""

    def __init__(self, ship: Mapping[str, list[Any]], steps: Mapping[str, list[int]]) -> None:
        self.n = len(ship["placed"])
        for name in _SHIP_COLUMNS:
            dtype = np.float64 if name in ("quantity", "d_quantity") else np.int64
            setattr(self, name, np.array(ship[name], dtype=dtype))
        order = np.lexsort((np.array(steps["idx"], dtype=np.int64), np.array(steps["ship"], dtype=np.int64)))
        for name in _STEP_COLUMNS:
            setattr(self, "s_" + name, np.array(steps[name], dtype=np.int64)[order])

    placed: Ints
    promised: Ints
    idx: Ints
    logged: Ints
    merchant: Ints
    lane: Ints
    week: Ints
    quantity: Any
    d_at: Ints
    d_idx: Ints
    d_logged: Ints
    d_quantity: Any
    c_at: Ints
    c_idx: Ints
    c_logged: Ints
    s_ship: Ints
    s_holder: Ints
    s_at: Ints
    s_idx: Ints
    s_logged: Ints


@dataclass
class _Lane:
    """What the lane rule found for an open shipment: the custody point it waits for, how many earlier shipments
    of its lane reached it, their percentile, and how many of them had by now."""

    point: int
    references: int
    typical: int
    reached: int


class Evaluation:
    """Every shipment as a view sees it (the entries below `size` logged by `as_of_us`), with its status."""

    def __init__(self, columns: ShipmentColumns, size: int, as_of_us: int, as_of: int, parameters: Parameters) -> None:
        a = columns.arrays()
        self.columns, self.a, self.as_of, self.parameters = columns, a, as_of, parameters
        self.size, self.as_of_us = size, as_of_us
        seen = (a.idx < size) & (a.logged <= as_of_us)
        self.seen = seen
        self.step_seen = seen[a.s_ship] & (a.s_idx < size) & (a.s_logged <= as_of_us)
        self.delivered = seen & (a.d_idx != _NONE) & (a.d_idx < size) & (a.d_logged <= as_of_us)
        self.cancelled = seen & (a.c_idx != _NONE) & (a.c_idx < size) & (a.c_logged <= as_of_us)
        # the steps a view sees, in order, and each one's position within its shipment
        self.steps = np.flatnonzero(self.step_seen)
        ships = a.s_ship[self.steps]
        self.step_count = np.bincount(ships, minlength=a.n)
        starts = np.zeros(a.n + 1, dtype=np.int64)
        np.cumsum(self.step_count, out=starts[1:])
        self.step_start = starts
        self.step_rank = np.arange(len(ships), dtype=np.int64) - starts[ships]
        self.status = self._statuses()

    # -- statuses -------------------------------------------------------------------------------------------------

    def _statuses(self) -> Any:
        a, p, as_of = self.a, self.parameters, self.as_of
        status = np.full(a.n, _NONE, dtype=np.int8)
        closed_delivered = self.delivered & ~self.cancelled
        status[self.seen] = IN_TRANSIT
        status[closed_delivered & (a.d_at <= a.promised)] = ON_TIME
        status[closed_delivered & (a.d_at > a.promised)] = LATE
        status[self.cancelled] = CANCELLED
        open_ = self.seen & ~self.cancelled & ~self.delivered
        status[open_ & (as_of > a.promised)] = OVERDUE
        waiting = open_ & (as_of <= a.promised)
        elapsed = as_of - a.placed
        self.window_hit = waiting & (elapsed >= p.window_share * (a.promised - a.placed))
        self.lanes: dict[int, _Lane] = self._lane_rule(np.flatnonzero(waiting), elapsed)
        lane_hit = np.zeros(a.n, dtype=bool)
        for row, found in self.lanes.items():
            lane_hit[row] = found.references >= p.lane_min_history and elapsed[row] > found.typical
        status[self.window_hit | lane_hit] = AT_RISK
        self.lane_hit = lane_hit
        return status

    def _point_times(self, point: int) -> tuple[Ints, Ints]:
        """(shipments, time from placed_at) of every seen shipment that reached custody point `point` (1: its first
        handoff; a delivery is the point after its last handoff)."""
        a = self.a
        at_rank = self.step_rank == point - 1
        by_step = a.s_ship[self.steps[at_rank]]
        times = a.s_at[self.steps[at_rank]] - a.placed[by_step]
        by_delivery = np.flatnonzero(self.delivered & (self.step_count == point - 1))
        ships = np.concatenate([by_step, by_delivery])
        return ships, np.concatenate([times, a.d_at[by_delivery] - a.placed[by_delivery]])

    def _lane_rule(self, waiting: Ints, elapsed: Ints) -> dict[int, _Lane]:
        """For each open shipment within its window: the earlier-placed shipments of its lane that reached its
        next custody point (its references), how many, their percentile, and how many had by now.

        Per custody point, every lane at once: the references sorted by lane, then time. An open shipment is
        mostly among the latest placed, so its references are its lane's all but the few placed after it: those
        ("late" references, placed after the lane's earliest open shipment) are paired with the open shipments of
        their lane, and each pair says whether the reference is excluded. The percentile is then the reference at
        rank r among the lane's, moved on past each excluded one that comes before it."""
        a, p = self.a, self.parameters
        found: dict[int, _Lane] = {}
        if not len(waiting):
            return found
        lanes_total = max(1, len(self.columns.lane_names))
        points = self.step_count[waiting] + 1
        # every shipment's place in the order of placing (placed_at, then log index): one key to compare
        order_key = np.empty(a.n, dtype=np.int64)
        order_key[np.lexsort((a.idx, a.placed))] = np.arange(a.n, dtype=np.int64)
        all_lanes = np.arange(lanes_total, dtype=np.int64)
        for point in np.unique(points).tolist():
            ships, times = self._point_times(point)
            low = int(times.min()) if len(times) else 0
            combined = a.lane[ships] * (1 << 40) + (times - low)
            order = np.argsort(combined)
            r_ship, r_time, r_comb = ships[order], times[order], combined[order]
            r_lane, r_key = a.lane[r_ship], order_key[r_ship]
            lane_start = np.searchsorted(r_lane, all_lanes, side="left")
            lane_size = np.searchsorted(r_lane, all_lanes, side="right") - lane_start
            opens = waiting[points == point]
            o_lane, o_key, o_elapsed = a.lane[opens], order_key[opens], elapsed[opens]
            first_open = np.full(lanes_total, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(first_open, o_lane, o_key)
            late = np.flatnonzero(r_key >= first_open[r_lane])  # ascending: by lane, then time
            late_start = np.searchsorted(r_lane[late], all_lanes, side="left")
            late_count = np.searchsorted(r_lane[late], all_lanes, side="right") - late_start
            # the pairs (open shipment, late reference of its lane), each open shipment's in order of time
            per_open = late_count[o_lane]
            pair_open = np.repeat(np.arange(len(opens), dtype=np.int64), per_open)
            segment = np.concatenate([[0], np.cumsum(per_open)])
            within = np.arange(len(pair_open), dtype=np.int64) - segment[pair_open]
            pair_ref = late[late_start[o_lane][pair_open] + within]
            position = pair_ref - lane_start[o_lane][pair_open]  # the reference's place in its lane, by time
            excluded = (r_key[pair_ref] >= o_key[pair_open]).astype(np.int64)
            counts = lane_size[o_lane] - np.bincount(pair_open, weights=excluded, minlength=len(opens)).astype(np.int64)
            ranks = np.maximum(1, -(-p.lane_percentile * counts // 100))  # nearest_rank, on arrays
            running = np.concatenate([[0], np.cumsum(excluded)])
            before = running[:-1] - running[segment[:-1]][pair_open]  # excluded ones earlier in time, same open
            skips = excluded & (position - before <= ranks[pair_open] - 1)
            skipped = np.bincount(pair_open, weights=skips, minlength=len(opens)).astype(np.int64)
            at = np.minimum(lane_start[o_lane] + ranks - 1 + skipped, max(len(r_time) - 1, 0))
            typical = np.where(counts > 0, r_time[at] if len(r_time) else 0, 0)
            upto = np.searchsorted(r_comb, o_lane * (1 << 40) + (o_elapsed - low), side="right")
            upto = np.clip(upto - lane_start[o_lane], 0, lane_size[o_lane])
            passed = excluded & (position < upto[pair_open])
            reached = upto - np.bincount(pair_open, weights=passed, minlength=len(opens)).astype(np.int64)
            for row, count, value, done in zip(
                opens.tolist(), counts.tolist(), typical.tolist(), reached.tolist(), strict=True
            ):
                found[row] = _Lane(point, count, value if count else 0, done if count else 0)
        return found

    def status_of(self, row: int) -> Status:
        """The status of one shipment with its reasons, worded as `ledger.sla.status_of` words them."""
        code = int(self.status[row])
        if code == CANCELLED:
            return _CANCELLED
        if code == ON_TIME:
            return _ON_TIME
        if code == LATE:
            return _LATE
        a, as_of = self.a, self.as_of
        promised = int(a.promised[row])
        if code == OVERDUE:
            return Status(
                "overdue",
                (f"not delivered, {span(as_of - promised)} past the promise ({format_seconds(promised)})",),
                ("past_promise",),
            )
        if code == IN_TRANSIT:
            return _IN_TRANSIT
        reasons, codes = [], []
        placed = int(a.placed[row])
        window, elapsed = promised - placed, as_of - placed
        if self.window_hit[row]:
            share = 1.0 if window == 0 else elapsed / window
            reasons.append(
                f"{math.floor(share * 100)}% of the delivery window has passed (promised by {format_seconds(promised)})"
            )
            codes.append("window")
        if self.lane_hit[row]:
            lane = self.lanes[row]
            what = "no handoff yet" if lane.point == 1 else f"no custody step since step {lane.point - 1}"
            reasons.append(
                f"{what}, {math.floor(100 * lane.reached / lane.references)}% of this lane's {lane.references} "
                f"earlier shipments had reached step {lane.point} by now ({span(elapsed)} after the order; the "
                f"lane's p{self.parameters.lane_percentile} is {span(lane.typical)})"
            )
            codes.append("lane_progress")
        return Status("at_risk", tuple(reasons), tuple(codes))

    def seen_record(self, row: int) -> ShipmentRecord:
        """The shipment's record as this view sees it."""
        seen = self.columns.record(row).seen(self.size, self.as_of_us)
        assert seen is not None, "only rows the view sees have a record in it"
        return seen

    # -- which shipments ------------------------------------------------------------------------------------------

    def carriers(self) -> tuple[Ints, Ints]:
        """(shipment, carrier) pairs: each carrier that held a seen shipment in a seen step, once."""
        a = self.a
        width = max(1, len(self.columns.actor_names))
        pairs = np.sort(a.s_ship[self.steps] * width + a.s_holder[self.steps])
        if len(pairs):
            pairs = pairs[np.concatenate([[True], pairs[1:] != pairs[:-1]])]
        return pairs // width, pairs % width

    def admitted(self, filters: Filters) -> Ints:
        """The seen shipments `filters` admits, in row order."""
        a, columns = self.a, self.columns
        mask = self.seen.copy()
        if filters.merchant is not None:
            code = columns._actors.get(filters.merchant)
            mask &= a.merchant == (_NONE if code is None else code)
        if filters.lane is not None:
            code = columns._lanes.get(filters.lane)
            mask &= a.lane == (_NONE if code is None else code)
        if filters.placed_from is not None:
            mask &= a.placed >= filters.placed_from
        if filters.placed_to is not None:
            mask &= a.placed < filters.placed_to
        if filters.carrier is not None:
            code = columns._actors.get(filters.carrier)
            ships, holders = self.carriers()
            carried = np.zeros(a.n, dtype=bool)
            carried[ships[holders == (_NONE if code is None else code)]] = True
            mask &= carried
        return np.flatnonzero(mask)

    def listed(self, filters: Filters, wanted: set[str] | None = None) -> list[int]:
        """The rows `filters` admits whose status is wanted, oldest order first (placed_at, then batch and id)."""
        rows = self.admitted(filters)
        if wanted is not None:
            rows = rows[np.isin(self.status[rows], [STATUSES.index(name) for name in wanted])]
        keys, placed = self.columns.keys, self.a.placed
        return sorted(rows.tolist(), key=lambda row: (int(placed[row]), keys[row]))


def _rate(figures: dict[str, Any], name: str, numerator: int, denominator: int, empty: str) -> None:
    if denominator:
        figures[name] = numerator / denominator
    else:
        figures[name] = None
        figures[f"{name}_reason"] = empty


def _rank(p: int, count: int) -> int:
    """The 0-based position of the nearest-rank p-th percentile among `count` sorted values."""
    return nearest_rank(p, count) - 1


class Facts:
    """What each admitted shipment adds to the figures of any group it is in, as arrays over the admitted rows."""

    def __init__(self, view: Evaluation, rows: Ints) -> None:
        a, p, as_of = view.a, view.parameters, view.as_of
        self.view, self.rows = view, rows
        late_after = p.recorded_late_after_s
        status = view.status[rows]
        self.status = status.astype(np.int64)
        cancelled = status == CANCELLED
        delivered = view.delivered[rows] & ~cancelled
        placed = a.placed[rows]
        step_count = view.step_count[rows]
        # events and those recorded late (logged more than the delay after they happened), per shipment
        step_rows = a.s_ship[view.steps]
        step_late = (a.s_logged[view.steps] // 1_000_000 - a.s_at[view.steps]) > late_after
        late_steps = np.bincount(step_rows, weights=step_late, minlength=a.n).astype(np.int64)[rows]
        d_seen, c_seen = view.delivered[rows], view.cancelled[rows]
        late = ((a.logged[rows] // 1_000_000 - placed) > late_after).astype(np.int64) + late_steps
        late += d_seen & ((a.d_logged[rows] // 1_000_000 - a.d_at[rows]) > late_after)
        late += c_seen & ((a.c_logged[rows] // 1_000_000 - a.c_at[rows]) > late_after)
        self.recorded_late = late
        self.events = 1 + step_count + d_seen + c_seen
        lead = a.d_at[rows] - placed
        self.delivered = delivered
        self.lead = lead
        self.within_met = []
        self.within_counted = []
        for hours in p.within_hours:
            limit = hours * 3600
            self.within_met.append(delivered & (lead <= limit))
            self.within_counted.append(~cancelled & (delivered | (as_of - placed >= limit)))
        self.hours = p.within_hours
        quantity, d_quantity = a.quantity[rows], a.d_quantity[rows]
        due = delivered | (status == OVERDUE)
        unknown = np.isnan(quantity) | (delivered & np.isnan(d_quantity))
        met = delivered & (status == ON_TIME) & ~unknown & (np.nan_to_num(d_quantity) >= quantity)
        otif = np.full(len(rows), _NOT_DUE, dtype=np.int64)
        otif[due & unknown] = _OTIF_UNKNOWN
        otif[due & ~unknown & met] = _OTIF_MET
        otif[due & ~unknown & ~met] = _OTIF_MISSED
        self.otif = otif
        self._custody(view, rows, cancelled, delivered)

    def _custody(self, view: Evaluation, rows: Ints, cancelled: Bools, delivered: Bools) -> None:
        """Custody rows (position among the admitted rows, holder, seconds held) of the shipments not cancelled:
        each seen step closes the previous holder's custody (the merchant's from placed_at), and a delivery the
        last holder's."""
        a = view.a
        position = np.full(a.n, _NONE, dtype=np.int64)
        position[rows] = np.arange(len(rows), dtype=np.int64)
        live = np.zeros(a.n, dtype=bool)
        live[rows[~cancelled]] = True
        steps = view.steps
        ships = a.s_ship[steps]
        keep = live[ships]
        steps, ships, ranks = steps[keep], ships[keep], view.step_rank[keep]
        first = ranks == 0
        # a shipment's seen steps are next to each other: the one before a step (not its shipment's first) is its
        # previous step
        previous = steps[np.maximum(np.arange(len(steps)) - 1, 0)] if len(steps) else steps
        since = np.where(first, a.placed[ships], a.s_at[previous])
        holder = np.where(first, a.merchant[ships], a.s_holder[previous])
        ends = rows[delivered]
        count = view.step_count[ends]
        if len(view.steps):
            last_step = view.steps[np.maximum(view.step_start[ends] + count - 1, 0)]
            end_since = np.where(count > 0, a.s_at[last_step], a.placed[ends])
            end_holder = np.where(count > 0, a.s_holder[last_step], a.merchant[ends])
        else:
            end_since, end_holder = a.placed[ends], a.merchant[ends]
        custody_row = np.concatenate([position[ships], position[ends]])
        custody_holder = np.concatenate([holder, end_holder])
        custody_time = np.concatenate([a.s_at[steps] - since, a.d_at[ends] - end_since])
        order = np.lexsort((custody_time, custody_holder))  # once: any group's subset stays in this order
        self.custody_row, self.custody_holder = custody_row[order], custody_holder[order]
        self.custody_time = custody_time[order]

    def figures(self, members: Ints) -> dict[str, Any]:
        """The figures of the admitted shipments at positions `members`."""
        counts = np.bincount(self.status[members], minlength=6)
        in_transit, at_risk, overdue, on_time, late, cancelled = (int(c) for c in counts)
        delivered = on_time + late
        due = delivered + overdue
        figures: dict[str, Any] = {
            "shipments": len(members) - cancelled,
            "delivered": delivered,
            "on_time": on_time,
            "late": late,
            "overdue": overdue,
            "in_transit": in_transit,
            "at_risk": at_risk,
            "cancelled": cancelled,
            "due": due,
        }
        not_due = "no shipment is due yet (none delivered or overdue)"
        _rate(figures, "on_time_rate", on_time, due, not_due)
        otif = np.bincount(self.otif[members], minlength=4)
        known = int(otif[_OTIF_MET] + otif[_OTIF_MISSED])
        unknown_reason = "no due shipment has known quantities (ordered, and delivered if delivered)"
        _rate(figures, "otif_rate", int(otif[_OTIF_MET]), known, unknown_reason if due else not_due)
        figures["otif_due_known"] = known
        figures["otif_unknown"] = int(otif[_OTIF_UNKNOWN])
        for hours, met, counted in zip(self.hours, self.within_met, self.within_counted, strict=True):
            reason = f"no shipment delivered yet or placed at least {hours} h before as_of"
            _rate(figures, f"within_{hours}h_rate", int(met[members].sum()), int(counted[members].sum()), reason)
        leads = np.sort(self.lead[members][self.delivered[members]])
        if len(leads):
            figures["lead_time_s"] = {f"p{q}": int(leads[_rank(q, len(leads))]) for q in (50, 90, 95)}
        else:
            figures["lead_time_s"] = None
            figures["lead_time_s_reason"] = "no shipment delivered"
        figures["custody"] = self._held(members)
        figures["events"] = int(self.events[members].sum())
        figures["recorded_late"] = int(self.recorded_late[members].sum())
        return figures

    def _held(self, members: Ints) -> list[dict[str, Any]]:
        if not len(self.custody_row):
            return []
        if len(members) == len(self.rows):  # the total: every row
            holders, times = self.custody_holder, self.custody_time
        else:
            member = np.zeros(len(self.rows), dtype=bool)
            member[members] = True
            chosen = member[self.custody_row]
            holders, times = self.custody_holder[chosen], self.custody_time[chosen]
        if not len(holders):
            return []
        starts = np.flatnonzero(np.concatenate([[True], holders[1:] != holders[:-1]]))
        sizes = np.diff(np.concatenate([starts, [len(holders)]]))
        codes = holders[starts]
        names = self.view.columns.actor_names
        held = []
        for code, start, size in zip(codes.tolist(), starts.tolist(), sizes.tolist(), strict=True):
            p50 = int(times[start + _rank(50, size)])
            p90 = int(times[start + _rank(90, size)])
            held.append({"holder": names[code], "steps": size, "p50_s": p50, "p90_s": p90})
        held.sort(key=lambda c: (-c["p50_s"], c["holder"]))  # the slowest custodian first
        return held


def group_members(view: Evaluation, rows: Ints, by: str) -> list[tuple[str, Ints]]:
    """Each group of the admitted shipments (positions among `rows`), by key, sorted by key."""
    a, columns = view.a, view.columns
    if by == "carrier":
        ships, holders = view.carriers()
        position = np.full(a.n, _NONE, dtype=np.int64)
        position[rows] = np.arange(len(rows), dtype=np.int64)
        keep = position[ships] != _NONE
        codes, members = holders[keep], position[ships[keep]]
        names = columns.actor_names
    else:
        column = {"merchant": a.merchant, "lane": a.lane, "week": a.week}[by]
        codes, members = column[rows], np.arange(len(rows), dtype=np.int64)
        names = {"merchant": columns.actor_names, "lane": columns.lane_names, "week": columns.week_names}[by]
    order = np.argsort(codes, kind="stable")
    codes, members = codes[order], members[order]
    unique, starts = np.unique(codes, return_index=True)
    bounds = [*starts.tolist(), len(codes)]
    groups = [(names[code], members[bounds[i] : bounds[i + 1]]) for i, code in enumerate(unique.tolist())]
    return sorted(groups, key=lambda group: group[0])


def report_of(
    view: Evaluation, filters: Filters, group_by: Sequence[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(total, groups) of the shipments `filters` admits in this view."""
    rows = view.admitted(filters)
    facts = Facts(view, rows)
    groups = []
    for by in sorted(dict.fromkeys(group_by), key=GROUP_BY.index):
        for key, members in group_members(view, rows, by):
            groups.append({"by": by, "key": key, **facts.figures(members)})
    return facts.figures(np.arange(len(rows), dtype=np.int64)), groups


def status_names(view: Evaluation) -> dict[tuple[str, str, str], str]:
    """Every seen shipment's status name (for tests against `ledger.sla.statuses`)."""
    return {view.columns.keys[row]: STATUSES[int(view.status[row])] for row in np.flatnonzero(view.seen).tolist()}
