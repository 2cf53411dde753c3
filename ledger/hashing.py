"""The one hashing module: SHA-256, RFC 9162 leaf/node hashes, and strict base64/hex codecs for hashes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from ledger.errors import EncodingError

HASH_SIZE = 32
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_B64_RE = re.compile(rb"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")
_HEX_RE = re.compile(r"^[0-9a-f]*$")

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""RFC 9162 section 2.1.1: the hash of an empty tree is the hash of the empty string."""


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leaf_hash(leaf: bytes) -> bytes:
    """RFC 9162 section 2.1.1: MTH({d}) = SHA-256(0x00 || d). Also a ledger entry's hash (its chain link)."""
    return hashlib.sha256(_LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 section 2.1.1: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def b64encode(data: bytes) -> str:
    """Standard base64 (RFC 4648 section 4) with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str | bytes, *, what: str = "value", size: int | None = None) -> bytes:
    """Strict standard base64: no whitespace, no junk, canonical padding; optionally an exact decoded size."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    if not _B64_RE.fullmatch(raw):
        raise EncodingError(f"{what} is not canonical standard base64")
    try:
        decoded = base64.b64decode(raw, validate=True)
    except binascii.Error as exc:
        raise EncodingError(f"{what} is not valid base64: {exc}") from exc
    if base64.b64encode(decoded) != raw:
        # Non-zero padding bits: two encodings would decode to these bytes; accept only the canonical one.
        raise EncodingError(f"{what} is not canonical standard base64")
    if size is not None and len(decoded) != size:
        raise EncodingError(f"{what} must be {size} bytes, got {len(decoded)}")
    return decoded


def hexdecode(text: str, *, what: str = "value", size: int | None = None) -> bytes:
    """Strict lowercase hex, optionally of an exact decoded size."""
    if len(text) % 2 or not _HEX_RE.fullmatch(text):
        raise EncodingError(f"{what} is not lowercase hex")
    decoded = bytes.fromhex(text)
    if size is not None and len(decoded) != size:
        raise EncodingError(f"{what} must be {size} bytes, got {len(decoded)}")
    return decoded
