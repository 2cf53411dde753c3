"""Engines and migrations.

SQLite runs in WAL mode with foreign keys on; a write transaction starts with BEGIN IMMEDIATE so that two
appenders never both read the same log head. PostgreSQL appenders serialize on a transaction advisory lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import NotFoundError

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


def create_db_engine(url: str, *, read_only: bool = False, **kwargs: Any) -> Engine:
    """An engine for `url`. `read_only` (audits): nothing is created (no directory, no file) and the database
    refuses every write: SQLite opens the file with mode=ro and query_only, PostgreSQL sessions start with
    default_transaction_read_only."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if read_only:
            if url == "sqlite:///:memory:" or not url.startswith("sqlite:///") or not Path(path).is_file():
                raise NotFoundError(f"no database at {path}")
            url = f"sqlite:///file:{path}?mode=ro&uri=true"
        elif url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # A pool as large as the API's thread pool: a connection opened per request (WAL pragmas and all) would
        # cost more than the request.
        kwargs.setdefault("pool_size", 40)
        kwargs.setdefault("max_overflow", 20)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            if read_only:
                cursor.execute("PRAGMA query_only=ON")
            else:
                cursor.execute("PRAGMA journal_mode=WAL")  # (setting it is a write)
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
    options = "-c plan_cache_mode=force_custom_plan" + (" -c default_transaction_read_only=on" if read_only else "")
    connect_args = {"options": options} if url.startswith("postgresql") else {}
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


def check_schema_current(engine: Engine) -> None:
    """For readers that must not migrate (audits): the schema is the one this code knows, or an error says what to
    run. Raises NotFoundError for a database without a chainproof schema."""
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise NotFoundError(f"cannot read the database: {str(exc).splitlines()[0]}") from exc
    if current is None:
        raise NotFoundError("the database holds no chainproof ledger (no schema)")
    if current != head:
        raise NotFoundError(
            f"the database schema is at revision {current}, this chainproof reads {head}: run 'chainproof db upgrade' "
            "on it first (audits never change a database)"
        )
