"""Storage of the ledger in SQL (SQLite by default, PostgreSQL by URL), through SQLAlchemy/SQLModel."""

from ledger.storage.db import check_schema_current, create_db_engine, default_sqlite_url, migrate
from ledger.storage.store import AppendResult, Idempotency, LedgerStore, LogMeta, Submission, read_log_meta

__all__ = [
    "AppendResult",
    "Idempotency",
    "LedgerStore",
    "LogMeta",
    "Submission",
    "check_schema_current",
    "create_db_engine",
    "default_sqlite_url",
    "migrate",
    "read_log_meta",
]
