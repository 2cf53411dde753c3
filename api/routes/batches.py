"""Reading a batch, verified against the latest checkpoint."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query

from api.deps import LotPath, SettingsDep, SkuPath, StoreDep
from api.pages.view import summaries
from api.routes.log import entry_out
from api.schemas import BatchEvidenceOut, BatchOut, VerificationOut
from api.urls import product_url
from ledger.label import label_fragment

router = APIRouter(prefix="/v1/batches", tags=["batches"])
EVENTS_PER_PAGE = 1000
_LARGEST_INDEX = 2**53 - 1


@router.get("/{sku}/{lot}", response_model=BatchOut, summary="A batch's events in order, with a verification")
def get_batch(
    sku: SkuPath,
    lot: LotPath,
    store: StoreDep,
    settings: SettingsDep,
    after: Annotated[
        int | None, Query(ge=0, le=_LARGEST_INDEX, description="only events after this log index (the `next` link)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=EVENTS_PER_PAGE, description="events per page")] = EVENTS_PER_PAGE,
) -> BatchOut:
    """The batch's entries up to the latest checkpoint, a page at a time (`next` links the following page), and
    the server's check of the whole batch (signatures, hash links, rules; the chain is proven included in the
    checkpoint by an inclusion proof of its last entry), by the same verifier the CLI uses."""
    page = summaries(store).page(sku, lot)
    found = store.batch_range(sku, lot, after=after, before=page.checkpoint_size, first=limit + 1)
    more = len(found) > limit
    found = found[:limit]
    state = page.state
    next_url = None
    if more:
        next_url = f"/v1/batches/{quote(sku, safe='')}/{quote(lot, safe='')}?after={found[-1].stored_index}"
        if limit != EVENTS_PER_PAGE:
            next_url += f"&limit={limit}"
    page_url = product_url(settings.base_url, sku, lot, state.gtin)
    label = None
    if page.origin is not None:
        label = page_url + label_fragment(str(store.signer.verifier), page.origin.parsed.hash)
    return BatchOut(
        sku=sku,
        lot=lot,
        gtin=state.gtin,
        owner=state.owner,
        recalled=bool(state.recalled_at),
        recall_reason=state.recall_reason,
        product_url=page_url,
        label_url=label,
        events=[entry_out(e) for e in found],
        events_total=page.length,
        next=next_url,
        verification=VerificationOut(
            verified=page.ok,
            checkpoint_size=page.checkpoint_size,
            problems=[{"index": p.index, "code": p.code, "message": p.message} for p in page.problems],
        ),
    )


@router.get(
    "/{sku}/{lot}/evidence",
    response_model=BatchEvidenceOut,
    response_model_exclude_none=True,
    summary="The batch's newest events with what a browser needs to check them",
)
def batch_evidence(sku: SkuPath, lot: LotPath, store: StoreDep) -> BatchEvidenceOut:
    """What the product page's in-browser verifier checks, as JSON: the batch's newest events (up to a page of
    them) as an unbroken hash chain whose last entry is proven into the signed checkpoint, and the registration
    entries its signers' keys come from. The certificate page reads it to learn, verifiably, whether a recall
    followed a certificate."""
    page = summaries(store).page(sku, lot)
    return BatchEvidenceOut.model_validate(page.browser_data(str(store.signer.verifier)))
