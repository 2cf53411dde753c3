"""Request and response bodies. Clients never set server fields: they send statements and signatures only."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ledger.events import LINES_PATTERN, TEXT_PATTERN, Role


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
    logged_at: str | None = Field(description="server time the entry was logged (inside the leaf)")
    prev: str | None = Field(description="base64 entry hash of the batch's previous entry (null for the first)")
    signature: str | None = Field(description="base64 Ed25519 signature of the statement")
    statement: dict[str, Any] | None = Field(
        description="the signed statement, decoded from the leaf (null, like logged_at and signature, if the stored "
        "leaf cannot be read: the leaf is still served so that a verifier can report it)"
    )


class EntriesPage(BaseModel):
    entries: list[LogEntryOut] = Field(description="entries in log order")
    next: int | None = Field(description="start of the next page, or null when this page reaches `end`")
    tree_size: int = Field(description="log size when the page was read")


class RegistrationsOut(BaseModel):
    registrations: list[LogEntryOut] = Field(description="registration entries (sku _identity), in log order")
    tree_size: int = Field(description="the log's size when read")


class VerificationOut(BaseModel):
    verified: bool = Field(description="every signature, link, batch rule and inclusion proof holds")
    checkpoint_size: int | None = Field(description="tree size of the checkpoint the entries were proven against")
    problems: list[dict[str, Any]] = Field(description="what failed, each with the log index concerned")


class BatchRefOut(BaseModel):
    sku: str = Field(description="batch SKU")
    lot: str = Field(description="batch lot")
    gtin: str = Field(description="the GTIN, as 14 digits")
    product_url: str = Field(description="the batch's product page")


class ListedEntryOut(BaseModel):
    index: int = Field(description="log index")
    leaf: str = Field(description="the entry's exact leaf bytes, standard base64")
    proof: list[str] | None = Field(
        default=None,
        description="RFC 9162 inclusion proof into the checkpoint (absent where the next entry listed links to "
        "this one by hash and so vouches for it)",
    )


class EvidenceBatchOut(BaseModel):
    sku: str = Field(description="batch SKU")
    lot: str = Field(description="batch lot")
    events: int = Field(description="the batch's events in the checkpoint")
    window: list[int] = Field(description="log indices of the first and last event listed")


class BatchEvidenceOut(BaseModel):
    log_key: str = Field(description="the log's note verifier key (check it against the one you trust)")
    checkpoint: str = Field(description="the signed checkpoint the entries are proven into")
    batch: EvidenceBatchOut = Field(description="the batch, how many events it has, and which of them are listed")
    entries: list[ListedEntryOut] = Field(description="the batch's newest events, in log order, as an unbroken chain")
    registrations: list[ListedEntryOut] = Field(
        description="the registration entries the signers' keys come from: each signer's chain, its last entry proven"
    )


class BatchOut(BaseModel):
    sku: str = Field(description="batch SKU")
    lot: str = Field(description="batch lot")
    gtin: str | None = Field(description="GTIN from the origin event, if any")
    owner: str | None = Field(description="actor id of the merchant who recorded the origin")
    recalled: bool = Field(description="whether a recall was recorded for the batch")
    recall_reason: str | None = Field(description="the recall's reason, if recalled")
    product_url: str = Field(description="the batch's public product page")
    label_url: str | None = Field(
        description="what the batch's QR code carries: the product page with the label fragment (#k=...&o=...) "
        "pinning the log key and the origin entry by hash"
    )
    events: list[LogEntryOut] = Field(description="the batch's entries in log order (this page of them)")
    events_total: int = Field(description="how many entries the batch has up to the checkpoint")
    next: str | None = Field(description="URL of the next page of events, if there is one")
    verification: VerificationOut = Field(description="the server's check of these entries")


class InclusionProofOut(BaseModel):
    index: int = Field(description="leaf index")
    tree_size: int = Field(description="tree size the proof is for")
    hashes: list[str] = Field(description="RFC 9162 inclusion path, standard base64, bottom-up")


class ConsistencyProofOut(BaseModel):
    first: int = Field(description="older tree size")
    second: int = Field(description="newer tree size")
    hashes: list[str] = Field(description="RFC 9162 consistency path, standard base64")


class KeyOut(BaseModel):
    key_id: str = Field(description="first 16 hex digits of SHA-256 of the raw public key")
    actor_id: str = Field(description="the actor the key belongs to")
    public_key: str = Field(description="standard base64 of the raw 32-byte Ed25519 public key")
    valid_from: str = Field(description="RFC 3339 time from which the key may sign")
    revoked_at: str | None = Field(description="RFC 3339 time from which statements signed with it are refused")
    bound_at_index: int | None = Field(
        default=None, description="log index of the registration that bound it: it signs entries after this one"
    )
    revoked_at_index: int | None = Field(
        default=None, description="log index of the registration that revoked it: it signs nothing from there on"
    )
    possession: bool = Field(default=False, description="the key holder proved possession when it was bound")
    operator_attested: bool = Field(default=False, description="bound by the log key (bootstrap or migration)")


class ActorOut(BaseModel):
    id: str = Field(description="actor id, as statements name it")
    name: str = Field(description="organisation name")
    role: Role = Field(description="admin, merchant, inspector, carrier or auditor")
    keys: list[KeyOut] = Field(description="every key the actor registered, revoked ones included")
    registered_at_index: int | None = Field(default=None, description="log index of the registration that made it")
    changed_at_index: int | None = Field(default=None, description="log index of its latest name or role")
    operator_attested: bool = Field(
        default=False, description="its latest name and role were registered by the log key, not by an admin"
    )
    gln: str | None = Field(default=None, description="its GS1 party GLN, if registered (EPCIS parties map by it)")


class ActorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=TEXT_PATTERN, description="organisation name")
    role: Role = Field(description="admin, merchant, inspector, carrier or auditor")
    gln: str | None = Field(
        default=None, pattern=r"^\d{13}$", description="the organisation's GS1 party GLN (13 digits), if it has one"
    )
    public_key: str = Field(description="Ed25519 public key: PEM (SubjectPublicKeyInfo) or base64 of the raw 32 bytes")
    registrations: list[SignedEvent] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="Required: the `actor` and `key_add` registrations of this actor and key, signed by you (the "
        "admin): who may sign is recorded in the log, signed by whoever decided it (`chainproof actor add --server "
        "--key` builds them). The actor's id is the one they name.",
    )


class ActorCreated(BaseModel):
    id: str = Field(description="the new actor's id")
    key_id: str = Field(description="id of its registered key")
    token: str = Field(description="API token, shown once; only its hash is stored")


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    public_key: str = Field(description="Ed25519 public key: PEM or base64 of the raw 32 bytes")
    registration: SignedEvent | None = Field(
        default=None,
        description="Required: the `key_add` registration binding this key, signed by you (the actor itself, or an "
        "admin); with the key's proof of possession if its holder is at hand (`chainproof key add` builds it).",
    )


class KeyRevoke(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        default="", max_length=500, pattern=LINES_PATTERN, description="why the key is revoked (kept with it)"
    )
    registration: SignedEvent | None = Field(
        default=None,
        description="Required: the `key_revoke` registration, signed by you (the key's actor, or an admin): "
        "`chainproof key revoke` builds it.",
    )


class TokenOut(BaseModel):
    token: str = Field(description="API token, shown once")
    id: str | None = Field(default=None, description="the token's id: the first 16 hex digits of its stored hash")


class TokenInfoOut(BaseModel):
    id: str = Field(description="the token's id: the first 16 hex digits of its stored SHA-256 (never the token)")
    actor_id: str = Field(description="the actor the token acts for")
    created_at: str = Field(description="RFC 3339 time it was issued")
    revoked_at: str | None = Field(description="RFC 3339 time it was revoked, if it was")


class Problem(BaseModel):
    """RFC 9457 problem details: every error this API returns (media type application/problem+json)."""

    type: str = Field(description="URI naming the kind of problem")
    title: str = Field(description="short summary of the kind of problem")
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="what went wrong with this request, for a person to act on")
    instance: str | None = Field(default=None, description="the request path")
    errors: list[dict[str, Any]] | None = Field(default=None, description="per-field errors, for invalid input")
