"""QR codes of product page URLs, for packs (PNG, SVG) and certificates: one way to make them."""

from __future__ import annotations

import io

import qrcode
import qrcode.constants
import qrcode.image.svg


def qr_code(data: str) -> qrcode.QRCode:
    """Error correction M (15%), the standard quiet zone of 4 modules."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4, box_size=10)
    code.add_data(data)
    code.make(fit=True)
    return code


def qr_png(data: str) -> bytes:
    buffer = io.BytesIO()
    qr_code(data).make_image().save(buffer, format="PNG")
    return buffer.getvalue()


def qr_svg(data: str) -> bytes:
    buffer = io.BytesIO()
    qr_code(data).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buffer)
    return buffer.getvalue()
