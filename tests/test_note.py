"""C2SP signed notes and tlog checkpoints: real vectors, our own checkpoints, strict parsing, Go's reference."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ledger.errors import EncodingError, LedgerError, SignatureError
from ledger.note import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    key_hash,
    open_checkpoint,
    open_note,
    parse_note,
    sign_checkpoint,
    sign_note,
)
from ledger.signing import generate_private_key

HERE = Path(__file__).parent
VECTORS = json.loads((HERE / "vectors" / "signed-note.json").read_text())["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["verifier_key"].split("+")[0])
def test_real_signed_notes_verify(vector: dict) -> None:
    verifier = NoteVerifier.parse(vector["verifier_key"])
    assert str(verifier) == vector["verifier_key"]
    opened = open_note(vector["note"], [verifier])
    assert vector["note"].startswith(opened.text)
    if "checkpoint" in vector:
        expected = vector["checkpoint"]
        signed = open_checkpoint(vector["note"], verifier, origin=expected["origin"])
        assert signed.checkpoint.size == expected["tree_size"]
        assert signed.checkpoint.body().split("\n")[2] == expected["root_hash_b64"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["verifier_key"].split("+")[0])
def test_real_notes_fail_when_text_is_changed(vector: dict) -> None:
    verifier = NoteVerifier.parse(vector["verifier_key"])
    tampered = vector["note"].replace("\n", " \n", 1)
    with pytest.raises(SignatureError):
        open_note(tampered, [verifier])


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner("chainproof.test/log", generate_private_key())


def test_our_checkpoint_round_trips(signer: NoteSigner) -> None:
    checkpoint = Checkpoint("chainproof.test/log", 42, bytes(range(32)))
    note = sign_checkpoint(checkpoint, signer)
    assert note.startswith(
        "chainproof.test/log\n42\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n— chainproof.test/log "
    )
    assert open_checkpoint(note, signer.verifier).checkpoint == checkpoint
    # the published verifier key string parses back to the same key
    assert NoteVerifier.parse(str(signer.verifier)) == signer.verifier


def test_key_hash_follows_the_spec() -> None:
    # c2sp.org/signed-note example key: example.com/foo+530d903a+...
    verifier = NoteVerifier.parse(VECTORS[0]["verifier_key"])
    assert key_hash("example.com/foo", verifier.public_key) == 0x530D903A


def test_unknown_keys_are_ignored_but_one_known_key_must_sign(signer: NoteSigner) -> None:
    other = NoteSigner("witness.example/w1", generate_private_key())
    note = sign_checkpoint(Checkpoint("chainproof.test/log", 1, bytes(32)), signer)
    cosigned = note + other.signature_line(parse_note(note).text)
    assert open_note(cosigned, [signer.verifier]).text == parse_note(note).text
    with pytest.raises(SignatureError, match="not signed by any trusted key"):
        open_note(note, [other.verifier])
    with pytest.raises(SignatureError, match="no trusted"):
        open_note(note, [])


def test_same_name_other_key_is_not_accepted(signer: NoteSigner) -> None:
    impostor = NoteSigner(signer.name, generate_private_key())
    forged = sign_checkpoint(Checkpoint(signer.name, 7, bytes(32)), impostor)
    with pytest.raises(SignatureError):
        open_checkpoint(forged, signer.verifier)


def test_forged_signature_with_matching_key_hash_is_rejected(signer: NoteSigner) -> None:
    note = sign_checkpoint(Checkpoint(signer.name, 7, bytes(32)), signer)
    body, sig_line = note.rsplit("\n\n", 1)
    forged = body.replace("\n7\n", "\n8\n") + "\n\n" + sig_line
    with pytest.raises(SignatureError, match="does not verify"):
        open_checkpoint(forged, signer.verifier)


def test_wrong_origin_is_rejected(signer: NoteSigner) -> None:
    note = sign_checkpoint(Checkpoint("another.log/x", 1, bytes(32)), signer)
    with pytest.raises(SignatureError, match="origin"):
        open_checkpoint(note, signer.verifier)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda n: n.replace("\n\n", "\n"),  # no blank line
        lambda n: n[:-1],  # no final newline
        lambda n: n.replace("—", "-"),  # not an em dash
        lambda n: n.replace("\n42\n", "\n042\n"),  # leading zero in the size
        lambda n: n.replace("\n42\n", "\n+42\n"),
        lambda n: n.replace("\n42\n", "\n 42\n"),
        lambda n: n.replace("log\n", "log\r\n", 1),  # control character
        lambda n: n[:-2] + "!\n",  # junk in base64
        lambda n: n.replace("=\n\n", "\n\n", 1),  # root hash not canonical base64
    ],
)
def test_malformed_checkpoints_are_rejected(signer: NoteSigner, mutate) -> None:
    note = sign_checkpoint(Checkpoint(signer.name, 42, bytes(32)), signer)
    with pytest.raises(LedgerError):
        open_checkpoint(mutate(note), signer.verifier)


@pytest.mark.parametrize(
    "key",
    [
        "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # hash does not match
        "example.com/foo+530d903a+AkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # bad length
        "example com+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    ],
)
def test_bad_verifier_keys_are_rejected(key: str) -> None:
    with pytest.raises(EncodingError):
        NoteVerifier.parse(key)


def test_note_text_must_not_hold_control_characters(signer: NoteSigner) -> None:
    with pytest.raises(EncodingError):
        sign_note("tab\there\n", signer)


def _go_notecheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gopath = Path("/usr/share/gocode")
    if shutil.which("go") is None or not (gopath / "src/golang.org/x/mod/sumdb/note").is_dir():
        pytest.skip("Go and golang.org/x/mod (Debian: golang-go golang-golang-x-mod-dev) are not installed")
    out = tmp_path_factory.mktemp("go") / "notecheck"
    env = dict(os.environ, GO111MODULE="off", GOPATH=str(gopath), GOCACHE=str(out.parent / "cache"))
    subprocess.run(
        ["go", "build", "-o", str(out), str(HERE / "go" / "notecheck" / "main.go")], check=True, env=env, cwd=out.parent
    )
    return out


@pytest.fixture(scope="module")
def notecheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _go_notecheck(tmp_path_factory)


def test_our_checkpoint_verifies_with_go_reference(notecheck: Path, signer: NoteSigner) -> None:
    note = sign_checkpoint(Checkpoint(signer.name, 123456, bytes(range(32))), signer)
    result = subprocess.run([notecheck, str(signer.verifier)], input=note.encode(), capture_output=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == Checkpoint(signer.name, 123456, bytes(range(32))).body()
    tampered = note.replace("123456", "123457")
    result = subprocess.run([notecheck, str(signer.verifier)], input=tampered.encode(), capture_output=True)
    assert result.returncode == 1


def test_go_reference_agrees_on_the_vectors(notecheck: Path) -> None:
    for vector in VECTORS:
        result = subprocess.run([notecheck, vector["verifier_key"]], input=vector["note"].encode(), capture_output=True)
        assert result.returncode == 0, result.stderr
