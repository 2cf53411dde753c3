"""What a printed label pins (issue: identities in the log): the product page URL's fragment, fixed when the
merchant prints the label, names the log key and the batch's origin entry by hash.

    #k=<base64url SHA-256 of the log's verifier key string>&o=<base64url of the origin entry's hash>

A fragment is never sent to the server, so the page's script can hold the server to what the package says: the
same log key, and an origin entry with exactly that hash, proven into a checkpoint signed by that key. Full
SHA-256 hashes, not the signed-note key hash (32 bits could be ground). The origin entry's hash is its Merkle leaf
hash, the same hash the batch's chain and inclusion proofs use. Base64url without padding keeps the QR code small.
"""

from __future__ import annotations

import base64
import re

from ledger.errors import EncodingError
from ledger.hashing import sha256

_FRAGMENT = re.compile(r"k=([A-Za-z0-9_-]{43})&o=([A-Za-z0-9_-]{43})")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def log_key_digest(log_key: str) -> str:
    """The label's `k`: base64url of SHA-256 of the verifier key string, exactly as the log publishes it."""
    return _b64url(sha256(log_key.strip().encode("utf-8")))


def label_fragment(log_key: str, origin_entry_hash: bytes) -> str:
    """The fragment (with its '#') a batch's label adds to the product page URL."""
    if len(origin_entry_hash) != 32:
        raise EncodingError(f"an entry hash is 32 bytes, got {len(origin_entry_hash)}")
    return f"#k={log_key_digest(log_key)}&o={_b64url(origin_entry_hash)}"


def parse_label_fragment(fragment: str) -> tuple[str, str] | None:
    """(k, o) of a label fragment (with or without its '#'), or None if it is not one."""
    match = _FRAGMENT.fullmatch(fragment.removeprefix("#"))
    return None if match is None else (match.group(1), match.group(2))
