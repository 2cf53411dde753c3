"""`chainproof epcis`: batches as GS1 EPCIS 2.0 documents (docs/epcis.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer

from cli.main import FormatOption, LotOption, ServerOption, SkuOption, handled, write_output

epcis_app: typer.Typer = typer.Typer(
    rich_markup_mode=None,
    help="GS1 EPCIS 2.0: export a batch as an EPCIS document.",
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
