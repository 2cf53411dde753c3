"""Storage of the ledger in SQL (SQLite by default, PostgreSQL by URL), through SQLAlchemy/SQLModel."""

from ledger.storage.db import create_db_engine, default_sqlite_url, migrate
from ledger.storage.store import AppendResult, LedgerStore, Submission

__all__ = ["AppendResult", "LedgerStore", "Submission", "create_db_engine", "default_sqlite_url", "migrate"]
