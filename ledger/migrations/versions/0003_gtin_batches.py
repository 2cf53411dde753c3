"""GTIN + lot -> batch, for GS1 Digital Link product URLs (filled by origin events that carry a GTIN).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

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
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER gtin_batches_append_only BEFORE UPDATE OR DELETE ON gtin_batches "
            "FOR EACH ROW EXECUTE FUNCTION chainproof_append_only()"
        )
        op.execute(
            "CREATE TRIGGER gtin_batches_no_truncate BEFORE TRUNCATE ON gtin_batches "
            "FOR EACH STATEMENT EXECUTE FUNCTION chainproof_append_only()"
        )
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER gtin_batches_no_{operation.lower()} BEFORE {operation} ON gtin_batches BEGIN "
                f"SELECT RAISE(ABORT, 'chainproof: {operation} on gtin_batches rejected: the ledger is append-only'); "
                "END"
            )


def downgrade() -> None:
    raise RuntimeError("the ledger is append-only: its schema is never downgraded")
