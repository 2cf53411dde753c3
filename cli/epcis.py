"""`chainproof epcis`: batches as GS1 EPCIS 2.0 documents (docs/epcis.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from cli.errors import CliError
from cli.main import (
    FormatOption,
    KeyOption,
    LotOption,
    ServerOption,
    SkuOption,
    TokenFileOption,
    TokenOption,
    fail,
    handled,
    resolve_token,
    send_events,
    write_output,
)

epcis_app: typer.Typer = typer.Typer(
    rich_markup_mode=None,
    help="GS1 EPCIS 2.0: export a batch as an EPCIS document, import EPCIS events as signed events.",
    no_args_is_help=True,
)


@epcis_app.command("export")
@handled
def epcis_export(
    sku: SkuOption,
    lot: LotOption,
    out: Annotated[Path | None, typer.Option("--out", help="file to write (default: standard output)")] = None,
    server: ServerOption = "http://127.0.0.1:8000",
    output_format: FormatOption = "text",
) -> None:
    """Export a batch's verified events as an EPCIS 2.0 JSON-LD document: CBV vocabulary, each eventID the event's
    CBV 2.0 hash, each event's log index, entry hash and signer in `chainproof:provenance`.

    \b
    Example: chainproof epcis export --sku COF-1 --lot L7 --out L7.epcis.jsonld --server https://trace.example
    """
    from cli.client import ServerClient

    assert server is not None
    with ServerClient(server) as client:
        body = client.request("GET", f"/v1/batches/{quote(sku, safe='')}/{quote(lot, safe='')}/epcis").content
    if out is None:
        sys.stdout.buffer.write(body + b"\n")
        return
    write_output(out, body)
    events = len(json.loads(body)["epcisBody"]["eventList"])
    if output_format == "json":
        typer.echo(json.dumps({"file": str(out), "events": events, "bytes": len(body)}))
    else:
        typer.echo(f"wrote {out}: {events} EPCIS events ({len(body)} bytes)")


@epcis_app.command("import")
@handled
def epcis_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="an EPCIS 2.0 JSON-LD document (EPCISDocument), at most 32 MiB")],
    server: ServerOption = "http://127.0.0.1:8000",
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    key: KeyOption = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="events per request")] = 500,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="check and map every event, report what would be recorded; send nothing")
    ] = False,
    output_format: FormatOption = "text",
) -> None:
    """Import an EPCIS 2.0 document: every event checked first (nothing is sent if one is invalid), each
    ObjectEvent mapped to the Chainproof event its business step means, signed with --key, and appended in
    event-time order. Events that mean nothing Chainproof records are skipped with the reason. A rerun sends
    nothing twice (a journal beside FILE, and events the log already holds are skipped); a stated eventID is kept.

    \b
    Example: chainproof epcis import shipment.jsonld --key me.pem --token-file me.token --server https://trace.example
    """
    from cli.client import ServerClient
    from cli.record import load_key

    token = resolve_token(ctx, token, token_file)
    private_key = load_key(key)
    if token is None:
        fail("no API token: give --token-file, or set CHAINPROOF_TOKEN")
    document = _read_document(file)
    assert server is not None
    with ServerClient(server, token) as client:
        plan = _plan(client, server, document)
        numbered = [(m.number, {"type": m.type.value, "sku": m.sku, "lot": m.lot, "data": m.data}) for m in plan.mapped]
        skipped = [{"event": s.number, "eventID": s.event_id, "reason": s.reason} for s in plan.skipped]
        if not numbered:
            summary: dict[str, Any] = {"events": 0, "recorded": 0, "dry_run": dry_run}
        else:
            summary = send_events(client, private_key, file, numbered, batch_size, output_format, dry_run)
    summary |= {"skipped": skipped}
    if output_format == "json":
        typer.echo(json.dumps(summary))
        return
    for item in skipped:
        named = f" ({item['eventID']})" if item["eventID"] else ""
        typer.echo(f"skipped event {item['event']}{named}: {item['reason']}")
    if dry_run:
        typer.echo(
            f"dry run: {summary.get('would_record', 0)} events would be recorded, {summary.get('already_in_log', 0)} "
            f"are already in the log, {len(skipped)} skipped; nothing was sent"
        )
    else:
        typer.echo(
            f"imported {summary.get('recorded', 0)} events ({summary.get('already_recorded', 0)} by an earlier run, "
            f"{summary.get('already_in_log', 0)} already in the log), {len(skipped)} skipped"
            + (f"; journal in {summary['journal']}" if "journal" in summary else "")
        )


def _read_document(path: Path) -> Any:
    """The document, parsed, and checked against GS1's EPCIS 2.0 JSON schema (errors name the event and field)."""
    from ledger.epcis.importer import MAX_DOCUMENT_BYTES
    from ledger.epcis.schema_check import schema_problems

    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise CliError(f"{path} is {size:,} bytes: an import reads at most {MAX_DOCUMENT_BYTES:,} (split it)")
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise CliError(f"{path} not found") from exc
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"{path} is not JSON: {exc}") from exc
    except RecursionError as exc:
        raise CliError(f"{path} nests its JSON too deeply to be an EPCIS document") from exc
    problems = schema_problems(document)
    if problems:
        more = f" (and {len(problems) - 1} more; nothing was sent)" if len(problems) > 1 else " (nothing was sent)"
        raise CliError(f"{path}: not a valid EPCIS 2.0 document: {problems[0]}{more}")
    return document


def _plan(client: Any, server: str, document: Any) -> Any:
    from functools import cache

    from cli.record import whoami
    from ledger.epcis.importer import Ledger, plan_import
    from ledger.errors import LedgerError
    from ledger.events import EventType, new_statement, validate_statement
    from ledger.kinds import Role
    from ledger.privacy import statement_problem
    from ledger.rules import ALLOWED

    me = whoami(client)
    listed = client.get_json("/v1/actors")
    actors = {str(a["id"]): str(a["role"]) for a in listed}
    glns = {str(a["gln"]): str(a["id"]) for a in listed if a.get("gln")}
    role = Role(actors[me])

    @cache  # once per batch, not once per event
    def batch_of_gtin(gtin: str, lot: str) -> str | None:
        found = client.get_json_if_found(f"/v1/gtins/{gtin}/lots/{quote(lot, safe='')}")
        return None if found is None else str(found["sku"])

    @cache
    def has_batch(sku: str, lot: str) -> bool:
        return client.get_json_if_found(f"/v1/batches/{quote(sku, safe='')}/{quote(lot, safe='')}", limit=1) is not None

    def check_data(kind: EventType, data: dict[str, Any]) -> None:
        statement = new_statement(kind.value, "IMPORT", "CHECK", me, "0" * 16, "2026-01-01T00:00:00Z", data)
        validate_statement(statement)
        personal = statement_problem(statement)
        if personal is not None:
            raise LedgerError(personal)

    ledger = Ledger(server.rstrip("/"), me, frozenset(actors), glns, ALLOWED[role], batch_of_gtin, has_batch)
    try:
        return plan_import(document, ledger, check_data)
    except LedgerError as exc:
        raise CliError(f"{exc} (nothing was sent)") from exc
