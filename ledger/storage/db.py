"""Engines and migrations.

SQLite runs in WAL mode with foreign keys on; a write transaction starts with BEGIN IMMEDIATE so that two
appenders never both read the same log head. PostgreSQL appenders serialize on a transaction advisory lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
WRITE_OPTION = "chainproof_write"


def default_sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'chainproof.db').resolve()}"


def normalize_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use psycopg 3 for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # A pool as large as the API's thread pool: a connection opened per request (WAL pragmas and all) would
        # cost more than the request.
        kwargs.setdefault("pool_size", 40)
        kwargs.setdefault("max_overflow", 20)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            write = connection.get_execution_options().get(WRITE_OPTION, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    # psycopg prepares a statement after a few runs, and PostgreSQL then may switch to a generic plan, which for a
    # query over a variable list of values (IN lists, idx > :after) can be a sequential scan. Custom plans stay
    # cheap here. Each connection also learns to send the store's packed arrays (see pgarrays).
    connect_args = {"options": "-c plan_cache_mode=force_custom_plan"} if url.startswith("postgresql") else {}
    engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)
    if engine.dialect.driver == "psycopg":

        @event.listens_for(engine, "connect")
        def _on_pg_connect(dbapi_connection: Any, _record: Any) -> None:
            from ledger.storage import pgarrays

            pgarrays.register(dbapi_connection.adapters)

    return engine


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest migration (a no-op when it is already there)."""
    command.upgrade(alembic_config(engine), "head")
