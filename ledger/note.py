"""C2SP signed-note (c2sp.org/signed-note) with Ed25519 keys, and C2SP tlog-checkpoint bodies.

Parsing is strict: a note that is not exactly in the spec's form is rejected, never "repaired".
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from ledger.errors import EncodingError, SignatureError
from ledger.hashing import b64decode, b64encode, sha256
from ledger.signing import (
    Ed25519PrivateKey,
    PublicKey,
    load_public_key,
    public_key_bytes,
    sign_raw,
    verify_raw,
)

ED25519_TYPE = 0x01
MAX_SIGNATURES = 100  # the spec asks verifiers for a limit of at least 16
_EM_DASH = "\u2014"
_KEY_NAME_RE = re.compile(r"^[^\s+]+$")
_SIG_LINE_RE = re.compile(r"^\u2014 ([^\s+]+) ([A-Za-z0-9+/=]+)$")
_VERIFIER_RE = re.compile(r"^([^\s+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$")
_SIZE_RE = re.compile(r"^(0|[1-9][0-9]{0,19})$")


def check_key_name(name: str) -> None:
    """A signed-note key name: non-empty, no whitespace, no '+' (EncodingError otherwise)."""
    if not _KEY_NAME_RE.fullmatch(name):
        raise EncodingError(f"note key name {name!r} must be non-empty with no spaces or '+'")


def key_hash(name: str, public_key: bytes) -> int:
    """key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4], big-endian."""
    check_key_name(name)
    digest = sha256(name.encode("utf-8") + b"\n" + bytes([ED25519_TYPE]) + public_key)
    return int(struct.unpack(">I", digest[:4])[0])


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted note key: name, 4-byte key hash and Ed25519 public key."""

    name: str
    key_hash: int
    public_key: bytes

    @classmethod
    def parse(cls, text: str) -> NoteVerifier:
        """Parse `<name>+<hex key hash>+<base64(0x01 || public key)>` and check the hash matches the key."""
        match = _VERIFIER_RE.fullmatch(text.strip())
        if not match:
            raise EncodingError("not a note verifier key: expected <name>+<8 hex digits>+<base64 key>")
        name, hash_hex, key_b64 = match.groups()
        raw = b64decode(key_b64, what="verifier key")
        if len(raw) != 33 or raw[0] != ED25519_TYPE:
            raise EncodingError("verifier key is not an Ed25519 (type 0x01) key of 32 bytes")
        public_key = raw[1:]
        expected = key_hash(name, public_key)
        if int(hash_hex, 16) != expected:
            raise EncodingError(f"verifier key hash {hash_hex} does not match its key (expected {expected:08x})")
        return cls(name, expected, public_key)

    def __str__(self) -> str:
        return f"{self.name}+{self.key_hash:08x}+{b64encode(bytes([ED25519_TYPE]) + self.public_key)}"

    def ed25519(self) -> PublicKey:
        return load_public_key(self.public_key)


@dataclass(frozen=True)
class NoteSigner:
    name: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        check_key_name(self.name)

    @property
    def verifier(self) -> NoteVerifier:
        public = public_key_bytes(self.private_key)
        return NoteVerifier(self.name, key_hash(self.name, public), public)

    def signature_line(self, text: str) -> str:
        signature = sign_raw(self.private_key, text.encode("utf-8"))
        return f"{_EM_DASH} {self.name} {b64encode(struct.pack('>I', self.verifier.key_hash) + signature)}\n"


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_hash: int
    signature: bytes


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[NoteSignature, ...]


def _check_characters(note: str) -> None:
    for ch in note:
        if ch < " " and ch != "\n":
            raise EncodingError(f"note contains control character U+{ord(ch):04X}")


def sign_note(text: str, signer: NoteSigner) -> str:
    if not text.endswith("\n"):
        raise EncodingError("note text must end with a newline")
    _check_characters(text)
    return text + "\n" + signer.signature_line(text)


def parse_note(note: str | bytes) -> Note:
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EncodingError("note is not valid UTF-8") from exc
    _check_characters(note)
    if not note.endswith("\n"):
        raise EncodingError("note must end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise EncodingError("note has no blank line before its signatures")
    text = note[: split + 1]
    lines = note[split + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise EncodingError(f"note has more than {MAX_SIGNATURES} signatures")
    signatures = []
    for line in lines:
        match = _SIG_LINE_RE.fullmatch(line)
        if not match:
            raise EncodingError(f"malformed note signature line {line[:80]!r}")
        raw = b64decode(match.group(2), what="note signature")
        if len(raw) < 5:
            raise EncodingError("note signature is too short")
        signatures.append(NoteSignature(match.group(1), int(struct.unpack(">I", raw[:4])[0]), raw[4:]))
    return Note(text, tuple(signatures))


def open_note(note: str | bytes, verifiers: list[NoteVerifier]) -> Note:
    """Verify a signed note against trusted keys and return it.

    Signatures by unknown keys are ignored; a known key's bad signature rejects the note; at least one known key
    must have signed. Raises SignatureError or EncodingError.
    """
    if not verifiers:
        raise SignatureError("no trusted note keys given: nothing could verify the note")
    parsed = parse_note(note)
    known = {(v.name, v.key_hash): v for v in verifiers}
    verified = 0
    message = parsed.text.encode("utf-8")
    for sig in parsed.signatures:
        verifier = known.get((sig.name, sig.key_hash))
        if verifier is None:
            continue
        if not verify_raw(verifier.ed25519(), sig.signature, message):
            raise SignatureError(f"note signature by {sig.name} ({sig.key_hash:08x}) does not verify")
        verified += 1
    if not verified:
        names = ", ".join(f"{v.name}+{v.key_hash:08x}" for v in verifiers)
        raise SignatureError(f"note is not signed by any trusted key ({names})")
    return parsed


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog-checkpoint body: origin, tree size, root hash and optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse_body(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise EncodingError("checkpoint body needs origin, tree size and root hash lines, each ending in newline")
        origin, size_text, root_text, *extensions = lines[:-1]
        if not origin:
            raise EncodingError("checkpoint origin line is empty")
        if not _SIZE_RE.fullmatch(size_text) or int(size_text) >= 1 << 64:
            raise EncodingError(f"checkpoint tree size {size_text[:30]!r} is not a decimal uint64")
        root = b64decode(root_text, what="checkpoint root hash", size=32)
        if any(not line for line in extensions):
            raise EncodingError("checkpoint extension lines must not be empty")
        return cls(origin, int(size_text), root, tuple(extensions))


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: str


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    return sign_note(checkpoint.body(), signer)


def open_checkpoint(note: str | bytes, verifier: NoteVerifier, origin: str | None = None) -> SignedCheckpoint:
    """Verify a signed checkpoint with the log's key; the origin must be the expected one (default: key name)."""
    opened = open_note(note, [verifier])
    checkpoint = Checkpoint.parse_body(opened.text)
    expected_origin = origin if origin is not None else verifier.name
    if checkpoint.origin != expected_origin:
        raise SignatureError(f"checkpoint origin {checkpoint.origin!r} is not the expected {expected_origin!r}")
    text = note.decode("utf-8") if isinstance(note, bytes) else note
    return SignedCheckpoint(checkpoint, text)
