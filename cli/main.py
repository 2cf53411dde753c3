"""`chainproof`: the command line.

Exit codes: 0 all holds, 1 verification failed, 2 usage, input or connection error (one line on stderr).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from sqlalchemy.exc import SQLAlchemyError

from api.settings import Settings
from ledger.errors import LedgerError
from ledger.events import Role
from ledger.logkey import load_or_create_log_signer
from ledger.signing import parse_public_key_text
from ledger.storage import LedgerStore, create_db_engine, migrate
from ledger.verify import verify_ledger

app = typer.Typer(
    help="Chainproof: a signed, hash-chained supply-chain ledger.", no_args_is_help=True, pretty_exceptions_enable=False
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
actor_app = typer.Typer(help="Actors (organisations) and their keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(actor_app, name="actor")

DbOption = Annotated[
    str | None, typer.Option("--db", help="database URL (default: $CHAINPROOF_DB, else SQLite under the data dir)")
]
FormatOption = Annotated[str, typer.Option("--format", help="text or json")]


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"chainproof: {message}", err=True)
    raise typer.Exit(code)


def settings_for(db: str | None = None, **overrides: object) -> Settings:
    return Settings.from_env(db_url=db, **overrides)


def open_store(settings: Settings) -> LedgerStore:
    """Connect, migrate if needed, and load (or create) the log key."""
    try:
        engine = create_db_engine(settings.database_url)
        migrate(engine)
        return LedgerStore(engine, load_or_create_log_signer(settings.key_file, settings.log_name))
    except SQLAlchemyError as exc:
        fail(f"cannot open the database: {str(exc).splitlines()[0]}")
    except (LedgerError, OSError) as exc:
        fail(str(exc))


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create or migrate the schema (append-only triggers included).

    Example: chainproof db upgrade --db postgresql://postgres@127.0.0.1/chainproof
    """
    settings = settings_for(db)
    try:
        migrate(create_db_engine(settings.database_url))
    except SQLAlchemyError as exc:
        fail(f"cannot migrate the database: {str(exc).splitlines()[0]}")
    typer.echo("schema is up to date")


@actor_app.command("add")
def actor_add(
    name: Annotated[str, typer.Option(help="organisation name")],
    role: Annotated[Role, typer.Option(help="admin, merchant, inspector, carrier or auditor")],
    public_key: Annotated[Path, typer.Option("--public-key", help="Ed25519 public key file (PEM, e.g. from keygen)")],
    db: DbOption = None,
    output_format: FormatOption = "text",
) -> None:
    """Register an actor directly in the database and print its id and a new API token (shown once).

    This is the bootstrap path (how the first admin is made). Example:
    chainproof actor add --name "Acme Coffee" --role merchant --public-key acme.pem.pub
    """
    try:
        raw = parse_public_key_text(public_key.read_text())
    except OSError as exc:
        fail(f"cannot read {public_key}: {exc.strerror}")
    except LedgerError as exc:
        fail(f"{public_key}: {exc}")
    store = open_store(settings_for(db))
    try:
        actor, key = store.add_actor(name, role, raw)
        token = store.issue_token(actor.id)
    except LedgerError as exc:
        fail(str(exc))
    if output_format == "json":
        typer.echo(json.dumps({"id": actor.id, "key_id": key.key_id, "role": role.value, "token": token}))
    else:
        typer.echo(f"actor id: {actor.id}\nkey id:   {key.key_id}\ntoken:    {token}  (shown once; keep it secret)")


@app.command()
def demo(
    db: DbOption = None,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="do nothing (and succeed) if the ledger has entries")
    ] = False,
) -> None:
    """Fill an empty ledger with a realistic demo (demo actors' keys go to DATA_DIR/demo-keys/).

    Example: chainproof demo --db sqlite:///var/chainproof.db
    """
    from cli.demo import seed_demo

    settings = settings_for(db)
    store = open_store(settings)
    if store.size():
        if if_empty:
            typer.echo(f"ledger already has {store.size()} entries; demo not added")
            return
        fail("the ledger is not empty; the demo only fills an empty ledger")
    shown = seed_demo(store, settings.data_dir / "demo-keys")
    typer.echo(f"demo ledger: {store.size()} entries; {len(store.directory().actors)} actors")
    for label, batch in shown.items():
        typer.echo(f"  {label}: {settings.base_url}/v1/batches/{batch}")


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="worker processes (use PostgreSQL for more than one)")] = 1,
    public_url: Annotated[str | None, typer.Option(help="public base URL for product links")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve the HTTP API (uvicorn, with httptools and uvloop).

    Example: chainproof serve --db postgresql://postgres@127.0.0.1/chainproof --workers 2
    """
    import uvicorn

    settings = settings_for(
        db, public_url=public_url or os.environ.get("CHAINPROOF_PUBLIC_URL") or f"http://{host}:{port}"
    )
    if workers > 1 and settings.database_url.startswith("sqlite"):
        typer.echo(
            "chainproof: note: several workers on SQLite serialize on its write lock; PostgreSQL scales", err=True
        )
    store = open_store(settings)  # migrate and create the log key once, before the workers start
    store.engine.dispose()
    # the workers build their app from the environment (uvicorn's factory mode)
    os.environ.update(
        {
            "CHAINPROOF_DATA_DIR": str(settings.data_dir),
            "CHAINPROOF_DB": settings.database_url,
            "CHAINPROOF_PUBLIC_URL": settings.public_url,
            "CHAINPROOF_LOG_NAME": settings.log_name,
            "CHAINPROOF_LOG_KEY_FILE": str(settings.key_file),
        }
    )
    base = settings.base_url
    typer.echo(f"checkpoint: {base}/v1/log/checkpoint\nAPI docs:   {base}/docs")
    uvicorn.run(
        "api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_level=log_level,
    )


@app.command()
def verify(
    db: DbOption = None,
    log_key_file: Annotated[
        Path | None, typer.Option(help="the log's key file (default: $CHAINPROOF_LOG_KEY_FILE or DATA_DIR/log-key.pem)")
    ] = None,
    output_format: FormatOption = "text",
) -> None:
    """Verify every entry of a ledger database against a fresh signed checkpoint.

    Example: chainproof verify --db sqlite:///var/chainproof.db
    """
    settings = settings_for(db, log_key_file=log_key_file)
    if not settings.key_file.exists():
        fail(f"log key file {settings.key_file} not found (set CHAINPROOF_LOG_KEY_FILE or CHAINPROOF_DATA_DIR)")
    store = open_store(settings)
    try:
        report = verify_ledger(store.iter_entries(), store.directory(), store.signer.verifier, store.checkpoint())
    except (LedgerError, SQLAlchemyError) as exc:
        fail(str(exc).splitlines()[0])
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
    except LedgerError as exc:  # anything a command did not turn into its own message: still one line
        typer.echo(f"chainproof: {exc}", err=True)
        sys.exit(2)
