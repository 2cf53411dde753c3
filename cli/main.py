"""`chainproof`: the command line. Exit codes: 0 all holds, 1 verification failed, 2 usage or connection error."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import LedgerError
from ledger.logkey import load_or_create_log_signer
from ledger.storage import LedgerStore, create_db_engine, default_sqlite_url, migrate
from ledger.verify import verify_ledger

app = typer.Typer(help="Chainproof: a signed, hash-chained supply-chain ledger.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")

DbOption = Annotated[str | None, typer.Option("--db", help="database URL (default: SQLite under the data dir)")]


def _data_dir() -> Path:
    return Path(os.environ.get("CHAINPROOF_DATA_DIR", "./var"))


def _db_url(db: str | None) -> str:
    return db or os.environ.get("CHAINPROOF_DB") or default_sqlite_url(_data_dir())


def _log_name() -> str:
    return os.environ.get("CHAINPROOF_LOG_NAME", "chainproof.local/log")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"chainproof: {message}", err=True)
    raise typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create or migrate the schema (append-only triggers included). Example: chainproof db upgrade --db URL"""
    try:
        migrate(create_db_engine(_db_url(db)))
    except SQLAlchemyError as exc:
        _fail(f"cannot migrate the database: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    typer.echo("schema is up to date")


@app.command()
def verify(
    db: DbOption = None,
    log_key_file: Annotated[
        Path | None, typer.Option(help="the log's private key file (default: DATA_DIR/log-key.pem)")
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Verify every entry of a ledger database against a fresh signed checkpoint.

    Example: chainproof verify --db sqlite:///var/chainproof.db
    """
    key_file = log_key_file or Path(os.environ.get("CHAINPROOF_LOG_KEY_FILE", _data_dir() / "log-key.pem"))
    if not key_file.exists():
        _fail(f"log key file {key_file} not found")
    try:
        engine = create_db_engine(_db_url(db))
        migrate(engine)
        store = LedgerStore(engine, load_or_create_log_signer(key_file, _log_name()))
        report = verify_ledger(store.iter_entries(), store.directory(), store.signer.verifier, store.checkpoint())
    except (LedgerError, SQLAlchemyError) as exc:
        _fail(str(exc).splitlines()[0])
    if output_format == "json":
        typer.echo(json.dumps(report.summary(), indent=2))
    else:
        summary = report.summary()
        typer.echo(
            f"entries {summary['entries']}  batches {summary['batches']}  actors {summary['actors']}  "
            f"tree size {summary['tree_size']}  root {summary['root']}"
        )
        for problem in report.problems:
            typer.echo(f"PROBLEM {problem}")
        typer.echo("verified: all holds" if report.ok else f"FAILED: {len(report.problems)} problem(s)")
    raise typer.Exit(0 if report.ok else 1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
