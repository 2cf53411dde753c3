"""Reading a batch, verified against the latest checkpoint."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import LotPath, SettingsDep, SkuPath, StoreDep
from api.pages.view import batch_view
from api.routes.log import entry_out
from api.schemas import BatchOut, VerificationOut
from api.urls import product_url

router = APIRouter(prefix="/v1/batches", tags=["batches"])


@router.get("/{sku}/{lot}", response_model=BatchOut, summary="A batch's events in order, with a verification")
def get_batch(sku: SkuPath, lot: LotPath, store: StoreDep, settings: SettingsDep) -> BatchOut:
    """The batch's entries up to the latest checkpoint, each checked (signature, hash link, rules) and proven
    included in that checkpoint by the same verifier the CLI uses."""
    view = batch_view(store, sku, lot)
    state = view.report.state
    gtin = state.gtin if state else None
    return BatchOut(
        sku=sku,
        lot=lot,
        gtin=gtin,
        owner=state.owner if state else None,
        recalled=bool(state and state.recalled_at),
        recall_reason=state.recall_reason if state else None,
        product_url=product_url(settings.base_url, sku, lot, gtin),
        events=[entry_out(e) for e in view.entries],
        verification=VerificationOut(
            verified=view.report.ok,
            checkpoint_size=view.checkpoint_size,
            problems=[{"index": p.index, "code": p.code, "message": p.message} for p in view.report.problems],
        ),
    )
