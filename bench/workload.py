"""The benchmarks' workload: batches of ten events each (origin, inspection, a shipment handed on five times
between two carriers, delivery), signed as clients would sign them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ledger.storage import LedgerStore, Submission
from tests.factory import World, handoff_data, inspection_data, origin_data, shipment_data

EVENTS_PER_BATCH = 10


def journey(world: World, sku: str, lot: str, gtin: str | None = None) -> list[Submission]:
    m, i, c1, c2 = world.merchant, world.inspector, world.carrier, world.second_carrier
    origin = origin_data(gtin=gtin) if gtin else origin_data()
    events = [
        m.submit("origin", sku, lot, origin),
        i.submit("inspection", sku, lot, inspection_data()),
        m.submit("shipment", sku, lot, shipment_data("S1")),
        m.submit("handoff", sku, lot, handoff_data(m.id, c1.id, "S1")),
    ]
    holder, other = c1, c2
    # Sensor readings as loggers report them (one decimal). An integral float such as 5.0 takes rfc8785's slower
    # pure-Python path; a client's canonical JSON would carry it as the integer 5 anyway.
    for temperature in (5.2, 6.1, 4.3, 3.9, 3.4):
        events.append(holder.submit("handoff", sku, lot, handoff_data(holder.id, other.id, "S1", temperature)))
        holder, other = other, holder
    events.append(holder.submit("delivery", sku, lot, {"shipment_id": "S1", "delivered_at": "2026-11-08T15:00:00Z"}))
    return events


def chunks(world: World, entries: int, sku: str, gtin: str | None = None, size: int = 1000) -> list[list[Submission]]:
    """`entries` events (whole batches, lots L0000000...), in chunks of about `size` for batched appends."""
    result: list[list[Submission]] = []
    chunk: list[Submission] = []
    for n in range(entries // EVENTS_PER_BATCH):
        chunk += journey(world, sku, f"L{n:07d}", gtin)
        if len(chunk) >= size:
            result.append(chunk)
            chunk = []
    if chunk:
        result.append(chunk)
    return result


def append_all(store: LedgerStore, batches: list[list[Submission]]) -> None:
    """Two submitting threads, as API workers' request threads would be: one chunk's parsing and signature checks
    overlap with another's commit (the store's sequencer commits them in order of arrival)."""
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(store.append_queued, batches))
