"""The shipments projection of the SLA tracker (ledger/storage/sla.py): each batch's origin and owner, and one row
per shipment with its promise, custody steps and closing, each event with its log index and logged time. Derived
tables like the batch heads (not append-only: a row gains steps and a closing); filled here by replaying the log,
and afterwards by every append.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Iterator

import sqlalchemy as sa
from alembic import op

from ledger.history import ShipmentFold
from ledger.storage.sla import write_all

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_CHUNK = 5000


def upgrade() -> None:
    op.create_table(
        "sla_batches",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("lot", sa.String(64), primary_key=True),
        sa.Column("merchant", sa.String(64), nullable=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("idx", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "sla_shipments",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("lot", sa.String(64), primary_key=True),
        sa.Column("shipment_id", sa.String(64), primary_key=True),
        sa.Column("merchant", sa.String(64)),
        sa.Column("destination", sa.Text),
        sa.Column("placed_at", sa.BigInteger),
        sa.Column("promised_by", sa.BigInteger),
        sa.Column("quantity", sa.Float),
        sa.Column("unit", sa.String(32)),
        sa.Column("idx", sa.BigInteger),
        sa.Column("logged_us", sa.BigInteger),
        sa.Column("steps", sa.Text, nullable=False, server_default=""),
        sa.Column("delivered_at", sa.BigInteger),
        sa.Column("delivered_idx", sa.BigInteger),
        sa.Column("delivered_logged_us", sa.BigInteger),
        sa.Column("delivered_by", sa.String(64)),
        sa.Column("delivered_quantity", sa.Float),
        sa.Column("cancelled_at", sa.BigInteger),
        sa.Column("cancelled_idx", sa.BigInteger),
        sa.Column("cancelled_logged_us", sa.BigInteger),
        sa.Column("cancelled_by", sa.String(64)),
        sa.Column("last_idx", sa.BigInteger),  # the index of its latest event: what changed since a size
    )
    # One secondary index, on columns an event never changes: a handoff rewrites its shipment's row (steps,
    # last_idx), and on PostgreSQL an update that touches no indexed column can stay on its page (a HOT update,
    # with room left by the fill factor) instead of adding an entry to every index. Reports read the whole table
    # once and then the rows changed since (by last_idx, a scan); a product page reads one lane.
    op.create_index("sla_shipments_lane", "sla_shipments", ["destination", "placed_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE sla_shipments SET (fillfactor = 70)")
    bind = op.get_bind()

    def leaves() -> Iterator[bytes]:
        after = -1
        while True:
            rows = bind.execute(
                sa.text("SELECT idx, leaf FROM entries WHERE idx > :after ORDER BY idx LIMIT :n"),
                {"after": after, "n": _CHUNK},
            ).all()
            if not rows:
                return
            for _index, leaf in rows:
                yield bytes(leaf)
            after = rows[-1][0]

    fold = ShipmentFold().add_leaves(leaves())
    write_all(bind, fold.records(), fold.origins(), postgres=bind.dialect.name == "postgresql")


def downgrade() -> None:
    raise RuntimeError("the ledger is append-only: its schema is never downgraded")
