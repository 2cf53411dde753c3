"""The pure verifier on its own: fails closed, reports every problem, checks older checkpoints."""

from __future__ import annotations

import pytest

from ledger.note import Checkpoint, NoteSigner, sign_checkpoint
from ledger.signing import generate_private_key
from ledger.storage import LedgerStore
from ledger.verify import LedgerVerifier, check_consistency, verify_ledger
from tests.factory import World


@pytest.fixture
def grown(world: World) -> tuple[World, str, str]:
    world.store.append(world.journey("OIL", "1"))
    older = world.store.checkpoint()
    world.store.append(world.journey("OIL", "2", shipments=3))
    return world, older, world.store.checkpoint()


def _run(store: LedgerStore, checkpoint: str | None, older: str | None = None, entries=None, workers: int = 2):
    return verify_ledger(
        store.iter_entries() if entries is None else entries,
        store.directory(),
        store.signer.verifier,
        checkpoint,
        older_checkpoint=older,
        workers=workers,
    )


def test_empty_input_is_never_a_success(world: World) -> None:
    empty_checkpoint = world.store.checkpoint()
    report = _run(world.store, empty_checkpoint, entries=[])
    assert not report.ok
    assert [p.code for p in report.problems] == ["empty"]


def test_no_checkpoint_is_not_a_success(grown) -> None:
    world, _older, _latest = grown
    report = _run(world.store, None)
    assert not report.ok
    assert "no-checkpoint" in {p.code for p in report.problems}


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_older_checkpoint_consistent(grown, workers: int) -> None:
    world, older, latest = grown
    report = _run(world.store, latest, older, workers=workers)
    assert report.ok, report.problems
    assert report.summary()["entries"] == 20


def test_rewritten_history_is_caught_by_an_older_checkpoint(grown) -> None:
    """A log that re-signs a different history: the older checkpoint the auditor kept does not match it."""
    world, _older, latest = grown
    store = world.store
    forged_older = sign_checkpoint(Checkpoint(store.origin, 6, bytes(32)), store.signer)
    report = _run(store, latest, forged_older)
    assert [p.code for p in report.problems] == ["root-mismatch"]
    assert "older checkpoint" in report.problems[0].message


def test_every_problem_is_reported_not_just_the_first(grown) -> None:
    world, _older, latest = grown
    entries = list(world.store.iter_entries())
    from ledger.verify import LogEntry

    broken = [LogEntry(e.leaf.replace(b"Djibouti", b"Djibouty")) for e in entries]
    report = _run(world.store, latest, entries=broken)
    bad = sorted({p.index for p in report.problems if p.code == "bad-signature"})
    handoffs = [i for i, e in enumerate(entries) if b"Djibouti" in e.leaf]
    assert bad == handoffs
    assert len(bad) >= 8


def test_streaming_in_pieces_gives_the_same_report(grown) -> None:
    world, older, latest = grown
    store = world.store
    verifier = LedgerVerifier(store.directory(), store.signer.verifier, latest, older_checkpoint=older)
    entries = list(store.iter_entries())
    for i in range(0, len(entries), 3):
        verifier.add(entries[i : i + 3])
    report = verifier.finish()
    assert report.ok
    assert report.root == _run(store, latest).root


def test_check_consistency_between_checkpoints(grown) -> None:
    world, older, latest = grown
    store, key = world.store, world.store.signer.verifier
    proof = store.consistency_proof(6, 20)
    assert check_consistency(older, latest, proof, key) == []
    assert [p.code for p in check_consistency(older, latest, proof[:-1], key)] == ["inconsistent"]
    assert [p.code for p in check_consistency(latest, older, proof, key)] == ["rollback"]
    fork = sign_checkpoint(Checkpoint(store.origin, 20, bytes(32)), store.signer)  # a split view
    assert [p.code for p in check_consistency(older, fork, proof, key)] == ["inconsistent"]
    other = NoteSigner(store.signer.name, generate_private_key())
    forged = sign_checkpoint(Checkpoint(store.origin, 20, store.root()), other)
    assert [p.code for p in check_consistency(older, forged, proof, key)] == ["checkpoint-signature"]
