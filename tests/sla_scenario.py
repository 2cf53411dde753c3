"""A fixed fulfilment history whose SLA answers were worked out by hand (tests/test_sla.py states them).

Batch COF/L1 of the merchant (origin ET, region Gedeo), lane ET-Gedeo>DE-HH unless said otherwise; as of
2026-11-10T12:00:00Z:

- S1 on time: placed 11-02 08:00, promised 11-04 08:00, merchant -> carrier 10:00, delivered 11-03 08:00 (10 of 10)
- S2 late: placed 11-02 09:00, promised 11-03 09:00, merchant -> carrier 12:00, carrier -> second carrier 11-03
  06:00, delivered 11-04 09:00 (5 of 5); the delivery was recorded late (logged 11-07 09:00)
- S3 short: placed 11-03 08:00 (logged 15:00: recorded late), promised 11-05 08:00, merchant -> carrier 09:30
  (logged 15:01: 5 h 31 min later, not late), delivered 11-04 08:00, 8 of 10 (on time, not in full)
- S4 overdue: placed 11-05 08:00, promised 11-07 08:00, merchant -> carrier 10:00, never delivered (3 pcs)
- S5 cancelled: placed 11-06 08:00, promised 11-08 08:00, cancelled 11-06 12:00
- S6 in transit: placed 11-10 11:00, promised 11-12 08:00, no handoff (1 h in; the lane's p75 to a first
  handoff is 2 h)
- S7 at risk (window): placed 11-08 12:00, promised 11-10 16:00, merchant -> second carrier 14:00 (48 h of 52 h)
- S8 at risk (lane): placed 11-10 08:00, promised 11-12 08:00, no handoff 4 h in; the 5 earlier shipments of the
  lane that had a first handoff had it within 1-3 h
- S9 in transit on a lane with no history: destination FR-75, placed 11-10 06:00, promised 11-10 20:00 (6 of 14 h)

Batch TEA/L2 of the other merchant (origin US, region NY), lane US-NY>US-NJ:

- S10 on time across the end of US daylight saving time, times written with their local offsets: placed
  2026-11-01T00:30:00-04:00, handed to the second carrier 01:30-04:00, delivered and promised
  2026-11-01T23:30:00-05:00: 24 h after the order, although the local clocks read 23 h apart.

Every event is logged a minute after it happened, except where said.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ledger.events import format_time, new_statement, parse_time
from ledger.storage import LedgerStore
from tests.factory import Party, World, origin_data

AS_OF = "2026-11-10T12:00:00Z"
LANE = "ET-Gedeo>DE-HH"


@dataclass
class Recorder:
    store: LedgerStore

    def record(self, party: Party, kind: str, sku: str, lot: str, data: dict[str, Any], logged: str) -> int:
        """Sign at, and log at, the moment `logged` (the statement signed when it was logged)."""
        moment = parse_time(logged)
        statement = new_statement(kind, sku, lot, party.id, party.key.key_id, format_time(moment), data)
        [result] = self.store.append([party.sign(statement)], now=moment)
        return result.index


def _after(time: str, minutes: int = 1) -> str:
    return format_time(parse_time(time) + timedelta(minutes=minutes))


def shipment(sid: str, placed: str, promised: str, destination: str = "DE-HH", **extra: Any) -> dict[str, Any]:
    return {"shipment_id": sid, "destination": destination, "placed_at": placed, "promised_by": promised, **extra}


def handoff(sender: Party, recipient: Party, sid: str, at: str) -> dict[str, Any]:
    return {"from": sender.id, "to": recipient.id, "place": "Djibouti port", "at": at, "shipment_id": sid}


def delivery(sid: str, at: str, **extra: Any) -> dict[str, Any]:
    return {"shipment_id": sid, "delivered_at": at, **extra}


def build(world: World) -> Recorder:
    """Record the scenario into the world's store (after its actors)."""
    r = Recorder(world.store)
    m, c1, c2 = world.merchant, world.carrier, world.second_carrier

    def rec(party: Party, kind: str, data: dict[str, Any], at: str, logged: str | None = None) -> int:
        return r.record(party, kind, "COF", "L1", data, logged or _after(at))

    rec(m, "origin", origin_data(produced_at="2026-11-01T06:00:00Z"), "2026-11-01T06:00:00Z")
    # S1: on time, in full
    t = "2026-11-02T08:00:00Z"
    rec(m, "shipment", shipment("S1", t, "2026-11-04T08:00:00Z", quantity=10, unit="pcs"), t)
    rec(m, "handoff", handoff(m, c1, "S1", "2026-11-02T10:00:00Z"), "2026-11-02T10:00:00Z")
    rec(c1, "delivery", delivery("S1", "2026-11-03T08:00:00Z", quantity=10), "2026-11-03T08:00:00Z")
    # S2: late; its delivery recorded three days after it happened
    t = "2026-11-02T09:00:00Z"
    rec(m, "shipment", shipment("S2", t, "2026-11-03T09:00:00Z", quantity=5, unit="kg"), t)
    rec(m, "handoff", handoff(m, c1, "S2", "2026-11-02T12:00:00Z"), "2026-11-02T12:00:00Z")
    rec(c1, "handoff", handoff(c1, c2, "S2", "2026-11-03T06:00:00Z"), "2026-11-03T06:00:00Z")
    # S3: placed 11-03 08:00 but logged at 15:00 (7 h later: recorded late)
    t = "2026-11-03T08:00:00Z"
    rec(m, "shipment", shipment("S3", t, "2026-11-05T08:00:00Z", quantity=10, unit="pcs"), t, "2026-11-03T15:00:00Z")
    rec(m, "handoff", handoff(m, c1, "S3", "2026-11-03T09:30:00Z"), "2026-11-03T15:01:00Z")
    rec(c1, "delivery", delivery("S3", "2026-11-04T08:00:00Z", quantity=8), "2026-11-04T08:00:00Z")
    # S4: overdue
    t = "2026-11-05T08:00:00Z"
    rec(m, "shipment", shipment("S4", t, "2026-11-07T08:00:00Z", quantity=3, unit="pcs"), t)
    rec(m, "handoff", handoff(m, c1, "S4", "2026-11-05T10:00:00Z"), "2026-11-05T10:00:00Z")
    # S5: cancelled
    t = "2026-11-06T08:00:00Z"
    rec(m, "shipment", shipment("S5", t, "2026-11-08T08:00:00Z"), t)
    rec(m, "shipment_cancel", {"shipment_id": "S5", "cancelled_at": "2026-11-06T12:00:00Z"}, "2026-11-06T12:00:00Z")
    # S2's delivery, recorded late
    rec(
        c2,
        "delivery",
        delivery("S2", "2026-11-04T09:00:00Z", quantity=5),
        "2026-11-04T09:00:00Z",
        "2026-11-07T09:00:00Z",
    )
    # S7: at risk by its window
    t = "2026-11-08T12:00:00Z"
    rec(m, "shipment", shipment("S7", t, "2026-11-10T16:00:00Z"), t)
    rec(m, "handoff", handoff(m, c2, "S7", "2026-11-08T14:00:00Z"), "2026-11-08T14:00:00Z")
    # S9: a lane with no history
    t = "2026-11-10T06:00:00Z"
    rec(m, "shipment", shipment("S9", t, "2026-11-10T20:00:00Z", destination="FR-75"), t)
    # S8: at risk by the lane's progress
    t = "2026-11-10T08:00:00Z"
    rec(m, "shipment", shipment("S8", t, "2026-11-12T08:00:00Z"), t)
    # S6: in transit
    t = "2026-11-10T11:00:00Z"
    rec(m, "shipment", shipment("S6", t, "2026-11-12T08:00:00Z"), t)

    # the other merchant's batch: S10 across the end of daylight saving time
    om = world.other_merchant
    origin = origin_data(country="US", region="NY", produced_at="2026-10-30T00:00:00Z")
    r.record(om, "origin", "TEA", "L2", origin, "2026-10-30T00:01:00Z")
    placed = "2026-11-01T00:30:00-04:00"
    arrived = "2026-11-01T23:30:00-05:00"
    r.record(om, "shipment", "TEA", "L2", shipment("S10", placed, arrived, destination="US-NJ"), "2026-11-01T04:31:00Z")
    r.record(om, "handoff", "TEA", "L2", handoff(om, c2, "S10", "2026-11-01T01:30:00-04:00"), "2026-11-01T05:31:00Z")
    r.record(c2, "delivery", "TEA", "L2", delivery("S10", arrived), "2026-11-02T04:31:00Z")
    return r
