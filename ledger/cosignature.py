"""C2SP tlog-cosignature v1 (Ed25519) and C2SP tlog-policy: witnesses' timestamped cosignatures on checkpoints, and
which logs and witnesses a verifier trusts, with the quorum of witnesses it requires.

A cosignature is a signed-note signature line `— <name> base64(key ID || u64 timestamp || Ed25519 signature)`
over `cosignature/v1\\ntime <timestamp>\\n` followed by the checkpoint's body. Its key ID is
SHA-256(name || "\\n" || 0x04 || public key)[:4]; its verifier key (vkey) `<name>+<hex key ID>+base64(0x04 || key)`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from ledger.errors import EncodingError, SignatureError
from ledger.hashing import b64decode, b64encode, sha256
from ledger.note import NoteVerifier, check_key_name, parse_note
from ledger.signing import Ed25519PrivateKey, load_public_key, public_key_bytes, sign_raw, verify_raw

COSIGNATURE_TYPE = 0x04
_EM_DASH = "\u2014"
_VKEY = re.compile(r"([^\s+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)")
_MOST_TIMESTAMP = (1 << 63) - 1


def cosigner_key_id(name: str, public_key: bytes) -> int:
    digest = sha256(name.encode("utf-8") + b"\n" + bytes([COSIGNATURE_TYPE]) + public_key)
    return int(struct.unpack(">I", digest[:4])[0])


def cosigned_message(checkpoint_body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_body}".encode()


@dataclass(frozen=True)
class CosignatureVerifier:
    """A witness's public key, as its vkey names it."""

    name: str
    key_id: int
    public_key: bytes

    @classmethod
    def parse(cls, text: str) -> CosignatureVerifier:
        match = _VKEY.fullmatch(text.strip())
        if match is None:
            raise EncodingError("not a cosignature verifier key: expected <name>+<8 hex digits>+<base64 key>")
        name, key_id_hex, key_b64 = match.groups()
        raw = b64decode(key_b64, what="cosignature verifier key")
        if len(raw) != 33 or raw[0] != COSIGNATURE_TYPE:
            raise EncodingError("not an Ed25519 cosignature key (type 0x04, 32 bytes)")
        expected = cosigner_key_id(name, raw[1:])
        if int(key_id_hex, 16) != expected:
            raise EncodingError(f"cosignature key ID {key_id_hex} does not match its key (expected {expected:08x})")
        return cls(name, expected, raw[1:])

    def __str__(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{b64encode(bytes([COSIGNATURE_TYPE]) + self.public_key)}"

    def timestamp_of(self, note: str) -> int | None:
        """When this witness cosigned the checkpoint `note` (None: it did not); SignatureError if its line is there
        and does not verify."""
        parsed = parse_note(note)
        for sig in parsed.signatures:
            if sig.name != self.name or sig.key_hash != self.key_id:
                continue
            if len(sig.signature) != 8 + 64:
                raise SignatureError(f"cosignature by {self.name} is not a timestamped Ed25519 signature")
            timestamp = int(struct.unpack(">Q", sig.signature[:8])[0])
            if timestamp > _MOST_TIMESTAMP or not verify_raw(
                load_public_key(self.public_key), sig.signature[8:], cosigned_message(parsed.text, timestamp)
            ):
                raise SignatureError(f"cosignature by {self.name} ({self.key_id:08x}) does not verify")
            return timestamp
        return None


@dataclass(frozen=True)
class Cosigner:
    name: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        check_key_name(self.name)

    @property
    def verifier(self) -> CosignatureVerifier:
        public = public_key_bytes(self.private_key)
        return CosignatureVerifier(self.name, cosigner_key_id(self.name, public), public)

    def cosign(self, checkpoint_body: str, timestamp: int) -> str:
        """The cosignature line (with its newline) on a checkpoint body, at `timestamp` (POSIX seconds)."""
        signature = sign_raw(self.private_key, cosigned_message(checkpoint_body, timestamp))
        raw = struct.pack(">IQ", self.verifier.key_id, timestamp) + signature
        return f"{_EM_DASH} {self.name} {b64encode(raw)}\n"


# -- tlog-policy ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyLog:
    key: NoteVerifier
    url: str | None = None


@dataclass(frozen=True)
class PolicyWitness:
    name: str
    key: CosignatureVerifier
    url: str | None = None


@dataclass(frozen=True)
class _Group:
    threshold: int
    members: tuple[str, ...]


@dataclass
class Policy:
    """A C2SP tlog-policy: the logs and witnesses a verifier trusts and the quorum of witnesses it requires."""

    logs: list[PolicyLog] = field(default_factory=list)
    witnesses: dict[str, PolicyWitness] = field(default_factory=dict)
    groups: dict[str, _Group] = field(default_factory=dict)
    quorum: str = "none"

    def satisfied(self, witnessed: Iterable[str]) -> bool:
        """Whether cosignatures by these witnesses (by policy name) make the quorum."""
        done = set(witnessed)

        def holds(name: str) -> bool:
            if name == "none":
                return True
            if name in self.witnesses:
                return name in done
            group = self.groups[name]
            return sum(holds(member) for member in group.members) >= group.threshold

        return holds(self.quorum)


def parse_policy(text: str) -> Policy:
    """A tlog-policy file; EncodingError naming the line for anything the format does not allow."""
    policy = Policy()
    quorum: str | None = None
    keys_seen: set[bytes] = set()
    for number, raw_line in enumerate(text.split("\n"), start=1):
        line = raw_line.strip(" \t")
        if not line or line.startswith("#"):
            continue
        words = line.split()

        def bad(problem: str, number: int = number) -> EncodingError:
            return EncodingError(f"policy line {number}: {problem}")

        kind = words[0]
        if kind == "log" and len(words) in (2, 3):
            key = NoteVerifier.parse(words[1])
            if key.public_key in keys_seen:
                raise bad("a log or witness with this key is already listed")
            keys_seen.add(key.public_key)
            policy.logs.append(PolicyLog(key, words[2] if len(words) == 3 else None))
        elif kind == "witness" and len(words) in (3, 4):
            name = words[1]
            if name == "none" or name in policy.witnesses or name in policy.groups:
                raise bad(f"the name {name!r} is taken")
            witness_key = CosignatureVerifier.parse(words[2])
            if witness_key.public_key in keys_seen:
                raise bad("a log or witness with this key is already listed")
            keys_seen.add(witness_key.public_key)
            policy.witnesses[name] = PolicyWitness(name, witness_key, words[3] if len(words) == 4 else None)
        elif kind == "group" and len(words) >= 4:
            name, rule, members = words[1], words[2], tuple(words[3:])
            if name == "none" or name in policy.witnesses or name in policy.groups:
                raise bad(f"the name {name!r} is taken")
            for member in members:
                if member not in policy.witnesses and member not in policy.groups:
                    raise bad(f"group member {member!r} is not defined on an earlier line")
            if rule == "all":
                threshold = len(members)
            elif rule == "any":
                threshold = 1
            elif rule.isdigit() and 1 <= int(rule) <= len(members):
                threshold = int(rule)
            else:
                raise bad(f"a group's threshold is all, any, or a number from 1 to {len(members)}")
            policy.groups[name] = _Group(threshold, members)
        elif kind == "quorum" and len(words) == 2:
            if quorum is not None:
                raise bad("a policy has exactly one quorum line")
            if words[1] != "none" and words[1] not in policy.witnesses and words[1] not in policy.groups:
                raise bad(f"quorum {words[1]!r} is not a witness or group defined on an earlier line")
            quorum = words[1]
        else:
            raise bad(f"not a log, witness, group or quorum line: {line[:80]!r}")
    if quorum is None:
        raise EncodingError("the policy has no quorum line (use 'quorum none' to require no witness)")
    policy.quorum = quorum
    return policy


__all__ = [
    "COSIGNATURE_TYPE",
    "CosignatureVerifier",
    "Cosigner",
    "Policy",
    "PolicyLog",
    "PolicyWitness",
    "cosigned_message",
    "cosigner_key_id",
    "parse_policy",
]
