"""The certificate as a PDF: readable by a person, with the signed certificate and its evidence attached inside
(`chainproof-certificate.json`), so the printed page and the machine-checkable file never part.

The page shows what the signed claims say; a checker trusts the attachment, never the drawn text (anyone can edit
a PDF's text, no one can forge the log's signature). The QR code leads to the live product page, which shows a
recall made after the certificate was issued.
"""

from __future__ import annotations

import io
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


def render_certificate_pdf(certificate: Certificate) -> bytes:
    """A one-page A4 certificate with its QR code and the certificate file attached, drawn from its signed
    claims."""
    _fonts()
    claims = certificate.claims()
    body = ParagraphStyle("body", fontName=_LATIN, fontSize=9.5, leading=13)
    small = ParagraphStyle("small", parent=body, fontSize=7.5, leading=10, textColor=colors.HexColor("#444444"))
    title = ParagraphStyle("title", parent=body, fontName=_LATIN_BOLD, fontSize=20, leading=24)
    heading = ParagraphStyle("heading", parent=body, fontName=_LATIN_BOLD, fontSize=11.5, leading=16, spaceBefore=8)
    label = ParagraphStyle("label", parent=body, textColor=colors.HexColor("#555555"))

    batch, origin = claims["batch"], claims.get("origin") or {}
    checkpoint = claims["checkpoint"]
    entries = claims.get("entries", [])
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
    qr = Image(io.BytesIO(qr_png(claims["page_url"])), width=42 * mm, height=42 * mm)
    header = Table(
        [
            [
                [
                    Paragraph("Certificate of Authenticity", title),
                    Spacer(1, 3 * mm),
                    Paragraph(f"Certificate no. <b>{certificate.serial}</b>", body),
                    Paragraph(f"Issued {_moment(claims['issued_at'])} by {_text(claims['issuer'])}", small),
                ],
                qr,
            ]
        ],
        colWidths=[128 * mm, 46 * mm],
        hAlign="LEFT",
        style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]),
    )
    story += [header, Paragraph(f"Scan for the live record: {_text(claims['page_url'])}", small)]

    story.append(Paragraph("Product and origin", heading))
    story.append(
        Table(
            [[Paragraph(name, label), Paragraph(_text(value), body)] for name, value in facts],
            colWidths=[40 * mm, 134 * mm],
            hAlign="LEFT",
            style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]),
        )
    )

    story.append(Paragraph("Inspections", heading))
    inspections = claims.get("inspections", [])
    if inspections:
        columns = ("Inspector", "Standard", "Result", "Date", "Report SHA-256")
        rows = [[Paragraph(f"<b>{h}</b>", small) for h in columns]]
        for item in inspections:
            digest = str(item.get("report_sha256") or "")
            rows.append(
                [
                    Paragraph(_text((item.get("inspector") or {}).get("name")), small),
                    Paragraph(_text(item.get("standard")), small),
                    Paragraph(_text(item.get("result")), small),
                    Paragraph(_day(item.get("inspected_at")), small),
                    Paragraph(f"<font name='Courier' size='6.5'>{digest[:32]}<br/>{digest[32:]}</font>", small),
                ]
            )
        story.append(
            Table(
                rows,
                colWidths=[38 * mm, 40 * mm, 18 * mm, 22 * mm, 56 * mm],
                hAlign="LEFT",
                style=TableStyle(
                    [
                        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.grey),
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                        ("LEFTPADDING", (0, 0), (-1, -1), 0),
                    ]
                ),
            )
        )
    else:
        story.append(Paragraph("No inspection is recorded for this batch.", body))

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
    story.append(
        Paragraph(
            f"This PDF carries the signed certificate and its evidence (every event, its inclusion proof, the "
            f"signed checkpoint and the signers' keys) as the attached file {ATTACHMENT_NAME}. Check it offline "
            f"with <font name='Courier'>chainproof certificate verify FILE --log-key KEY</font>; add "
            f"<font name='Courier'>--server URL</font> to learn whether a recall has revoked it since. "
            f"The log key is:",
            body,
        )
    )
    story.append(Paragraph(f"<font name='Courier'>{_text(certificate.log_key)}</font>", small))
    story.append(Spacer(1, 3 * mm))
    story.append(
        Paragraph(
            "Only the attached file is evidence: the text on this page is a reading of it. A recall revokes this "
            "certificate; the product page behind the QR code always shows the current status.",
            small,
        )
    )

    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"Certificate of Authenticity {certificate.serial}",
        author=str(claims["issuer"]),
        subject=f"{batch['sku']}/{batch['lot']}",
        creator="chainproof",
    )
    document.build(story)
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(buffer.getvalue())))
    writer.add_attachment(ATTACHMENT_NAME, certificate.to_bytes())
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


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


__all__ = ["ATTACHMENT_NAME", "certificate_from_file", "render_certificate_pdf"]
