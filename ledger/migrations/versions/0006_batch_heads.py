"""Per-batch heads: derived tables holding each batch's rule state as of its last entry, so an append after a
restart reads a row instead of replaying the batch's chain. Not append-only (a head moves with its batch);
filled here by replaying the log, and afterwards by every append (ADR 0003).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Iterator

import sqlalchemy as sa
from alembic import op

from ledger.storage.heads import replay_batches, write_all

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_CHUNK = 5000


def upgrade() -> None:
    op.create_table(
        "batch_heads",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("lot", sa.String(64), primary_key=True),
        sa.Column("last_index", sa.BigInteger, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
    )
    op.create_table(
        "batch_shipments",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("lot", sa.String(64), primary_key=True),
        sa.Column("shipment_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
    )
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

    write_all(bind, replay_batches(leaves()), postgres=bind.dialect.name == "postgresql")


def downgrade() -> None:
    raise RuntimeError("the ledger is append-only: its schema is never downgraded")
