"""`chainproof tiles publish`: the log as C2SP tlog-tiles files any static web server, CDN or object store can
serve (ledger/tiles.py), written incrementally and atomically."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.errors import CliError
from cli.main import DbOption, FormatOption, handled, open_store, settings_for
from ledger.files import write_atomically

if TYPE_CHECKING:
    from ledger.storage import LedgerStore

tiles_app: typer.Typer = typer.Typer(
    rich_markup_mode=None,
    help="The log as static C2SP tlog-tiles: publish it for any web server or CDN.",
    no_args_is_help=True,
)


def publish(store: LedgerStore, out: Path) -> dict[str, Any]:
    """Publish the log's latest issued checkpoint: every tile and entry bundle its tree needs that `out` does not
    hold yet, then the checkpoint. A crash at any point leaves a valid tree of files: the checkpoint published
    before is still there, with every tile it needs, and the new one is written only after all of its tiles."""
    from ledger.note import Checkpoint, parse_note
    from ledger.tiles import bundles_of, tiles_of

    note = store.latest_checkpoint()
    if note is None:
        raise CliError("the log has issued no checkpoint yet: nothing to publish")
    size = Checkpoint.parse_body(parse_note(note).text).size
    written = kept = 0
    for tile in [*tiles_of(size), *bundles_of(size)]:
        path = out / tile.path
        if path.exists():  # tiles are immutable: one written before is the same
            kept += 1
            continue
        write_atomically(path, store.tile(tile))
        written += 1
    write_atomically(out / "checkpoint", note.encode("utf-8"))
    return {"tree_size": size, "tiles_written": written, "tiles_already_there": kept, "out": str(out)}


@tiles_app.command("publish")
@handled
def tiles_publish(
    out: Annotated[Path, typer.Option("--out", help="directory to publish into (served as the log's prefix)")],
    db: DbOption = None,
    follow: Annotated[bool, typer.Option("--follow", help="keep publishing each new checkpoint until stopped")] = False,
    interval: Annotated[float, typer.Option(min=0.5, help="--follow: seconds between looks for a new one")] = 5.0,
    output_format: FormatOption = "text",
) -> None:
    """Write the log's latest checkpoint, hash tiles and entry bundles as files (C2SP tlog-tiles paths), so a
    static server can serve the log with no database on the read path. Incremental: only tiles not there yet are
    written, each atomically, the checkpoint last.

    \b
    Example: chainproof tiles publish --db postgresql://postgres@127.0.0.1/chainproof --out /srv/log --follow
    """
    from ledger.errors import LedgerError

    store = open_store(settings_for(db), signing=False)
    last = -1
    while True:
        try:
            result = publish(store, out)
        except LedgerError as exc:
            raise CliError(str(exc)) from exc
        except OSError as exc:
            raise CliError(f"cannot write into {out}: {exc.strerror or exc}") from exc
        if result["tree_size"] != last:
            last = result["tree_size"]
            typer.echo(
                json.dumps(result)
                if output_format == "json"
                else f"published tree size {result['tree_size']} to {out}: {result['tiles_written']} tiles written, "
                f"{result['tiles_already_there']} already there"
            )
        if not follow:
            return
        time.sleep(interval)
