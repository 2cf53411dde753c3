"""Storage on SQLite and PostgreSQL: appends, rules, keys, triggers, proofs and checkpoints."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger import merkle
from ledger.entry import parse_leaf
from ledger.errors import (
    ConflictError,
    DuplicateStatementError,
    NotFoundError,
    ProofError,
    RuleError,
    SignatureError,
    ValidationError,
)
from ledger.hashing import leaf_hash
from ledger.note import open_checkpoint
from ledger.storage import LedgerStore, migrate
from ledger.storage.schema import APPEND_ONLY_TABLES
from ledger.verify import verify_ledger
from tests.factory import World, add_party, handoff_data, inspection_data, origin_data, shipment_data


def _verify(store: LedgerStore):
    return verify_ledger(store.iter_entries(), store.signer.verifier, store.issue_checkpoint())


def test_full_journey_appends_and_verifies(world: World) -> None:
    store = world.store
    results = store.append(world.journey("COF-1", "L1", shipments=2))
    assert [r.index for r in results] == [world.at(n) for n in range(10)]
    results += store.append(world.journey("COF-1", "L2"))
    assert store.size() == world.at(16)
    report = _verify(store)
    assert report.ok, report.problems
    assert (report.entries, report.batches) == (world.at(16), 2)
    entries = store.batch_entries("COF-1", "L2")
    assert [e.stored_index for e in entries] == [world.at(n) for n in range(10, 16)]


def test_migrate_is_idempotent(store: LedgerStore) -> None:
    migrate(store.engine)
    migrate(store.engine)


def test_proofs_from_storage_verify_against_the_checkpoint(world: World) -> None:
    store = world.store
    for n in range(5):
        store.append(world.journey("SKU", f"L{n}"))
    first_note = store.issue_checkpoint()
    first = open_checkpoint(first_note, store.signer.verifier).checkpoint
    store.append(world.journey("SKU", "L9"))
    second = open_checkpoint(store.issue_checkpoint(), store.signer.verifier).checkpoint
    assert second.size == first.size + 6
    for entry in store.entries(0, second.size):
        assert entry.stored_index is not None
        assert entry.recorded_hash is not None
        proof = store.inclusion_proof(entry.stored_index, second.size)
        merkle.verify_inclusion(entry.stored_index, second.size, entry.recorded_hash, proof, second.root_hash)
    together = store.inclusion_proofs(list(range(second.size)), second.size)
    assert together == {i: store.inclusion_proof(i, second.size) for i in range(second.size)}
    proof = store.consistency_proof(first.size, second.size)
    merkle.verify_consistency(first.size, second.size, first.root_hash, second.root_hash, proof)
    assert store.checkpoint_at(first.size) == first_note
    with pytest.raises(ProofError):
        store.inclusion_proof(0, second.size + 1)
    with pytest.raises(ProofError):
        store.inclusion_proof(second.size, second.size)
    with pytest.raises(NotFoundError):
        store.checkpoint_at(3)


def test_checkpoint_is_stable_and_reissued_only_when_the_log_grows(plain_world: World) -> None:
    world = plain_world
    store = world.store
    store.append(world.journey("A", "1"))
    assert store.issue_checkpoint() == store.issue_checkpoint()
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM checkpoints")).scalar() == 1


def test_batch_is_all_or_nothing(world: World) -> None:
    store = world.store
    good = world.journey("A", "1")
    bad = world.other_merchant.submit("recall", "A", "1", {"reason": "not mine to recall"})
    with pytest.raises(RuleError, match=r"event 6: .*another merchant"):
        store.append([*good, bad])
    assert store.size() == world.base
    assert store.root() == store.root(world.base)  # no node of the refused batch either


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda w: [w.inspector.submit("inspection", "B", "1", inspection_data())], "conflict"),
        (lambda w: [w.merchant.submit("origin", "B", "1", origin_data()) for _ in range(2)], "conflict"),
        (lambda w: [w.inspector.submit("origin", "B", "1", origin_data())], "forbidden"),
        (lambda w: [w.auditor.submit("origin", "B", "1", origin_data())], "forbidden"),
        (
            lambda w: [
                w.merchant.submit("origin", "B", "1", origin_data()),
                w.merchant.submit("shipment", "B", "1", shipment_data("S")),
                # the carrier has no custody yet: only the merchant may hand the shipment over
                w.carrier.submit("handoff", "B", "1", handoff_data(w.merchant.id, w.carrier.id, "S")),
            ],
            "forbidden",
        ),
        (
            lambda w: [
                w.merchant.submit("origin", "B", "1", origin_data()),
                w.merchant.submit("shipment", "B", "1", shipment_data("S")),
                w.merchant.submit("handoff", "B", "1", handoff_data(w.merchant.id, w.carrier.id, "S")),
                # the merchant handed custody on and cannot take it back by itself
                w.merchant.submit("handoff", "B", "1", handoff_data(w.carrier.id, w.merchant.id, "S")),
            ],
            "forbidden",
        ),
        (
            lambda w: [
                w.merchant.submit("origin", "B", "1", origin_data()),
                w.carrier.submit("delivery", "B", "1", {"shipment_id": "NOPE", "delivered_at": "2026-11-05T00:00:00Z"}),
            ],
            "conflict",
        ),
        (
            lambda w: [
                w.merchant.submit("origin", "B", "1", origin_data()),
                w.merchant.submit("recall", "B", "1", {"reason": "Salmonella found"}),
                w.merchant.submit("shipment", "B", "1", shipment_data("S")),
            ],
            "conflict",
        ),
    ],
    ids=[
        "no-origin",
        "second-origin",
        "inspector-origin",
        "auditor",
        "custody-thief",
        "custody-taken-back",
        "unknown-shipment",
        "ship-after-recall",
    ],
)
def test_rules_reject_and_write_nothing(world: World, make, kind: str) -> None:
    with pytest.raises(RuleError) as caught:
        world.store.append(make(world))
    assert caught.value.kind == kind
    assert world.store.size() == world.base


def test_admin_may_record_anything(world: World) -> None:
    world.store.append([world.admin.submit("origin", "C", "1", origin_data())])
    world.store.append([world.admin.submit("recall", "C", "1", {"reason": "regulator order"})])
    assert _verify(world.store).ok


def test_bad_signature_and_bad_fields_are_rejected(world: World) -> None:
    store = world.store
    submission = world.merchant.submit("origin", "D", "1", origin_data())
    forged = type(submission)(dict(submission.statement, lot="2"), submission.signature)
    with pytest.raises(SignatureError):
        store.append([forged])
    with pytest.raises(ValidationError, match="gtin"):
        store.append([world.merchant.submit("origin", "D", "1", origin_data(gtin="4006381333932"))])
    with pytest.raises(ValidationError, match="type"):
        store.append([world.merchant.submit("teleport", "D", "1", {})])
    other_key = world.inspector.key.key_id
    stolen = world.merchant.statement("origin", "D", "1", origin_data()) | {"key_id": other_key}
    with pytest.raises(RuleError, match="is bound to"):  # the inspector's key, signing as the merchant
        store.append([world.inspector.sign(stolen)])
    assert store.size() == world.base


def test_key_rotation_and_revocation(world: World) -> None:
    store = world.store
    merchant = add_party(store, "Rotating Merchant", "merchant")
    store.append([merchant.submit("origin", "E", "1", origin_data())])
    # rotate: a new key for the same actor, then revoke the old one
    from ledger.signing import generate_private_key, public_key_bytes

    new_private = generate_private_key()
    new_key = store.add_key(merchant.id, public_key_bytes(new_private))
    store.revoke_key(merchant.key.key_id, "laptop lost")
    with pytest.raises(RuleError, match="revoked"):
        store.append([merchant.submit("shipment", "E", "1", shipment_data("S"))])
    merchant.key, merchant.private_key = new_key, new_private
    store.append([merchant.submit("shipment", "E", "1", shipment_data("S"))])
    store.revoke_key(new_key.key_id)
    with pytest.raises(ConflictError):
        store.revoke_key(new_key.key_id)
    report = _verify(store)
    assert report.ok, report.problems  # the old entry stays valid: it was logged before the revocation


def test_another_workers_key_changes_take_effect_at_once(world: World) -> None:
    """A store caches keys and actors between commits; a key added or revoked by another worker (another store on
    the same database) must count from this store's very next append."""
    from ledger.signing import generate_private_key, public_key_bytes

    appender = world.store
    admin = LedgerStore(appender.engine, appender.signer)
    merchant = add_party(admin, "Cached Merchant", "merchant")
    appender.append([merchant.submit("origin", "K", "1", origin_data())])  # key and actor now cached
    admin.revoke_key(merchant.key.key_id, "stolen")
    with pytest.raises(RuleError, match="revoked"):
        appender.append([merchant.submit("shipment", "K", "1", shipment_data("S"))])
    new_private = generate_private_key()
    merchant.key, merchant.private_key = admin.add_key(merchant.id, public_key_bytes(new_private)), new_private
    appender.append([merchant.submit("shipment", "K", "1", shipment_data("S"))])  # a key it has never seen
    newcomer = add_party(admin, "New Carrier", "carrier")  # an actor it has never seen, named in a handoff
    appender.append([merchant.submit("handoff", "K", "1", handoff_data(merchant.id, newcomer.id, "S"))])
    assert len(appender.batch_entries("K", "1")) == 3


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_triggers_reject_update_and_delete(world: World, table: str) -> None:
    from ledger.storage import Idempotency

    world.store.append_idempotent(world.journey("F", "1"), Idempotency(world.merchant.id, "k1", b"digest"))
    world.store.append([world.merchant.submit("origin", "G", "1", origin_data(gtin="4006381333931"))])
    world.store.issue_checkpoint()
    world.store.revoke_key(world.auditor.key.key_id)
    world.store.revoke_token(world.store.issue_token(world.auditor.id))
    world.store.add_cosignatures(world.store.size(), [("witness.example/w+00000000+AA==", 1, "\u2014 w AAAA\n")])
    with world.store.engine.connect() as conn:
        column = conn.execute(text(f"SELECT * FROM {table} LIMIT 1")).keys()
        first_column = next(iter(column))
    for statement in (f"UPDATE {table} SET {first_column} = {first_column}", f"DELETE FROM {table}"):
        with pytest.raises(DBAPIError, match="append-only"), world.store.engine.begin() as conn:
            conn.execute(text(statement))
    with world.store.engine.connect() as conn:
        assert conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar() > 0


def test_actor_rows_follow_the_log_but_are_never_deleted(world: World) -> None:
    """`actors` is the projection of actor registrations: an UPDATE is allowed (a role change updates the row),
    a DELETE is not."""
    from ledger.storage.schema import NO_DELETE_TABLES

    assert NO_DELETE_TABLES == ("actors",)
    with pytest.raises(DBAPIError, match="append-only"), world.store.engine.begin() as conn:
        conn.execute(text("DELETE FROM actors"))
    with world.store.engine.begin() as conn:
        conn.execute(text("UPDATE actors SET name = name"))


def test_unknown_actor_key_is_unauthorized(world: World) -> None:
    statement = world.merchant.statement("origin", "G", "1", origin_data()) | {"actor": "act_nobody"}
    with pytest.raises(RuleError) as caught:
        world.store.append([world.merchant.sign(statement)])
    assert caught.value.kind == "unauthorized"


def test_two_workers_share_batches_through_the_database(world: World) -> None:
    """Each store caches batch states; another worker's appends in between must still be seen."""
    first = world.store
    second = LedgerStore(first.engine, first.signer)
    first.append([world.merchant.submit("origin", "W", "1", origin_data())])  # index 0: cached by `first`
    second.append([world.merchant.submit("shipment", "W", "1", shipment_data("S"))])
    with pytest.raises(RuleError, match="already exists"):
        first.append([world.merchant.submit("shipment", "W", "1", shipment_data("S"))])
    first.append([world.merchant.submit("handoff", "W", "1", handoff_data(world.merchant.id, world.carrier.id, "S"))])
    with pytest.raises(RuleError, match="custodian"):
        second.append(
            [world.merchant.submit("handoff", "W", "1", handoff_data(world.merchant.id, world.carrier.id, "S"))]
        )
    report = _verify(first)
    assert report.ok, report.problems
    assert [e.stored_index for e in first.batch_entries("W", "1")] == [world.at(0), world.at(1), world.at(2)]


def test_one_lookup_advances_several_cached_batches_each_from_its_own_index(world: World) -> None:
    """The commit reads, in one query, what other workers appended to each batch after the index its cached state
    knows: batches cached at different indices (X at 0, Y at 2, with X's missed entry at 1, below Y's) and a batch
    never seen, in the same request."""
    first = world.store
    second = LedgerStore(first.engine, first.signer)
    m = world.merchant
    first.append([m.submit("origin", "X", "1", origin_data())])  # 0: X cached by `first` at 0
    second.append([m.submit("shipment", "X", "1", shipment_data("S1"))])  # 1: unseen by `first`
    first.append([m.submit("origin", "Y", "1", origin_data())])  # 2: Y cached at 2, X still at 0
    second.append([m.submit("origin", "W", "1", origin_data())])  # 3: both cached states are now stale
    with pytest.raises(RuleError, match="S1 already exists"):
        first.append(
            [m.submit("shipment", "Y", "1", shipment_data("S2")), m.submit("shipment", "X", "1", shipment_data("S1"))]
        )
    first.append(
        [
            m.submit("shipment", "Y", "1", shipment_data("S2")),
            m.submit("shipment", "X", "1", shipment_data("S3")),
            m.submit("origin", "Z", "1", origin_data()),
        ]
    )
    assert [e.stored_index for e in first.batch_entries("X", "1")] == [world.at(0), world.at(1), world.at(5)]
    assert [e.stored_index for e in first.batch_entries("Y", "1")] == [world.at(2), world.at(4)]
    report = _verify(first)
    assert report.ok, report.problems


def test_tokens_authenticate_until_revoked(world: World) -> None:
    store = world.store
    token = store.issue_token(world.carrier.id)
    assert token.startswith("cpt_")
    actor = store.authenticate(token)
    assert actor is not None
    assert actor.id == world.carrier.id
    assert store.authenticate(token + "x") is None
    store.revoke_token(token)
    assert store.authenticate(token) is None
    with pytest.raises(ConflictError):
        store.revoke_token(token)
    with pytest.raises(NotFoundError):
        store.issue_token("act_nobody")
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM api_tokens")).scalars().all()
    assert token not in stored


def test_idempotent_retry_returns_the_first_result(world: World) -> None:
    from ledger.errors import IdempotencyKeyReusedError
    from ledger.storage import Idempotency

    store = world.store
    key = Idempotency(world.merchant.id, "order-42", b"request-1")
    first, replayed = store.append_idempotent([world.merchant.submit("origin", "I", "1", origin_data())], key)
    assert not replayed
    again, replayed = store.append_idempotent([world.merchant.submit("origin", "I", "1", origin_data())], key)
    assert replayed
    assert again == first
    assert store.size() == world.at(1)
    with pytest.raises(IdempotencyKeyReusedError):
        store.append_idempotent(
            [world.merchant.submit("origin", "I", "2", origin_data())], Idempotency(world.merchant.id, "order-42", b"x")
        )
    other_actor = Idempotency(world.other_merchant.id, "order-42", b"request-1")
    store.append_idempotent([world.other_merchant.submit("origin", "I", "3", origin_data())], other_actor)
    assert store.size() == world.at(2)


def test_gtin_and_lot_identify_one_batch(world: World) -> None:
    store = world.store
    store.append([world.merchant.submit("origin", "SKU-A", "L1", origin_data(gtin="4006381333931"))])
    assert store.batch_for_gtin("04006381333931", "L1") == ("SKU-A", "L1")
    assert store.batch_for_gtin("4006381333931", "L1") == ("SKU-A", "L1")
    assert store.batch_for_gtin("4006381333931", "L2") is None
    with pytest.raises(RuleError, match="already identifies") as caught:
        store.append([world.other_merchant.submit("origin", "SKU-B", "L1", origin_data(gtin="4006381333931"))])
    assert caught.value.kind == "conflict"
    # the same pair twice in one request: the request fails whole, and the pair stays free for the next one
    with pytest.raises(RuleError, match="already identifies"):
        store.append(
            [
                world.merchant.submit("origin", "SKU-C", "L5", origin_data(gtin="4006381333931")),
                world.merchant.submit("origin", "SKU-D", "L5", origin_data(gtin="4006381333931")),
            ]
        )
    assert store.batch_for_gtin("4006381333931", "L5") is None
    store.append([world.merchant.submit("origin", "SKU-D", "L5", origin_data(gtin="4006381333931"))])
    assert store.batch_for_gtin("4006381333931", "L5") == ("SKU-D", "L5")


def test_planner_statistics_are_refreshed_as_the_log_doubles(world: World, monkeypatch) -> None:
    """On PostgreSQL the store ANALYZEs the growing tables at doubling sizes: with stale statistics a batch lookup
    read every entry of the SKU. (SQLite plans this lookup from the index without statistics.)"""
    from sqlalchemy import text

    import ledger.storage.store as store_module

    if world.store.engine.dialect.name != "postgresql":
        pytest.skip("statistics refresh is for PostgreSQL")
    monkeypatch.setattr(store_module, "_ANALYZE_FIRST", world.at(20))
    store = store_module.LedgerStore(world.store.engine, world.store.signer)

    def last_analyze() -> object:
        with store.engine.connect() as conn:
            return conn.execute(
                text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'entries'")
            ).scalar_one()

    def appended(lot: str, count: int) -> None:
        store.append([world.merchant.submit("origin", "OIL", f"{lot}{n}", origin_data()) for n in range(count)])
        if store.statistics_refresh is not None:  # it runs beside the append, which does not wait for it
            store.statistics_refresh.join(timeout=30)

    appended("S", 10)
    assert last_analyze() is None
    appended("T", 15)
    first = last_analyze()
    assert first is not None
    appended("U", 10)
    assert last_analyze() == first  # base + 35 < 2 x (base + 25): not yet


def test_a_writer_that_bypassed_the_lock_is_refused_by_the_database(world: World, monkeypatch) -> None:
    """Even with the append lock skipped and a stale log size, the entries' primary key refuses a second entry at
    an index: a ConflictError, and nothing written."""
    store = world.store
    store.append([world.merchant.submit("origin", "L", "1", origin_data())])
    size = store.size()
    stale = LedgerStore(store.engine, store.signer)
    monkeypatch.setattr(stale, "_lock_appends", lambda conn: None)
    monkeypatch.setattr(LedgerStore, "_size", staticmethod(lambda conn: world.base))
    with pytest.raises(ConflictError, match="same position"):
        stale.append([world.merchant.submit("origin", "L", "2", origin_data())])
    monkeypatch.undo()
    assert store.size() == size
    with pytest.raises(NotFoundError):
        store.batch_entries("L", "2")


def test_proofs_for_a_big_interleaved_batch(world: World) -> None:
    """Found from outside: on SQLite, a batch whose proofs need more than about 1,000 stored nodes (130 events
    interleaved in a 70k-entry log) failed with "Expression tree is too large": one query held every node."""
    store = world.store
    store.append([world.merchant.submit("origin", "BIG", "1", origin_data())])
    for chunk in range(30):
        fillers = [world.merchant.submit("origin", "FILL", f"{chunk}-{n}", origin_data()) for n in range(90)]
        events = [world.merchant.submit("shipment", "BIG", "1", shipment_data(f"S{chunk}-{n}")) for n in range(10)]
        store.append([item for pair in zip(fillers[:10], events, strict=True) for item in pair] + fillers[10:])
    indices = [e.stored_index for e in store.batch_entries("BIG", "1")]
    assert len(indices) == 301
    size = store.size()
    needed = merkle.node_keys_for(r for i in indices for r in merkle.inclusion_ranges(i, size))
    assert len(needed) > 1000  # more than SQLite's expression depth allowed in one query
    proofs = store.inclusion_proofs(indices, size)
    root = store.root(size)
    for index in indices:
        merkle.verify_inclusion(index, size, store.entries(index, index + 1)[0].recorded_hash, proofs[index], root)
    # the product page and the batch JSON read the same proofs
    from api.pages.view import batch_view

    assert batch_view(store, "BIG", "1").report.ok


def test_a_checkpoint_covers_every_entry(world: World) -> None:
    """The signed checkpoint is of the whole log as it stands: its size is the number of entries and its root the
    RFC 9162 root of all their leaves, computed here from the leaves themselves (a mutant signing one entry short
    survived the suite)."""
    store = world.store
    for lot in ("1", "2", "3"):
        store.append(world.journey("CP", lot))
        checkpoint = open_checkpoint(store.issue_checkpoint(), store.signer.verifier, store.origin).checkpoint
        leaves = [leaf_hash(entry.leaf) for entry in store.iter_entries()]
        assert checkpoint.size == len(leaves) == store.size()
        assert checkpoint.root_hash == merkle.root_of(leaves)


@pytest.mark.parametrize("fault", ["insert", "idempotency-insert"])
def test_a_failed_write_leaves_no_trace_in_the_caches(
    world: World, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """Fault injection in the manner of sunlight's TestSequenceErrors: the append's insert fails inside the
    transaction; the next append sees the true state (nothing of the failed one, in the database or in the
    store's cached tree and batch states), and the log verifies."""
    store = world.store
    store.append([world.merchant.submit("origin", "F", "0", origin_data())])
    origin = world.merchant.submit("origin", "F", "1", origin_data())
    insert = store._insert_entries_and_nodes

    def failing(*args: object) -> None:
        if fault == "insert":
            raise ConflictError("injected: the insert failed")
        insert(*args)  # type: ignore[arg-type]
        raise ConflictError("injected: a later statement of the transaction failed")

    monkeypatch.setattr(store, "_insert_entries_and_nodes", failing)
    with pytest.raises(ConflictError, match="injected"):
        store.append([origin, world.merchant.submit("shipment", "F", "1", shipment_data("S1"))])
    monkeypatch.undo()
    assert store.size() == world.at(1)
    # the same batch from scratch: no cached trace of the failed origin, tree edge or indices
    results = store.append([origin, world.merchant.submit("shipment", "F", "1", shipment_data("S1"))])
    assert [r.index for r in results] == [world.at(1), world.at(2)]
    assert _verify(store).ok


class _InjectedError(Exception):
    pass


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_commit_that_fails_before_or_after_persisting_leaves_the_true_state(
    world: World, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """The database's COMMIT fails: before it persisted (nothing was written) or after (all was written, but the
    store was told it failed, as when the connection drops on the reply). Either way the next append sees what the
    database holds, in its tree, its batch states and the batch heads: no gap, no fork, no duplicate, and the log
    verifies. A client that retries a statement that did land is told where it is."""
    store = world.store
    store.append([world.merchant.submit("origin", "C", "0", origin_data())])
    first = [
        world.merchant.submit("origin", "C", "1", origin_data()),
        world.merchant.submit("shipment", "C", "1", shipment_data("S1")),
    ]
    dialect = store.engine.dialect
    real_commit = dialect.do_commit
    failing_once = [True]

    def commit(dbapi_connection: object) -> None:
        if failing_once and failing_once.pop():
            if when == "after":
                real_commit(dbapi_connection)
            raise _InjectedError(f"injected: COMMIT failed {when} persisting")
        real_commit(dbapi_connection)

    monkeypatch.setattr(dialect, "do_commit", commit)
    with pytest.raises(_InjectedError):
        store.append(first)
    monkeypatch.undo()
    assert store.size() == world.at(3 if when == "after" else 1)
    if when == "after":
        with pytest.raises(DuplicateStatementError) as caught:  # the retry: it is in the log already
            store.append(first)
        assert caught.value.index == world.at(1)
    else:
        assert [r.index for r in store.append(first)] == [world.at(1), world.at(2)]
    nxt = store.append(
        [world.merchant.submit("handoff", "C", "1", handoff_data(world.merchant.id, world.carrier.id, "S1"))]
    )
    assert nxt[0].index == world.at(3)
    entries = store.batch_entries("C", "1")
    assert parse_leaf(entries[-1].leaf).prev == leaf_hash(entries[-2].leaf)
    assert _verify(store).ok
    from ledger.storage.heads import compare, replay_batches, stored_rows

    with store.engine.connect() as conn:
        heads, shipments = stored_rows(conn)
    assert compare(replay_batches(e.leaf for e in store.iter_entries()), heads, shipments) == []


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_checkpoint_write_that_fails_before_or_after_persisting_leaves_the_true_state(
    plain_world: World, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """Issuing a checkpoint fails as its row is written, or after it was written. The next checkpoint of the same
    size is the same note (Ed25519 is deterministic; one stored, never two), appends go on, and the log verifies."""
    world = plain_world
    store = world.store
    store.append(world.journey("K", "1"))
    store.bind_log_key()  # its own transaction: the fault is injected into the checkpoint's
    dialect = store.engine.dialect
    real_commit = dialect.do_commit

    def commit(dbapi_connection: object) -> None:
        if when == "after":
            real_commit(dbapi_connection)
        raise _InjectedError(f"injected: COMMIT of the checkpoint failed {when} persisting")

    monkeypatch.setattr(dialect, "do_commit", commit)
    with pytest.raises(_InjectedError):
        store.issue_checkpoint()
    monkeypatch.undo()
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM checkpoints")).scalar_one()
    assert stored == (1 if when == "after" else 0)
    note = store.issue_checkpoint()
    assert store.issue_checkpoint() == note
    assert store.latest_checkpoint() == note
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM checkpoints")).scalar_one() == 1
    store.append(world.journey("K", "2"))
    assert _verify(store).ok
