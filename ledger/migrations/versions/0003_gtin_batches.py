"""GTIN + lot -> batch, for GS1 Digital Link product URLs (filled by origin events that carry a GTIN).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from ledger.migrations.triggers import make_append_only

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gtin_batches",
        sa.Column("gtin", sa.String(14), primary_key=True),
        sa.Column("lot", sa.String(64), primary_key=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("idx", sa.BigInteger, nullable=False),
    )
    make_append_only("gtin_batches")


def downgrade() -> None:
    raise RuntimeError("the ledger is append-only: its schema is never downgraded")
