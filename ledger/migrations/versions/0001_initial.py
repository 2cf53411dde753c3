"""Initial ledger schema with append-only triggers.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from ledger.migrations.triggers import make_append_only

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = ("actors", "actor_keys", "key_revocations", "entries", "merkle_nodes", "checkpoints")


def upgrade() -> None:
    op.create_table(
        "actors",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "actor_keys",
        sa.Column("key_id", sa.String(16), primary_key=True),
        sa.Column("actor_id", sa.String(64), sa.ForeignKey("actors.id"), nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("valid_from", sa.String(40), nullable=False),
    )
    op.create_index("ix_actor_keys_actor_id", "actor_keys", ["actor_id"])
    op.create_table(
        "key_revocations",
        sa.Column("key_id", sa.String(16), sa.ForeignKey("actor_keys.key_id"), primary_key=True),
        sa.Column("revoked_at", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False, server_default=""),
    )
    op.create_table(
        "entries",
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("lot", sa.String(64), nullable=False),
        sa.Column("leaf", sa.LargeBinary, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_entries_batch", "entries", ["sku", "lot", "idx"])
    op.create_table(
        "merkle_nodes",
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "checkpoints",
        sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION chainproof_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'chainproof: % on % rejected: the ledger is append-only', TG_OP, TG_TABLE_NAME
                    USING ERRCODE = 'insufficient_privilege';
            END $$
            """
        )
    make_append_only(*APPEND_ONLY_TABLES)


def downgrade() -> None:
    raise RuntimeError("the ledger is append-only: its schema is never downgraded")
