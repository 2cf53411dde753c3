"""`chainproof`: the command line.

Exit codes: 0 all holds, 1 verification failed, 2 usage, input or connection error (one line on stderr).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn
from urllib.parse import quote, urlencode

import typer

from api.settings import Settings
from cli.errors import CliError
from ledger.errors import LedgerError
from ledger.kinds import EventType, Role

if TYPE_CHECKING:  # the storage stack is imported by the commands that use it: start-up stays short for the rest
    from ledger.storage import LedgerStore

app = typer.Typer(
    rich_markup_mode=None,
    help="Chainproof: a signed, hash-chained supply-chain ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"chainproof {version('chainproof')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            typer.echo("chainproof (not installed: version unknown)")
        raise typer.Exit(0)


@app.callback()
def _options(
    show_version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="print the version and exit")
    ] = False,
) -> None:
    """Chainproof: a signed, hash-chained supply-chain ledger."""


db_app = typer.Typer(rich_markup_mode=None, help="Database maintenance.", no_args_is_help=True)
actor_app = typer.Typer(rich_markup_mode=None, help="Actors (organisations) and their keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
certificate_app = typer.Typer(
    rich_markup_mode=None, help="Certificates of authenticity: fetch them, check them offline.", no_args_is_help=True
)
app.add_typer(actor_app, name="actor")
app.add_typer(certificate_app, name="certificate")

DbOption = Annotated[
    str | None, typer.Option("--db", help="database URL (default: $CHAINPROOF_DB, else SQLite under the data dir)")
]
FormatOption = Annotated[str, typer.Option("--format", help="text or json")]


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"chainproof: {message}", err=True)
    raise typer.Exit(code)


def handled(func: Callable[..., None]) -> Callable[..., None]:
    """Turn the errors a command can meet (bad input, unreachable server, refused request) into one line on
    stderr and exit status 2, whatever the command."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            func(*args, **kwargs)
        except (CliError, LedgerError) as exc:
            fail(str(exc))
        except Exception as exc:
            database_errors = sys.modules.get("sqlalchemy.exc")  # loaded only if the command used a database
            if database_errors is not None and isinstance(exc, database_errors.SQLAlchemyError):
                fail(f"database error: {str(exc).splitlines()[0]}")
            raise

    return wrapper


def write_output(out: Path, data: bytes) -> None:
    """Write a file a command was asked for; a failure is one line and exit 2, like any other."""
    try:
        out.write_bytes(data)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")


def settings_for(db: str | None = None, **overrides: object) -> Settings:
    return Settings.from_env(db_url=db, **overrides)


def open_store(settings: Settings, *, signing: bool = True, migrating: bool = False) -> LedgerStore:
    """Connect, migrate if needed, and load (or, for a new log, create) the log key; `signing=False`: a store for
    what needs no log key (registering actors), which neither reads nor creates a key file."""
    from sqlalchemy.exc import SQLAlchemyError

    from ledger.storage import LedgerStore, create_db_engine, migrate, read_log_meta
    from ledger.storage.opening import open_log_store

    try:
        engine = create_db_engine(settings.database_url)
        migrate(engine)
        if not signing:
            meta = read_log_meta(engine)
            return LedgerStore(engine, None, meta.origin if meta is not None else "(no log key bound yet)")
        return open_log_store(
            engine,
            settings.key_file,
            settings.log_name,
            settings.public_url,
            signed_at_window=settings.signed_at_window,
            migrating=migrating,
        )
    except SQLAlchemyError as exc:
        fail(f"cannot open the database: {str(exc).splitlines()[0]}")
    except (LedgerError, OSError) as exc:
        fail(str(exc))


@db_app.command("upgrade")
@handled
def db_upgrade(db: DbOption = None) -> None:
    """Create or migrate the schema (append-only triggers included).

    \b
    Example: chainproof db upgrade --db postgresql://postgres@127.0.0.1/chainproof
    """
    from sqlalchemy.exc import SQLAlchemyError

    from ledger.storage import LedgerStore, create_db_engine, migrate

    settings = settings_for(db)
    try:
        engine = create_db_engine(settings.database_url)
        migrate(engine)
        store = LedgerStore(engine, None, "(reading)")
        awaits = store.directory_awaits_migration()
    except SQLAlchemyError as exc:
        fail(f"cannot migrate the database: {str(exc).splitlines()[0]}")
    typer.echo("schema is up to date")
    if awaits:  # a ledger from before identities in the log: its directory becomes registrations
        appended = open_store(settings, migrating=True).migrate_directory()
        typer.echo(
            f"appended the actor directory to the log as {appended} registrations, signed by the log key "
            "(operator-attested; entries logged before them are judged by the directory's old times)"
        )


@db_app.command("rebuild")
@handled
def db_rebuild(db: DbOption = None, output_format: FormatOption = "text") -> None:
    """Recompute the derived tables (per-batch heads and shipments) from the log, under the append lock.

    Safe at any time: appends wait for it, and nothing of the log itself changes. `chainproof verify --db` says
    when the derived tables disagree with the log.

    \b
    Example: chainproof db rebuild --db postgresql://postgres@127.0.0.1/chainproof
    """
    from sqlalchemy.exc import SQLAlchemyError

    store = open_store(settings_for(db), signing=False)
    try:
        batches = store.rebuild_heads()
    except SQLAlchemyError as exc:
        fail(f"cannot rebuild the derived tables: {str(exc).splitlines()[0]}")
    if output_format == "json":
        typer.echo(json.dumps({"batches": batches}))
    else:
        typer.echo(f"rebuilt the heads of {batches} batches from the log")


@db_app.command("restore")
@handled
def db_restore(
    tiles: Annotated[str, typer.Option("--tiles", help="the log's published tiles: their URL prefix, or a directory")],
    db: DbOption = None,
    output_format: FormatOption = "text",
) -> None:
    """After restoring a database backup: put back the log's tail the backup lost, from the published tiles, so
    the log continues the history its witnesses cosigned instead of forking it. Checked before anything is written:
    the tiles' checkpoint must be signed by this log's key, the database's tree must be a prefix of the published
    one, and the entries from the tiles must complete it to the checkpoint's root.

    \b
    Example: chainproof db restore --tiles https://cdn.trace.example/log --db postgresql://postgres@127.0.0.1/chainproof
    """
    from cli.audit import tile_fetcher
    from ledger import merkle
    from ledger.note import open_checkpoint
    from ledger.tiles import TileReader

    store = open_store(settings_for(db))
    fetch = tile_fetcher(tiles)
    note = fetch("checkpoint").decode("utf-8", "replace")
    try:
        published = open_checkpoint(note, store.signer.verifier, store.origin).checkpoint
    except LedgerError as exc:
        fail(f"the tiles' checkpoint is not this log's ({store.signer.verifier}): {exc}")
    held = store.size()
    common = min(held, published.size)
    reader = TileReader(fetch, published.size)
    try:
        published_root = merkle.root_from_nodes(common, reader.nodes(set(merkle.root_keys(common))))
    except LedgerError as exc:
        fail(f"the published tiles do not hold together: {exc}")
    if published_root != store.root(common):
        fail(
            f"the database's first {common} entries are not the published log's: a fork, not a lost tail; "
            "nothing was written"
        )
    restored = 0
    if published.size > held:
        try:
            leaves = reader.entries(held, published.size)
            store.restore_tail(held, leaves, note)
        except LedgerError as exc:
            fail(f"{exc}; nothing was written")
        restored = len(leaves)
    result = {"restored_entries": restored, "tree_size": max(held, published.size), "published_size": published.size}
    if output_format == "json":
        typer.echo(json.dumps(result))
    elif restored:
        typer.echo(
            f"restored {restored} entries ({held} to {published.size - 1}) from the published tiles: the log continues "
            f"the published history at tree size {published.size}"
        )
    else:
        typer.echo(f"nothing to restore: the database holds the published history (tree size {published.size})")


@actor_app.command("add")
@handled
def actor_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="organisation name")],
    role: Annotated[Role, typer.Option(help="admin, merchant, inspector, carrier or auditor")],
    public_key: PublicKeyOption = None,
    new_key: NewKeyOption = None,
    gln: Annotated[
        str | None, typer.Option(help="the organisation's GS1 party GLN (13 digits): EPCIS parties map to it")
    ] = None,
    db: DbOption = None,
    server: Annotated[
        str | None, typer.Option("--server", help="register through this server, as an admin (--token-file, --key)")
    ] = None,
    key: KeyOption = None,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    output_format: FormatOption = "text",
) -> None:
    """Register an actor and its first key, and print its id and a new API token (shown once).

    With --server, an admin registers it remotely: the registrations are signed with the admin's --key (or
    CHAINPROOF_KEY) and sent with the admin's token (--token-file or CHAINPROOF_TOKEN). With --new-key instead of
    --public-key (the key holder is present), the new key proves possession in the log. Without --server, it is
    appended on the server's machine, signed by the log key (operator-attested in the log): the bootstrap path,
    how the first admin is made.

    \b
    Examples:
      chainproof actor add --name "Acme Coffee" --role merchant --public-key acme.pem.pub --key ops.pem \\
        --server https://trace.example
      chainproof actor add --name "Operations" --role admin --public-key ops.pem.pub --db sqlite:///var/chainproof.db
    """
    raw, new_private = _key_to_bind(public_key, new_key)
    if server is not None:
        if db is not None:
            fail("give --server or --db, not both")
        import secrets

        from cli.identities import registration_signer
        from cli.record import now_rfc3339
        from ledger.hashing import b64encode
        from ledger.identities import IdentityType

        with _admin_client(ctx, server, token, token_file) as client:
            signer = registration_signer(client, key)
            actor_id = "act_" + secrets.token_hex(8)
            actor_data = {"id": actor_id, "name": name, "role": role.value, **({"gln": gln} if gln else {})}
            signed_at = now_rfc3339()
            registrations = [
                signer.event(IdentityType.ACTOR, actor_id, actor_data, signed_at),
                signer.key_add(actor_id, raw, new_private, signed_at),
            ]
            body = {"name": name, "role": role.value, "public_key": b64encode(raw), "registrations": registrations}
            if gln:
                body["gln"] = gln
            created = client.request("POST", "/v1/actors", json=body).json()
        _print_actor(str(created["id"]), str(created["key_id"]), role, str(created["token"]), output_format)
        return
    store = open_store(settings_for(db))  # the bootstrap is signed by the log key: operator-attested
    try:
        registered, first_key = store.add_actor(name, role, raw, gln=gln)
        token = store.issue_token(registered.id)
    except LedgerError as exc:
        fail(str(exc))
    _print_actor(registered.id, first_key.key_id, role, token, output_format)


def _print_actor(actor_id: str, key_id: str, role: Role, token: str, output_format: str) -> None:
    if output_format == "json":
        typer.echo(json.dumps({"id": actor_id, "key_id": key_id, "role": role.value, "token": token}))
    else:
        typer.echo(f"actor id: {actor_id}\nkey id:   {key_id}\ntoken:    {token}  (shown once; keep it secret)")


PublicKeyOption = Annotated[
    Path | None, typer.Option("--public-key", help="Ed25519 public key file (PEM, e.g. from keygen)")
]
NewKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--new-key", help="the new private key itself (its holder is present): binds it with proof of possession"
    ),
]


def _key_to_bind(public_key: Path | None, new_key: Path | None) -> tuple[bytes, Any]:
    """The public key to bind, and the private key if given (`--new-key`, for a proof of possession)."""
    if (public_key is None) == (new_key is None):
        fail("give the key to bind: --public-key FILE.pub, or --new-key FILE (its holder proves possession)")
    if new_key is not None:
        from cli.identities import new_key_file

        return new_key_file(new_key)
    assert public_key is not None
    return _public_key_file(public_key), None


def _public_key_file(path: Path) -> bytes:
    from ledger.signing import parse_public_key_text  # cryptography: 40 ms, not for every command's start

    try:
        return parse_public_key_text(path.read_text())
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    except UnicodeDecodeError:
        fail(f"{path} is not a public key file: it holds binary data, where a PEM or base64 key is text")
    except LedgerError as exc:
        fail(f"{path}: {exc}")


def _admin_client(ctx: typer.Context, server: str, token: str | None, token_file: Path | None) -> Any:
    from cli.client import ServerClient

    resolved = resolve_token(ctx, token, token_file)
    if resolved is None:
        fail("this needs an admin's API token: give --token-file, or set CHAINPROOF_TOKEN")
    return ServerClient(server, resolved)


@actor_app.command("list")
@handled
def actor_list(
    server: AdminServerOption,
    output_format: FormatOption = "text",
) -> None:
    """Every actor the server lists, with its role and keys (revoked ones marked).

    \b
    Example: chainproof actor list --server https://trace.example
    """
    from cli.client import ServerClient

    with ServerClient(server) as client:
        listed = client.get_json("/v1/actors")
    if output_format == "json":
        typer.echo(json.dumps(listed))
        return
    for actor in listed:
        keys = ", ".join(
            k["key_id"] + (f" (revoked {k['revoked_at']})" if k.get("revoked_at") else "") for k in actor["keys"]
        )
        typer.echo(f"{actor['role']:<9} {actor['id']}  {actor['name']}  keys: {keys or 'none'}")


token_app = typer.Typer(rich_markup_mode=None, help="API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")
key_app = typer.Typer(rich_markup_mode=None, help="Actors' signing keys.", no_args_is_help=True)
app.add_typer(key_app, name="key")


@token_app.command("create")
@handled
def token_create(
    ctx: typer.Context,
    actor: Annotated[str, typer.Option("--actor", help="the actor the token acts for")],
    server: AdminServerOption,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    output_format: FormatOption = "text",
) -> None:
    """Issue another API token for an actor (an admin, or the actor itself); it is shown once.

    \b
    Example: chainproof token create --actor act_1234 --server https://trace.example --token-file admin.token
    """
    with _admin_client(ctx, server, token, token_file) as client:
        issued = client.request("POST", f"/v1/actors/{quote(actor, safe='')}/tokens").json()
    if output_format == "json":
        typer.echo(json.dumps({"actor": actor, "id": issued.get("id"), "token": issued["token"]}))
    else:
        typer.echo(f"token: {issued['token']}  (id {issued.get('id')}; shown once; keep it secret)")


@token_app.command("list")
@handled
def token_list(
    ctx: typer.Context,
    actor: Annotated[str, typer.Option("--actor", help="whose tokens")],
    server: AdminServerOption,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    output_format: FormatOption = "text",
) -> None:
    """An actor's tokens by id (the first 16 hex digits of the stored hash; the tokens themselves are never kept).

    \b
    Example: chainproof token list --actor act_1234 --server https://trace.example
    """
    with _admin_client(ctx, server, token, token_file) as client:
        listed = client.get_json(f"/v1/actors/{quote(actor, safe='')}/tokens")
    if output_format == "json":
        typer.echo(json.dumps(listed))
        return
    for item in listed:
        state = f"revoked {item['revoked_at']}" if item.get("revoked_at") else "active"
        typer.echo(f"{item['id']}  issued {item['created_at']}  {state}")


@token_app.command("revoke")
@handled
def token_revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(metavar="TOKEN_ID", help="the token's id, as `token list` shows it")],
    server: AdminServerOption,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    output_format: FormatOption = "text",
) -> None:
    """Revoke a token by its id (an admin, or the token's own actor); a server's other workers may accept it for
    up to 5 seconds more.

    \b
    Example: chainproof token revoke 0f3a9c1e77b2d4a8 --server https://trace.example
    """
    with _admin_client(ctx, server, token, token_file) as client:
        client.request("POST", f"/v1/tokens/{quote(token_id, safe='')}/revoke")
    if output_format == "json":
        typer.echo(json.dumps({"id": token_id, "revoked": True}))
    else:
        typer.echo(f"token {token_id} revoked")


@key_app.command("add")
@handled
def key_add(
    ctx: typer.Context,
    actor: Annotated[str, typer.Option("--actor", help="the actor the key is for")],
    server: AdminServerOption,
    public_key: PublicKeyOption = None,
    new_key: NewKeyOption = None,
    key: KeyOption = None,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    output_format: FormatOption = "text",
) -> None:
    """Bind another signing key to an actor (by an admin, or the actor itself): it signs from the next entry on.
    Recorded in the log, signed with your --key; with --new-key, the new key proves possession.

    \b
    Example: chainproof key add --actor act_1234 --new-key new.pem --key current.pem --server https://trace.example
    """
    _change_keys(ctx, server, key, token, token_file, output_format, actor, (public_key, new_key), (None, ""))


@key_app.command("rotate")
@handled
def key_rotate(
    ctx: typer.Context,
    actor: Annotated[str, typer.Option("--actor", help="the actor whose key rotates")],
    server: AdminServerOption,
    public_key: PublicKeyOption = None,
    new_key: NewKeyOption = None,
    revoke: Annotated[
        str | None, typer.Option("--revoke", metavar="OLD_KEY_ID", help="revoke this key in the same request")
    ] = None,
    reason: Annotated[str, typer.Option(help="why the old key is revoked")] = "rotated",
    key: KeyOption = None,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    output_format: FormatOption = "text",
) -> None:
    """Bind a new key and revoke an old one in one request: both are logged, or neither.

    \b
    Example: chainproof key rotate --actor act_1234 --new-key new.pem --revoke 1a2b3c4d5e6f7a8b --key old.pem \
      --server https://trace.example
    """
    _change_keys(ctx, server, key, token, token_file, output_format, actor, (public_key, new_key), (revoke, reason))


@key_app.command("revoke")
@handled
def key_revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="the key's id (16 hex digits)")],
    server: AdminServerOption,
    reason: Annotated[str, typer.Option(help="why (kept with the revocation)")] = "",
    key: KeyOption = None,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    output_format: FormatOption = "text",
) -> None:
    """Revoke a key (an admin, or the key's own actor): nothing it signs is accepted from the next entry on.
    Recorded in the log, signed with your --key.

    \b
    Example: chainproof key revoke 1a2b3c4d5e6f7a8b --reason "laptop stolen" --key ops.pem --server https://trace.example
    """
    _change_keys(ctx, server, key, token, token_file, output_format, None, None, (key_id, reason))


def _change_keys(
    ctx: typer.Context,
    server: str,
    key: Path | None,
    token: str | None,
    token_file: Path | None,
    output_format: str,
    actor: str | None,
    binding: tuple[Path | None, Path | None] | None,
    revoking: tuple[str | None, str],
) -> None:
    """key add, rotate and revoke: the registrations (bind `binding`'s key to `actor`, revoke the key id in
    `revoking` with its reason), signed with the caller's key and sent in one request."""
    from cli.identities import record_registrations, registration_signer
    from cli.record import now_rfc3339
    from ledger.identities import IdentityType
    from ledger.signing import key_id_for

    bound = _key_to_bind(*binding) if binding is not None else None
    revoked, reason = revoking
    with _admin_client(ctx, server, token, token_file) as client:
        signer = registration_signer(client, key)
        owner = actor or _owner_of(client, str(revoked))
        signed_at = now_rfc3339()
        events = [] if bound is None else [signer.key_add(owner, bound[0], bound[1], signed_at)]
        if revoked is not None:
            data = {"actor": owner, "key_id": revoked} | ({"reason": reason} if reason else {})
            events.append(signer.event(IdentityType.KEY_REVOKE, owner, data, signed_at))
        record_registrations(client, events)
        keys = {str(k["key_id"]): k for k in client.get_json(f"/v1/actors/{quote(owner, safe='')}/keys")}
    added = None if bound is None else keys[key_id_for(bound[0])]
    if output_format == "json":
        if added is not None and revoked is not None:
            typer.echo(json.dumps({"added": added, "revoked": keys.get(revoked)}))
        else:
            typer.echo(json.dumps(added if added is not None else {"key_id": revoked, "revoked": True}))
        return
    if added is not None:
        typer.echo(f"key {added['key_id']} of {added['actor_id']} signs from {added['valid_from']}")
    if revoked is not None:
        typer.echo(f"key {revoked} revoked")


def _owner_of(client: Any, key_id: str) -> str:
    """The actor a key is bound to, as the server lists it."""
    for listed in client.get_json("/v1/actors"):
        if any(k["key_id"] == key_id for k in listed["keys"]):
            return str(listed["id"])
    raise CliError(f"no actor has key {key_id}")


@app.command()
@handled
def demo(
    db: DbOption = None,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="do nothing (and succeed) if the ledger has entries")
    ] = False,
) -> None:
    """Fill an empty ledger with a realistic demo (demo actors' keys go to DATA_DIR/demo-keys/).

    \b
    Example: chainproof demo --db sqlite:///var/chainproof.db
    """
    from cli.demo import seed_demo

    settings = settings_for(db)
    store = open_store(settings)
    size = store.size()
    if size > len(store.registrations(0, size)):  # registered actors alone leave a ledger empty of batches
        if if_empty:
            typer.echo(f"ledger already has {size} entries; demo not added")
            return
        fail("the ledger is not empty; the demo only fills an empty ledger")
    key_dir = settings.data_dir / "demo-keys"
    shown = seed_demo(store, key_dir)
    store.issue_checkpoint()  # the demo's writer issues its first checkpoint: auditors can verify it at once
    actors = store.directory().actors
    typer.echo(f"demo ledger: {store.size()} entries; {len(actors)} actors")
    for label, url in shown.items():
        typer.echo(f"  {label} product page: {settings.base_url}{url}")
    typer.echo(f"demo actors (each one's key and API token are in {key_dir}/ID.pem and ID.token, mode 0600):")
    for actor in sorted(actors.values(), key=lambda a: (a.role, a.name)):
        typer.echo(f"  {actor.role:<9} {actor.id}  {actor.name}")
    olive = next((a for a in actors.values() if a.name == "Kalamata Groves"), None)
    if olive is not None:
        typer.echo(
            "go on as a merchant, e.g. recall the at-risk olive oil lot:\n"
            f"  chainproof record recall --sku OIL-KAL-500 --lot K-0917 --reason 'demo recall' "
            f"--key {key_dir / olive.id}.pem --token-file {key_dir / olive.id}.token --server {settings.base_url}"
        )


@app.command()
@handled
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="worker processes (use PostgreSQL for more than one)")] = 1,
    public_url: Annotated[str | None, typer.Option(help="public base URL for product links")] = None,
    platform_name: Annotated[
        str | None,
        typer.Option(
            envvar="CHAINPROOF_PLATFORM_NAME",
            help="the platform's name as certificates state it (default: Chainproof)",
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            envvar="CHAINPROOF_POLICY",
            help="a C2SP tlog-policy file: witness the log (checkpoints on a cadence, cosigned by its witnesses)",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            envvar="CHAINPROOF_FORWARDED_ALLOW_IPS",
            help="comma-separated addresses of reverse proxies whose X-Forwarded-For/-Proto headers are believed "
            "(rate limits count per client address); default: none, every peer is the client",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (uvicorn, with httptools and uvloop). With several workers on Linux, each listens on
    its own SO_REUSEPORT socket, so the kernel spreads connections evenly among them.

    Rate limits are on (CHAINPROOF_RATE_LIMITS=off turns them off); set CHAINPROOF_REDIS_URL to share their
    counters among workers and hosts, otherwise each worker counts its share in memory.

    \b
    Example: chainproof serve --db postgresql://postgres@127.0.0.1/chainproof --workers 2
    """
    import uvicorn

    from cli.serve import proxy_options, reuse_port_supported, run_workers

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
            "CHAINPROOF_LOG_NAME": store.origin,  # as the database records it
            "CHAINPROOF_LOG_KEY_FILE": str(settings.key_file),
            "CHAINPROOF_WORKERS": str(workers),  # each worker's share of the in-memory rate limits
        }
    )
    if platform_name is not None and platform_name.strip():
        os.environ["CHAINPROOF_PLATFORM_NAME"] = platform_name.strip()
    if policy is not None:
        if not policy.is_file():
            fail(f"policy file {policy} not found")
        os.environ["CHAINPROOF_POLICY"] = str(policy.resolve())
    base = settings.base_url
    from cli.demo import DEMO_CERTIFICATE, DEMO_PAGE

    typer.echo(
        f"product page (demo): {base}{DEMO_PAGE}\ncertificate (demo):  {base}{DEMO_CERTIFICATE}\n"
        f"check a certificate: {base}/verify\n"
        f"checkpoint: {base}/v1/log/checkpoint\nAPI docs:   {base}/docs"
    )
    if workers > 1 and reuse_port_supported():
        try:
            run_workers(host, port, workers, log_level, forwarded_allow_ips)
        except (OSError, RuntimeError) as exc:
            fail(str(exc))
        return
    uvicorn.run(
        "api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_level=log_level,
        server_header=False,  # no "server: uvicorn": nothing to tell an attacker which software to probe
        **proxy_options(forwarded_allow_ips),
    )


SkuOption = Annotated[str, typer.Option(help="batch SKU")]
LotOption = Annotated[str, typer.Option(help="batch lot")]
ServerOption = Annotated[
    str | None, typer.Option("--server", envvar="CHAINPROOF_SERVER", help="server URL, e.g. http://127.0.0.1:8000")
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="CHAINPROOF_TOKEN", help="API token (better: CHAINPROOF_TOKEN or --token-file)"),
]
AdminServerOption = Annotated[str, typer.Option("--server", envvar="CHAINPROOF_SERVER", help="the server")]
TokenFileOption = Annotated[
    Path | None, typer.Option("--token-file", help="a file holding the API token (first line), e.g. mode 0600")
]


def _typed(ctx: typer.Context, parameter: str) -> bool:
    """Whether a parameter's value was typed on the command line (not from the environment or a default). By the
    enum's name: typer may carry its own copy of click."""
    source = ctx.get_parameter_source(parameter)
    return source is not None and source.name == "COMMANDLINE"


def resolve_token(ctx: typer.Context, token: str | None, token_file: Path | None) -> str | None:
    """The API token from --token-file, CHAINPROOF_TOKEN or --token; a token typed on the command line is visible
    to every user of the machine (ps, /proc), so that one is used with a warning."""
    if token_file is not None:
        if _typed(ctx, "token"):
            fail("give --token or --token-file, not both")
        try:
            lines = token_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read the token file {token_file}: {getattr(exc, 'strerror', None) or exc}")
        if not lines or not lines[0].strip():
            fail(f"the token file {token_file} is empty")
        return lines[0].strip()
    if token is not None and _typed(ctx, "token"):
        typer.echo(
            "chainproof: warning: a token given with --token is visible to other users of this machine (ps); "
            "use --token-file or CHAINPROOF_TOKEN",
            err=True,
        )
    return token


KeyOption = Annotated[Path | None, typer.Option("--key", envvar="CHAINPROOF_KEY", help="your private key (PEM)")]
LogKeyOption = Annotated[
    str | None, typer.Option("--log-key", help="the log's verifier key to trust (<name>+<hex>+<base64>)")
]
StateOption = Annotated[
    Path | None,
    typer.Option(
        "--state",
        envvar="CHAINPROOF_STATE_DIR",
        help="where to remember each log's key and last verified checkpoint (default: the per-user state dir)",
    ),
]


def _print_report(problems: list[Any], summary: dict[str, Any], output_format: str) -> None:
    if output_format == "json":
        typer.echo(json.dumps({**summary, "problems": [_problem_json(p) for p in problems]}, indent=2))
        return
    shown = [f"{k.replace('_', ' ')} {v}" for k, v in summary.items() if k not in ("ok", "problems") and v is not None]
    typer.echo("  ".join(shown))
    for problem in problems:
        typer.echo(f"PROBLEM {problem}")
    typer.echo("verified: all holds" if summary["ok"] else f"FAILED: {len(problems)} problem(s)")


def _problem_json(problem: Any) -> dict[str, Any]:
    return {"index": problem.index, "code": problem.code, "message": problem.message}


@app.command()
@handled
def keygen(
    out: Annotated[Path, typer.Option("--out", help="private key file to create (the public key goes to FILE.pub)")],
    output_format: FormatOption = "text",
) -> None:
    """Make a new Ed25519 key pair: FILE (private, PEM, mode 0600; never overwritten) and FILE.pub.

    \b
    Example: chainproof keygen --out acme.pem   (then: chainproof actor add ... --public-key acme.pem.pub)
    """
    from cli.record import keygen as make_key

    private, public, key_id = make_key(out)
    if output_format == "json":
        typer.echo(json.dumps({"private_key": str(private), "public_key": str(public), "key_id": key_id}))
    else:
        typer.echo(f"private key: {private} (keep it secret)\npublic key:  {public}\nkey id:      {key_id}")


@app.command()
@handled
def record(
    ctx: typer.Context,
    event_type: Annotated[
        str | None,
        typer.Argument(
            metavar="TYPE", help="origin, inspection, shipment, handoff, delivery, recall or shipment_cancel"
        ),
    ] = None,
    sku: Annotated[str | None, typer.Option(help="batch SKU")] = None,
    lot: Annotated[str | None, typer.Option(help="batch lot")] = None,
    from_file: Annotated[Path | None, typer.Option("--from-file", help="JSON Lines of events (see README)")] = None,
    server: ServerOption = "http://127.0.0.1:8000",
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    key: KeyOption = None,
    product: Annotated[str | None, typer.Option(help="origin: product name")] = None,
    country: Annotated[str | None, typer.Option(help="origin: ISO 3166-1 alpha-2 country")] = None,
    region: Annotated[str | None, typer.Option(help="origin: region")] = None,
    facility: Annotated[str | None, typer.Option(help="origin: facility")] = None,
    produced_at: Annotated[str | None, typer.Option(help="origin: RFC 3339 time (default now)")] = None,
    quantity: Annotated[
        float | None, typer.Option(help="origin: quantity; shipment: quantity ordered; delivery: quantity delivered")
    ] = None,
    unit: Annotated[str | None, typer.Option(help="origin, shipment: unit of the quantity, e.g. kg")] = None,
    gtin: Annotated[str | None, typer.Option(help="origin: GTIN with GS1 check digit")] = None,
    document: Annotated[list[Path] | None, typer.Option(help="origin: a document to hash (repeatable)")] = None,
    standard: Annotated[str | None, typer.Option(help="inspection: standard or scheme")] = None,
    result: Annotated[str | None, typer.Option(help="inspection: pass, fail or conditional")] = None,
    inspected_at: Annotated[str | None, typer.Option(help="inspection: RFC 3339 time (default now)")] = None,
    report: Annotated[Path | None, typer.Option(help="inspection: report file, hashed locally, never uploaded")] = None,
    report_url: Annotated[str | None, typer.Option(help="inspection: where the report can be fetched")] = None,
    shipment: Annotated[str | None, typer.Option(help="shipment/handoff/delivery/shipment_cancel: shipment id")] = None,
    destination: Annotated[
        str | None, typer.Option(help="shipment: destination region or facility code (never a person's address)")
    ] = None,
    placed_at: Annotated[str | None, typer.Option(help="shipment: RFC 3339 time (default now)")] = None,
    promised_by: Annotated[str | None, typer.Option(help="shipment: promised delivery deadline, RFC 3339")] = None,
    to: Annotated[str | None, typer.Option(help="handoff: actor id receiving custody")] = None,
    place: Annotated[str | None, typer.Option(help="handoff/delivery: place")] = None,
    at: Annotated[str | None, typer.Option(help="handoff: RFC 3339 time (default now)")] = None,
    temperature: Annotated[float | None, typer.Option(help="handoff: temperature in Celsius")] = None,
    delivered_at: Annotated[str | None, typer.Option(help="delivery: RFC 3339 time (default now)")] = None,
    cancelled_at: Annotated[str | None, typer.Option(help="shipment_cancel: RFC 3339 time (default now)")] = None,
    reason: Annotated[str | None, typer.Option(help="recall, shipment_cancel: why")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="--from-file: events per request")] = 500,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="--from-file: check every line and report what would be sent; send nothing"),
    ] = False,
    output_format: FormatOption = "text",
) -> None:
    """Sign an event locally with --key and record it with --token on --server.

    \b
    Examples:
      chainproof record origin --sku COF-1 --lot L7 --product "Green coffee" --country ET --quantity 1200 --unit kg
      chainproof record handoff --sku COF-1 --lot L7 --to act_1234 --place "Djibouti port" --shipment SO-9
      chainproof record shipment_cancel --sku COF-1 --lot L7 --shipment SO-9 --reason "buyer withdrew"
      chainproof record --from-file events.jsonl
    """
    from cli.client import ServerClient
    from cli.record import load_key, record_one

    kind = None if event_type is None else _event_type(event_type)  # a typo is told before anything else
    token = resolve_token(ctx, token, token_file)
    private_key = load_key(key)
    if token is None:
        fail("no API token: give --token-file, or set CHAINPROOF_TOKEN")
    assert server is not None
    with ServerClient(server, token) as client:
        if from_file is not None:
            _record_file(client, private_key, from_file, batch_size, output_format, dry_run)
            return
        if kind is None or not sku or not lot:
            fail("record needs TYPE, --sku and --lot (or --from-file)")
        options = {
            "product": product, "country": country, "region": region, "facility": facility,
            "produced_at": produced_at, "quantity": quantity, "unit": unit, "gtin": gtin, "document": document,
            "standard": standard, "result": result, "inspected_at": inspected_at, "report": report,
            "report_url": report_url, "shipment": shipment, "destination": destination, "placed_at": placed_at,
            "promised_by": promised_by, "to": to, "place": place, "at": at, "temperature": temperature,
            "delivered_at": delivered_at, "cancelled_at": cancelled_at, "reason": reason,
        }  # fmt: skip
        answer = record_one(client, private_key, kind, sku, lot, options)
    page = str(answer["product_url"])
    if shipment and kind in (EventType.SHIPMENT, EventType.HANDOFF, EventType.DELIVERY, EventType.SHIPMENT_CANCEL):
        page += "?" + urlencode({"shipment": shipment})  # the shipment's own view: its promise and SLA status
        answer = {**answer, "shipment_url": page}
    if output_format == "json":
        typer.echo(json.dumps(answer))
    else:
        typer.echo(f"recorded at log index {answer['index']}\nproduct page: {page}")


def _event_type(value: str) -> EventType:
    try:
        return EventType(value)
    except ValueError:
        choices = ", ".join(kind.value for kind in EventType)
        fail(f"unknown event type {value[:40]!r}: choose one of {choices}")


def _record_file(
    client: Any, private_key: Any, path: Path, batch_size: int, output_format: str, dry_run: bool = False
) -> None:
    from cli.record import read_event_lines

    summary = send_events(client, private_key, path, read_event_lines(path), batch_size, output_format, dry_run)
    if output_format == "json":
        typer.echo(json.dumps(summary))
    elif dry_run:
        typer.echo(
            f"dry run: {summary['would_record']} events would be recorded, {summary['already_in_log']} are already "
            "in the log or repeated; nothing was sent"
        )
    else:
        typer.echo(
            f"recorded {summary['recorded']} events ({summary['already_recorded']} already recorded by an earlier "
            f"run, {summary['already_in_log']} already in the log or repeated in the file: skipped); journal in "
            f"{summary['journal']}"
        )


def send_events(
    client: Any,
    private_key: Any,
    path: Path,
    numbered: list[tuple[int, dict[str, Any]]],
    batch_size: int,
    output_format: str,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Sign and append numbered events ({type, sku, lot, data}) read from `path`, a chunk per request, with a
    journal beside `path` so a rerun resends the same signed requests and never appends twice; events whose
    content the log already holds are skipped. Every event is checked before anything is sent. Returns what
    happened (a dry run checks and compares with the log, and sends nothing)."""
    from rich.console import Console
    from rich.progress import Progress

    from cli.record import (
        Journal,
        check_event_lines,
        line_of_server_error,
        not_yet_logged,
        now_rfc3339,
        signed_event,
        whoami,
    )
    from ledger.signing import key_id_for, public_key_bytes

    actor_id = whoami(client)
    journal = Journal(path)
    key_id = key_id_for(public_key_bytes(private_key))
    if dry_run:  # what a run would send now: checked and compared with the log, nothing signed, sent or written
        check_event_lines(path, numbered, actor_id, key_id, now_rfc3339())
        new = len(not_yet_logged(client, actor_id, numbered, set()))
        return {"events": len(numbered), "would_record": new, "already_in_log": len(numbered) - new, "dry_run": True}
    signed_at = journal.start()
    if journal.set_aside is not None:
        typer.echo(
            f"chainproof: note: {path} changed since the last run; its journal is now {journal.set_aside}", err=True
        )
    check_event_lines(path, numbered, actor_id, key_id, signed_at)  # every line, before anything is sent
    chunks = [numbered[n : n + batch_size] for n in range(0, len(numbered), batch_size)]
    recorded = replayed = skipped = 0
    seen: set[bytes] = set()  # content identities sent by this run, or found in the log
    with Progress(console=Console(stderr=True), disable=output_format == "json" or len(chunks) < 2) as bar:
        task = bar.add_task("recording", total=len(numbered))
        for number, chunk in enumerate(chunks):
            if journal.done(number) is not None:
                replayed += len(chunk)
                bar.advance(task, len(chunk))
                continue
            body = journal.body(number)
            if body is None:
                # Events are signed anew when no journal holds them (a journal moved away, a new file): an event
                # the log already holds, or that an earlier line of this file said, is skipped, not sent twice
                fresh = not_yet_logged(client, actor_id, chunk, seen)
                skipped += len(chunk) - len(fresh)
                bar.advance(task, len(chunk) - len(fresh))
                if not fresh:
                    journal.mark_done(number, {"recorded": []})
                    continue
                chunk = fresh
                items = [
                    signed_event(
                        private_key, actor_id, e["type"], e["sku"], e["lot"], e["data"], e.get("signed_at", signed_at)
                    )
                    for _line, e in chunk
                ]
                body = json.dumps({"events": items, "lines": [line for line, _e in chunk]}).encode()
                journal.save_body(number, body)  # before sending: a rerun resends exactly these bytes
            saved = json.loads(body)
            lines = saved.pop("lines", [line for line, _e in chunk])
            try:
                response = client.request(
                    "POST",
                    "/v1/events/batch",
                    content=json.dumps(saved).encode(),
                    headers={"Content-Type": "application/json", "Idempotency-Key": journal.key(number)},
                )
            except CliError as exc:  # the server names "event N" of the request: name the file's line
                raise CliError(line_of_server_error(str(exc), path, lines)) from exc
            journal.mark_done(number, response.json())
            recorded += len(chunk)
            bar.advance(task, len(chunk))
    return {
        "events": len(numbered),
        "recorded": recorded,
        "already_recorded": replayed,
        "already_in_log": skipped,
        "journal": str(journal.dir),
    }


@app.command()
@handled
def verify(
    server: Annotated[str | None, typer.Option("--server", help="verify what this server serves")] = None,
    db: Annotated[str | None, typer.Option("--db", help="verify this database (URL)")] = None,
    bundle: Annotated[Path | None, typer.Option("--bundle", help="verify this exported bundle, offline")] = None,
    tiles: Annotated[
        str | None,
        typer.Option("--tiles", help="verify the log as published C2SP tiles: their URL prefix, or a directory"),
    ] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="only this batch, SKU/LOT (with --server)")] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="a C2SP tlog-policy file: its log key is trusted, and the checkpoint must carry its witness quorum",
        ),
    ] = None,
    log_key: LogKeyOption = None,
    log_key_file: Annotated[
        Path | None,
        typer.Option(help="--db: the log's key file (default: $CHAINPROOF_LOG_KEY_FILE or DATA_DIR/log-key.pem)"),
    ] = None,
    state: StateOption = None,
    output_format: FormatOption = "text",
) -> None:
    """Check every signature, batch link, batch rule and leaf against a signed checkpoint; exit 0 if all holds,
    1 if anything fails, 2 for usage or connection errors.

    The last verified checkpoint is remembered (--state): the next run fails loudly if the log was rewritten,
    truncated or forked since.

    \b
    Examples:
      chainproof verify --server https://trace.example --log-key 'trace.example/log+1a2b3c4d+AV...'
      chainproof verify --server https://trace.example --batch COF-1/L7
      chainproof verify --bundle ledger.cpb
      chainproof verify --tiles https://cdn.trace.example/log --log-key 'trace.example/log+1a2b3c4d+AV...'
    """
    from cli.audit import (
        State,
        batch_check,
        from_bundle,
        from_database,
        from_server,
        run_full_verification,
        trusted_key,
    )
    from cli.client import ServerClient

    sources = [s for s in (server, db, bundle, tiles) if s is not None]
    if len(sources) > 1:
        fail("give one of --server, --db, --bundle or --tiles (none: this machine's own database)")
    if batch is not None:
        if server is None:
            fail("--batch works with --server")
        sku, _, lot = batch.partition("/")
        if not sku or not lot:
            fail("--batch takes SKU/LOT")
        with ServerClient(server) as client:
            problems: list[Any] = []
            key = server_key(client, log_key, state, problems)
            found, summary = batch_check(client, key, sku, lot)
        problems += found
        summary["ok"] = summary["ok"] and not problems
        _print_report(problems, summary, output_format)
        raise typer.Exit(0 if summary["ok"] else 1)
    witness_policy = None
    if policy is not None:
        from cli.audit import read_policy

        witness_policy = read_policy(policy)
        if log_key is None and len(witness_policy.logs) == 1:
            log_key = str(witness_policy.logs[0].key)  # the policy names the log to trust
    if server is not None:
        client = ServerClient(server)
        snapshot = from_server(client)
    elif tiles is not None:
        from cli.audit import from_tiles

        snapshot = from_tiles(tiles, log_key, state)
    elif bundle is None:
        settings = settings_for(db, log_key_file=log_key_file)
        snapshot = from_database(settings.database_url, settings.key_file, log_key, None)
    else:
        snapshot = from_bundle(bundle)
    remembered = State(state, snapshot.published_key.name)
    problems = []
    key = trusted_key(snapshot.published_key, log_key, remembered, problems, announce=not snapshot.key_is_local)
    older = remembered.checkpoint
    if older is not None and remembered.log_key not in (None, str(key)):
        # a key trusted anew with --log-key: the remembered checkpoint was another key's (another log, in effect)
        typer.echo(
            f"chainproof: note: now trusting {key} instead of {remembered.log_key}; the checkpoint remembered for "
            "the old key is set aside",
            err=True,
        )
        older = None
    report = run_full_verification(snapshot, key, older, sys.stderr.isatty() and output_format == "text")
    problems += report.problems
    summary = report.summary()
    summary.pop("problems")
    if witness_policy is not None:
        from cli.audit import witness_check

        found, witnessed = witness_check(snapshot.checkpoint, key, witness_policy)
        problems += found
        summary["witnesses"] = witnessed
    summary["ok"] = report.ok and not problems
    if snapshot.beyond_checkpoint:  # the log has not signed them yet: counted, not a failure
        summary["not_yet_checkpointed"] = snapshot.beyond_checkpoint
    if summary["ok"]:
        remembered.save(str(key), snapshot.checkpoint)
    _print_report(problems, summary, output_format)
    raise typer.Exit(0 if summary["ok"] else 1)


def server_key(client: Any, log_key: str | None, state_dir: Path | None, problems: list[Any]) -> Any:
    """The log key to trust for a server (see cli.audit.trusted_key)."""
    from cli.audit import State, parse_key, trusted_key

    published = parse_key(client.get_text("/v1/log/key"), "the server's log key")
    return trusted_key(published, log_key, State(state_dir, published.name), problems)


@app.command()
@handled
def qr(
    sku: SkuOption,
    lot: LotOption,
    out: Annotated[Path, typer.Option("--out", help="file to write: .png or .svg")],
    server: ServerOption = "http://127.0.0.1:8000",
    log_key: LogKeyOption = None,
    state: StateOption = None,
    shipment: Annotated[
        str | None, typer.Option("--shipment", help="one order's label: the page opens on its delivery status")
    ] = None,
    output_format: FormatOption = "text",
) -> None:
    """Write the QR code of a batch's product page, for print (error correction M, standard quiet zone).

    The URL carries the label fragment (#k=...&o=...) pinning the log key and the batch's origin entry, so the
    shopper's browser can hold the server to what the package says. Both are checked first: the key is the one
    given (--log-key) or pinned before, and the origin entry is proven into a checkpoint signed by it.

    \b
    Examples:
      chainproof qr --sku COF-1 --lot L7 --out label.svg --server https://trace.example --log-key '...'
      chainproof qr --sku COF-1 --lot L7 --shipment SO-9 --out order-SO-9.png --server https://trace.example
    """
    from certificates.qr import qr_png, qr_svg
    from cli.audit import label_url
    from cli.client import ServerClient

    suffix = out.suffix.lower()
    if suffix not in (".png", ".svg"):
        fail("--out must end in .png or .svg")
    assert server is not None
    with ServerClient(server) as client:
        problems: list[Any] = []
        key = server_key(client, log_key, state, problems)
        if problems:
            fail("; ".join(str(p.message) for p in problems))
        url = label_url(client, key, sku, lot, shipment)
    write_output(out, qr_png(url) if suffix == ".png" else qr_svg(url))
    if output_format == "json":
        typer.echo(json.dumps({"file": str(out), "url": url}))
    else:
        typer.echo(f"wrote {out}: {url}")


@app.command()
@handled
def export(
    out: Annotated[Path, typer.Option("--out", help="bundle file to write")],
    server: Annotated[str | None, typer.Option("--server", help="export from this server")] = None,
    db: Annotated[str | None, typer.Option("--db", help="export from this database (URL)")] = None,
    log_key: LogKeyOption = None,
    output_format: FormatOption = "text",
) -> None:
    """Write a single-file bundle (entries, actor keys, checkpoint, log key) that `verify --bundle` checks offline.

    \b
    Example: chainproof export --server https://trace.example --out ledger.cpb
    """
    from cli.audit import from_database, from_server, write_export
    from cli.client import ServerClient

    if (server is None) == (db is None):
        fail("give exactly one of --server or --db")
    if server is not None:
        snapshot = from_server(ServerClient(server))
    else:
        settings = settings_for(db)
        snapshot = from_database(settings.database_url, settings.key_file, log_key, None)
    written = write_export(snapshot, out)
    if output_format == "json":
        typer.echo(json.dumps({"bundle": str(out), "entries": written}))
    else:
        typer.echo(f"wrote {written} entries to {out}")


@app.command()
@handled
def monitor(
    server: Annotated[str, typer.Option("--server", envvar="CHAINPROOF_SERVER", help="the log's server")],
    log_key: LogKeyOption = None,
    state: StateOption = None,
    interval: Annotated[float, typer.Option(min=1, help="seconds between checks")] = 60.0,
    once: Annotated[bool, typer.Option("--once", help="check once and exit")] = False,
    watch_names: Annotated[
        Path | None,
        typer.Option(
            "--watch-names",
            help="names to watch, one a line (NAME @ACTOR_ID marks its genuine holder): alert when an actor is "
            "registered under a look-alike (case, spacing and Unicode confusables folded)",
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy", help="a C2SP tlog-policy file: its log key, and its witness quorum on each checkpoint"
        ),
    ] = None,
    output_format: FormatOption = "text",
) -> None:
    """Watch a log: every interval, prove the new checkpoint extends the last one seen (consistency proof).
    Exits 1 at once if the log was rewritten, truncated or forked, or (--watch-names) if an actor was
    registered under a name that reads as a watched one, naming the entries.

    \b
    Example: chainproof monitor --server https://trace.example --interval 300 --watch-names labs.txt
    """
    import time

    from cli.audit import State, monitor_step, read_policy, read_watched_names
    from cli.client import ServerClient

    watched = read_watched_names(watch_names) if watch_names is not None else []
    witness_policy = read_policy(policy) if policy is not None else None
    if witness_policy is not None and log_key is None and len(witness_policy.logs) == 1:
        log_key = str(witness_policy.logs[0].key)
    with ServerClient(server) as client:
        problems: list[Any] = []
        key = server_key(client, log_key, state, problems)
        remembered = State(state, key.name)
        while True:
            if not problems:
                problems, size = monitor_step(client, key, remembered, watched, witness_policy)
            ok = not problems
            if output_format == "json":
                typer.echo(
                    json.dumps(
                        {"ok": ok, "tree_size": size if ok else None, "problems": [_problem_json(p) for p in problems]}
                    )
                )
            elif ok:
                typer.echo(f"ok: log size {size}, consistent with everything seen before")
            else:
                for problem in problems:
                    typer.echo(f"PROBLEM {problem}")
            if not ok:
                raise typer.Exit(1)
            if once:
                return
            time.sleep(interval)


@app.command()
@handled
def actors(
    server: Annotated[str | None, typer.Option("--server", help="the log's server")] = None,
    bundle: Annotated[Path | None, typer.Option("--bundle", help="an exported bundle")] = None,
    log_key: LogKeyOption = None,
    state: StateOption = None,
    output_format: FormatOption = "text",
) -> None:
    """Every actor and key as the log's registrations say, with the log index that registered, changed, bound or
    revoked each; operator-attested registrations (signed by the log key) and proofs of possession are marked.

    From a server, the registrations are proven into its signed checkpoint (one inclusion proof per actor); from
    a bundle, the whole bundle is verified first. Exits 1 if anything does not hold.

    \b
    Example: chainproof actors --server https://trace.example
    """
    from cli.audit import from_bundle, run_full_verification, server_registry

    if (server is None) == (bundle is None):
        fail("give --server URL or --bundle FILE")
    problems: list[Any] = []
    if bundle is not None:
        snapshot = from_bundle(bundle)
        report = run_full_verification(snapshot, snapshot.published_key, None, show_progress=False)
        registry, problems = report.registry, report.problems
    else:
        from cli.client import ServerClient

        assert server is not None  # one of the two, checked above
        with ServerClient(server) as client:
            key = server_key(client, log_key, state, problems)
            registry, found = server_registry(client, key, client.get_text("/v1/log/checkpoint"))
            problems += found
    if registry is None:
        fail("the bundle holds no registrations to list")
    listed = [_registered_json(actor, registry) for actor in sorted(registry.actors.values(), key=lambda a: a.id)]
    if output_format == "json":
        typer.echo(json.dumps({"ok": not problems, "actors": listed, "problems": [_problem_json(p) for p in problems]}))
    else:
        for actor in listed:
            typer.echo(_registered_line(actor))
            for listed_key in actor["keys"]:
                typer.echo("  " + _registered_line(listed_key))
        for problem in problems:
            typer.echo(f"PROBLEM {problem}")
    if problems:
        raise typer.Exit(1)


def _registered_line(item: dict[str, Any]) -> str:
    """An actor or a key of `actors`, as a line of text."""
    marks = [
        m
        for m, on in (("possession proven", item.get("possession")), ("operator-attested", item["operator_attested"]))
        if on
    ]
    if "key_id" in item:
        revoked = "" if item["revoked_at_index"] is None else f", revoked at {item['revoked_at_index']}"
        line = f"key {item['key_id']}  bound at {item['bound_at_index']}{revoked}"
    else:
        changed = item["changed_at_index"]
        line = f"{item['role']:<9} {item['id']}  {item['name']!r}  registered at {item['registered_at_index']}"
        line += f", changed at {changed}" if changed != item["registered_at_index"] else ""
    return line + (f"  ({', '.join(marks)})" if marks else "")


def _registered_json(actor: Any, registry: Any) -> dict[str, Any]:
    keys = sorted((k for k in registry.keys.values() if k.actor_id == actor.id), key=lambda k: k.added_at)
    return {
        "id": actor.id,
        "name": actor.name,
        "role": actor.role.value,
        "registered_at_index": actor.registered_at,
        "changed_at_index": actor.changed_at,
        "operator_attested": actor.operator_attested,
        "keys": [
            {
                "key_id": k.key_id,
                "bound_at_index": k.added_at,
                "revoked_at_index": k.revoked_at,
                "revoked_reason": k.revoked_reason,
                "possession": k.possession,
                "operator_attested": k.operator_attested,
            }
            for k in keys
        ],
    }


@certificate_app.command("get")
@handled
def certificate_get(
    sku: SkuOption,
    lot: LotOption,
    out: Annotated[Path, typer.Option("--out", help="file to write: .pdf, or .json for the certificate alone")],
    server: ServerOption = "http://127.0.0.1:8000",
    output_format: FormatOption = "text",
) -> None:
    """Fetch a batch's certificate of authenticity (refused for a recalled batch).

    \b
    Example: chainproof certificate get --sku COF-1 --lot L7 --out cert.pdf --server https://trace.example
    """
    from cli.client import ServerClient

    suffix = out.suffix.lower()
    if suffix not in (".pdf", ".json"):
        fail("--out must end in .pdf or .json")
    assert server is not None
    with ServerClient(server) as client:
        body = client.request("GET", f"/v1/batches/{sku}/{lot}/certificate{suffix}").content
    write_output(out, body)
    if output_format == "json":
        typer.echo(json.dumps({"file": str(out), "bytes": len(body)}))
    else:
        typer.echo(f"wrote {out} ({len(body)} bytes)")


@certificate_app.command("verify")
@handled
def certificate_verify(
    file: Annotated[Path, typer.Argument(help="certificate PDF, or its certificate JSON")],
    log_key: LogKeyOption = None,
    server: Annotated[
        str | None, typer.Option("--server", help="also check the live log: same history, and no recall since")
    ] = None,
    state: StateOption = None,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="a C2SP tlog-policy file: its log key, and its witness quorum on the checkpoint"),
    ] = None,
    output_format: FormatOption = "text",
) -> None:
    """Check a certificate: the log's signature, and every claim against the evidence it carries (each event's
    signature, hash links and inclusion proof, the signed checkpoint). Offline unless --server is given, which
    also checks that no recall has revoked it since. Exit 0 valid, 1 invalid or revoked, 2 usage errors.

    The log key comes from --log-key, else the one remembered for that log (see `verify`), else the server's
    published key with --server (trusted on first use); a certificate never vouches for its own key.

    \b
    Example: chainproof certificate verify cert.pdf --log-key 'trace.example/log+1a2b3c4d+AV...'
    """
    from certificates.core import verify_certificate
    from certificates.pdf import certificate_from_file
    from cli.audit import State, certificate_status, parse_key, read_policy, witness_check

    witness_policy = read_policy(policy) if policy is not None else None
    if witness_policy is not None and log_key is None and len(witness_policy.logs) == 1:
        log_key = str(witness_policy.logs[0].key)  # the policy names the log to trust
    try:
        raw = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    certificate = certificate_from_file(raw)
    named = parse_key(certificate.log_key, "the certificate's log key")
    problems: list[Any] = []
    remembered = State(state, named.name)
    key_text = log_key or remembered.log_key
    client = None
    if server is not None:
        from cli.client import ServerClient

        client = ServerClient(server)
        key = server_key(client, log_key, state, problems)
    elif key_text:
        key = parse_key(key_text, "--log-key" if log_key else str(remembered.path))
    else:
        fail(
            f"no trusted log key for {named.name}: give --log-key (the certificate names {named}; compare it with "
            "the key the log publishes), or --server"
        )
    report = verify_certificate(certificate, key)
    problems += report.problems
    claims = report.claims or {}
    batch = claims.get("batch") or {}
    origin = claims.get("origin") or {}
    # only what the signature vouches for: a certificate that does not verify says nothing about its batch
    summary: dict[str, Any] = {
        "certificate": report.serial,
        "batch": f"{batch.get('sku')}/{batch.get('lot')}" if report.claims is not None else None,
        "product": origin.get("product"),
        "issued_at": claims.get("issued_at"),
        "tree_size": (claims.get("checkpoint") or {}).get("size"),
        "revocation": "not checked (offline; add --server)",
    }
    if report.claims is None:
        summary["revocation"] = "not checked: the certificate's signature does not verify with the log key given"
    elif witness_policy is not None:  # its checkpoint, as witnesses cosigned it when the certificate was issued
        found, summary["witnesses"] = witness_check(certificate.checkpoint, key, witness_policy)
        problems += found
    if client is not None:
        with client:
            if report.claims is not None:
                found, status = certificate_status(
                    client,
                    key,
                    certificate.checkpoint,
                    list(claims.get("entries") or []),
                    str(batch.get("sku")),
                    str(batch.get("lot")),
                )
                problems += found
                summary["revocation"] = (
                    "REVOKED by a recall"
                    if status["revoked"]
                    else f"not revoked: no recall of {summary['batch']} in the log up to tree size "
                    f"{status['checked_against_tree_size']}"
                )
    summary["ok"] = report.claims is not None and not problems
    if output_format == "json":
        _print_report(problems, summary, output_format)
    else:  # the recall check on a line of its own, as a sentence: what a buyer reads first after the verdict
        _print_report(problems, {k: v for k, v in summary.items() if k != "revocation"}, output_format)
        typer.echo(f"recall check: {summary['revocation']}")
    raise typer.Exit(0 if summary["ok"] else 1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except (LedgerError, CliError) as exc:  # anything a command did not turn into its own message: one line
        typer.echo(f"chainproof: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:  # a defect, not the user's doing: still one line, and a way to get the rest
        if os.environ.get("CHAINPROOF_DEBUG"):
            raise
        typer.echo(
            f"chainproof: unexpected error ({exc.__class__.__name__}: {exc}); this is a bug: please report it with "
            "the output of the same command run with CHAINPROOF_DEBUG=1",
            err=True,
        )
        sys.exit(2)


# last: the sla and epcis commands use this module's options and helpers
from cli.epcis import epcis_app  # noqa: E402
from cli.sla import sla_app  # noqa: E402
from cli.tiles import tiles_app  # noqa: E402
from cli.witness import witness_app  # noqa: E402

app.add_typer(sla_app, name="sla")
app.add_typer(epcis_app, name="epcis")
app.add_typer(tiles_app, name="tiles")
app.add_typer(witness_app, name="witness")
