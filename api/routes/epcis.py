"""GS1 EPCIS 2.0: a batch as an EPCISDocument (docs/epcis.md has the mapping)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from api.deps import LotPath, SettingsDep, SkuPath, StoreDep
from api.pages.view import batch_view
from api.problems import ProblemError
from api.schemas import BatchRefOut
from api.urls import product_url
from ledger.epcis.export import CONTEXT, Places, batch_document, events_of_entries
from ledger.epcis.query import encode_token, parse_query
from ledger.errors import NotFoundError, ValidationError
from ledger.events import format_time, gtin14
from ledger.identities import Registry

router = APIRouter(tags=["epcis"])

_REFUSED: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such batch"},
    409: {"description": "The batch does not verify: it is not exported"},
    422: {"description": "An event names a unit with no UN/ECE Rec 20 code: it is never guessed"},
}


def _places(base_url: str, registry: Registry) -> Places:
    """URIs for places, parties (by GLN where an actor registered one) and orders."""
    return Places(base_url, {actor.id: actor.gln for actor in registry.actors.values() if actor.gln})


@router.get(
    "/v1/batches/{sku}/{lot}/epcis",
    summary="The batch as a GS1 EPCIS 2.0 JSON-LD document",
    response_class=Response,
    responses={200: {"content": {"application/ld+json": {}}}, **_REFUSED},
)
def batch_epcis(sku: SkuPath, lot: LotPath, store: StoreDep, settings: SettingsDep) -> Response:
    """Every event of the batch up to the latest checkpoint, verified, as EPCIS 2.0 ObjectEvents in CBV
    vocabulary: each `eventID` is the event's CBV 2.0 event hash, and the document-level map
    `chainproof:provenance` gives each event's log index, entry hash and signer."""
    view = batch_view(store, sku, lot)
    if not view.report.ok:
        reasons = "; ".join(str(p) for p in view.report.problems[:3])
        raise ProblemError(409, f"batch {sku}/{lot} does not verify, so it is not exported: {reasons}")
    document = batch_document(view.report, _places(settings.base_url, view.registry), datetime.now(UTC))
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(
        body,
        media_type="application/ld+json",
        headers={"Content-Disposition": f'inline; filename="{sku}-{lot}.epcis.jsonld"'},
    )


@router.get(
    "/v1/epcis/events",
    summary="EPCIS 2.0 REST query (a subset): events by time, business step and class",
    response_class=Response,
    responses={
        200: {"content": {"application/ld+json": {}}, "description": "An EPCISQueryDocument"},
        400: {"description": "A parameter this server does not answer, or a malformed value: the problem names it"},
    },
)
def epcis_events(request: Request, store: StoreDep, settings: SettingsDep) -> Response:
    """The EPCIS 2.0 REST `events` resource, for what Chainproof records: `GE_eventTime`, `LT_eventTime`,
    `EQ_bizStep`, `MATCH_anyEPCClass` (a batch's GS1 Digital Link, a GTIN-level one, or the platform's batch link),
    `perPage` (default 100, at most 1,000) and `nextPageToken`. Events come in event-time order; a further page is
    linked by `Link: <...>; rel="next"` (and `chainproof:nextPageToken` in the body), and every page of a query
    reads the checkpoint its first page read. Any other parameter is refused by name."""
    try:
        query = parse_query(request.query_params.multi_items(), settings.base_url)
        found = store.epcis_page(query)
    except ValidationError as exc:
        raise ProblemError(400, str(exc), "bad-query") from exc
    places = _places(settings.base_url, store.registry())
    events, provenance = events_of_entries(found.entries, found.gtins, found.units, places)
    results: dict[str, Any] = {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": events}}
    headers = {}
    if found.next_after is not None:
        token = encode_token(found.size, *found.next_after)
        kept = [(k, v) for k, v in request.query_params.multi_items() if k != "nextPageToken"]
        link = f"{settings.base_url}/v1/epcis/events?{urlencode([*kept, ('nextPageToken', token)])}"
        headers["Link"] = f'<{link}>; rel="next"'
        results["chainproof:nextPageToken"] = token
    document = {
        "@context": CONTEXT,
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": format_time(datetime.now(UTC)),
        "epcisBody": {"queryResults": results},
        "chainproof:treeSize": found.size,
        "chainproof:provenance": provenance,
    }
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, media_type="application/ld+json", headers=headers)


@router.get(
    "/v1/gtins/{gtin}/lots/{lot}",
    response_model=BatchRefOut,
    summary="The batch a GTIN and lot identify (as a GS1 Digital Link or an EPCIS class names it)",
    responses={404: {"description": "No batch of this GTIN and lot"}},
)
def batch_by_gtin(
    gtin: Annotated[str, PathParam(pattern=r"^(\d{8}|\d{12,14})$", description="GTIN-8/12/13/14")],
    lot: LotPath,
    store: StoreDep,
    settings: SettingsDep,
) -> BatchRefOut:
    """The SKU and lot of the batch whose origin named this GTIN (compared as 14 digits) and this lot: what an
    EPCIS import needs to find the batch an event's class names."""
    found = store.batch_for_gtin(gtin, lot)
    if found is None:
        raise NotFoundError(f"no batch of GTIN {gtin} and lot {lot}")
    return BatchRefOut(
        sku=found[0], lot=lot, gtin=gtin14(gtin), product_url=product_url(settings.base_url, found[0], lot, gtin)
    )
