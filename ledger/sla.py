"""Fulfilment SLA: who keeps their delivery promises, computed from the ledger's signed events alone.

Pure: records and a moment in, statuses and figures out; no IO, no clock (the caller passes `as_of`). The same
functions serve the API, `chainproof sla report --bundle` (offline, from an exported ledger) and `sla verify`, so
that a report over one checkpoint at one `as_of` gives identical figures wherever it is computed.
Definitions (also embedded in every report: see `DEFINITIONS`) are in docs/sla.md.

Times are whole seconds since the Unix epoch, UTC: the granularity of every comparison and duration. Times are
the events' own (placed_at, at, delivered_at, cancelled_at), never when they were logged; when they were logged
decides only whether a report sees them (`ShipmentRecord.seen`) and whether they were recorded late.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from ledger.sla_columns import Evaluation

STATUSES = ("in_transit", "at_risk", "overdue", "on_time", "late", "cancelled")
"""A shipment's status: the first five are the names the product page always used; `cancelled` is apart."""
OPEN_STATUSES = ("in_transit", "at_risk", "overdue")
GROUP_BY = ("merchant", "carrier", "lane", "week")


@dataclass(frozen=True, slots=True)
class Parameters:
    """Every threshold a status or figure depends on: embedded in each report and scorecard, so that figures can
    be recomputed exactly."""

    window_share: float = 0.8  # open past this share of its window (placed_at -> promised_by): at risk
    lane_percentile: int = 75  # the lane's typical progress: this nearest-rank percentile of earlier shipments
    lane_min_history: int = 5  # ... over at least this many (else the window rule alone)
    within_hours: tuple[int, ...] = (24, 48)  # the within_{h}h_rate figures
    recorded_late_after_s: int = 6 * 3600  # logged more than this after it happened: recorded late

    def __post_init__(self) -> None:
        if not 0 < self.window_share <= 1:
            raise ValueError(f"window share must be in (0, 1], got {self.window_share}")
        if not 0 < self.lane_percentile <= 100:
            raise ValueError(f"lane percentile must be in (0, 100], got {self.lane_percentile}")
        if self.lane_min_history < 1:
            raise ValueError(f"lane history minimum must be at least 1, got {self.lane_min_history}")
        if not self.within_hours or any(h <= 0 for h in self.within_hours):
            raise ValueError(f"within-hours thresholds must be positive, got {self.within_hours}")
        if self.recorded_late_after_s < 0:
            raise ValueError(f"the recorded-late delay cannot be negative, got {self.recorded_late_after_s}")

    def to_json(self) -> dict[str, Any]:
        return {
            "window_share": self.window_share,
            "lane_percentile": self.lane_percentile,
            "lane_min_history": self.lane_min_history,
            "within_hours": list(self.within_hours),
            "recorded_late_after_s": self.recorded_late_after_s,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Parameters:
        try:
            return cls(
                window_share=float(data["window_share"]),
                lane_percentile=int(data["lane_percentile"]),
                lane_min_history=int(data["lane_min_history"]),
                within_hours=tuple(int(h) for h in data["within_hours"]),
                recorded_late_after_s=int(data["recorded_late_after_s"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"SLA parameters cannot be read: {exc}") from exc


DEFAULT_PARAMETERS = Parameters()


# -- records ------------------------------------------------------------------------------------------------------


# Named tuples, not dataclasses: a report's first read builds some 800k steps from the projection's rows, and a
# tuple is built in C (a frozen dataclass's __init__ took 5 us a step).
class Step(NamedTuple):
    """A custody step of a shipment: a handoff to `holder` (the carrier of the step)."""

    sender: str
    holder: str
    at: int
    log_index: int
    logged_us: int


class Closing(NamedTuple):
    """What closed a shipment: its delivery or its cancellation."""

    at: int
    log_index: int
    logged_us: int
    actor: str
    quantity: float | None = None  # a delivery's quantity, if stated


@dataclass(frozen=True, slots=True)
class ShipmentRecord:
    """One shipment as its events tell it: the promise, custody steps, delivery or cancellation."""

    sku: str
    lot: str
    shipment_id: str
    merchant: str
    origin: str  # the batch's origin: its country, and region if it has one ("CN-Yunnan")
    destination: str
    placed_at: int
    promised_by: int
    index: int  # of the shipment event
    logged_us: int
    quantity: float | None = None
    unit: str | None = None
    steps: tuple[Step, ...] = ()
    delivery: Closing | None = None
    cancel: Closing | None = None

    @property
    def lane(self) -> str:
        return lane_name(self.origin, self.destination)

    @property
    def carriers(self) -> tuple[str, ...]:
        """Everyone who held its custody in a step, in order, once each."""
        return tuple(dict.fromkeys(step.holder for step in self.steps))

    @property
    def closed(self) -> bool:
        return self.delivery is not None or self.cancel is not None

    def seen(self, size: int, as_of_us: int) -> ShipmentRecord | None:
        """The shipment as a report over a tree of `size` entries at `as_of` sees it: only the events among those
        entries logged at or before `as_of` (None if its shipment event is not among them)."""
        if not _visible(self.index, self.logged_us, size, as_of_us):
            return None
        steps = tuple(s for s in self.steps if _visible(s.log_index, s.logged_us, size, as_of_us))
        delivery = self.delivery if _closing_visible(self.delivery, size, as_of_us) else None
        cancel = self.cancel if _closing_visible(self.cancel, size, as_of_us) else None
        if steps == self.steps and delivery is self.delivery and cancel is self.cancel:
            return self
        return replace(self, steps=steps, delivery=delivery, cancel=cancel)

    def key(self) -> tuple[str, str, str]:
        return (self.sku, self.lot, self.shipment_id)


def _visible(index: int, logged_us: int, size: int, as_of_us: int) -> bool:
    return index < size and logged_us <= as_of_us


def _closing_visible(closing: Closing | None, size: int, as_of_us: int) -> bool:
    return closing is not None and _visible(closing.log_index, closing.logged_us, size, as_of_us)


def lane_name(origin: str, destination: str) -> str:
    """`CC[-region]>destination`."""
    return f"{origin}>{destination}"


def origin_name(country: str, region: str | None) -> str:
    return f"{country}-{region}" if region else country


def epoch_seconds(moment: datetime) -> int:
    """Whole seconds since the epoch (the granularity of every SLA time): fractions are dropped."""
    return math.floor(moment.timestamp())


def epoch_us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_seconds(seconds: int) -> str:
    """RFC 3339 in UTC, to the second. Lists format thousands of times: each day's date is formatted once."""
    day, second = divmod(seconds, 86400)
    date = _DAYS.get(day)
    if date is None:
        if not 0 <= seconds <= _LAST_SECOND:  # outside what gmtime reads everywhere: the slow, general path
            return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if len(_DAYS) > 100_000:
            _DAYS.clear()
        year, month, mday = time.gmtime(seconds)[:3]
        date = _DAYS[day] = f"{year:04d}-{month:02d}-{mday:02d}T"
    hour, rest = divmod(second, 3600)
    minute, second = divmod(rest, 60)
    return f"{date}{hour:02d}:{minute:02d}:{second:02d}Z"


_DAYS: dict[int, str] = {}
_LAST_SECOND = 253402300799  # 9999-12-31T23:59:59Z


def iso_week(seconds: int) -> str:
    """The ISO week (UTC) of a moment, as 2026-W48."""
    year, week, _day = datetime.fromtimestamp(seconds, UTC).isocalendar()
    return f"{year}-W{week:02d}"


def nearest_rank(p: int, count: int) -> int:
    """The 1-based rank of the nearest-rank p-th percentile among `count` sorted values: ceil(p count / 100), in
    integers, and at least 1."""
    return max(1, -(-p * count // 100))


def percentile(sorted_values: Sequence[int], p: int) -> int:
    """Nearest-rank percentile of a non-empty ascending sequence: the smallest value with at least p% of the
    values at or below it."""
    return sorted_values[nearest_rank(p, len(sorted_values)) - 1]


def span(seconds: int) -> str:
    """A duration as people read it: 2 d 3 h, 5 h 10 min, 40 min, 12 s."""
    seconds = max(0, seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


# -- statuses -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Status:
    """A shipment's status at `as_of`, with why (for at_risk and overdue)."""

    name: str
    reasons: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()  # machine-readable reasons: window, lane_progress, past_promise

    @property
    def reason(self) -> str | None:
        return "; ".join(self.reasons) if self.reasons else None


_CANCELLED, _ON_TIME, _LATE, _IN_TRANSIT = Status("cancelled"), Status("on_time"), Status("late"), Status("in_transit")


@dataclass(frozen=True, slots=True)
class LaneReference:
    """How far the earlier-placed shipments of a shipment's lane had got: the durations (placed_at to the next
    custody point) of those that reached it, ascending."""

    point: int  # the custody point the shipment has not reached yet: 1 is the first handoff
    durations: tuple[int, ...]


def custody_points(record: ShipmentRecord) -> list[int]:
    """When each custody point was reached, in seconds after placed_at: each handoff, then the delivery (the last
    point: a shipment delivered with no handoff reached point 1 at its delivery)."""
    points = [step.at - record.placed_at for step in record.steps]
    if record.delivery is not None:
        points.append(record.delivery.at - record.placed_at)
    return points


def status_of(
    record: ShipmentRecord,
    as_of: int,
    parameters: Parameters = DEFAULT_PARAMETERS,
    lane: LaneReference | None = None,
) -> Status:
    """The status of a shipment (as seen at `as_of`, see `ShipmentRecord.seen`) at `as_of` (seconds)."""
    if record.cancel is not None:
        return _CANCELLED
    if record.delivery is not None:
        return _ON_TIME if record.delivery.at <= record.promised_by else _LATE
    if as_of > record.promised_by:
        late_by = span(as_of - record.promised_by)
        return Status(
            "overdue",
            (f"not delivered, {late_by} past the promise ({format_seconds(record.promised_by)})",),
            ("past_promise",),
        )
    reasons: list[str] = []
    codes: list[str] = []
    window = record.promised_by - record.placed_at
    elapsed = as_of - record.placed_at
    if elapsed >= parameters.window_share * window:
        share = 1.0 if window == 0 else elapsed / window
        reasons.append(
            f"{math.floor(share * 100)}% of the delivery window has passed (promised by "
            f"{format_seconds(record.promised_by)})"
        )
        codes.append("window")
    if lane is not None and len(lane.durations) >= parameters.lane_min_history:
        typical = percentile(lane.durations, parameters.lane_percentile)
        if elapsed > typical:
            reached = bisect.bisect_right(lane.durations, elapsed)
            share = math.floor(100 * reached / len(lane.durations))
            what = "no handoff yet" if lane.point == 1 else f"no custody step since step {lane.point - 1}"
            reasons.append(
                f"{what}, {share}% of this lane's {len(lane.durations)} earlier shipments had reached step "
                f"{lane.point} by now ({span(elapsed)} after the order; the lane's p{parameters.lane_percentile} "
                f"is {span(typical)})"
            )
            codes.append("lane_progress")
    if reasons:
        return Status("at_risk", tuple(reasons), tuple(codes))
    return _IN_TRANSIT


def statuses(
    records: Sequence[ShipmentRecord], as_of: int, parameters: Parameters = DEFAULT_PARAMETERS
) -> dict[tuple[str, str, str], Status]:
    """Every shipment's status at `as_of`, the lane rule judged against the earlier-placed shipments of the same
    lane that reached the next custody point (all records seen at `as_of`, see `ShipmentRecord.seen`)."""
    found: dict[tuple[str, str, str], Status] = {}
    open_by_lane: dict[str, list[ShipmentRecord]] = defaultdict(list)
    for record in records:
        if record.closed or as_of > record.promised_by:
            found[record.key()] = status_of(record, as_of, parameters)
        else:
            open_by_lane[record.lane].append(record)
    if not open_by_lane:
        return found
    by_lane: dict[str, list[ShipmentRecord]] = defaultdict(list)
    for record in records:
        if record.lane in open_by_lane:
            by_lane[record.lane].append(record)
    for lane, waiting in open_by_lane.items():
        for record, reference in _lane_references(by_lane[lane], waiting):
            found[record.key()] = status_of(record, as_of, parameters, reference)
    return found


def _order(record: ShipmentRecord) -> tuple[int, int]:
    return (record.placed_at, record.index)


def _lane_references(
    lane: list[ShipmentRecord], waiting: list[ShipmentRecord]
) -> Iterable[tuple[ShipmentRecord, LaneReference]]:
    """For each open shipment, the lane's earlier-placed shipments' times to its next custody point: one sweep in
    order of placed_at per point, keeping the durations seen so far sorted."""
    by_point: dict[int, list[ShipmentRecord]] = defaultdict(list)
    for record in waiting:
        by_point[len(record.steps) + 1].append(record)
    history = sorted(lane, key=_order)
    reached = [custody_points(record) for record in history]
    for point, records in by_point.items():
        records.sort(key=_order)
        durations: list[int] = []
        position = 0
        for record in records:
            while position < len(history) and _order(history[position]) < _order(record):
                points = reached[position]
                if len(points) >= point:
                    bisect.insort(durations, points[point - 1])
                position += 1
            yield record, LaneReference(point, tuple(durations))


# -- reports ------------------------------------------------------------------------------------------------------


DEFINITIONS = {
    "granularity": "times are whole seconds (UTC); fractions of a second are dropped before any comparison",
    "times": "the events' own times (placed_at, handoff at, delivered_at, cancelled_at), not when they were logged",
    "seen": "a report over checkpoint C at as_of T counts only the entries of C logged at or before T",
    "shipments": "shipments placed in [from, to) and not cancelled at as_of",
    "on_time": "delivered with delivered_at <= promised_by",
    "due": "delivered, or not delivered and as_of is past promised_by (overdue); open shipments within their "
    "window are not due yet",
    "on_time_rate": "on-time deliveries / due shipments (an overdue shipment counts against it)",
    "within_Nh_rate": "shipments delivered within N hours of placed_at / shipments delivered, or placed at least "
    "N hours before as_of",
    "otif_rate": "delivered on time and in full (delivered quantity >= ordered quantity) / due shipments whose "
    "in-full is known (ordered quantity stated and, if delivered, delivered quantity stated); unknown is never "
    "counted as full",
    "null_rate": "a rate with an empty denominator is null, with its reason beside it (never 100% by default)",
    "lead_time": "placed_at -> delivered_at of delivered shipments; percentiles are nearest-rank",
    "custody": "time each custodian held a shipment: from receiving it (the merchant: from placed_at) to handing "
    "it on or delivering it",
    "carrier": "the actor receiving custody in a handoff; a shipment counts for every carrier that held it",
    "lane": "CC[-region]>destination: the batch's origin country (and region) to the shipment's destination",
    "week": "the ISO week (UTC) of placed_at, as YYYY-Www",
    "cancelled": "closed by the merchant without a delivery: counted apart, excluded from every rate",
    "at_risk": "open, and past window_share of its window (placed_at -> promised_by), or later than the lane's "
    "p{lane_percentile} time to its next custody step over at least lane_min_history earlier-placed shipments of "
    "the lane that reached that step",
    "recorded_late": "events (of the shipments counted) logged more than recorded_late_after_s after they happened",
}


@dataclass(frozen=True, slots=True)
class Filters:
    merchant: str | None = None
    carrier: str | None = None
    lane: str | None = None
    placed_from: int | None = None  # inclusive, seconds
    placed_to: int | None = None  # exclusive

    def admits(self, record: ShipmentRecord) -> bool:
        if self.merchant is not None and record.merchant != self.merchant:
            return False
        if self.carrier is not None and self.carrier not in record.carriers:
            return False
        if self.lane is not None and record.lane != self.lane:
            return False
        if self.placed_from is not None and record.placed_at < self.placed_from:
            return False
        return self.placed_to is None or record.placed_at < self.placed_to

    def to_json(self) -> dict[str, Any]:
        return {
            "merchant": self.merchant,
            "carrier": self.carrier,
            "lane": self.lane,
            "from": None if self.placed_from is None else format_seconds(self.placed_from),
            "to": None if self.placed_to is None else format_seconds(self.placed_to),
        }


def report(
    records: Iterable[ShipmentRecord] | Evaluation,
    *,
    as_of: int,
    filters: Filters | None = None,
    group_by: Sequence[str] = (),
    parameters: Parameters = DEFAULT_PARAMETERS,
) -> dict[str, Any]:
    """The figures of the shipments `filters` admits (records as seen at `as_of`, or a store's evaluated view): a
    `total` and one group per value of each `group_by` dimension. The caller adds the checkpoint it was computed
    over. The work is done on columns (ledger/sla_columns.py)."""
    from ledger.sla_columns import Evaluation, ShipmentColumns, report_of

    for by in group_by:
        if by not in GROUP_BY:
            raise ValueError(f"cannot group by {by!r}: choose from {', '.join(GROUP_BY)}")
    filters = filters or Filters()
    if isinstance(records, Evaluation):
        view = records
        parameters = view.parameters
    else:  # records already cut to their view: every entry they hold is seen
        view = ShipmentColumns.of(records).evaluate(2**62, 2**62, as_of, parameters)
    total, groups = report_of(view, filters, group_by)
    return {
        "as_of": format_seconds(as_of),
        "filters": filters.to_json(),
        "group_by": list(group_by),
        "parameters": parameters.to_json(),
        "definitions": DEFINITIONS,
        "total": total,
        "groups": groups,
    }


def shipment_view(record: ShipmentRecord, status: Status) -> dict[str, Any]:
    """One shipment as the API and CLI show it: the promise, its timeline, its status and why."""
    timeline: list[dict[str, Any]] = [
        {"event": "shipment", "at": format_seconds(record.placed_at), "index": record.index, "actor": record.merchant}
    ]
    timeline += [
        {
            "event": "handoff",
            "at": format_seconds(step.at),
            "index": step.log_index,
            "from": step.sender,
            "to": step.holder,
        }
        for step in record.steps
    ]
    if record.delivery is not None:
        timeline.append(
            {
                "event": "delivery",
                "at": format_seconds(record.delivery.at),
                "index": record.delivery.log_index,
                "actor": record.delivery.actor,
                "quantity": record.delivery.quantity,
            }
        )
    if record.cancel is not None:
        timeline.append(
            {
                "event": "shipment_cancel",
                "at": format_seconds(record.cancel.at),
                "index": record.cancel.log_index,
                "actor": record.cancel.actor,
            }
        )
    return {
        "shipment_id": record.shipment_id,
        "sku": record.sku,
        "lot": record.lot,
        "merchant": record.merchant,
        "lane": record.lane,
        "destination": record.destination,
        "status": status.name,
        "reason": status.reason,
        "reasons": list(status.codes),
        "placed_at": format_seconds(record.placed_at),
        "promised_by": format_seconds(record.promised_by),
        "quantity": record.quantity,
        "unit": record.unit,
        "carriers": list(record.carriers),
        "timeline": timeline,
    }


def status_in_lane(
    record: ShipmentRecord, lane: Iterable[ShipmentRecord], as_of: int, parameters: Parameters = DEFAULT_PARAMETERS
) -> Status:
    """One shipment's status, its lane judged from `lane` (the records of its lane, as seen at `as_of`): what
    `statuses` gives it, without computing everyone's."""
    if record.closed or as_of > record.promised_by:
        return status_of(record, as_of, parameters)
    point = len(record.steps) + 1
    durations = sorted(
        points[point - 1]
        for other in lane
        if other.lane == record.lane
        and _order(other) < _order(record)
        and len(points := custody_points(other)) >= point
    )
    return status_of(record, as_of, parameters, LaneReference(point, tuple(durations)))


def parse_bound(value: str, what: str, *, end: bool = False) -> int:
    """A report's `from`/`to`/`as_of`: an RFC 3339 time, or a date (YYYY-MM-DD, UTC) meaning the start of that day,
    or with `end` the start of the next (so that `to=2026-11-30` includes the 30th). Seconds; ValueError naming
    `what` if it is neither."""
    from datetime import date, timedelta

    from ledger.errors import ValidationError
    from ledger.events import parse_time

    if len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{what} {value[:40]!r} is not a date (YYYY-MM-DD) or an RFC 3339 time") from None
        start = datetime(day.year, day.month, day.day, tzinfo=UTC) + (timedelta(days=1) if end else timedelta())
        return epoch_seconds(start)
    try:
        return epoch_seconds(parse_time(value, what))
    except ValidationError as exc:
        raise ValueError(f"{exc} (or a date, YYYY-MM-DD)") from None


def checkpointed(body: dict[str, Any], *, size: int, root: str) -> dict[str, Any]:
    """A report with the signed checkpoint it was computed over named first (root in base64, as the checkpoint
    writes it)."""
    return {"checkpoint": {"size": size, "root": root}, **body}


CSV_COLUMNS = (
    "by",
    "key",
    "shipments",
    "delivered",
    "on_time",
    "late",
    "overdue",
    "in_transit",
    "at_risk",
    "cancelled",
    "due",
    "on_time_rate",
    "otif_rate",
    "otif_unknown",
    "lead_time_p50_s",
    "lead_time_p90_s",
    "lead_time_p95_s",
    "recorded_late",
)


def report_csv(report_body: Mapping[str, Any]) -> str:
    """The report as CSV: a row for the total (by "total") and one per group, rates as fractions (empty when
    null), and the checkpoint and as_of on every row so that a sheet keeps what the figures are over."""
    import csv
    import io

    within = [f"within_{hours}h_rate" for hours in report_body["parameters"]["within_hours"]]
    columns = [*CSV_COLUMNS[:13], *within, *CSV_COLUMNS[13:], "checkpoint_size", "checkpoint_root", "as_of"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    checkpoint = report_body.get("checkpoint", {})
    for group in [{"by": "total", "key": "", **report_body["total"]}, *report_body["groups"]]:
        lead = group.get("lead_time_s") or {}
        row = {
            **group,
            "lead_time_p50_s": lead.get("p50"),
            "lead_time_p90_s": lead.get("p90"),
            "lead_time_p95_s": lead.get("p95"),
            "checkpoint_size": checkpoint.get("size"),
            "checkpoint_root": checkpoint.get("root"),
            "as_of": report_body["as_of"],
        }
        writer.writerow(["" if row.get(c) is None else _csv_value(row[c]) for c in columns])
    return out.getvalue()


def _csv_value(value: Any) -> str:
    text_value = repr(value) if isinstance(value, float) else str(value)
    # a cell starting with = + - @ is a formula to a spreadsheet: keys are actor ids and lanes, written by others
    return (
        "'" + text_value
        if text_value[:1] in ("=", "+", "-", "@") and not isinstance(value, (int, float))
        else text_value
    )
