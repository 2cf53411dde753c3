"""Actor rows follow the log: `actors` becomes the projection of `actor` registrations (ledger/storage/identities.py),
so a registration that changes an actor's name or role updates its row. Rows still cannot be deleted; whatever
they say, who may sign is decided by the log, and `verify --db` names a row that disagrees with it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS actors_append_only ON actors")
        op.execute(
            "CREATE TRIGGER actors_no_delete BEFORE DELETE ON actors FOR EACH ROW EXECUTE FUNCTION "
            "chainproof_append_only()"
        )
        return
    op.execute("DROP TRIGGER IF EXISTS actors_no_update")


def downgrade() -> None:
    raise RuntimeError("the ledger is append-only: its schema is never downgraded")
