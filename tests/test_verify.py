"""The pure verifier on its own: fails closed, reports every problem, checks older checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.note import Checkpoint, NoteSigner, sign_checkpoint
from ledger.signing import generate_private_key
from ledger.storage import LedgerStore
from ledger.verify import LedgerVerifier, check_consistency, verify_ledger
from tests.factory import World


@pytest.fixture
def grown(world: World) -> tuple[World, str, str]:
    world.store.append(world.journey("OIL", "1"))
    older = world.store.issue_checkpoint()
    world.store.append(world.journey("OIL", "2", shipments=3))
    return world, older, world.store.issue_checkpoint()


def _run(store: LedgerStore, checkpoint: str | None, older: str | None = None, entries=None, workers: int = 2):
    return verify_ledger(
        store.iter_entries() if entries is None else entries,
        store.signer.verifier,
        checkpoint,
        older_checkpoint=older,
        workers=workers,
    )


def test_empty_input_is_never_a_success(world: World) -> None:
    from ledger.hashing import sha256

    empty_checkpoint = sign_checkpoint(Checkpoint(world.store.origin, 0, sha256(b"")), world.store.signer)
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
    assert report.summary()["entries"] == world.at(20)


def test_rewritten_history_is_caught_by_an_older_checkpoint(grown) -> None:
    """A log that re-signs a different history: the older checkpoint the auditor kept does not match it."""
    world, _older, latest = grown
    store = world.store
    forged_older = sign_checkpoint(Checkpoint(store.origin, world.at(6), bytes(32)), store.signer)
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
    verifier = LedgerVerifier(store.signer.verifier, latest, older_checkpoint=older)
    entries = list(store.iter_entries())
    for i in range(0, len(entries), 3):
        verifier.add(entries[i : i + 3])
    report = verifier.finish()
    assert report.ok
    assert report.root == _run(store, latest).root


def test_check_consistency_between_checkpoints(grown) -> None:
    world, older, latest = grown
    store, key = world.store, world.store.signer.verifier
    proof = store.consistency_proof(world.at(6), world.at(20))
    assert check_consistency(older, latest, proof, key) == []
    assert [p.code for p in check_consistency(older, latest, proof[:-1], key)] == ["inconsistent"]
    assert [p.code for p in check_consistency(latest, older, proof, key)] == ["rollback"]
    fork = sign_checkpoint(Checkpoint(store.origin, world.at(20), bytes(32)), store.signer)  # a split view
    assert [p.code for p in check_consistency(older, fork, proof, key)] == ["inconsistent"]
    other = NoteSigner(store.signer.name, generate_private_key())
    forged = sign_checkpoint(Checkpoint(store.origin, world.at(20), store.root()), other)
    assert [p.code for p in check_consistency(older, forged, proof, key)] == ["checkpoint-signature"]


def _batch_inputs(store: LedgerStore, sku: str, lot: str):
    checkpoint = store.issue_checkpoint()
    size = store.size()
    entries = [(e.stored_index, e.leaf) for e in store.batch_entries(sku, lot)]
    proofs = {index: store.inclusion_proof(index, size) for index, _leaf in entries}
    return entries, proofs, checkpoint


def test_verify_batch_with_inclusion_proofs(grown) -> None:
    from ledger.verify import verify_batch

    world, _older, _latest = grown
    store = world.store
    entries, proofs, checkpoint = _batch_inputs(store, "OIL", "2")
    report = verify_batch("OIL", "2", entries, proofs, store.directory(), store.signer.verifier, checkpoint)
    assert report.ok, report.problems
    assert report.state is not None
    assert len(report.state.shipments) == 3

    # a middle entry withheld: the next link breaks
    gapped = entries[:3] + entries[4:]
    report = verify_batch("OIL", "2", gapped, proofs, store.directory(), store.signer.verifier, checkpoint)
    found = [(p.index, p.code) for p in report.problems]
    assert found[0] == (entries[4][0], "chain")  # custody may break there too: the handoff it follows is gone
    assert {index for index, _code in found} == {entries[4][0]}

    # an altered leaf (re-signed by nobody): signature and inclusion both fail at its index
    index, leaf = entries[2]
    altered = [*entries[:2], (index, leaf.replace(b"DE-HH", b"FR-75")), *entries[3:]]
    report = verify_batch("OIL", "2", altered, proofs, store.directory(), store.signer.verifier, checkpoint)
    assert {(index, "bad-signature"), (index, "inclusion")} <= {(p.index, p.code) for p in report.problems}

    # proofs for another index do not prove this one
    swapped = dict(proofs)
    swapped[entries[0][0]] = proofs[entries[1][0]]
    report = verify_batch("OIL", "2", entries, swapped, store.directory(), store.signer.verifier, checkpoint)
    assert [(p.index, p.code) for p in report.problems] == [(entries[0][0], "inclusion")]

    report = verify_batch("OIL", "2", [], {}, store.directory(), store.signer.verifier, checkpoint)
    assert not report.ok


def test_one_proof_of_the_last_entry_vouches_for_the_chain(grown) -> None:
    """The hash links carry inclusion back from a proven entry: a proof of the last entry is enough, an entry
    no proven entry links to is not shown to be in the log, and a broken link cuts everything before it off."""
    from ledger.verify import verify_batch

    world, _older, _latest = grown
    store = world.store
    entries, proofs, checkpoint = _batch_inputs(store, "OIL", "2")
    last = entries[-1][0]

    def problems(shown, given) -> list[tuple[int | None, str]]:
        report = verify_batch("OIL", "2", shown, given, store.directory(), store.signer.verifier, checkpoint)
        return [(p.index, p.code) for p in report.problems]

    assert problems(entries, {last: proofs[last]}) == []
    # no proof at all: nothing is shown to be in the log
    assert problems(entries, {}) == [(index, "inclusion") for index, _leaf in entries]
    # a wrong proof of the last entry: the same
    assert problems(entries, {last: proofs[entries[0][0]]}) == [(index, "inclusion") for index, _leaf in entries]
    # an altered middle entry: its signature fails, the next one no longer links to it, and the chain from the
    # proven last entry stops there
    index, leaf = entries[2]
    altered = [*entries[:2], (index, leaf.replace(b"DE-HH", b"FR-75")), *entries[3:]]
    found = problems(altered, {last: proofs[last]})
    assert (index, "bad-signature") in found
    assert (entries[3][0], "chain") in found
    assert {i for i, code in found if code == "inclusion"} == {entries[0][0], entries[1][0], index}
    # a proof of an earlier entry re-anchors what comes before it
    found = problems(altered, {last: proofs[last], entries[1][0]: proofs[entries[1][0]]})
    assert {i for i, code in found if code == "inclusion"} == {index}


def test_future_times_are_rejected(world: World) -> None:
    from ledger.errors import ValidationError
    from tests.factory import origin_data

    with pytest.raises(ValidationError, match="future"):
        world.store.append([world.merchant.submit("origin", "T", "1", origin_data(produced_at="2099-01-01T00:00:00Z"))])
    late = world.merchant.statement("origin", "T", "1", origin_data()) | {"signed_at": "2099-01-01T00:00:00Z"}
    with pytest.raises(ValidationError, match="future"):
        world.store.append([world.merchant.sign(late)])
    assert world.store.size() == world.base


@pytest.fixture
def long_log(world: World, monkeypatch: pytest.MonkeyPatch):
    """Enough chunks (made small) for the verifier to start its worker processes, with signatures broken in
    several chunks; the same entries checked with workers=1 give the reference report."""
    import ledger.verify as verify_module
    from ledger.verify import LogEntry

    monkeypatch.setattr(verify_module, "CHUNK", 64)
    for n in range(45):
        world.store.append(world.journey("OIL", f"P{n}"))
    entries = list(world.store.iter_entries())
    broken = {5, 70, 150, len(entries) - 1}

    def forge_signature(leaf: bytes) -> bytes:
        at = leaf.index(b'"signature":"') + len(b'"signature":"')
        return leaf[:at] + (b"B" if leaf[at : at + 1] == b"A" else b"A") + leaf[at + 1 :]

    tampered = [LogEntry(forge_signature(e.leaf)) if i in broken else e for i, e in enumerate(entries)]
    assert len(entries) >= 4 * 64
    return world, tampered, broken


def _bad_signatures(report) -> set[int]:
    return {p.index for p in report.problems if p.code == "bad-signature"}


def test_worker_processes_report_exactly_what_one_process_does(long_log, monkeypatch: pytest.MonkeyPatch) -> None:
    import ledger.verify as verify_module

    started: list[int] = []
    real_pool = verify_module.signature_process_pool
    monkeypatch.setattr(verify_module, "signature_process_pool", lambda n: started.append(n) or real_pool(n))
    world, entries, broken = long_log
    checkpoint = world.store.issue_checkpoint()
    alone = _run(world.store, checkpoint, entries=entries, workers=1)
    assert started == []
    pooled = _run(world.store, checkpoint, entries=entries, workers=2)
    assert started == [2]
    assert _bad_signatures(alone) == broken
    assert pooled.problems == alone.problems
    assert pooled.root == alone.root


def test_a_dead_signature_pool_changes_nothing_but_speed(long_log, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the worker processes die (or cannot start), their chunks are checked here: never a silent pass."""
    from concurrent.futures import BrokenExecutor, Executor, Future

    import ledger.verify as verify_module

    class DeadPool(Executor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            future: Future = Future()
            future.set_exception(BrokenExecutor("worker died"))
            return future

    monkeypatch.setattr(verify_module, "signature_process_pool", lambda workers: DeadPool())
    world, entries, broken = long_log
    report = _run(world.store, world.store.issue_checkpoint(), entries=entries, workers=2)
    assert _bad_signatures(report) == broken


def test_signature_workers_start_lean_and_yield_to_their_caller(tmp_path) -> None:
    """The workers import only what they need (not the caller's main module: for the `chainproof` command that was
    the whole CLI, 0.8 s of CPU per worker), and run at a lower priority than the process feeding them."""
    import os
    import subprocess
    import sys

    marker = tmp_path / "imported"
    script = tmp_path / "caller.py"
    script.write_text(
        "import os, sys\n"
        f"open({str(marker)!r}, 'a').write(str(os.getpid()) + '\\n')  # a main module's side effect\n"
        "if __name__ == '__main__':\n"
        "    from ledger.signing import signature_process_pool\n"
        "    import time\n"
        "    pool = signature_process_pool(2)\n"
        "    # busy workers, so that more work would start a worker if the pool had not started them all\n"
        "    busy = [pool.submit(time.sleep, 0.2) for _ in range(4)]\n"
        "    print(os.nice(0), pool.submit(os.nice, 0).result())\n"
        "    pool.shutdown()\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    caller, worker = (int(n) for n in result.stdout.split())
    assert worker > caller
    assert len(marker.read_text().split()) == 1  # the caller's own run only
