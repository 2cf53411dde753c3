"""`chainproof sla`: delivery figures (report), open shipments at risk (at-risk, for cron), and scorecards (fetch,
verify), from a server, a database, or offline from an exported ledger (a bundle)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.errors import CliError
from cli.main import (
    DbOption,
    LogKeyOption,
    ServerOption,
    TokenFileOption,
    TokenOption,
    fail,
    handled,
    resolve_token,
    settings_for,
    write_output,
)

if TYPE_CHECKING:
    from cli.client import ServerClient
    from ledger.note import NoteVerifier
    from ledger.sla import Parameters
    from ledger.sla_columns import Evaluation, ShipmentColumns
    from ledger.storage import LedgerStore

sla_app: typer.Typer = typer.Typer(
    rich_markup_mode=None,
    help="Fulfilment SLA: who keeps their delivery promises, from signed events.",
    no_args_is_help=True,
)

BundleOption = Annotated[Path | None, typer.Option("--bundle", help="an exported ledger (chainproof export)")]
MerchantOption = Annotated[str | None, typer.Option("--merchant", help="only this merchant's shipments")]
CarrierOption = Annotated[str | None, typer.Option("--carrier", help="only shipments this carrier held")]
AsOfOption = Annotated[
    str | None, typer.Option("--as-of", help="the moment the figures are as of (RFC 3339 or YYYY-MM-DD); default now")
]
TreeSizeOption = Annotated[
    int | None, typer.Option("--tree-size", min=0, help="--server/--db: an issued checkpoint's size; default latest")
]


# -- where the shipments come from ------------------------------------------------------------------------------


@contextmanager
def _no_collection() -> Iterator[None]:
    """While a command reads every shipment and works on them: no garbage collection (the shipments are about a
    million objects that live until the command ends; collections scanning them cost a few tenths of a second)."""
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Source:
    """Shipments over one signed checkpoint: a database's projection (its store keeps them as columns), or folded
    from a bundle's entries (checked against the checkpoint's root)."""

    def __init__(self, size: int, root: str, note: str, columns: ShipmentColumns | LedgerStore) -> None:
        # a bundle's shipments folded into columns, or the store whose projection holds them
        self.size, self.root, self.note, self.columns = size, root, note, columns

    def evaluate(self, as_of: int, parameters: Parameters) -> Evaluation:
        from ledger.sla_columns import ShipmentColumns

        as_of_us = as_of * 1_000_000 + 999_999
        if isinstance(self.columns, ShipmentColumns):
            return self.columns.evaluate(self.size, as_of_us, as_of, parameters)
        return self.columns.sla_evaluation(size=self.size, as_of_us=as_of_us, as_of=as_of, parameters=parameters)


def _bundle_source(path: Path, log_key: str | None) -> Source:
    from cli.audit import parse_key
    from ledger.bundle import open_bundle
    from ledger.hashing import b64encode, leaf_hash
    from ledger.history import ShipmentFold
    from ledger.merkle import CompactRange
    from ledger.note import open_checkpoint

    try:
        header, entries = open_bundle(path)
    except FileNotFoundError as exc:
        raise CliError(f"bundle {path} not found") from exc
    key = parse_key(header.log_key, "the bundle's log key")
    if log_key is not None and str(parse_key(log_key, "--log-key")) != str(key):
        raise CliError(f"the bundle is signed by {key.name}'s key {header.log_key[:60]}..., not by --log-key")
    checkpoint = open_checkpoint(header.checkpoint, key).checkpoint
    tree, fold, chunk = CompactRange(), ShipmentFold(), []
    for entry in entries:
        if tree.size >= checkpoint.size:
            break
        tree.append(leaf_hash(entry.leaf))
        chunk.append(entry.leaf)
        if len(chunk) >= 5000:
            fold.add_leaves(chunk)
            chunk = []
    fold.add_leaves(chunk)
    if tree.size != checkpoint.size or tree.root() != checkpoint.root_hash:
        raise CliError(
            f"the bundle's entries do not give its checkpoint's root at tree size {checkpoint.size}: it is damaged "
            "or doctored (chainproof verify --bundle says where)"
        )
    from ledger.sla_columns import ShipmentColumns

    columns = ShipmentColumns.of(fold.records())
    return Source(checkpoint.size, b64encode(checkpoint.root_hash), header.checkpoint, columns)


def _database_source(db: str | None, log_key: str | None, tree_size: int | None) -> Source:
    from cli.audit import parse_key
    from ledger.hashing import b64encode
    from ledger.note import open_checkpoint
    from ledger.storage import LedgerStore, check_schema_current, create_db_engine, read_log_meta

    settings = settings_for(db)
    engine = create_db_engine(settings.database_url, read_only=True)
    check_schema_current(engine)
    meta = read_log_meta(engine)
    if log_key is not None:
        key = parse_key(log_key, "--log-key")
    elif meta is not None:
        key = parse_key(meta.verifier_key, "the database's log key")
    else:
        raise CliError("the database records no log key: give --log-key")
    store = LedgerStore(engine, None, key.name)
    note = store.latest_checkpoint() if tree_size is None else store.checkpoint_at(tree_size)
    if note is None:
        raise CliError("the database holds no checkpoint yet (the log has not issued one)")
    checkpoint = open_checkpoint(note, key).checkpoint
    return Source(checkpoint.size, b64encode(checkpoint.root_hash), note, store)


def _one_source(server: str | None, db: str | None, bundle: Path | None) -> str:
    given = [name for name, value in (("--server", server), ("--db", db), ("--bundle", bundle)) if value]
    if len(given) > 1:
        fail(f"give one of --server, --db and --bundle, not {' and '.join(given)}")
    return given[0] if given else "--server"


def _client(ctx: typer.Context, server: str | None, token: str | None, token_file: Path | None) -> ServerClient:
    from cli.client import ServerClient

    resolved = resolve_token(ctx, token, token_file)
    if resolved is None:
        fail("no API token: give --token-file, or set CHAINPROOF_TOKEN (the SLA figures are not public)")
    return ServerClient(server or "http://127.0.0.1:8000", resolved)


def _as_of(value: str | None) -> int:
    from ledger.sla import parse_bound

    if value is None:
        return int(time.time())
    try:
        return parse_bound(value, "--as-of")
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def _bound(value: str | None, what: str, *, end: bool = False) -> int | None:
    from ledger.sla import parse_bound

    if value is None:
        return None
    try:
        return parse_bound(value, what, end=end)
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def _parameters(window_share: float | None, within_hours: str | None) -> Parameters:
    from ledger.sla import DEFAULT_PARAMETERS, Parameters

    try:
        return Parameters(
            window_share=DEFAULT_PARAMETERS.window_share if window_share is None else window_share,
            within_hours=DEFAULT_PARAMETERS.within_hours
            if within_hours is None
            else tuple(int(h) for h in within_hours.split(",")),
        )
    except ValueError as exc:
        raise CliError(f"SLA thresholds: {exc}") from exc


# -- sla report -------------------------------------------------------------------------------------------------


@sla_app.command("report")
@handled
def sla_report(
    ctx: typer.Context,
    server: ServerOption = None,
    db: DbOption = None,
    bundle: BundleOption = None,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    log_key: LogKeyOption = None,
    merchant: MerchantOption = None,
    carrier: CarrierOption = None,
    lane: Annotated[str | None, typer.Option("--lane", help="only this lane, CC[-region]>destination")] = None,
    since: Annotated[str | None, typer.Option("--since", help="placed at or after (YYYY-MM-DD or RFC 3339)")] = None,
    until: Annotated[str | None, typer.Option("--until", help="placed before (a date: to the end of that day)")] = None,
    as_of: AsOfOption = None,
    group_by: Annotated[
        str | None, typer.Option("--group-by", help="merchant, carrier, lane, week (comma-separated)")
    ] = None,
    tree_size: TreeSizeOption = None,
    window_share: Annotated[
        float | None, typer.Option("--window-share", help="at risk past this share of the window (0.8)")
    ] = None,
    within_hours: Annotated[str | None, typer.Option("--within-hours", help="thresholds, e.g. 24,48")] = None,
    output_format: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
) -> None:
    """On-time, OTIF and within-24 h/48 h rates, lead times and custody times, over a signed checkpoint.

    The same checkpoint and --as-of give the same figures from --server, --db and --bundle (offline).

    \b
    Examples:
      chainproof sla report --server https://ledger.example --token-file ~/.chainproof-token --group-by week
      chainproof sla report --bundle ledger.cpbundle --merchant act_1a2b --as-of 2026-11-30 --format csv
    """
    from ledger.sla import Filters, checkpointed, report, report_csv

    if output_format not in ("table", "json", "csv"):
        fail(f"--format is {output_format!r}: choose table, json or csv")
    source = _one_source(server, db, bundle)
    groups = [g.strip() for g in (group_by or "").split(",") if g.strip()]
    if source == "--server":
        _bound(since, "--since")  # told by the flag's name here, not by the server's parameter's
        _bound(until, "--until", end=True)
        params: dict[str, Any] = {
            "merchant": merchant, "carrier": carrier, "lane": lane, "from": since, "to": until, "as_of": as_of,
            "group_by": ",".join(groups) or None, "tree_size": tree_size, "window_share": window_share,
            "within_hours": within_hours,
        }  # fmt: skip
        with _client(ctx, server, token, token_file) as client:
            body = client.get_json("/v1/sla/report", **{k: v for k, v in params.items() if v is not None})
    else:
        moment = _as_of(as_of)
        filters = Filters(merchant, carrier, lane, _bound(since, "--since"), _bound(until, "--until", end=True))
        with _no_collection():
            loaded = _bundle_source(bundle, log_key) if bundle else _database_source(db, log_key, tree_size)
            try:
                evaluated = loaded.evaluate(moment, _parameters(window_share, within_hours))
                body = report(evaluated, as_of=moment, filters=filters, group_by=groups)
            except ValueError as exc:
                raise CliError(str(exc)) from exc
        body = checkpointed(body, size=loaded.size, root=loaded.root)
    if output_format == "json":
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
    elif output_format == "csv":
        typer.echo(report_csv(body), nl=False)
    else:
        typer.echo(report_table(body))


def _percent(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def report_table(body: dict[str, Any]) -> str:
    """The report for a terminal: what it is over, then a row per group."""
    from ledger.sla import span

    hours = body["parameters"]["within_hours"]
    checkpoint = body["checkpoint"]
    lines = [
        f"SLA report as of {body['as_of']}, over checkpoint tree size {checkpoint['size']} root {checkpoint['root']}",
        "rates: on time / due; OTIF / due with known quantities; within N h / delivered or placed N h ago "
        "(definitions: --format json)",
        "",
    ]
    header = ["group", "shipments", "delivered", "on time", "OTIF", *[f"<={h}h" for h in hours]]
    header += ["late", "overdue", "at risk", "cancelled", "lead p50", "lead p90"]
    rows = [header]
    for group in [{"by": "total", "key": "", **body["total"]}, *body["groups"]]:
        lead = group.get("lead_time_s") or {}
        name = "total" if group["by"] == "total" else f"{group['by']} {group['key']}"
        rows.append(
            [
                name,
                str(group["shipments"]),
                str(group["delivered"]),
                _percent(group["on_time_rate"]),
                _percent(group["otif_rate"]),
                *[_percent(group.get(f"within_{h}h_rate")) for h in hours],
                str(group["late"]),
                str(group["overdue"]),
                str(group["at_risk"]),
                str(group["cancelled"]),
                span(lead["p50"]) if lead else "-",
                span(lead["p90"]) if lead else "-",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    null_reasons = [f"{k}: {v}" for k, v in body["total"].items() if k.endswith("_reason")]
    if null_reasons:
        lines += ["", *null_reasons]
    return "\n".join(lines)


# -- sla at-risk ------------------------------------------------------------------------------------------------


@sla_app.command("at-risk")
@handled
def sla_at_risk(
    ctx: typer.Context,
    server: ServerOption = None,
    db: DbOption = None,
    bundle: BundleOption = None,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    log_key: LogKeyOption = None,
    merchant: MerchantOption = None,
    carrier: CarrierOption = None,
    as_of: AsOfOption = None,
    output_format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """List open shipments at risk of arriving late, or overdue, with why. Exit 0 when there are none, 1 when
    there are some (for cron), 2 on error.

    \b
    Example: chainproof sla at-risk --server https://ledger.example --token-file ~/.chainproof-token
    """
    from ledger.sla import DEFAULT_PARAMETERS, Filters, shipment_view

    source = _one_source(server, db, bundle)
    if source == "--server":
        with _client(ctx, server, token, token_file) as client:
            listed = list(_server_shipments(client, merchant, carrier, as_of))
    else:
        with _no_collection():
            loaded = _bundle_source(bundle, log_key) if bundle else _database_source(db, log_key, None)
            evaluated = loaded.evaluate(_as_of(as_of), DEFAULT_PARAMETERS)
            rows = evaluated.listed(Filters(merchant=merchant, carrier=carrier), {"at_risk", "overdue"})
            listed = [shipment_view(evaluated.seen_record(row), evaluated.status_of(row)) for row in rows]
    if output_format == "json":
        typer.echo(json.dumps({"shipments": listed}, indent=2, ensure_ascii=False))
    elif not listed:
        typer.echo("no shipment is at risk or overdue")
    else:
        for item in listed:
            typer.echo(
                f"{item['status']:<8} {item['shipment_id']} ({item['sku']}/{item['lot']}, {item['lane']}) promised by "
                f"{item['promised_by']}: {item['reason']}"
            )
    if listed:
        raise typer.Exit(1)


def _server_shipments(
    client: ServerClient, merchant: str | None, carrier: str | None, as_of: str | None
) -> Iterator[dict[str, Any]]:
    params = {"status": "at_risk,overdue", "merchant": merchant, "carrier": carrier, "as_of": as_of, "limit": 1000}
    page = client.get_json("/v1/sla/shipments", **{k: v for k, v in params.items() if v is not None})
    while True:
        yield from page["shipments"]
        if not page.get("next"):
            return
        page = client.get_json(page["next"])


# -- scorecards -------------------------------------------------------------------------------------------------


@sla_app.command("scorecard")
@handled
def sla_scorecard(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="where to write the scorecard (JSON)")],
    merchant: MerchantOption = None,
    since: Annotated[str | None, typer.Option("--since", help="placed at or after (YYYY-MM-DD or RFC 3339)")] = None,
    until: Annotated[str | None, typer.Option("--until", help="placed before (a date: to the end of that day)")] = None,
    as_of: AsOfOption = None,
    server: ServerOption = None,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
) -> None:
    """Fetch a merchant's scorecard: its delivery figures signed by the log key, to hand to a buyer or a platform
    (who checks it with `chainproof sla verify`). A merchant gets its own; admins and auditors name --merchant.

    \b
    Example: chainproof sla scorecard --server https://ledger.example --since 2026-11-01 --out scorecard.json
    """
    _bound(since, "--since")  # told by the flag's name here, not by the server's parameter's
    _bound(until, "--until", end=True)
    params = {"merchant": merchant, "from": since, "to": until, "as_of": as_of}
    with _client(ctx, server, token, token_file) as client:
        body = client.get_json("/v1/sla/scorecard", **{k: v for k, v in params.items() if v is not None})
    from ledger.scorecard import Scorecard

    card = Scorecard.from_bytes(json.dumps(body).encode("utf-8"))
    write_output(out, card.to_bytes())
    claims = card.claims
    total = claims["total"]
    typer.echo(
        f"scorecard of {claims['merchant']} as of {claims['as_of']} over tree size {claims['checkpoint']['size']}: "
        f"{total['shipments']} shipments, on time {_percent(total['on_time_rate'])}; written to {out}"
    )


@sla_app.command("verify")
@handled
def sla_verify(
    scorecard: Annotated[Path, typer.Argument(help="the scorecard file (JSON)")],
    bundle: BundleOption = None,
    server: ServerOption = None,
    log_key: LogKeyOption = None,
    output_format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Recompute a scorecard's figures from the log (a bundle, or the entries a server serves) and compare: exit 0
    if every figure holds, 1 naming each one that differs (or a signature that does not verify), 2 on error.

    The log key is --log-key, else the bundle's, else the server's (say which you trust: --log-key).

    \b
    Example: chainproof sla verify scorecard.json --bundle ledger.cpbundle --log-key 'ledger.example/log+...'
    """
    from ledger.scorecard import Scorecard, verify_scorecard

    source = _one_source(server, None, bundle)
    try:
        card = Scorecard.from_bytes(scorecard.read_bytes())
    except FileNotFoundError:
        fail(f"scorecard {scorecard} not found")
    except OSError as exc:
        fail(f"cannot read {scorecard}: {exc.strerror}")
    size = int(card.claims.get("checkpoint", {}).get("size", 0))
    if source == "--bundle":
        assert bundle is not None
        key, leaves = _bundle_leaves(bundle, log_key)
        check = verify_scorecard(card, key, leaves)
    else:
        from cli.audit import parse_key
        from cli.client import ServerClient

        with ServerClient(server or "http://127.0.0.1:8000") as client:
            key = parse_key(log_key or client.get_text("/v1/log/key"), "--log-key" if log_key else "the server's key")
            check = verify_scorecard(card, key, (leaf for _index, leaf in client.entries(0, size)))
    if output_format == "json":
        typer.echo(json.dumps({"ok": check.ok, "problems": check.problems, "claims": check.claims}, indent=2))
    elif check.ok:
        claims = check.claims
        typer.echo(
            f"scorecard of {claims['merchant']} holds: every figure recomputed from the log over tree size "
            f"{claims['checkpoint']['size']} as of {claims['as_of']}"
        )
    else:
        for problem in check.problems:
            typer.echo(f"FAIL {problem}")
    if not check.ok:
        raise typer.Exit(1)


def _bundle_leaves(path: Path, log_key: str | None) -> tuple[NoteVerifier, Iterator[bytes]]:
    from cli.audit import parse_key
    from ledger.bundle import open_bundle

    try:
        header, entries = open_bundle(path)
    except FileNotFoundError as exc:
        raise CliError(f"bundle {path} not found") from exc
    key = parse_key(log_key or header.log_key, "--log-key" if log_key else "the bundle's log key")
    return key, (entry.leaf for entry in entries)
