"""The one signature module: Ed25519 keys, statement signatures and key ids.

The rest of the code calls `sign_statement` / `verify_statement` (and the note module calls `sign_raw` /
`verify_raw`); nothing else touches a signature primitive.

Keys, PEM files and signing go through `cryptography`; verification goes through libsodium (PyNaCl, also PyCA),
whose Ed25519 verify runs about 2x the rate of OpenSSL's on this hardware and releases the GIL (called as
`crypto_sign_verify_detached`, directly where PyNaCl's build exposes it: see `_detached_verify`). Both agree on
every Wycheproof case (tests/test_signing.py runs them through `verify_raw`), and `load_public_key` refuses the
small-order and off-curve keys that libsodium would refuse at verification, so no key is accepted at
registration and then fails every signature.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.machinery
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor
from pathlib import Path
from typing import NewType

import nacl.bindings
import nacl.exceptions
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import EncodingError, SignatureError
from ledger.hashing import b64decode, sha256_hex

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64

STATEMENT_CONTEXT = b"chainproof/statement/v1\n"
"""Prefixed to a statement's canonical bytes before signing, so that an actor's signature over a statement can
never be replayed as a signature over anything else (a note, another protocol's message), and vice versa."""

__all__ = [
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "PublicKey",
    "StatementCheck",
    "failed_statements",
    "generate_private_key",
    "key_id_for",
    "load_private_key_pem",
    "load_public_key",
    "load_public_key_pem",
    "parse_public_key_text",
    "private_key_pem",
    "public_key_bytes",
    "public_key_pem",
    "sign_raw",
    "sign_statement",
    "signature_process_pool",
    "start_statement_checks",
    "verify_raw",
    "verify_statement",
    "write_private_key",
]

PublicKey = NewType("PublicKey", bytes)
"""The 32 raw bytes of an Ed25519 public key that `load_public_key` accepted."""

StatementCheck = tuple[int, PublicKey, bytes, bytes]
"""(position, public key, signature, statement bytes)"""
_PARALLEL_MIN = 64  # below this, handing work to threads costs more than it saves
_WORKER_NICENESS = 5


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_public_key(raw: bytes) -> PublicKey:
    if len(raw) != PUBLIC_KEY_SIZE:
        raise SignatureError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes, got {len(raw)}")
    if not nacl.bindings.crypto_core_ed25519_is_valid_point(raw):
        raise SignatureError("not a usable Ed25519 public key (not a canonical point of the prime-order subgroup)")
    return PublicKey(bytes(raw))


def key_id_for(public_key: bytes) -> str:
    """A key's id: the first 16 hex digits of SHA-256 of its raw bytes, so anyone can check id and key agree."""
    return sha256_hex(public_key)[:16]


def sign_raw(key: Ed25519PrivateKey, message: bytes) -> bytes:
    return key.sign(message)


def _sizes_ok(public_key: bytes, signature: bytes) -> bool:
    return len(signature) == SIGNATURE_SIZE and len(public_key) == PUBLIC_KEY_SIZE


def _open_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Through PyNaCl's binding of crypto_sign_open: the same check, plus copies of the message in and out."""
    if not _sizes_ok(public_key, signature):
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except nacl.exceptions.BadSignatureError:
        return False
    return True


def _detached_verify() -> Callable[[bytes, bytes, bytes], bool] | None:
    """libsodium's own `crypto_sign_verify_detached`, from the libsodium PyNaCl has loaded, or None if it cannot
    be found. PyNaCl binds only crypto_sign_open, which runs this very function and then copies the message out
    of a combined buffer: going direct is about 13% faster per signature, same verdict (both are tested on every
    Wycheproof case). Same library, so PyNaCl's sodium_init covers it; cffi (a PyNaCl dependency) releases the
    GIL during the call."""
    try:
        import cffi
        import nacl._sodium
    except ImportError:
        return None
    try:
        ffi = cffi.FFI()
        ffi.cdef(
            "int crypto_sign_verify_detached(const unsigned char *sig, const unsigned char *m, "
            "unsigned long long mlen, const unsigned char *pk);"
        )
        verify_detached = ffi.dlopen(nacl._sodium.__file__).crypto_sign_verify_detached
    except (OSError, AttributeError, cffi.FFIError):  # another PyNaCl build: keep its binding
        return None

    def verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
        # libsodium reads exactly 64 and 32 bytes through these pointers: the sizes are checked first, always
        if not _sizes_ok(public_key, signature):
            return False
        return bool(verify_detached(signature, message, len(message), public_key) == 0)

    return verify


@functools.cache
def _verifier() -> Callable[[bytes, bytes, bytes], bool]:
    """Found on first use, not at import: binding it parses a C declaration with cffi (26 ms of every CLI start)."""
    return _detached_verify() or _open_verify


def verify_raw(public_key: PublicKey, signature: bytes, message: bytes) -> bool:
    return _verifier()(public_key, signature, message)


def sign_statement(key: Ed25519PrivateKey, statement_bytes: bytes) -> bytes:
    """Sign a statement's canonical bytes (see `ledger.canonical.canonical_json`)."""
    return key.sign(STATEMENT_CONTEXT + statement_bytes)


def verify_statement(public_key: PublicKey, signature: bytes, statement_bytes: bytes) -> bool:
    return verify_raw(public_key, signature, STATEMENT_CONTEXT + statement_bytes)


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key_pem(data: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise EncodingError(f"not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise EncodingError("the private key is not an Ed25519 key")
    return key


def load_public_key_pem(data: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise EncodingError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise EncodingError("the public key is not an Ed25519 key")
    return key


def parse_public_key_text(text: str) -> bytes:
    """Raw Ed25519 public key bytes from a PEM (SubjectPublicKeyInfo) or standard base64 of the 32 raw bytes."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        return public_key_bytes(load_public_key_pem(stripped.encode()))
    raw = b64decode(stripped, what="public key", size=PUBLIC_KEY_SIZE)
    load_public_key(raw)
    return raw


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    """Write a private key PEM with mode 0600, refusing to overwrite an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_key_pem(key))


def _failed(checks: Sequence[StatementCheck]) -> list[int]:
    return [pos for pos, key, signature, message in checks if not verify_statement(key, signature, message)]


def signature_process_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes for long signature runs (whole-ledger audits).

    Threads do not scale here: a thread returning from Ed25519 must win the GIL back from a thread running Python
    (parsing the next entries), and waits a switch interval each time. Processes have a GIL each. `forkserver`,
    not `fork`: the caller may have threads (a store's sequencer, an HTTP client), and a forked child could inherit
    a lock one of them held. Like any process pool, the calling script needs an `if __name__ == "__main__"` guard;
    if the pool cannot start, the checks run in this process instead (see `start_statement_checks`).
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["ledger.signing"])
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_yield_to_the_caller)
    # Start every worker now, without the caller's main module: multiprocessing re-imports it in every child, and
    # for the `chainproof` command that is the whole CLI (0.8 s of CPU per worker, taken from the audit it was
    # started for). The workers need only this module. A main module named "__main__" by its spec is one
    # multiprocessing leaves alone. All at once: a pool otherwise starts workers as work arrives, later, unmasked
    # (submitting warm-up tasks was not enough: a fast first worker took them all).
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    try:
        main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)
        launch = getattr(pool, "_launch_processes", None)  # CPython 3.9+; the public way would be a task per worker
        if callable(launch):
            launch()
        else:
            for _ in range(workers):
                pool.submit(int)
    except (BrokenExecutor, RuntimeError, OSError, AssertionError):
        pass  # the checks then run in the caller (start_statement_checks)
    finally:
        main.__spec__ = spec
    return pool


def _yield_to_the_caller() -> None:
    """Run signature workers at a lower priority than the process that feeds them: with as many workers as cores,
    the scheduler otherwise shares a core between the feeder and a worker, and the feeder (parsing, rules, the
    Merkle tree: the serial part) is the bottleneck."""
    with contextlib.suppress(OSError):
        os.nice(_WORKER_NICENESS)


def _result_or_local(future: Future[list[int]] | None, checks: Sequence[StatementCheck]) -> list[int]:
    if future is not None:
        try:
            return future.result()
        except BrokenExecutor:
            pass  # the pool died (or never started): the answer must not depend on it
    return _failed(checks)


def start_statement_checks(
    checks: Sequence[StatementCheck], pool: Executor | None = None, workers: int = 1
) -> Callable[[], list[int]]:
    """Start checking statement signatures; the returned function waits and gives the failed positions, in order.

    With a pool (threads or processes), the checks run on `workers` of them while the caller goes on.
    """
    if pool is None or workers < 2 or len(checks) < _PARALLEL_MIN:
        failed = _failed(checks)
        return lambda: failed
    step = -(-len(checks) // workers)
    parts = [checks[i : i + step] for i in range(0, len(checks), step)]
    futures: list[Future[list[int]] | None] = []
    for part in parts:
        try:
            futures.append(pool.submit(_failed, part))
        except (BrokenExecutor, RuntimeError):  # broken or shut down: check here
            futures.append(None)
    return lambda: [pos for future, part in zip(futures, parts, strict=True) for pos in _result_or_local(future, part)]


def failed_statements(checks: Sequence[StatementCheck], pool: Executor | None = None, workers: int = 1) -> list[int]:
    """Positions whose statement signature does not verify, in order."""
    return start_statement_checks(checks, pool, workers)()
