"""Log entries and their leaf bytes.

A stored entry is the canonical JSON (RFC 8785) of
    {"index", "logged_at", "prev", "signature", "statement"}
and those bytes are the Merkle leaf. The entry's hash, which the next entry of its batch carries as `prev`, is
the RFC 9162 leaf hash SHA-256(0x00 || leaf): one hash serves as chain link and Merkle leaf.

"statement" sorts last among the keys, so the leaf ends with the statement's own canonical bytes (RFC 8785 is
compositional: a nested object serializes exactly as it does alone). That lets the server splice the bytes it
already canonicalized to check the signature, and lets a verifier find the signed bytes without serializing
again. `parse_leaf` checks the envelope is canonical and the splice exact. The statement bytes are checked against
the signature as they are; the server only ever signs-and-stores `canonical_json(statement)` (it canonicalizes a
client's statement itself before checking the signature), so a leaf whose statement bytes were not canonical
could only carry a signature its signer made over exactly those bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ledger.canonical import canonical_json, parse_json
from ledger.errors import EncodingError
from ledger.hashing import b64decode, b64encode, leaf_hash
from ledger.signing import SIGNATURE_SIZE

MAX_LEAF_BYTES = 65535
"""The largest leaf the log takes: what a C2SP tlog-tiles entry bundle can carry (a 16-bit length prefix)."""
_STATEMENT_KEY = b',"statement":'
# The envelope as canonical_json writes it when logged_at holds only characters JSON never escapes. Matching this
# is the fast path of parse_leaf; anything else takes the general path, which rebuilds the prefix canonically.
_FAST_PREFIX = re.compile(
    rb'\{"index":(0|[1-9][0-9]{0,18}),"logged_at":"([0-9A-Za-z:.+-]{1,64})",'
    rb'"prev":(null|"[A-Za-z0-9+/]{43}="),"signature":"([A-Za-z0-9+/]{86}==)","statement":'
)
_SAFE_TIME = re.compile(r"[0-9A-Za-z:.+-]{1,64}")


def _envelope_prefix(index: int, logged_at: str, prev: bytes | None, signature: bytes) -> bytes:
    if _SAFE_TIME.fullmatch(logged_at):  # no character of it needs escaping: format directly (hot path)
        prev_json = "null" if prev is None else f'"{b64encode(prev)}"'
        return (
            f'{{"index":{index},"logged_at":"{logged_at}","prev":{prev_json},'
            f'"signature":"{b64encode(signature)}","statement":'
        ).encode("ascii")
    envelope = {
        "index": index,
        "logged_at": logged_at,
        "prev": None if prev is None else b64encode(prev),
        "signature": b64encode(signature),
    }
    return canonical_json(envelope)[:-1] + _STATEMENT_KEY


def build_leaf(index: int, logged_at: str, prev: bytes | None, signature: bytes, statement_bytes: bytes) -> bytes:
    """The leaf bytes of an entry, from the statement's canonical bytes (as signed)."""
    return _envelope_prefix(index, logged_at, prev, signature) + statement_bytes + b"}"


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """An entry read back from its leaf bytes."""

    index: int
    logged_at: str
    prev: bytes | None
    signature: bytes
    statement_bytes: bytes
    statement: dict[str, Any]
    leaf: bytes
    hash: bytes


def parse_leaf(leaf: bytes, entry_hash: bytes | None = None) -> ParsedEntry:
    """Parse and check leaf bytes: canonical envelope, well-formed fields. Raises EncodingError.

    `entry_hash` saves hashing again when the caller already has leaf_hash(leaf).
    """
    match = _FAST_PREFIX.match(leaf)
    if match is not None and leaf.endswith(b"}"):
        index_text, logged_at_text, prev_text, signature_text = match.groups()
        statement_bytes = leaf[match.end() : -1]
        statement = parse_json(statement_bytes)
        if not isinstance(statement, dict):
            raise EncodingError("leaf statement is not an object")
        prev = None if prev_text == b"null" else b64decode(prev_text[1:-1], what="prev hash", size=32)
        signature = b64decode(signature_text, what="signature", size=SIGNATURE_SIZE)
        return ParsedEntry(
            int(index_text),
            logged_at_text.decode("ascii"),
            prev,
            signature,
            statement_bytes,
            statement,
            leaf,
            entry_hash or leaf_hash(leaf),
        )
    return _parse_leaf_general(leaf, entry_hash)


def _parse_leaf_general(leaf: bytes, entry_hash: bytes | None) -> ParsedEntry:
    envelope = parse_json(leaf)
    if not isinstance(envelope, dict) or set(envelope) != {"index", "logged_at", "prev", "signature", "statement"}:
        raise EncodingError("leaf is not an entry object with index, logged_at, prev, signature and statement")
    index, logged_at, prev_text, signature_text = (
        envelope["index"],
        envelope["logged_at"],
        envelope["prev"],
        envelope["signature"],
    )
    if type(index) is not int or index < 0:
        raise EncodingError("leaf index is not a non-negative integer")
    if not isinstance(logged_at, str):
        raise EncodingError("leaf logged_at is not a string")
    if not isinstance(signature_text, str):
        raise EncodingError("leaf signature is not a string")
    if prev_text is not None and not isinstance(prev_text, str):
        raise EncodingError("leaf prev is neither null nor a string")
    if not isinstance(envelope["statement"], dict):
        raise EncodingError("leaf statement is not an object")
    prev = None if prev_text is None else b64decode(prev_text, what="prev hash", size=32)
    signature = b64decode(signature_text, what="signature", size=SIGNATURE_SIZE)
    prefix = _envelope_prefix(index, logged_at, prev, signature)
    if not leaf.startswith(prefix) or not leaf.endswith(b"}"):
        raise EncodingError("leaf bytes are not in canonical form")
    statement_bytes = leaf[len(prefix) : -1]
    statement = parse_json(statement_bytes)  # parsed alone: the bytes the signature covers are exactly these
    if statement != envelope["statement"]:
        raise EncodingError("leaf bytes are not in canonical form")
    return ParsedEntry(
        index, logged_at, prev, signature, statement_bytes, statement, leaf, entry_hash or leaf_hash(leaf)
    )
