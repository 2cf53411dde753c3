"""Product page URLs: GS1 Digital Link style when the batch has a GTIN, /p/{sku}/{lot} otherwise."""

from __future__ import annotations

from urllib.parse import quote


def product_path(sku: str, lot: str, gtin: str | None = None) -> str:
    if gtin:
        # GS1 Digital Link uses the 14-digit GTIN form in AI (01)
        return f"/01/{gtin.zfill(14)}/10/{quote(lot, safe='')}"
    return f"/p/{quote(sku, safe='')}/{quote(lot, safe='')}"


def product_url(base_url: str, sku: str, lot: str, gtin: str | None = None) -> str:
    return base_url.rstrip("/") + product_path(sku, lot, gtin)
