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
    from ledger.storage import create_db_engine

    signer = load_or_create_log_signer(tmp_path / "log.key", "chainproof.test/log")
    store = LedgerStore(engine, signer)
    world = make_world(store)
    # every thread writes to its own batch AND to one shared batch, so chains are contended too
    store.append([world.merchant.submit("origin", "SHARED", "1", origin_data())])
    url = engine.url.render_as_string(hide_password=False)

    def writer(thread: int) -> int:
        # a store (and engine) of its own per thread, as each API worker process has: nothing in Python
        # serializes these appenders, only the database lock (advisory lock / BEGIN IMMEDIATE)
        own_engine = create_db_engine(url)
        own = LedgerStore(own_engine, signer)
        try:
            return append_as_worker(own, thread)
        finally:
            own_engine.dispose()

    def append_as_worker(store: LedgerStore, thread: int) -> int:
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
    assert size == world.at(written + 1)
    assert [e.stored_index for e in store.iter_entries()] == list(range(size))
    report = verify_ledger(store.iter_entries(), store.signer.verifier, store.issue_checkpoint())
    assert report.ok, report.problems[:5]
    assert report.batches == THREADS + 1


def test_group_commit_keeps_each_request_all_or_nothing(engine: Engine, tmp_path) -> None:
    """Many threads through the sequencer: failing requests leave no trace, the others all land, in one log."""
    from ledger.errors import RuleError
    from ledger.logkey import load_or_create_log_signer
    from ledger.storage import Idempotency
    from tests.factory import shipment_data

    store = LedgerStore(engine, load_or_create_log_signer(tmp_path / "log.key", "chainproof.test/log"))
    world = make_world(store)

    def client(thread: int) -> tuple[int, int]:
        ok = failed = 0
        lot = f"G{thread}"
        store.append_queued([world.merchant.submit("origin", "GRP", lot, origin_data())])
        ok += 1
        for n in range(40):
            good = world.merchant.submit("shipment", "GRP", lot, shipment_data(f"S{n}"))
            if n % 4 == 0:  # a request whose second event breaks a rule: neither event may land
                bad = world.merchant.submit("origin", "GRP", lot, origin_data())
                try:
                    store.append_queued([good, bad])
                except RuleError:
                    failed += 1
                    continue
                raise AssertionError("a second origin was accepted")
            key = Idempotency(world.merchant.id, f"{lot}-{n}", b"same")
            first, _ = store.append_queued([good], key)
            again, replayed = store.append_queued([good], key)
            assert replayed
            assert again == first
            ok += 1
        return ok, failed

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(client, range(THREADS)))
    landed = sum(ok for ok, _ in outcomes)
    assert sum(failed for _, failed in outcomes) == THREADS * 10
    assert store.size() == world.at(landed)
    report = verify_ledger(store.iter_entries(), store.signer.verifier, store.issue_checkpoint())
    assert report.ok, report.problems[:5]
    for thread in range(THREADS):  # the shipments of the failed requests are not there, the others are
        shipped = [e.leaf for e in store.batch_entries("GRP", f"G{thread}")][1:]
        assert len(shipped) == 30
