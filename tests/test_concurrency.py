"""Concurrent appenders (as several API workers would be): gap-free log, unforked chains, on both databases."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine

from ledger.storage import LedgerStore
from ledger.verify import verify_ledger
from tests.factory import handoff_data, make_world, origin_data

THREADS = 8
EVENTS_PER_THREAD = 200


@pytest.mark.slow
def test_concurrent_appends(engine: Engine, tmp_path) -> None:
    from ledger.logkey import load_or_create_log_signer

    store = LedgerStore(engine, load_or_create_log_signer(tmp_path / "log.key", "chainproof.test/log"))
    world = make_world(store)
    # every thread writes to its own batch AND to one shared batch, so chains are contended too
    store.append([world.merchant.submit("origin", "SHARED", "1", origin_data())])

    def writer(thread: int) -> int:
        lot = f"T{thread}"
        store.append([world.merchant.submit("origin", "SKU", lot, origin_data())])
        holder, other = world.merchant, world.carrier
        for n in range(EVENTS_PER_THREAD - 1):
            if n % 2:
                store.append(
                    [
                        world.inspector.submit(
                            "inspection",
                            "SHARED",
                            "1",
                            {
                                "standard": f"thread {thread}",
                                "result": "pass",
                                "inspected_at": "2026-11-02T10:00:00Z",
                                "report": {"sha256": f"{n:064x}"},
                            },
                        )
                    ]
                )
            else:
                store.append([holder.submit("handoff", "SKU", lot, handoff_data(holder.id, other.id))])
                holder, other = other, holder
        return EVENTS_PER_THREAD

    with ThreadPoolExecutor(THREADS) as pool:
        written = sum(pool.map(writer, range(THREADS)))
    size = store.size()
    assert size == written + 1
    assert [e.stored_index for e in store.iter_entries()] == list(range(size))
    report = verify_ledger(store.iter_entries(), store.directory(), store.signer.verifier, store.checkpoint())
    assert report.ok, report.problems[:5]
    assert report.batches == THREADS + 1
