"""Witnesses' cosignatures of the log's checkpoints (C2SP tlog-cosignature v1): each as the witness returned it,
by tree size, witness and time. Append-only: a re-witnessed checkpoint gains a newer line, none is replaced.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from ledger.migrations.triggers import make_append_only

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cosignatures",
        sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("witness", sa.String(300), primary_key=True),
        sa.Column("cosigned_at", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("line", sa.Text, nullable=False),
    )
    make_append_only("cosignatures")


def downgrade() -> None:
    raise RuntimeError("the ledger is append-only: its schema is never downgraded")
