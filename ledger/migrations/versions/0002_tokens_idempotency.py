"""API tokens (stored as hashes, revocable) and idempotency records.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from ledger.migrations.triggers import make_append_only

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("api_tokens", "token_revocations", "idempotency_keys")


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("actor_id", sa.String(64), sa.ForeignKey("actors.id"), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_index("ix_api_tokens_actor_id", "api_tokens", ["actor_id"])
    op.create_table(
        "token_revocations",
        sa.Column("token_hash", sa.String(64), sa.ForeignKey("api_tokens.token_hash"), primary_key=True),
        sa.Column("revoked_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("actor_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.LargeBinary, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    make_append_only(*TABLES)


def downgrade() -> None:
    raise RuntimeError("the ledger is append-only: its schema is never downgraded")
