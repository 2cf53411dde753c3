"""An attacker with database access (triggers bypassed) edits, deletes, reorders or truncates entries: the
verifier reports each, naming the log index."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, text

from ledger.note import Checkpoint, NoteSigner, sign_checkpoint
from ledger.signing import generate_private_key
from ledger.storage import LedgerStore
from ledger.storage.schema import APPEND_ONLY_TABLES
from ledger.verify import Report, verify_ledger
from tests.factory import World


def _tamper(engine: Engine, *statements: str, params: dict | None = None) -> None:
    """Run SQL as an attacker would: with the append-only triggers out of the way."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            for table in APPEND_ONLY_TABLES:
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        else:
            for table in APPEND_ONLY_TABLES:
                for op in ("update", "delete"):
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{op}"))
        for statement in statements:
            conn.execute(text(statement), params or {})


def _verify(store: LedgerStore, checkpoint: str) -> Report:
    return verify_ledger(store.iter_entries(), store.signer.verifier, checkpoint)


@pytest.fixture
def ledger(world: World) -> tuple[World, str]:
    for lot in ("L1", "L2", "L3"):
        world.store.append(world.journey("TEA", lot))
    checkpoint = world.store.issue_checkpoint()  # what the auditor saw before the attack
    assert _verify(world.store, checkpoint).ok
    return world, checkpoint


def _leaf_of(store: LedgerStore, index: int) -> bytes:
    return store.entries(index, index + 1)[0].leaf


TARGETS = [0, 7, 17]  # an origin, an entry in the middle of a batch, the last entry of the log

COLUMN_EDITS: dict[str, Callable[[LedgerStore, int], tuple[str, dict]]] = {
    "idx": lambda s, i: ("UPDATE entries SET idx = 1000 WHERE idx = :i", {"i": i}),
    "sku": lambda s, i: ("UPDATE entries SET sku = 'FAKE' WHERE idx = :i", {"i": i}),
    "lot": lambda s, i: ("UPDATE entries SET lot = 'L9' WHERE idx = :i", {"i": i}),
    "leaf_hash": lambda s, i: ("UPDATE entries SET leaf_hash = :h WHERE idx = :i", {"i": i, "h": bytes(32)}),
    "leaf-statement": lambda s, i: (
        "UPDATE entries SET leaf = :leaf WHERE idx = :i",
        {"i": i, "leaf": _leaf_of(s, i).replace(b'"sku":"TEA"', b'"sku":"TEB"')},
    ),
    "leaf-logged_at": lambda s, i: (
        "UPDATE entries SET leaf = :leaf WHERE idx = :i",
        {"i": i, "leaf": _leaf_of(s, i).replace(b'"logged_at":"2', b'"logged_at":"1')},
    ),
    "leaf-garbage": lambda s, i: ("UPDATE entries SET leaf = :leaf WHERE idx = :i", {"i": i, "leaf": b"\x00junk"}),
}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("column", list(COLUMN_EDITS))
def test_any_edited_field_is_reported_at_its_index(ledger, column: str, target: int) -> None:
    world, checkpoint = ledger
    target = world.at(target)
    statement, params = COLUMN_EDITS[column](world.store, target)
    _tamper(world.store.engine, statement, params=params)
    report = _verify(world.store, checkpoint)
    assert not report.ok
    assert target in {p.index for p in report.problems}, report.problems


def test_edited_leaf_that_keeps_its_hash_consistent_still_breaks_the_root(ledger) -> None:
    """Rewrite the leaf and its recorded hash together: the next link and the root give it away."""
    world, checkpoint = ledger
    from ledger.hashing import leaf_hash

    third = world.at(3)
    leaf = _leaf_of(world.store, third).replace(b'"logged_at":"2', b'"logged_at":"1')
    _tamper(
        world.store.engine,
        "UPDATE entries SET leaf = :leaf, leaf_hash = :h WHERE idx = :i",
        params={"leaf": leaf, "h": leaf_hash(leaf), "i": third},
    )
    report = _verify(world.store, checkpoint)
    codes = {(p.index, p.code) for p in report.problems}
    assert (third + 1, "chain") in codes  # the next entry links to the old one
    assert (None, "root-mismatch") in codes


def test_deleted_entry_is_reported(ledger) -> None:
    world, checkpoint = ledger
    _tamper(world.store.engine, "DELETE FROM entries WHERE idx = 8")
    report = _verify(world.store, checkpoint)
    assert {8, 9} <= {p.index for p in report.problems}
    assert any(p.code == "truncated" for p in report.problems)


def test_reordered_entries_are_reported(ledger) -> None:
    world, checkpoint = ledger
    _tamper(
        world.store.engine,
        "UPDATE entries SET idx = 100 WHERE idx = 4",
        "UPDATE entries SET idx = 4 WHERE idx = 5",
        "UPDATE entries SET idx = 5 WHERE idx = 100",
    )
    report = _verify(world.store, checkpoint)
    assert {4, 5} <= {p.index for p in report.problems if p.code == "index"}


def test_truncated_log_is_reported(ledger) -> None:
    world, checkpoint = ledger
    _tamper(world.store.engine, "DELETE FROM entries WHERE idx >= 15")
    report = _verify(world.store, checkpoint)
    assert [(p.index, p.code) for p in report.problems] == [(15, "truncated")]


def test_forged_checkpoint_is_reported(ledger) -> None:
    world, _checkpoint = ledger
    store = world.store
    impostor = NoteSigner(store.signer.name, generate_private_key())
    forged = sign_checkpoint(Checkpoint(store.origin, store.size(), store.root()), impostor)
    report = _verify(store, forged)
    assert not report.ok
    assert [p.code for p in report.problems] == ["checkpoint-signature"]


def test_swapped_actor_key_row_is_named_and_changes_nothing(ledger) -> None:
    """Who may sign comes from the log's registrations: a key row swapped in the table fools nobody (the
    entries still verify against the key the log bound), and the table is named as disagreeing with the log."""
    world, checkpoint = ledger
    replacement = generate_private_key().public_key().public_bytes_raw()
    _tamper(
        world.store.engine,
        "UPDATE actor_keys SET public_key = :k WHERE key_id = :id",
        params={"k": replacement, "id": world.inspector.key.key_id},
    )
    assert _verify(world.store, checkpoint).ok
    differences = world.store.projection_differences()
    assert differences == [f"key row {world.inspector.key.key_id} holds another public key than the one the log binds"]


def test_merkle_node_tampering_breaks_proofs(ledger) -> None:
    world, checkpoint = ledger
    from ledger import merkle
    from ledger.errors import ProofError
    from ledger.note import open_checkpoint

    cp = open_checkpoint(checkpoint, world.store.signer.verifier).checkpoint
    _tamper(
        world.store.engine, "UPDATE merkle_nodes SET hash = :h WHERE level = 1 AND idx = 0", params={"h": bytes(32)}
    )
    leaf = world.store.entries(2, 3)[0].recorded_hash
    assert leaf is not None
    with pytest.raises(ProofError):
        merkle.verify_inclusion(2, cp.size, leaf, world.store.inclusion_proof(2, cp.size), cp.root_hash)
