"""Certificates of authenticity for a batch: the signed certificate with its evidence (JSON) and the PDF."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import LotPath, SettingsDep, SkuPath, StoreDep
from api.pages.view import batch_view
from api.settings import Settings
from api.urls import product_url
from certificates.core import Certificate
from certificates.pdf import MOST_ROWS, render_certificate_pdf, status_text
from ledger.events import format_time
from ledger.storage import LedgerStore

router = APIRouter(prefix="/v1/batches", tags=["certificates"])

_REFUSED: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such batch"},
    409: {"description": "The batch is recalled (its certificates are revoked) or does not verify"},
}


def _issue(store: LedgerStore, settings: Settings, sku: str, lot: str, issued_at: datetime) -> Certificate:
    view = batch_view(store, sku, lot)
    state = view.report.state
    return view.certificate(
        store.signer,
        page_url=product_url(settings.base_url, sku, lot, state.gtin if state else None),
        issued_at=issued_at,
        platform=settings.platform_name,
        verify_url=f"{settings.base_url}/verify",
    )


def _sla_statuses(store: LedgerStore, settings: Settings, certificate: Certificate, as_of: datetime) -> dict[str, str]:
    """The status of each order the PDF draws, by the SLA rules over the certificate's checkpoint at the moment of
    issue: drawn, never signed (it depends on the lane's other shipments). One evaluation of every shipment (the
    columns the server keeps warm), not a lane query per order: a batch may hold thousands."""
    claims = certificate.claims()
    batch, size = claims["batch"], int(claims["checkpoint"]["size"])
    drawn = [str(shipment["id"]) for shipment in claims.get("shipments", [])[:MOST_ROWS]]
    if not drawn:
        return {}
    moment = int(as_of.timestamp())
    view = store.sla_evaluation(
        size=size, as_of_us=moment * 1_000_000 + 999_999, as_of=moment, parameters=settings.sla_parameters
    )
    statuses = {}
    for shipment_id in drawn:
        row = view.columns.row_of(batch["sku"], batch["lot"], shipment_id)
        if row is not None and view.seen[row]:
            status = view.status_of(row)
            statuses[shipment_id] = status_text(status.name, status.reason)
    return statuses


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
    certificate = _issue(store, settings, sku, lot, datetime.now(UTC))
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
    """A printable certificate: the batch's origin, inspections, journey and deliveries, with QR codes of the
    product page and of the page that checks the certificate in the browser; the signed certificate and its
    evidence ride inside as the attachment `chainproof-certificate.json`."""
    issued_at = datetime.now(UTC)
    certificate = _issue(store, settings, sku, lot, issued_at)
    statuses = _sla_statuses(store, settings, certificate, issued_at)
    return Response(
        render_certificate_pdf(certificate, sla_status=statuses, sla_as_of=format_time(issued_at)),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="certificate-{certificate.serial}.pdf"'},
    )
