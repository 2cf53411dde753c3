"""An independent, plain-Python tally of the SLA figures, one shipment at a time: the oracle the array-based report
in ledger/sla.py is checked against for random histories (tests/test_sla.py). It follows the definitions in
docs/sla.md directly, without grouping tricks."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ledger.sla import GROUP_BY, Filters, Parameters, ShipmentRecord, Status, iso_week, percentile, statuses


def _rate(figures: dict[str, Any], name: str, numerator: int, denominator: int, empty: str) -> None:
    if denominator:
        figures[name] = numerator / denominator
    else:
        figures[name] = None
        figures[f"{name}_reason"] = empty


@dataclass
class Tally:
    """The counts of one group, added shipment by shipment."""

    parameters: Parameters
    as_of: int
    shipments: int = 0
    cancelled: int = 0
    delivered: int = 0
    on_time: int = 0
    late: int = 0
    overdue: int = 0
    in_transit: int = 0
    at_risk: int = 0
    otif_due: int = 0
    otif_met: int = 0
    otif_unknown: int = 0
    events: int = 0
    recorded_late: int = 0
    within: dict[int, list[int]] = field(default_factory=dict)  # hours -> [met, eligible]
    lead_times: list[int] = field(default_factory=list)
    custody: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    def add(self, record: ShipmentRecord, status: Status) -> None:
        parameters = self.parameters
        late_after = parameters.recorded_late_after_s
        self.events += 1 + len(record.steps) + (record.delivery is not None) + (record.cancel is not None)
        logged_pairs = [(record.placed_at, record.logged_us)]
        logged_pairs += [(s.at, s.logged_us) for s in record.steps]
        logged_pairs += [(c.at, c.logged_us) for c in (record.delivery, record.cancel) if c is not None]
        self.recorded_late += sum(1 for at, logged_us in logged_pairs if logged_us // 1_000_000 - at > late_after)
        if status.name == "cancelled":
            self.cancelled += 1
            return
        self.shipments += 1
        if status.name == "in_transit":
            self.in_transit += 1
        elif status.name == "at_risk":
            self.at_risk += 1
        elif status.name == "overdue":
            self.overdue += 1
        delivery = record.delivery
        if delivery is not None:
            self.delivered += 1
            if status.name == "on_time":
                self.on_time += 1
            else:
                self.late += 1
            self.lead_times.append(delivery.at - record.placed_at)
        for hours in parameters.within_hours:
            counts = self.within.setdefault(hours, [0, 0])
            limit = hours * 3600
            if delivery is not None:
                counts[1] += 1
                counts[0] += delivery.at - record.placed_at <= limit
            elif self.as_of - record.placed_at >= limit:
                counts[1] += 1
        if delivery is not None or status.name == "overdue":  # due
            ordered = record.quantity
            if ordered is None or (delivery is not None and delivery.quantity is None):
                self.otif_unknown += 1
            else:
                self.otif_due += 1
                if delivery is not None and status.name == "on_time" and (delivery.quantity or 0) >= ordered:
                    self.otif_met += 1
        holder, since = record.merchant, record.placed_at
        for step in record.steps:
            self.custody[holder].append(step.at - since)
            holder, since = step.holder, step.at
        if delivery is not None:
            self.custody[holder].append(delivery.at - since)

    def figures(self) -> dict[str, Any]:
        due = self.on_time + self.late + self.overdue
        figures: dict[str, Any] = {
            "shipments": self.shipments,
            "delivered": self.delivered,
            "on_time": self.on_time,
            "late": self.late,
            "overdue": self.overdue,
            "in_transit": self.in_transit,
            "at_risk": self.at_risk,
            "cancelled": self.cancelled,
            "due": due,
        }
        _rate(figures, "on_time_rate", self.on_time, due, "no shipment is due yet (none delivered or overdue)")
        _rate(
            figures,
            "otif_rate",
            self.otif_met,
            self.otif_due,
            "no due shipment has known quantities (ordered, and delivered if delivered)"
            if due
            else "no shipment is due yet (none delivered or overdue)",
        )
        figures["otif_due_known"] = self.otif_due
        figures["otif_unknown"] = self.otif_unknown
        for hours in self.parameters.within_hours:
            met, eligible = self.within.get(hours, [0, 0])
            _rate(
                figures,
                f"within_{hours}h_rate",
                met,
                eligible,
                f"no shipment delivered yet or placed at least {hours} h before as_of",
            )
        lead = sorted(self.lead_times)
        figures["lead_time_s"] = (
            {"p50": percentile(lead, 50), "p90": percentile(lead, 90), "p95": percentile(lead, 95)} if lead else None
        )
        if not lead:
            figures["lead_time_s_reason"] = "no shipment delivered"
        held = sorted(
            (percentile(ordered, 50), percentile(ordered, 90), len(ordered), holder)
            for holder, ordered in ((holder, sorted(durations)) for holder, durations in self.custody.items())
        )
        held.sort(key=lambda c: (-c[0], c[3]))  # the slowest custodian first
        figures["custody"] = [{"holder": h, "steps": n, "p50_s": p50, "p90_s": p90} for p50, p90, n, h in held]
        figures["events"] = self.events
        figures["recorded_late"] = self.recorded_late
        return figures


def _keys(record: ShipmentRecord, by: str) -> tuple[str, ...]:
    if by == "merchant":
        return (record.merchant,)
    if by == "carrier":
        return record.carriers
    if by == "lane":
        return (record.lane,)
    return (iso_week(record.placed_at),)


def oracle_figures(
    records: list[ShipmentRecord], as_of: int, filters: Filters, group_by: list[str], parameters: Parameters
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(total, groups) as `ledger.sla.report` gives them."""
    found: dict[tuple[str, str, str], Status] = statuses(records, as_of, parameters)
    total = Tally(parameters, as_of)
    groups: dict[tuple[str, str], Tally] = {}
    for record in records:
        if not filters.admits(record):
            continue
        status = found[record.key()]
        total.add(record, status)
        for by in group_by:
            for value in _keys(record, by):
                groups.setdefault((by, value), Tally(parameters, as_of)).add(record, status)
    ordered = sorted(groups.items(), key=lambda item: (GROUP_BY.index(item[0][0]), item[0][1]))
    return total.figures(), [{"by": by, "key": key, **tally.figures()} for (by, key), tally in ordered]
