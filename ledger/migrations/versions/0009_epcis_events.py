"""The EPCIS query index (ledger/storage/epcis.py): one row per log entry with the business step and event time of
the EPCIS event it exports as. A read cache: created empty here, filled by the first query (and after it, by each
query, with the entries added since).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "epcis_events",
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("lot", sa.String(64), nullable=False),
        sa.Column("biz_step", sa.String(32)),
        sa.Column("event_time_us", sa.BigInteger),
    )
    # queries read in event-time order, by time range or by batch
    op.create_index("epcis_events_time", "epcis_events", ["event_time_us", "idx"])
    op.create_index("epcis_events_batch", "epcis_events", ["sku", "lot", "event_time_us"])


def downgrade() -> None:
    raise RuntimeError("the ledger is append-only: its schema is never downgraded")
