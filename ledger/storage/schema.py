"""Tables. Every ledger table is append-only, enforced by database triggers (see the migrations), except the
derived tables (DERIVED_TABLES), which are projections of the log: rebuildable from it and checked against it.

Times are stored as RFC 3339 UTC strings ("...Z"): the same text on SQLite and PostgreSQL, and the form they
take in signed statements.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Index, SmallInteger, String, Text
from sqlalchemy import LargeBinary as _LargeBinary
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class LargeBinary(_LargeBinary):
    """BLOB/bytea that hands bytes to the driver unchanged: sqlite3 and psycopg both take bytes, and skipping
    SQLAlchemy's per-value wrapping is measurable on the append path (four binary values per entry)."""

    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        return None


class ActorRow(SQLModel, table=True):
    __tablename__ = "actors"

    id: str = Field(sa_column=Column(String(64), primary_key=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    role: str = Field(sa_column=Column(String(16), nullable=False))
    created_at: str = Field(sa_column=Column(String(40), nullable=False))


class ActorKeyRow(SQLModel, table=True):
    __tablename__ = "actor_keys"

    key_id: str = Field(sa_column=Column(String(16), primary_key=True))
    actor_id: str = Field(sa_column=Column(String(64), ForeignKey("actors.id"), nullable=False, index=True))
    public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    valid_from: str = Field(sa_column=Column(String(40), nullable=False))


class KeyRevocationRow(SQLModel, table=True):
    """A key's revocation is a row of its own, so that actor_keys stays append-only like everything else."""

    __tablename__ = "key_revocations"

    key_id: str = Field(sa_column=Column(String(16), ForeignKey("actor_keys.key_id"), primary_key=True))
    revoked_at: str = Field(sa_column=Column(String(40), nullable=False))
    reason: str = Field(sa_column=Column(String(500), nullable=False, server_default=""))


class EntryRow(SQLModel, table=True):
    """One log entry. `leaf` is the exact Merkle leaf; sku and lot are copies kept for lookups only."""

    __tablename__ = "entries"
    __table_args__ = (Index("ix_entries_batch", "sku", "lot", "idx"),)

    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    sku: str = Field(sa_column=Column(String(64), nullable=False))
    lot: str = Field(sa_column=Column(String(64), nullable=False))
    leaf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class MerkleNodeRow(SQLModel, table=True):
    """Hash of the perfect subtree covering leaves [idx * 2**level, (idx + 1) * 2**level); level 0 are leaves."""

    __tablename__ = "merkle_nodes"

    level: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class CheckpointRow(SQLModel, table=True):
    """Every checkpoint the log has issued, exactly as signed."""

    __tablename__ = "checkpoints"

    tree_size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    created_at: str = Field(sa_column=Column(String(40), nullable=False))


class ApiTokenRow(SQLModel, table=True):
    """An API token, kept only as the SHA-256 of the token (the token itself is shown once)."""

    __tablename__ = "api_tokens"

    token_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    actor_id: str = Field(sa_column=Column(String(64), ForeignKey("actors.id"), nullable=False, index=True))
    created_at: str = Field(sa_column=Column(String(40), nullable=False))


class TokenRevocationRow(SQLModel, table=True):
    __tablename__ = "token_revocations"

    token_hash: str = Field(sa_column=Column(String(64), ForeignKey("api_tokens.token_hash"), primary_key=True))
    revoked_at: str = Field(sa_column=Column(String(40), nullable=False))


class IdempotencyRow(SQLModel, table=True):
    """The first result of a request sent with an Idempotency-Key, returned again on retries."""

    __tablename__ = "idempotency_keys"

    actor_id: str = Field(sa_column=Column(String(64), primary_key=True))
    key: str = Field(sa_column=Column(String(200), primary_key=True))
    request_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    response: str = Field(sa_column=Column(Text, nullable=False))
    created_at: str = Field(sa_column=Column(String(40), nullable=False))


class GtinBatchRow(SQLModel, table=True):
    """GTIN (14 digits) + lot -> the batch whose origin carries them; GS1 Digital Link URLs resolve through it."""

    __tablename__ = "gtin_batches"

    gtin: str = Field(sa_column=Column(String(14), primary_key=True))
    lot: str = Field(sa_column=Column(String(64), primary_key=True))
    sku: str = Field(sa_column=Column(String(64), nullable=False))
    idx: int = Field(sa_column=Column(BigInteger, nullable=False))


class LoggedStatementRow(SQLModel, table=True):
    """(signed_at, SHA-256 of the canonical bytes) of each logged statement -> its index: a statement is appended
    at most once. Keyed by time first: statements are signed at about the time they arrive, so new keys go to the
    right edge of the index instead of a random page each (measured on SQLite: a hash-only key cost about 10 µs
    of CPU per appended event, in pages dirtied and written at commit)."""

    __tablename__ = "logged_statements"

    signed_at_us: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    statement_hash: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    idx: int = Field(sa_column=Column(BigInteger, nullable=False))


class LogMetaRow(SQLModel, table=True):
    """The log this database belongs to (one row): its origin and verifier key, recorded when first opened."""

    __tablename__ = "log_meta"

    origin: str = Field(sa_column=Column(String(200), primary_key=True))
    verifier_key: str = Field(sa_column=Column(Text, nullable=False))
    created_at: str = Field(sa_column=Column(String(40), nullable=False))


class BatchHeadRow(SQLModel, table=True):
    """Derived: a batch's rule state as of its last entry (`ledger.storage.heads`)."""

    __tablename__ = "batch_heads"

    sku: str = Field(sa_column=Column(String(64), primary_key=True))
    lot: str = Field(sa_column=Column(String(64), primary_key=True))
    last_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    state: str = Field(sa_column=Column(Text, nullable=False))


class BatchShipmentRow(SQLModel, table=True):
    """Derived: a shipment's custody, promise and whether it is delivered, as the batch rules see it."""

    __tablename__ = "batch_shipments"

    sku: str = Field(sa_column=Column(String(64), primary_key=True))
    lot: str = Field(sa_column=Column(String(64), primary_key=True))
    shipment_id: str = Field(sa_column=Column(String(64), primary_key=True))
    state: str = Field(sa_column=Column(Text, nullable=False))


APPEND_ONLY_TABLES = (
    "actor_keys",
    "key_revocations",
    "entries",
    "merkle_nodes",
    "checkpoints",
    "api_tokens",
    "token_revocations",
    "idempotency_keys",
    "gtin_batches",
    "logged_statements",
    "log_meta",
    "cosignatures",
)
NO_DELETE_TABLES = ("actors",)
"""Rows that may change (an actor's name and role follow its `actor` registrations) but never go away."""
DERIVED_TABLES = ("batch_heads", "batch_shipments", "sla_batches", "sla_shipments")
"""Projections of the log, updated in the append transaction; `chainproof db rebuild` recomputes them. The SLA
tables (ledger/storage/sla.py) are created by migration 0008 and written with plain SQL."""

actors = ActorRow.__table__  # type: ignore[attr-defined]
actor_keys = ActorKeyRow.__table__  # type: ignore[attr-defined]
key_revocations = KeyRevocationRow.__table__  # type: ignore[attr-defined]
entries = EntryRow.__table__  # type: ignore[attr-defined]
merkle_nodes = MerkleNodeRow.__table__  # type: ignore[attr-defined]
checkpoints = CheckpointRow.__table__  # type: ignore[attr-defined]
api_tokens = ApiTokenRow.__table__  # type: ignore[attr-defined]
token_revocations = TokenRevocationRow.__table__  # type: ignore[attr-defined]
idempotency_keys = IdempotencyRow.__table__  # type: ignore[attr-defined]
gtin_batches = GtinBatchRow.__table__  # type: ignore[attr-defined]
logged_statements = LoggedStatementRow.__table__  # type: ignore[attr-defined]
log_meta = LogMetaRow.__table__  # type: ignore[attr-defined]
batch_heads = BatchHeadRow.__table__  # type: ignore[attr-defined]
batch_shipments = BatchShipmentRow.__table__  # type: ignore[attr-defined]
