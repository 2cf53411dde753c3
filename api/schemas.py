"""Request and response bodies. Clients never set server fields: they send statements and signatures only."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ledger.events import Role


class SignedEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    statement: dict[str, Any] = Field(
        description="The statement the actor signed: {v, type, sku, lot, actor, key_id, signed_at, data}. "
        "See docs/adr/0001-ledger-formats.md for each type's data fields."
    )
    signature: str = Field(
        description="Standard base64 of the Ed25519 signature over "
        "'chainproof/statement/v1\\n' followed by the RFC 8785 canonical bytes of the statement."
    )


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[SignedEvent] = Field(description="1 to 1,000 signed events, appended all or nothing, in order.")


class Recorded(BaseModel):
    index: int = Field(description="position of the entry in the global log")
    entry_hash: str = Field(description="hex SHA-256(0x00 || leaf): the entry's hash and Merkle leaf hash")
    sku: str = Field(description="batch SKU")
    lot: str = Field(description="batch lot")
    product_url: str = Field(description="the batch's public product page")


class RecordedBatch(BaseModel):
    recorded: list[Recorded] = Field(description="one result per event, in the order sent")


class LogEntryOut(BaseModel):
    index: int = Field(description="position in the global log")
    leaf: str = Field(description="standard base64 of the exact leaf bytes (what the Merkle tree hashes)")
    entry_hash: str = Field(description="hex SHA-256(0x00 || leaf)")
    logged_at: str = Field(description="server time the entry was logged (inside the leaf)")
    prev: str | None = Field(description="base64 entry hash of the batch's previous entry (null for the first)")
    signature: str = Field(description="base64 Ed25519 signature of the statement")
    statement: dict[str, Any] = Field(description="the signed statement, decoded from the leaf")


class EntriesPage(BaseModel):
    entries: list[LogEntryOut]
    next: int | None = Field(description="start of the next page, or null when this page reaches `end`")
    tree_size: int = Field(description="log size when the page was read")


class VerificationOut(BaseModel):
    verified: bool = Field(description="every signature, link, batch rule and inclusion proof holds")
    checkpoint_size: int | None = Field(description="tree size of the checkpoint the entries were proven against")
    problems: list[dict[str, Any]] = Field(description="what failed, each with the log index concerned")


class BatchOut(BaseModel):
    sku: str
    lot: str
    gtin: str | None = Field(description="GTIN from the origin event, if any")
    owner: str | None = Field(description="actor id of the merchant who recorded the origin")
    recalled: bool
    recall_reason: str | None
    product_url: str
    events: list[LogEntryOut]
    verification: VerificationOut


class InclusionProofOut(BaseModel):
    index: int
    tree_size: int
    hashes: list[str] = Field(description="RFC 9162 inclusion path, standard base64, bottom-up")


class ConsistencyProofOut(BaseModel):
    first: int
    second: int
    hashes: list[str] = Field(description="RFC 9162 consistency path, standard base64")


class KeyOut(BaseModel):
    key_id: str = Field(description="first 16 hex digits of SHA-256 of the raw public key")
    actor_id: str
    public_key: str = Field(description="standard base64 of the raw 32-byte Ed25519 public key")
    valid_from: str = Field(description="RFC 3339 time from which the key may sign")
    revoked_at: str | None = Field(description="RFC 3339 time from which statements signed with it are refused")


class ActorOut(BaseModel):
    id: str
    name: str
    role: Role
    keys: list[KeyOut]


class ActorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="organisation name")
    role: Role
    public_key: str = Field(description="Ed25519 public key: PEM (SubjectPublicKeyInfo) or base64 of the raw 32 bytes")


class ActorCreated(BaseModel):
    id: str
    key_id: str
    token: str = Field(description="API token, shown once; only its hash is stored")


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    public_key: str = Field(description="Ed25519 public key: PEM or base64 of the raw 32 bytes")


class KeyRevoke(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500)


class TokenOut(BaseModel):
    token: str = Field(description="API token, shown once")
