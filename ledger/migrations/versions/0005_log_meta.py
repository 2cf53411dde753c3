"""The log a database belongs to: its origin and verifier key, recorded when the log first opens it.

A process holding another key file refuses to sign this database's checkpoints (an audit run from another
directory once signed a log with a stray key, and every client's verification failed from then on).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

from ledger.migrations.triggers import make_append_only

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_meta",
        sa.Column("origin", sa.String(200), primary_key=True),
        sa.Column("verifier_key", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    make_append_only("log_meta")


def downgrade() -> None:
    raise RuntimeError("the ledger is append-only: its schema is never downgraded")
