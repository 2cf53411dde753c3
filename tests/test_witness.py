"""C2SP tlog-cosignature v1 and tlog-policy (ledger/cosignature.py), and the tlog-witness protocol
(ledger/witness.py) with every status code the spec gives, against checkpoints and proofs of a real log."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ledger.cosignature import CosignatureVerifier, Cosigner, parse_policy
from ledger.errors import EncodingError, SignatureError
from ledger.hashing import b64encode
from ledger.note import Checkpoint, NoteSigner, parse_note, sign_checkpoint
from ledger.signing import generate_private_key
from ledger.storage import LedgerStore
from ledger.witness import Witness, WitnessState
from tests.factory import World

NOW = 1_796_000_000


def _request(old: int, proof: list[bytes], note: str) -> bytes:
    return ("".join([f"old {old}\n", *[b64encode(h) + "\n" for h in proof], "\n"]) + note).encode()


@pytest.fixture
def cosigner() -> Cosigner:
    return Cosigner("witness.example/w1", generate_private_key())


def _witness(store: LedgerStore, cosigner: Cosigner, state: Path) -> Witness:
    return Witness(cosigner, {store.origin: [store.signer.verifier]}, WitnessState(state), clock=lambda: NOW)


def test_a_cosignature_verifies_carries_its_time_and_binds_the_body(cosigner: Cosigner) -> None:
    body = "example.com/log\n12\n" + b64encode(bytes(32)) + "\n"
    note = body + "\n" + cosigner.cosign(body, NOW)
    verifier = CosignatureVerifier.parse(str(cosigner.verifier))
    assert verifier == cosigner.verifier
    assert verifier.timestamp_of(note) == NOW
    other = Cosigner("witness.example/w2", generate_private_key())
    assert other.verifier.timestamp_of(note) is None  # not its line
    forged = note.replace("\n12\n", "\n13\n")
    with pytest.raises(SignatureError):
        verifier.timestamp_of(forged)
    # the line is a signed-note signature: a note verifier ignores it as an unknown key
    assert len(parse_note(note).signatures) == 1
    with pytest.raises(EncodingError, match="type 0x04"):
        CosignatureVerifier.parse(str(NoteSigner("example.com/log", generate_private_key()).verifier))


def test_policy_files_and_quorums(cosigner: Cosigner) -> None:
    keys = {n: Cosigner(f"w{n}.example", generate_private_key()).verifier for n in range(1, 7)}
    log = NoteSigner("example.com/log", generate_private_key()).verifier
    policy = parse_policy(
        f"""# two organisations
        log {log} https://log.example/
        witness X1 {keys[1]}
        witness X2 {keys[2]} https://x2.example/
        witness X3 {keys[3]}
        group X-witnesses 2 X1 X2 X3
        witness Y1 {keys[4]}
        witness Y2 {keys[5]}
        witness Y3 {keys[6]}
        group Y-witnesses any Y1 Y2 Y3
        group X-and-Y all X-witnesses Y-witnesses
        quorum X-and-Y
        """
    )
    assert policy.logs[0].key == log
    assert policy.logs[0].url == "https://log.example/"
    assert policy.witnesses["X2"].url == "https://x2.example/"
    assert policy.satisfied({"X1", "X3", "Y2"})
    assert not policy.satisfied({"X1", "Y2", "Y3"})
    assert not policy.satisfied({"X1", "X2", "X3"})
    assert parse_policy("quorum none\n").satisfied(set())
    for bad, words in [
        ("witness A " + str(keys[1]) + "\nquorum B\n", "quorum 'B' is not a witness or group"),
        ("witness A " + str(keys[1]) + "\ngroup G 2 A\nquorum G\n", "threshold"),
        ("witness A " + str(keys[1]) + "\nwitness B " + str(keys[1]) + "\nquorum A\n", "already listed"),
        ("quorum none\nquorum none\n", "exactly one quorum"),
        ("witness A " + str(keys[1]) + "\n", "no quorum line"),
        ("logs " + str(log) + "\nquorum none\n", "line 1: not a log, witness"),
    ]:
        with pytest.raises(EncodingError, match=words):
            parse_policy(bad)


def test_the_witness_answers_as_the_spec_says(world: World, cosigner: Cosigner, tmp_path: Path) -> None:
    store = world.store
    witness = _witness(store, cosigner, tmp_path / "state")
    first = store.issue_checkpoint()
    size = Checkpoint.parse_body(parse_note(first).text).size
    answer = witness.add_checkpoint(_request(0, [], first))
    assert answer.status == 200, answer.body
    assert cosigner.verifier.timestamp_of(first + answer.body.decode()) == NOW
    # the same checkpoint again: re-witnessed (a fresh timestamp), from the size it holds
    assert witness.add_checkpoint(_request(size, [], first)).status == 200
    # a client that does not know the size the witness holds learns it
    stale = witness.add_checkpoint(_request(0, [], first))
    assert (stale.status, stale.body, stale.content_type) == (409, f"{size}\n".encode(), "text/x.tlog.size")
    # the log grows: cosigned with a consistency proof from the size it holds
    store.append(world.journey("W", "1"))
    second = store.issue_checkpoint()
    grown = Checkpoint.parse_body(parse_note(second).text).size
    proof = store.consistency_proof(size, grown)
    bad_proof = [bytes(32), *proof[1:]]
    assert witness.add_checkpoint(_request(size, bad_proof, second)).status == 422
    assert witness.add_checkpoint(_request(size, proof, second)).status == 200
    # and then what is no longer the size it holds is a conflict
    assert witness.add_checkpoint(_request(size, proof, second)).status == 409
    assert witness.add_checkpoint(_request(grown + 1, [], second)).status == 400  # old above the checkpoint's size


def test_what_it_refuses(world: World, cosigner: Cosigner, tmp_path: Path) -> None:
    store = world.store
    witness = _witness(store, cosigner, tmp_path / "state")
    note = store.issue_checkpoint()
    assert witness.add_checkpoint(b"old 0\n" + note.encode()).status == 400  # no empty line
    assert witness.add_checkpoint(b"old 01\n\n" + note.encode()).status == 400
    assert witness.add_checkpoint(_request(0, [], note.replace(store.origin, "other.example/log"))).status in (403, 404)
    stranger = NoteSigner("other.example/log", generate_private_key())
    unknown = sign_checkpoint(Checkpoint("other.example/log", 0, bytes(32)), stranger)
    assert witness.add_checkpoint(_request(0, [], unknown)).status == 404
    impostor = NoteSigner(store.origin, generate_private_key())  # the log's name, another key
    forged = sign_checkpoint(Checkpoint(store.origin, 5, bytes(32)), impostor)
    assert witness.add_checkpoint(_request(0, [], forged)).status == 403
    empty_with_root = sign_checkpoint(Checkpoint(store.origin, 0, bytes(32)), store.signer)
    assert witness.add_checkpoint(_request(0, [], empty_with_root)).status == 422
    nonempty_proof = witness.add_checkpoint(_request(0, [bytes(32)], note))
    assert nonempty_proof.status == 422


def test_a_fork_is_never_cosigned_not_even_after_a_restart(world: World, cosigner: Cosigner, tmp_path: Path) -> None:
    store = world.store
    note = store.issue_checkpoint()
    size = Checkpoint.parse_body(parse_note(note).text).size
    assert _witness(store, cosigner, tmp_path / "state").add_checkpoint(_request(0, [], note)).status == 200
    # the same log key signs another tree of the same size (a split view)
    fork = sign_checkpoint(Checkpoint(store.origin, size, bytes(32)), store.signer)
    restarted = _witness(store, cosigner, tmp_path / "state")  # what it cosigned was kept on disk
    assert restarted.add_checkpoint(_request(size, [], fork)).status == 422
    assert restarted.add_checkpoint(_request(0, [], fork)).status == 409


def test_racing_submissions_cosign_one_history(world: World, cosigner: Cosigner, tmp_path: Path) -> None:
    """Two growths from the same size at once: the check and the update are one step, so one wins and the other
    learns the new size (the spec's rollback race cannot happen)."""
    store = world.store
    witness = _witness(store, cosigner, tmp_path / "state")
    base = store.issue_checkpoint()
    size = Checkpoint.parse_body(parse_note(base).text).size
    assert witness.add_checkpoint(_request(0, [], base)).status == 200
    store.append(world.journey("R", "1"))
    middle = store.issue_checkpoint()
    store.append(world.journey("R", "2"))
    top = store.issue_checkpoint()
    requests = []
    for note in (middle, top):
        grown = Checkpoint.parse_body(parse_note(note).text).size
        requests.append(_request(size, store.consistency_proof(size, grown), note))
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda r=r: statuses.append(witness.add_checkpoint(r).status)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409]


def test_witness_keygen_and_serve_over_http(world: World, tmp_path: Path) -> None:
    """`chainproof witness keygen` writes a 0600 key and prints its vkey; `witness serve` answers add-checkpoint
    over HTTP for the logs its policy lists."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx
    from typer.testing import CliRunner

    from cli.main import app as cli_app

    runner = CliRunner()
    key = tmp_path / "w1.pem"
    made = runner.invoke(cli_app, ["witness", "keygen", "--name", "witness.example/w1", "--out", str(key)])
    assert made.exit_code == 0, made.output
    vkey = CosignatureVerifier.parse(made.output.strip())
    assert os.stat(key).st_mode & 0o777 == 0o600
    again = runner.invoke(cli_app, ["witness", "keygen", "--name", "witness.example/w1", "--out", str(key)])
    assert again.exit_code == 2
    assert "is never overwritten" in again.output
    policy = tmp_path / "policy"
    policy.write_text(f"log {world.store.signer.verifier}\nwitness W1 {vkey}\nquorum W1\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    chainproof = str(Path(sys.executable).parent / "chainproof")
    process = subprocess.Popen(
        [chainproof, "witness", "serve", "--key", str(key), "--policy", str(policy), "--state", str(tmp_path / "s"),
         "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(url + "/")
                break
            except httpx.TransportError:
                time.sleep(0.05)
        note = world.store.issue_checkpoint()
        answer = httpx.post(url + "/add-checkpoint", content=_request(0, [], note))
        assert answer.status_code == 200, answer.text
        assert vkey.timestamp_of(note + answer.text) is not None
        size = Checkpoint.parse_body(parse_note(note).text).size
        conflict = httpx.post(url + "/add-checkpoint", content=_request(0, [], note))
        assert conflict.status_code == 409
        assert conflict.headers["content-type"] == "text/x.tlog.size"
        assert conflict.text == f"{size}\n"
    finally:
        process.terminate()
        process.wait(timeout=10)
