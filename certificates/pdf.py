"""The certificate as a PDF: readable by a person, with the signed certificate and its evidence attached inside
(`chainproof-certificate.json`), so the printed page and the machine-checkable file never part.

The page shows what the signed claims say; a checker trusts the attachment, never the drawn text (anyone can edit
a PDF's text, no one can forge the log's signature). The QR code leads to the live product page, which shows a
recall made after the certificate was issued; the second, to the page where a browser checks the certificate
itself (api/static/certificate.js).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pycountry
import reportlab
from pypdf import PdfReader, PdfWriter
from pypdf.errors import PdfReadError
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from certificates.core import Certificate
from certificates.qr import qr_png
from ledger.errors import EncodingError
from ledger.events import parse_time

ATTACHMENT_NAME = "chainproof-certificate.json"
_LATIN, _LATIN_BOLD, _CJK = "ChainproofVera", "ChainproofVera-Bold", "STSong-Light"


@cache
def _fonts() -> None:
    # Vera ships with reportlab and is embedded; CJK text uses the standard Adobe CID font the viewer supplies.
    fonts_dir = Path(reportlab.__file__).parent / "fonts"
    pdfmetrics.registerFont(TTFont(_LATIN, str(fonts_dir / "Vera.ttf")))
    pdfmetrics.registerFont(TTFont(_LATIN_BOLD, str(fonts_dir / "VeraBd.ttf")))
    pdfmetrics.registerFont(UnicodeCIDFont(_CJK))


def _text(value: object) -> str:
    """Escaped Paragraph markup, switching to the CJK font for text Vera cannot draw."""
    text = escape("" if value is None else str(value))
    if any(ord(ch) > 0x24F for ch in text):
        return f'<font name="{_CJK}">{text}</font>'
    return text


def _day(value: object) -> str:
    return parse_time(str(value)).strftime("%Y-%m-%d") if value else ""


def _moment(value: object) -> str:
    return parse_time(str(value)).strftime("%Y-%m-%d %H:%M UTC")


def _country(code: object) -> str:
    country = pycountry.countries.get(alpha_2=str(code or ""))
    return f"{country.name} ({code})" if country else str(code or "")


def _quantity(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


MOST_ROWS = 120
"""Rows a table of the journey or of deliveries draws at most: a batch of any size keeps a readable certificate (the
attached file holds every step)."""
_STATUS_WORDS = {
    "on_time": "on time",
    "late": "late",
    "in_transit": "in transit",
    "at_risk": "at risk",
    "overdue": "overdue",
    "cancelled": "cancelled",
}


def status_text(status: str, reason: str | None = None) -> str:
    """A shipment's SLA status as the certificate draws it, with the rule's reason where there is one."""
    words = _STATUS_WORDS.get(status, status)
    return f"{words}: {reason}" if reason else words


def render_certificate_pdf(
    certificate: Certificate, *, sla_status: Mapping[str, str] | None = None, sla_as_of: str | None = None
) -> bytes:
    """An A4 certificate with its two QR codes (the live product page, the page that checks this certificate) and
    the certificate file attached, drawn from its signed claims. `sla_status` (shipment id -> text) is drawn beside
    the delivery record as the platform's reading at `sla_as_of`, marked as not certified."""
    _fonts()
    claims = certificate.claims()
    body = ParagraphStyle("body", fontName=_LATIN, fontSize=9.5, leading=13)
    small = ParagraphStyle("small", parent=body, fontSize=7.5, leading=10, textColor=colors.HexColor("#444444"))
    cell = ParagraphStyle("cell", parent=small, textColor=colors.black)
    title = ParagraphStyle("title", parent=body, fontName=_LATIN_BOLD, fontSize=20, leading=24)
    heading = ParagraphStyle(
        "heading", parent=body, fontName=_LATIN_BOLD, fontSize=11.5, leading=16, spaceBefore=8, keepWithNext=True
    )
    label = ParagraphStyle("label", parent=body, textColor=colors.HexColor("#555555"))
    caption = ParagraphStyle("caption", parent=small, alignment=1)

    batch, origin = claims["batch"], claims.get("origin") or {}
    checkpoint = claims["checkpoint"]
    entries = claims.get("entries", [])
    platform = str(claims.get("platform") or claims["issuer"])
    verify_url = claims.get("verify_url")
    story: list[Any] = []

    facts = [
        ("Product", origin.get("product")),
        ("SKU / lot", f"{batch['sku']} / {batch['lot']}"),
        ("GTIN", batch.get("gtin") or "-"),
        ("Producer", (origin.get("producer") or {}).get("name")),
        ("Origin", _country(origin.get("country"))),
        ("Region / facility", " / ".join(str(x) for x in (origin.get("region"), origin.get("facility")) if x) or "-"),
        ("Produced", _day(origin.get("produced_at"))),
        ("Quantity", f"{_quantity(origin.get('quantity'))} {origin.get('unit') or ''}".strip()),
    ]
    codes: list[Any] = [
        [Image(io.BytesIO(qr_png(claims["page_url"])), width=32 * mm, height=32 * mm)],
        [Paragraph("Live record", caption)],
    ]
    columns = [[codes[0][0]], [codes[1][0]]]
    if verify_url:
        columns[0].append(Image(io.BytesIO(qr_png(str(verify_url))), width=32 * mm, height=32 * mm))
        columns[1].append(Paragraph("Check this certificate", caption))
    qr_table = Table(columns, colWidths=[34 * mm] * len(columns[0]), style=_PLAIN)
    issued = f"Issued {_moment(claims['issued_at'])} by {_text(platform)}"
    if platform != claims["issuer"]:
        issued += f" (ledger {_text(claims['issuer'])})"
    header = Table(
        [
            [
                [
                    Paragraph("Certificate of Authenticity", title),
                    Spacer(1, 3 * mm),
                    Paragraph(f"Certificate no. <b>{certificate.serial}</b>", body),
                    Paragraph(issued, small),
                ],
                qr_table,
            ]
        ],
        colWidths=[174 * mm - 34 * mm * len(columns[0]), 34 * mm * len(columns[0])],
        hAlign="LEFT",
        style=_PLAIN,
    )
    story += [header, Paragraph(f"Live record: {_text(claims['page_url'])}", small)]
    if verify_url:
        story.append(Paragraph(f"Check this certificate in any browser: {_text(verify_url)}", small))

    story.append(Paragraph("Product and origin", heading))
    story.append(
        Table(
            [[Paragraph(name, label), Paragraph(_text(value), body)] for name, value in facts],
            colWidths=[40 * mm, 134 * mm],
            hAlign="LEFT",
            style=_PLAIN,
        )
    )

    story.append(Paragraph("Inspections", heading))
    inspections = claims.get("inspections", [])
    if inspections:
        rows = []
        for item in inspections:
            digest = str(item.get("report_sha256") or "")
            rows.append(
                [
                    _text((item.get("inspector") or {}).get("name")),
                    _text(item.get("standard")),
                    _text(item.get("result")),
                    _day(item.get("inspected_at")),
                    f"<font name='Courier' size='6.5'>{digest[:32]}<br/>{digest[32:]}</font>",
                ]
            )
        story.append(
            _grid(("Inspector", "Standard", "Result", "Date", "Report SHA-256"), rows, (38, 40, 18, 22, 56), cell)
        )
    else:
        story.append(Paragraph("No inspection is recorded for this batch.", body))

    if "journey" in claims:  # claims v2: the batch's movements and its orders' delivery record
        story.append(Paragraph("Journey", heading))
        journey = claims["journey"]
        if journey:
            rows = [_journey_row(step) for step in journey[:MOST_ROWS]]
            story.append(_grid(("When (UTC)", "Event", "Who", "Place", "Condition"), rows, (27, 24, 52, 45, 26), cell))
            if len(journey) > MOST_ROWS:
                story.append(Paragraph(f"... and {len(journey) - MOST_ROWS} later steps (all in the file).", small))
        else:
            story.append(Paragraph("No shipment or handoff is recorded for this batch.", body))
        story.append(Paragraph("Deliveries", heading))
        shipments = claims.get("shipments", [])
        if shipments:
            statuses = sla_status or {}
            rows = [
                _delivery_row(shipment, statuses.get(str(shipment.get("id")))) for shipment in shipments[:MOST_ROWS]
            ]
            story.append(
                _grid(
                    ("Order", "Destination", "Ordered", "Promised by", "Delivered", "Quantity", "Status*"),
                    rows,
                    (18, 20, 26, 26, 26, 20, 38),
                    cell,
                )
            )
            if len(shipments) > MOST_ROWS:
                story.append(Paragraph(f"... and {len(shipments) - MOST_ROWS} more orders (all in the file).", small))
            when = f" on {_moment(sla_as_of)}" if sla_as_of else ""
            story.append(
                Paragraph(
                    f"* Status by {_text(platform)}'s delivery rules{when}. It is not part of the signed "
                    "certificate: it depends on other orders of the same route and on when it is judged.",
                    small,
                )
            )
        else:
            story.append(Paragraph("No order is recorded for this batch.", body))

    story.append(Paragraph("Ledger record", heading))
    indices = ", ".join(str(e["index"]) for e in entries[:12]) + (" ..." if len(entries) > 12 else "")
    story.append(
        Paragraph(
            f"{len(entries)} signed events of this batch (log entries {indices}) are included in the ledger's "
            f"checkpoint of tree size {checkpoint['size']}, root hash {_text(checkpoint['root'])}.",
            body,
        )
    )
    story.append(Paragraph("How to check this certificate", heading))
    check_here = (
        f"Open <font name='Courier'>{_text(verify_url)}</font> in any browser and drop this PDF on the page: "
        "your browser itself checks the ledger's signature, every event's signature, hash link and inclusion "
        "proof, then asks the ledger whether a recall has revoked the certificate since. Nothing to install. "
        if verify_url
        else ""
    )
    story.append(
        Paragraph(
            f"This PDF carries the signed certificate and its evidence (every event, its inclusion proof, the "
            f"signed checkpoint and the signers' keys) as the attached file {ATTACHMENT_NAME}. {check_here}"
            f"Offline, with the Chainproof CLI: <font name='Courier'>chainproof certificate verify FILE "
            f"--log-key KEY</font> (add <font name='Courier'>--server URL</font> for the recall check). "
            f"The ledger's key is:",
            body,
        )
    )
    story.append(Paragraph(f"<font name='Courier'>{_text(certificate.log_key)}</font>", small))
    story.append(Spacer(1, 3 * mm))
    story.append(
        Paragraph(
            "Only the attached file is evidence: the text on this page is a reading of it. A recall revokes this "
            "certificate; the live record behind the first QR code always shows the current status.",
            small,
        )
    )

    def footer(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont(_LATIN, 7)
        canvas.setFillColor(colors.HexColor("#666666"))
        canvas.drawString(18 * mm, 9 * mm, f"Certificate no. {certificate.serial} - page {document.page}")
        canvas.restoreState()

    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"Certificate of Authenticity {certificate.serial}",
        author=platform,
        subject=f"{batch['sku']}/{batch['lot']}",
        creator="chainproof",
    )
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(buffer.getvalue())))
    writer.add_attachment(ATTACHMENT_NAME, certificate.to_bytes())
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


_PLAIN = TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)])


def _grid(columns: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int], style: Any) -> Table:
    """A table with a header row repeated on every page it spans (cells are Paragraph markup)."""
    return Table(
        [
            [Paragraph(f"<b>{name}</b>", style) for name in columns],
            *[[Paragraph(value, style) for value in row] for row in rows],
        ],
        colWidths=[w * mm for w in widths],
        hAlign="LEFT",
        repeatRows=1,
        style=TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ]
        ),
    )


def _minute(value: object) -> str:
    return parse_time(str(value)).strftime("%Y-%m-%d %H:%M") if value else ""


def _journey_row(step: Mapping[str, Any]) -> list[str]:
    kind = step.get("type")
    order = f" {_text(step['shipment'])}" if step.get("shipment") else ""
    if kind == "shipment":
        return [_minute(step.get("at")), f"order{order} placed", "", _text(step.get("destination")), ""]
    if kind == "handoff":
        conditions = []
        if step.get("temperature_c") is not None:
            conditions.append(f"{_quantity(step['temperature_c'])} \u00b0C")
        if step.get("humidity_pct") is not None:
            conditions.append(f"{_quantity(step['humidity_pct'])} % RH")
        who = f"{_text((step.get('from') or {}).get('name'))} to {_text((step.get('to') or {}).get('name'))}"
        return [_minute(step.get("at")), f"handoff{order}", who, _text(step.get("place")), ", ".join(conditions)]
    if kind == "delivery":
        return [
            _minute(step.get("at")),
            f"delivered{order}",
            _text((step.get("by") or {}).get("name")),
            _text(step.get("place") or ""),
            "",
        ]
    if kind == "shipment_cancel":
        return [_minute(step.get("at")), f"order{order} cancelled", "", "", ""]
    return [_minute(step.get("at")), _text(kind), "", "", ""]


def _delivery_row(shipment: Mapping[str, Any], status: str | None) -> list[str]:
    unit = _text(shipment.get("unit") or "")
    ordered = shipment.get("quantity")
    delivered = shipment.get("delivered_quantity")
    quantity = "" if ordered is None else f"{_quantity(ordered)} {unit}".strip()
    if delivered is not None:
        quantity += f" ({_quantity(delivered)} delivered)"
    if shipment.get("cancelled_at"):
        outcome = f"cancelled {_minute(shipment['cancelled_at'])}"
    else:
        outcome = _minute(shipment.get("delivered_at")) or "not yet"
    return [
        _text(shipment.get("id")),
        _text(shipment.get("destination")),
        _minute(shipment.get("placed_at")),
        _minute(shipment.get("promised_by")),
        outcome,
        quantity,
        _text(status or "-"),
    ]


def certificate_from_file(raw: bytes) -> Certificate:
    """A certificate from a certificate PDF (its attachment) or a certificate JSON file."""
    if not raw.startswith(b"%PDF-"):
        return Certificate.from_bytes(raw)
    try:
        attachments = PdfReader(io.BytesIO(raw)).attachments
        found = attachments.get(ATTACHMENT_NAME)
    except (PdfReadError, ValueError, KeyError) as exc:
        raise EncodingError(f"cannot read the PDF: {exc}") from exc
    if not found:
        raise EncodingError(f"the PDF carries no {ATTACHMENT_NAME}: it is not a Chainproof certificate")
    if len(found) != 1:
        raise EncodingError(f"the PDF carries {len(found)} files named {ATTACHMENT_NAME}: refusing to pick one")
    return Certificate.from_bytes(found[0])


__all__ = ["ATTACHMENT_NAME", "MOST_ROWS", "certificate_from_file", "render_certificate_pdf", "status_text"]
