"""Storage of the ledger in SQL (SQLite by default, PostgreSQL by URL), through SQLAlchemy/SQLModel."""

from ledger.storage.db import create_db_engine, default_sqlite_url, migrate
from ledger.storage.store import AppendResult, Idempotency, LedgerStore, Submission

__all__ = [
    "AppendResult",
    "Idempotency",
    "LedgerStore",
    "Submission",
    "create_db_engine",
    "default_sqlite_url",
    "migrate",
]
