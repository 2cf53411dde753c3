"""The signature module against Wycheproof's Ed25519 vectors, and the statement signing context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger import signing
from ledger.errors import EncodingError, SignatureError
from ledger.signing import (
    STATEMENT_CONTEXT,
    generate_private_key,
    key_id_for,
    load_private_key_pem,
    load_public_key,
    load_public_key_pem,
    private_key_pem,
    public_key_bytes,
    public_key_pem,
    sign_raw,
    sign_statement,
    verify_raw,
    verify_statement,
    write_private_key,
)

WYCHEPROOF = json.loads((Path(__file__).parent / "vectors" / "wycheproof" / "ed25519_test.json").read_text())
CASES = [(group["publicKey"]["pk"], test) for group in WYCHEPROOF["testGroups"] for test in group["tests"]]


def test_wycheproof_has_all_cases() -> None:
    assert len(CASES) == WYCHEPROOF["numberOfTests"] == 151


@pytest.mark.parametrize(("public_hex", "case"), CASES, ids=[f"tc{c['tcId']}" for _, c in CASES])
def test_wycheproof_ed25519(public_hex: str, case: dict) -> None:
    key = load_public_key(bytes.fromhex(public_hex))
    ok = verify_raw(key, bytes.fromhex(case["sig"]), bytes.fromhex(case["msg"]))
    assert ok is (case["result"] == "valid"), case["comment"]


@pytest.mark.parametrize(("public_hex", "case"), CASES, ids=[f"tc{c['tcId']}" for _, c in CASES])
def test_libsodium_and_openssl_agree_on_wycheproof(public_hex: str, case: dict) -> None:
    # Keys and signing use `cryptography` (OpenSSL), verification libsodium: they must never disagree.
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            bytes.fromhex(case["sig"]), bytes.fromhex(case["msg"])
        )
        openssl_ok = True
    except InvalidSignature:
        openssl_ok = False
    key = load_public_key(bytes.fromhex(public_hex))
    assert verify_raw(key, bytes.fromhex(case["sig"]), bytes.fromhex(case["msg"])) is openssl_ok


DETACHED = signing._detached_verify()
IMPLEMENTATIONS = {"crypto_sign_open": signing._open_verify, "crypto_sign_verify_detached": DETACHED}


def test_the_direct_libsodium_call_is_found_and_used() -> None:
    # PyNaCl's wheels bundle libsodium with its symbols exported; if that ever changes, the ledger keeps working
    # through PyNaCl's own binding, but the verify rate drops: this test says so rather than a benchmark.
    assert DETACHED is not None
    assert signing._verifier() is not signing._open_verify


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize(("public_hex", "case"), CASES, ids=[f"tc{c['tcId']}" for _, c in CASES])
def test_both_libsodium_calls_give_wycheproofs_verdict(implementation: str, public_hex: str, case: dict) -> None:
    verify = IMPLEMENTATIONS[implementation]
    if verify is None:
        pytest.skip("crypto_sign_verify_detached is not reachable in this PyNaCl build")
    ok = verify(bytes.fromhex(public_hex), bytes.fromhex(case["sig"]), bytes.fromhex(case["msg"]))
    assert ok is (case["result"] == "valid"), case["comment"]


@pytest.mark.parametrize("implementation", [*IMPLEMENTATIONS, "verify_raw"])
def test_wrong_sized_keys_and_signatures_are_refused_before_libsodium(implementation: str) -> None:
    # libsodium reads a fixed 64 and 32 bytes: a short buffer must never reach it (it would read past the end)
    verify = IMPLEMENTATIONS.get(implementation, verify_raw)
    if verify is None:
        pytest.skip("crypto_sign_verify_detached is not reachable in this PyNaCl build")
    private = generate_private_key()
    public = public_key_bytes(private)
    signature = sign_raw(private, b"m")
    assert verify(public, signature, b"m")
    assert not verify(public, signature[:63], b"m")
    assert not verify(public, signature + b"\0", b"m")
    assert not verify(public[:31], signature, b"m")
    assert not verify(public + b"\0", signature, b"m")


@pytest.mark.parametrize(
    "encoded",
    [
        "0100000000000000000000000000000000000000000000000000000000000000",  # the identity, order 1
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p: not canonical
    ],
)
def test_small_order_and_non_canonical_keys_are_refused(encoded: str) -> None:
    # A small-order key can "verify" signatures for messages its holder never chose; refuse it at registration.
    with pytest.raises(SignatureError):
        load_public_key(bytes.fromhex(encoded))


def test_statement_signature_is_bound_to_its_context() -> None:
    private = generate_private_key()
    public = load_public_key(public_key_bytes(private))
    message = b'{"v":1}'
    signature = sign_statement(private, message)
    assert verify_statement(public, signature, message)
    assert not verify_statement(public, signature, message + b" ")
    # a raw signature over the same bytes (e.g. a note) is not a statement signature, and the other way round
    assert not verify_statement(public, sign_raw(private, message), message)
    assert not verify_raw(public, signature, message)
    assert verify_raw(public, signature, STATEMENT_CONTEXT + message)


def test_keys_round_trip_through_pem(tmp_path: Path) -> None:
    private = generate_private_key()
    path = tmp_path / "k.pem"
    write_private_key(path, private)
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        write_private_key(path, generate_private_key())
    assert public_key_bytes(load_private_key_pem(path.read_bytes())) == public_key_bytes(private)
    assert public_key_bytes(load_public_key_pem(public_key_pem(private))) == public_key_bytes(private)
    assert len(key_id_for(public_key_bytes(private))) == 16


def test_bad_keys_are_refused() -> None:
    with pytest.raises(SignatureError):
        load_public_key(b"\x01" * 31)
    with pytest.raises(EncodingError):
        load_private_key_pem(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(EncodingError):
        load_public_key_pem(private_key_pem(generate_private_key()))
