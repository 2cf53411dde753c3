"""Reading a batch, verified against the latest checkpoint."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SettingsDep, StoreDep
from api.routes.log import entry_out
from api.schemas import BatchOut, VerificationOut
from api.urls import product_url
from ledger.note import open_checkpoint
from ledger.verify import verify_batch

router = APIRouter(prefix="/v1/batches", tags=["batches"])


@router.get("/{sku}/{lot}", response_model=BatchOut, summary="A batch's events in order, with a verification")
def get_batch(sku: str, lot: str, store: StoreDep, settings: SettingsDep) -> BatchOut:
    """The batch's entries up to the latest checkpoint, each checked (signature, hash link, rules) and proven
    included in that checkpoint by the same verifier the CLI uses."""
    note = store.checkpoint()
    size = open_checkpoint(note, store.signer.verifier, store.origin).checkpoint.size
    found = [e for e in store.batch_entries(sku, lot) if e.stored_index is not None and e.stored_index < size]
    pairs = [(e.stored_index or 0, e.leaf) for e in found]
    proofs = {index: store.inclusion_proof(index, size) for index, _leaf in pairs}
    directory = store.directory()
    report = verify_batch(sku, lot, pairs, proofs, directory, store.signer.verifier, note, origin=store.origin)
    state = report.state
    gtin = state.gtin if state else None
    return BatchOut(
        sku=sku,
        lot=lot,
        gtin=gtin,
        owner=state.owner if state else None,
        recalled=bool(state and state.recalled_at),
        recall_reason=state.recall_reason if state else None,
        product_url=product_url(settings.base_url, sku, lot, gtin),
        events=[entry_out(e) for e in found],
        verification=VerificationOut(
            verified=report.ok,
            checkpoint_size=size,
            problems=[{"index": p.index, "code": p.code, "message": p.message} for p in report.problems],
        ),
    )
