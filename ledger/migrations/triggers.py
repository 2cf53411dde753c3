"""Append-only triggers, for migrations. Migrations call this with the tables they create; what it emits must
never change (migrations are history), so a different trigger would be a new function."""

from __future__ import annotations

from alembic import op


def make_append_only(*tables: str) -> None:
    """Reject UPDATE and DELETE (and TRUNCATE, on PostgreSQL) on these tables, in the database itself.

    On PostgreSQL the trigger function `chainproof_append_only()` is created by migration 0001.
    """
    if op.get_bind().dialect.name == "postgresql":
        for table in tables:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION chainproof_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION chainproof_append_only()"
            )
        return
    for table in tables:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} BEGIN "
                f"SELECT RAISE(ABORT, 'chainproof: {operation} on {table} rejected: the ledger is append-only'); "
                "END"
            )
