"""The log as C2SP tlog-tiles under /tlog/ (ledger/tiles.py): the checkpoint, hash tiles and entry bundles, with
caching headers that let a CDN keep tiles forever and the checkpoint a few seconds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import Response

from api.deps import StoreDep
from api.problems import ProblemError
from ledger.errors import EncodingError, ValidationError
from ledger.tiles import parse_path

router = APIRouter(prefix="/tlog", tags=["tiles"])
IMMUTABLE = "public, max-age=31536000, immutable"
"""A tile's bytes never change: a full tile is final, and a partial one of a given width is always the same."""
CHECKPOINT_CACHE = "public, max-age=5"


@router.get(
    "/checkpoint",
    summary="The log's latest signed checkpoint (C2SP tlog-checkpoint), as tiled logs serve it",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def tlog_checkpoint(store: StoreDep) -> Response:
    return Response(
        store.cosigned(store.checkpoint()),
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": CHECKPOINT_CACHE},
    )


@router.get(
    "/tile/{path:path}",
    summary="A hash tile or an entry bundle (C2SP tlog-tiles)",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        400: {"description": "Not a tile path"},
        404: {"description": "A tile the log does not hold (yet)"},
        409: {"description": "An entry too long for an entry bundle (over 65,535 bytes)"},
    },
)
def tlog_tile(
    path: Annotated[str, PathParam(description="<L>/<N>[.p/<W>] or entries/<N>[.p/<W>]")], store: StoreDep
) -> Response:
    """`/tlog/tile/<L>/<N>[.p/<W>]` (hashes) and `/tlog/tile/entries/<N>[.p/<W>]` (entries, each prefixed by its
    big-endian uint16 length), with N in 3-digit groups (`x001/x234/067`)."""
    try:
        tile = parse_path("tile/" + path)
    except EncodingError as exc:
        raise ProblemError(400, str(exc), "bad-tile-path") from exc
    try:
        body = store.tile(tile)
    except ValidationError as exc:
        raise ProblemError(409, str(exc), "entry-too-long") from exc
    return Response(body, media_type="application/octet-stream", headers={"Cache-Control": IMMUTABLE})
