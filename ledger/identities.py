"""Identities in the log (issue: identities in the log): who may sign is itself a series of signed log entries.

Registrations are statements of their own shape on the same log (ADR 0001, "Registrations"):
    {"v": 1, "type": "actor" | "key_add" | "key_revoke", "sku": "_identity", "lot": <the actor concerned>,
     "actor": <signer: an actor id, or "_log">, "key_id": <signer's key id>, "signed_at": ..., "data": {...}}
`sku` "_identity" can never be a batch's (a batch SKU starts with a letter or digit), and with `lot` the actor
concerned, each actor's registrations form their own hash chain under the usual chain rules.

Who may sign one:
- an admin, with a key valid at that index, for any registration;
- an actor, with one of its own valid keys, for its own `key_add` and `key_revoke` (rotation, and revoking a
  stolen key);
- the log key itself (actor "_log", key id the log key's), for the operator's bootstrap and for migrated ledgers:
  marked operator-attested wherever it is shown.

A key is valid for the entries after the one that bound it and before the one that revoked it: validity is by
log index, so no statement can use a key before the log shows it bound. A key is bound to one actor, once.
A `key_add` may carry the new key's proof of possession: its signature over KEY_POSSESSION_CONTEXT and the
canonical statement without the proof.

Migration: a ledger whose directory predates registrations gets it as the log's first registrations, signed by
the log key, whose `valid_from` / `revoked_at` carry the old directory's times. Entries logged before the first
registration (the migration point) are judged by those times, as they were when logged; every later entry by
index. Only the log key may give those times, and only before any ordinary registration: history is migrated
once, at the start of the identity log, never rewritten later.

Pure: entries in, a registry and verdicts out; the caller checks each statement's own signature.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from ledger.canonical import canonical_json
from ledger.entry import parse_leaf
from ledger.errors import LedgerError, RuleError, SignatureError, ValidationError
from ledger.events import (
    KEY_ID_PATTERN,
    STATEMENT_VERSION,
    ActorId,
    Role,
    ShortText,
    Text,
    Timestamp,
    _rfc3339,
    _Strict,
    gtin_check_digit,
    parse_time,
    validate_envelope,
)
from ledger.hashing import b64decode
from ledger.rules import Actor, ActorKey, Directory
from ledger.signing import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, PublicKey, key_id_for, load_public_key, verify_raw

IDENTITY_SKU = "_identity"
LOG_ACTOR = "_log"
"""The signer of operator-attested registrations: the log key itself."""
KEY_POSSESSION_CONTEXT = b"chainproof/key-possession/v1\n"


class IdentityType(StrEnum):
    ACTOR = "actor"
    KEY_ADD = "key_add"
    KEY_REVOKE = "key_revoke"


class ActorData(_Strict):
    """Register an actor, or change its name or role."""

    id: ActorId = Field(description="the actor's id (also the statement's lot)")
    name: ShortText = Field(min_length=1, description="the organisation's name as shown to everyone")
    role: Literal["admin", "merchant", "inspector", "carrier", "auditor"]  # the values of Role
    gln: str | None = Field(
        default=None,
        pattern=r"^\d{13}$",
        description="the organisation's GS1 Global Location Number (party GLN), so EPCIS parties map to it",
    )

    @field_validator("gln")
    @classmethod
    def _gln_check_digit(cls, value: str | None) -> str | None:
        if value is not None and gtin_check_digit(value[:-1]) != int(value[-1]):
            raise ValueError(f"GLN check digit is {value[-1]}, expected {gtin_check_digit(value[:-1])}")
        return value


def _base64_of(size: int, what: str) -> Any:
    def check(value: str) -> str:
        try:
            b64decode(value, what=what, size=size)
        except LedgerError as exc:  # pydantic reports a ValueError as this field's error
            raise ValueError(str(exc)) from exc
        return value

    return check


class KeyAddData(_Strict):
    """Bind an Ed25519 key to an actor, from this entry's index on."""

    actor: ActorId = Field(description="the actor the key is bound to (also the statement's lot)")
    key_id: str = Field(pattern=KEY_ID_PATTERN, description="first 16 hex digits of SHA-256 of the public key")
    public_key: str = Field(description="the raw 32-byte Ed25519 public key, standard base64")
    possession: str | None = Field(
        default=None, description="the new key's signature over the key-possession context and this statement"
    )
    valid_from: Timestamp | None = Field(
        default=None, description="migration only: when the old directory made the key valid (see module doc)"
    )

    _public_key = field_validator("public_key")(_base64_of(PUBLIC_KEY_SIZE, "public key"))
    _possession = field_validator("possession")(
        lambda value: None if value is None else _base64_of(SIGNATURE_SIZE, "possession signature")(value)
    )
    _valid_from = field_validator("valid_from")(lambda value: None if value is None else _rfc3339(value))


class KeyRevokeData(_Strict):
    """Revoke a key from this entry's index on."""

    actor: ActorId = Field(description="the actor the key is bound to (also the statement's lot)")
    key_id: str = Field(pattern=KEY_ID_PATTERN)
    reason: Text | None = None
    revoked_at: Timestamp | None = Field(
        default=None, description="migration only: when the old directory revoked the key (see module doc)"
    )

    _revoked_at = field_validator("revoked_at")(lambda value: None if value is None else _rfc3339(value))


DATA_MODELS: dict[IdentityType, type[BaseModel]] = {
    IdentityType.ACTOR: ActorData,
    IdentityType.KEY_ADD: KeyAddData,
    IdentityType.KEY_REVOKE: KeyRevokeData,
}


class IdentityStatement(_Strict):
    v: Literal[1]
    type: Literal["actor", "key_add", "key_revoke"]  # the values of IdentityType
    sku: Literal["_identity"]
    lot: ActorId = Field(description="the actor the registration concerns")
    actor: ActorId = Field(description="the signer: an actor id, or _log for the log key")
    key_id: str = Field(pattern=KEY_ID_PATTERN)
    signed_at: Timestamp
    data: dict[str, Any]

    _time = field_validator("signed_at")(_rfc3339)


def is_registration(raw: Mapping[str, Any]) -> bool:
    return raw.get("sku") == IDENTITY_SKU


def _registration_data_model(statement: IdentityStatement) -> type[BaseModel]:
    return DATA_MODELS[IdentityType(statement.type)]


def validate_registration(raw: Any) -> tuple[IdentityStatement, BaseModel]:
    """Check a registration statement (as parsed JSON) and its data. Raises ValidationError naming the field."""
    statement, data = validate_envelope(raw, IdentityStatement.model_validate, _registration_data_model)
    concerned = data.id if isinstance(data, ActorData) else getattr(data, "actor", None)
    if concerned != statement.lot:
        raise ValidationError(f"statement.lot {statement.lot!r} must be the actor the registration concerns")
    return statement, data


def registration(
    kind: IdentityType | str, actor_concerned: str, signer: str, key_id: str, signed_at: str, data: dict[str, Any]
) -> dict[str, Any]:
    """A registration statement as JSON, ready to canonicalize and sign."""
    return {
        "v": STATEMENT_VERSION,
        "type": str(kind),
        "sku": IDENTITY_SKU,
        "lot": actor_concerned,
        "actor": signer,
        "key_id": key_id,
        "signed_at": signed_at,
        "data": data,
    }


def possession_message(statement: Mapping[str, Any]) -> bytes:
    """What a new key signs to prove it is held: the context and the canonical statement without the proof."""
    data = {k: v for k, v in statement["data"].items() if k != "possession"}
    return KEY_POSSESSION_CONTEXT + canonical_json({**statement, "data": data})


# -- the registry ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisteredActor:
    id: str
    name: str
    role: Role
    registered_at: int  # log index of the entry that registered it
    changed_at: int  # log index of its latest actor entry
    operator_attested: bool  # its latest actor entry was signed by the log key
    gln: str | None = None  # its GS1 party GLN, as its latest actor entry gives it

    def as_actor(self) -> Actor:
        return Actor(self.id, self.name, self.role)


@dataclass(frozen=True, slots=True)
class RegisteredKey:
    key_id: str
    actor_id: str
    public_key: bytes
    added_at: int  # valid for entries after this index...
    revoked_at: int | None = None  # ...and before this one
    operator_attested: bool = False
    possession: bool = False  # the key holder proved possession when it was bound
    revoked_reason: str | None = None
    # the same validity as times: when the binding (and revoking) entries were logged, or for a migrated key the
    # old directory's times, by which entries before the migration point are judged
    valid_from: datetime | None = None
    revoked_time: datetime | None = None
    migrated: bool = False

    def valid_at(self, index: int) -> bool:
        return self.added_at < index and (self.revoked_at is None or index < self.revoked_at)

    def as_actor_key(self) -> ActorKey:
        assert self.valid_from is not None
        return ActorKey(self.key_id, self.actor_id, self.public_key, self.valid_from, self.revoked_time)


def is_migration(data: BaseModel) -> bool:
    """A registration that carries the old directory's times (see the module doc)."""
    return (isinstance(data, KeyAddData) and data.valid_from is not None) or (
        isinstance(data, KeyRevokeData) and data.revoked_at is not None
    )


@dataclass
class Registry:
    """Actors and keys as the log's registrations up to some index tell them. `log_key_id` is the key id of the
    log key (key_id_for of its raw public key), `log_public_key` that key: the signer of operator-attested
    entries. `migration_point`: the index of the log's first registration (entries before it can only be judged by
    migrated keys' old times)."""

    log_key_id: str
    log_public_key: PublicKey
    actors: dict[str, RegisteredActor] = field(default_factory=dict)
    keys: dict[str, RegisteredKey] = field(default_factory=dict)
    rule_actors: dict[str, Actor] = field(default_factory=dict)  # actors as the batch rules take them
    migration_point: int | None = None
    registrations: int = 0
    migrating: bool = True  # no ordinary registration yet: the log key may still migrate history
    # bound keys, loaded once: loading checks the point, which cost 45 µs an entry when done per signature;
    # shared by copies (a key id's public key never changes)
    _loaded: dict[str, PublicKey] = field(default_factory=dict, repr=False, compare=False)

    def copy(self) -> Registry:
        """An independent copy (the values are frozen: the dictionaries are what changes)."""
        return replace(self, actors=dict(self.actors), keys=dict(self.keys), rule_actors=dict(self.rule_actors))

    def signer_key(
        self, statement: Mapping[str, Any] | BaseModel, index: int
    ) -> tuple[PublicKey, RegisteredActor | None]:
        """The public key that must have signed a statement logged at `index`, and its actor (None for the log
        key); RuleError if the signer may not sign anything there."""
        actor_id = _field(statement, "actor")
        key_id = _field(statement, "key_id")
        if actor_id == LOG_ACTOR:
            if key_id != self.log_key_id:
                raise RuleError(f"key {key_id} is not the log key ({self.log_key_id})", "unauthorized")
            return self.log_public_key, None
        actor = self.actors.get(actor_id)
        if actor is None:
            raise RuleError(f"actor {actor_id!r} is not registered in the log before index {index}", "unauthorized")
        key = self.keys.get(key_id)
        if key is None or key.added_at >= index:
            raise RuleError(f"key {key_id} is not bound in the log before index {index}", "unauthorized")
        if key.actor_id != actor_id:
            raise RuleError(f"key {key_id} is bound to {key.actor_id!r}, not to {actor_id!r}", "forbidden")
        if not key.valid_at(index):
            raise RuleError(f"key {key_id} was revoked at index {key.revoked_at}", "forbidden")
        public_key = self._loaded.get(key_id)
        if public_key is None:
            public_key = self._loaded[key_id] = load_public_key(key.public_key)
        return public_key, actor

    def check(self, index: int, statement: IdentityStatement, data: BaseModel) -> None:
        """RuleError if this registration may not be logged at `index` (its signature is the caller's to check,
        with `signer_key`)."""
        _public_key, signer = self.signer_key(statement, index)
        if signer is not None and signer.role is not Role.ADMIN:
            own = isinstance(data, KeyAddData | KeyRevokeData) and data.actor == signer.id
            if not own:
                raise RuleError(
                    f"only an admin (or the log key) may record {statement.type} for {statement.lot!r}; "
                    f"{signer.id!r} is a {signer.role}",
                    "forbidden",
                )
        if is_migration(data) and (signer is not None or not self.migrating):
            raise RuleError(
                "only the log key may give a registration the old directory's times, and only before the log's "
                "first ordinary registration (a ledger's directory is migrated once)",
                "forbidden",
            )
        if isinstance(data, KeyAddData):
            self._check_key_add(statement, data)
        elif isinstance(data, KeyRevokeData):
            key = self.keys.get(data.key_id)
            if key is None or key.actor_id != data.actor:
                raise RuleError(f"key {data.key_id} is not bound to {data.actor!r}", "conflict")
            if key.revoked_at is not None:
                raise RuleError(f"key {data.key_id} is already revoked (at index {key.revoked_at})", "conflict")

    def _check_key_add(self, statement: IdentityStatement, data: KeyAddData) -> None:
        if data.actor not in self.actors:
            raise RuleError(f"actor {data.actor!r} is not registered: register it before binding a key", "conflict")
        raw = b64decode(data.public_key, what="public key", size=PUBLIC_KEY_SIZE)
        try:
            public_key = load_public_key(raw)
        except SignatureError as exc:
            raise RuleError(str(exc), "invalid") from exc
        if key_id_for(raw) != data.key_id:
            raise RuleError(f"key id {data.key_id} does not match its public key ({key_id_for(raw)})", "invalid")
        bound = self.keys.get(data.key_id)
        if bound is not None:
            raise RuleError(
                f"key {data.key_id} is already bound to {bound.actor_id!r} (index {bound.added_at}): a key is bound "
                "once, to one actor",
                "conflict",
            )
        if data.key_id == self.log_key_id:
            raise RuleError("the log key cannot be bound to an actor", "conflict")
        if data.possession is not None:
            signature = b64decode(data.possession, what="possession signature", size=SIGNATURE_SIZE)
            if not verify_raw(public_key, signature, possession_message(statement.model_dump())):
                raise RuleError(f"the proof of possession of key {data.key_id} does not verify", "invalid")

    def apply(self, index: int, statement: IdentityStatement, data: BaseModel, logged_at: datetime) -> None:
        """Advance past a registration logged at `index` (checked or not: the verifier records problems and goes
        on)."""
        attested = statement.actor == LOG_ACTOR
        migration = is_migration(data)
        if self.registrations == 0:
            self.migration_point = index
        self.registrations += 1
        # a migration is the log key registering actors and giving keys their old times, before anything else
        if not attested or not (migration or isinstance(data, ActorData)):
            self.migrating = False
        if isinstance(data, ActorData):
            known = self.actors.get(data.id)
            registered = RegisteredActor(
                data.id, data.name, Role(data.role), known.registered_at if known else index, index, attested, data.gln
            )
            self.actors[data.id] = registered
            self.rule_actors[data.id] = registered.as_actor()
        elif isinstance(data, KeyAddData) and data.key_id not in self.keys:
            self.keys[data.key_id] = RegisteredKey(
                data.key_id,
                data.actor,
                b64decode(data.public_key, what="public key", size=PUBLIC_KEY_SIZE),
                index,
                operator_attested=attested,
                possession=data.possession is not None,
                valid_from=logged_at if data.valid_from is None else parse_time(data.valid_from),
                migrated=migration,
            )
        elif isinstance(data, KeyRevokeData):
            key = self.keys.get(data.key_id)
            if key is not None and key.revoked_at is None:
                moment = logged_at if data.revoked_at is None else parse_time(data.revoked_at)
                self.keys[data.key_id] = replace(key, revoked_at=index, revoked_reason=data.reason, revoked_time=moment)

    def advance(self, registrations: Iterable[tuple[int, bytes]]) -> None:
        """Apply logged registrations, (index, leaf) in log order, unchecked: the server checked them when it
        appended them, and a verifier checks each where its stream reaches it. An unreadable one binds nobody."""
        for index, leaf in registrations:
            try:
                parsed = parse_leaf(leaf)
                statement, data = validate_registration(parsed.statement)
                logged_at = parse_time(parsed.logged_at, "logged_at")
            except LedgerError:
                continue
            self.apply(index, statement, data, logged_at)

    def directory(self) -> Directory:
        """The registry as a directory of times (what a page, a certificate or a bundle's reader judges by)."""
        return Directory(dict(self.rule_actors), {k: key.as_actor_key() for k, key in self.keys.items()})

    def migrated_directory(self) -> Directory:
        """The keys migrated from an old directory, with their old times: the signers of the entries logged
        before the migration point."""
        keys = {k: key.as_actor_key() for k, key in self.keys.items() if key.migrated}
        return Directory(dict(self.rule_actors), keys)


def _field(statement: Mapping[str, Any] | BaseModel, name: str) -> str:
    value = statement.get(name) if isinstance(statement, Mapping) else getattr(statement, name, None)
    return str(value)
