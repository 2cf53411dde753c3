"""GS1 EPCIS 2.0: a batch as an EPCISDocument (docs/epcis.md has the mapping)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import LotPath, SettingsDep, SkuPath, StoreDep
from api.pages.view import batch_view
from api.problems import ProblemError
from ledger.epcis.export import Places, batch_document

router = APIRouter(tags=["epcis"])

_REFUSED: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such batch"},
    409: {"description": "The batch does not verify: it is not exported"},
    422: {"description": "An event names a unit with no UN/ECE Rec 20 code: it is never guessed"},
}


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
    document = batch_document(view.report, view.registry.rule_actors, Places(settings.base_url), datetime.now(UTC))
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(
        body,
        media_type="application/ld+json",
        headers={"Content-Disposition": f'inline; filename="{sku}-{lot}.epcis.jsonld"'},
    )
