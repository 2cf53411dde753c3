"""Logged statements by signing time and hash, so that a signed statement is appended at most once.

Filled from the entries already logged. A log that already holds a replay keeps it (the log is append-only): its
first occurrence is recorded here, and `chainproof verify` reports the later ones.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import hashlib
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

from ledger.entry import parse_leaf
from ledger.events import EARLIEST_TIME, parse_time
from ledger.migrations.triggers import make_append_only

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_CHUNK = 5000


def upgrade() -> None:
    # Keyed by (signed_at in µs, hash): new statements are signed at about the time they arrive, so their keys
    # go to the right edge of the index. WITHOUT ROWID on SQLite: one B-tree, not a rowid table plus an index.
    op.create_table(
        "logged_statements",
        sa.Column("signed_at_us", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("statement_hash", sa.LargeBinary, primary_key=True),
        sa.Column("idx", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    make_append_only("logged_statements")
    bind = op.get_bind()
    table = sa.table(
        "logged_statements",
        sa.column("signed_at_us", sa.BigInteger),
        sa.column("statement_hash", sa.LargeBinary),
        sa.column("idx", sa.BigInteger),
    )
    seen: set[bytes] = set()
    after = -1
    while True:
        rows = bind.execute(
            sa.text("SELECT idx, leaf FROM entries WHERE idx > :after ORDER BY idx LIMIT :n"), {"after": after, "n": _CHUNK}
        ).all()
        if not rows:
            return
        new = []
        for index, leaf in rows:
            try:
                parsed = parse_leaf(bytes(leaf))
                signed_at_us = (parse_time(parsed.statement["signed_at"]) - EARLIEST_TIME) // timedelta(microseconds=1)
            except Exception:  # noqa: BLE001, S112 (an unreadable leaf is the verifier's to report, not the migration's)
                continue
            statement_hash = hashlib.sha256(parsed.statement_bytes).digest()
            if statement_hash not in seen:
                seen.add(statement_hash)
                new.append({"signed_at_us": signed_at_us, "statement_hash": statement_hash, "idx": index})
        if new:
            bind.execute(sa.insert(table), new)
        after = rows[-1][0]


def downgrade() -> None:
    raise RuntimeError("the ledger is append-only: its schema is never downgraded")
