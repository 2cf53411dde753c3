"""Certificates of authenticity for a batch: the signed certificate with its evidence (JSON) and the PDF."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import LotPath, SettingsDep, SkuPath, StoreDep
from api.pages.view import batch_view
from api.urls import product_url
from certificates.core import Certificate
from certificates.pdf import render_certificate_pdf
from ledger.storage import LedgerStore

router = APIRouter(prefix="/v1/batches", tags=["certificates"])

_REFUSED: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such batch"},
    409: {"description": "The batch is recalled (its certificates are revoked) or does not verify"},
}


def _issue(store: LedgerStore, base_url: str, sku: str, lot: str) -> Certificate:
    view = batch_view(store, sku, lot)
    state = view.report.state
    return view.certificate(
        store.signer,
        page_url=product_url(base_url, sku, lot, state.gtin if state else None),
        issued_at=datetime.now(UTC),
    )


@router.get(
    "/{sku}/{lot}/certificate.json",
    summary="Signed certificate of authenticity with its evidence (JSON)",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}, **_REFUSED},
)
def certificate_json(sku: SkuPath, lot: LotPath, store: StoreDep, settings: SettingsDep) -> Response:
    """The certificate as a signed note by the log key, with what anyone needs to check it offline: the signed
    checkpoint, every entry of the batch with its inclusion proof, and the signers' keys
    (`chainproof certificate verify`). Issued afresh against the latest checkpoint; refused for a recalled batch."""
    certificate = _issue(store, settings.base_url, sku, lot)
    return Response(
        certificate.to_bytes(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="certificate-{certificate.serial}.json"'},
    )


@router.get(
    "/{sku}/{lot}/certificate.pdf",
    summary="Certificate of authenticity (PDF, with the signed certificate attached)",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, **_REFUSED},
)
def certificate_pdf(sku: SkuPath, lot: LotPath, store: StoreDep, settings: SettingsDep) -> Response:
    """A printable certificate with the batch's QR code; the signed certificate and its evidence ride inside as
    the attachment `chainproof-certificate.json`."""
    certificate = _issue(store, settings.base_url, sku, lot)
    return Response(
        render_certificate_pdf(certificate),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="certificate-{certificate.serial}.pdf"'},
    )
