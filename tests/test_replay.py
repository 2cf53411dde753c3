"""A signed statement is logged at most once: refused by the store (also under concurrent appenders on both
databases), reported by the verifier when a server let one through, and known for entries logged before the rule
(migration 0004 fills the table from the log)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text

from ledger.entry import build_leaf
from ledger.errors import DuplicateStatementError, ValidationError
from ledger.hashing import leaf_hash, sha256
from ledger.intake import SignedAtWindow
from ledger.logkey import load_or_create_log_signer
from ledger.storage import LedgerStore, create_db_engine, default_sqlite_url
from ledger.storage.db import alembic_config
from ledger.verify import verify_ledger
from tests.factory import World, inspection_data, make_world, origin_data, shipment_data


def _verify(store: LedgerStore):
    return verify_ledger(store.iter_entries(), store.signer.verifier, store.issue_checkpoint())


def test_the_store_refuses_a_replay_naming_the_first_index(world: World) -> None:
    store = world.store
    origin = world.merchant.submit("origin", "R", "1", origin_data())
    shipment = world.merchant.submit("shipment", "R", "1", shipment_data("S1"))
    store.append([origin, shipment])
    for replay in (origin, shipment):
        with pytest.raises(DuplicateStatementError) as caught:
            store.append([replay])
        assert caught.value.index == world.at(0 if replay is origin else 1)
    # a replay inside a request refuses the whole request, and nothing of it is kept
    fresh = world.merchant.submit("shipment", "R", "1", shipment_data("S2"))
    with pytest.raises(DuplicateStatementError, match=rf"event 1: .*at index {world.at(2)}"):
        store.append([fresh, fresh])
    assert store.size() == world.at(2)
    store.append([fresh])  # the rolled-back request left no trace: the statement is new to the log
    assert store.size() == world.at(3)
    assert _verify(store).ok


def test_the_verifier_reports_a_replay_a_server_let_through(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    store = world.store
    inspection = world.inspector.submit("inspection", "V", "1", inspection_data())
    store.append([world.merchant.submit("origin", "V", "1", origin_data()), inspection])
    store.append([world.merchant.submit("origin", "V", "2", origin_data())])
    # a server that skips the check and the table that backs it (as one writing the database directly would)
    # logs the old "pass" again
    insert = store._insert_entries_and_nodes
    monkeypatch.setattr(store, "_logged", lambda _conn, _group: {})
    monkeypatch.setattr(
        store, "_insert_entries_and_nodes", lambda conn, e, n, _s, h, sla: insert(conn, e, n, [], h, sla)
    )
    store.append([inspection])
    report = _verify(store)
    assert not report.ok
    replays = [p for p in report.problems if p.code == "replay"]
    assert [(p.index, p.message) for p in replays] == [
        (world.at(3), f"the same signed statement is already logged at index {world.at(1)}")
    ], report.problems


@pytest.mark.slow
def test_concurrent_replays_from_two_workers_append_once(engine: Engine, tmp_path: Path) -> None:
    signer = load_or_create_log_signer(tmp_path / "log.key", "chainproof.test/log")
    store = LedgerStore(engine, signer)
    world = make_world(store)
    store.append([world.merchant.submit("origin", "C", "1", origin_data())])
    statements = [world.merchant.submit("shipment", "C", "1", shipment_data(f"S{n}")) for n in range(25)]
    url = engine.url.render_as_string(hide_password=False)
    outcomes: dict[int, list[str]] = {n: [] for n in range(len(statements))}
    barrier = threading.Barrier(2)

    def worker() -> None:
        own_engine = create_db_engine(url)  # a store and engine of its own, as each API worker process has
        own = LedgerStore(own_engine, signer)
        try:
            for n, submission in enumerate(statements):
                barrier.wait()
                try:
                    own.append([submission])
                    outcomes[n].append("appended")
                except DuplicateStatementError:
                    outcomes[n].append("replay")
        finally:
            own_engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(sorted(o) == ["appended", "replay"] for o in outcomes.values()), outcomes
    assert store.size() == world.at(1 + len(statements))
    assert _verify(store).ok


def test_signed_at_window_is_intake_only(world: World, tmp_path: Path) -> None:
    """The window is checked when a statement arrives, never by the verifier: a ledger recorded before it (or
    imported with the window off) still verifies."""
    store = world.store
    old = world.merchant.statement("origin", "W", "1", origin_data()) | {"signed_at": "2026-01-05T00:00:00Z"}
    with pytest.raises(ValidationError, match="before the server received it"):
        store.append([world.merchant.sign(old)])
    lenient = LedgerStore(store.engine, store.signer, signed_at_window=None)
    lenient.append([world.merchant.sign(old)])
    assert _verify(store).ok
    narrow = LedgerStore(store.engine, store.signer, signed_at_window=SignedAtWindow(before=SignedAtWindow().after))
    narrow.append([world.merchant.submit("origin", "W", "2", origin_data())])  # signed just now: within 5 minutes


def test_migration_0004_knows_statements_logged_before_it(tmp_path: Path) -> None:
    engine = create_db_engine(default_sqlite_url(tmp_path))
    command.upgrade(alembic_config(engine), "0003")
    signer = load_or_create_log_signer(tmp_path / "log.key", "chainproof.test/log")
    world_store = LedgerStore(engine, signer)
    # at revision 0003 there is no logged_statements table: write the entries as that version did
    statement_hashes = []
    with engine.begin() as conn:
        prev = None
        for index in range(3):
            # entries 0 and 2 carry the same statement
            statement_bytes = b'{"n":%d,"signed_at":"2026-11-20T08:00:00Z","v":1}' % (index % 2)
            leaf = build_leaf(index, "2026-11-20T08:00:00.000000Z", prev, b"\0" * 64, statement_bytes)
            conn.execute(
                text("INSERT INTO entries (idx, sku, lot, leaf, leaf_hash) VALUES (:i, 'S', 'L', :leaf, :hash)"),
                {"i": index, "leaf": leaf, "hash": leaf_hash(leaf)},
            )
            prev = leaf_hash(leaf)
            statement_hashes.append(sha256(statement_bytes))
    command.upgrade(alembic_config(engine), "head")
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT statement_hash, idx FROM logged_statements")).all())
    assert {bytes(k): v for k, v in rows.items()} == {statement_hashes[0]: 0, statement_hashes[1]: 1}
    assert world_store.size() == 3
    engine.dispose()


def test_the_verifier_reports_an_entry_beyond_the_leaf_limit(world: World) -> None:
    """An entry larger than a tile can carry (written before the limit, or around it) is reported, not skipped."""
    from ledger.entry import MAX_LEAF_BYTES
    from ledger.verify import LogEntry

    store = world.store
    store.append([world.merchant.submit("origin", "BIG", "1", origin_data())])
    big = build_leaf(
        world.at(1), "2026-11-20T08:00:00.000000Z", None, b"\0" * 64, b'{"pad":"' + b"x" * MAX_LEAF_BYTES + b'"}'
    )
    entries = [*store.iter_entries(), LogEntry(big)]
    report = verify_ledger(entries, store.signer.verifier, store.issue_checkpoint())
    assert [(p.index, p.code) for p in report.problems if p.code == "leaf-too-large"] == [
        (world.at(1), "leaf-too-large")
    ]


def test_a_replay_in_a_group_commit_fails_alone(world: World) -> None:
    """Group commit: a replay that the batch rules accept (a second identical inspection) is caught by the
    log's index of statements; the group is committed again without it, and the other requests land."""
    store = world.store
    inspection = world.inspector.submit("inspection", "G", "1", inspection_data())
    store.append([world.merchant.submit("origin", "G", "1", origin_data()), inspection])
    good = [world.merchant.submit("origin", "G", str(n), origin_data()) for n in range(2, 4)]
    outcomes = store.commit([store.prepare([good[0]]), store.prepare([inspection]), store.prepare([good[1]])])
    assert [o.error is None for o in outcomes] == [True, False, True]
    assert isinstance(outcomes[1].error, DuplicateStatementError)
    assert outcomes[1].error.index == world.at(1)
    assert [r.index for o in (outcomes[0], outcomes[2]) for r in o.results or []] == [world.at(2), world.at(3)]
    assert store.size() == world.at(4)
    assert _verify(store).ok
