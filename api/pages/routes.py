"""Shopper-facing routes: product pages (GS1 Digital Link and /p/), and the batch's QR code."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import pycountry
from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from api.deps import LotPath, SettingsDep, SkuPath, StoreDep
from api.pages.i18n import LANGUAGES, TEXT, choose_language
from api.pages.view import BatchView, batch_view
from api.urls import product_url
from certificates.qr import qr_png, qr_svg
from ledger.entry import parse_leaf
from ledger.errors import NotFoundError
from ledger.events import IDENT_PATTERN, EventType, parse_time, validate_gtin
from ledger.rules import Directory

router = APIRouter(tags=["pages"])
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_TEMPLATES.filters["bdi"] = lambda value: Markup("<bdi>%s</bdi>") % ("" if value is None else value)
"""Text from the ledger goes in <bdi>: isolated from its surroundings, so a name written right to left (or one
meant to spoof) cannot reorder the words around it."""
AT_RISK_WINDOW = timedelta(hours=24)
_IDENT = re.compile(IDENT_PATTERN)


def _script_json(value: Any) -> Markup:
    """JSON for a <script type="application/json"> element: '<' escaped so no '</script>' can end it early."""
    return Markup(json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c"))  # noqa: S704


def _language(request: Request) -> str:
    return choose_language(request.query_params.get("lang"), request.headers.get("accept-language"))


def _base_context(request: Request, lang: str) -> dict[str, Any]:
    def lang_query(code: str) -> str:
        return urlencode({**request.query_params, "lang": code})

    return {"lang": lang, "t": TEXT[lang], "languages": LANGUAGES, "lang_query": lang_query}


def _not_found(request: Request, bad_link: bool) -> HTMLResponse:
    lang = _language(request)
    html = _TEMPLATES.get_template("not_found.html").render(**_base_context(request, lang), bad_link=bad_link)
    return HTMLResponse(html, status_code=404, headers={"Content-Language": lang})


def _name(directory: Directory, actor_id: str) -> str:
    actor = directory.actors.get(actor_id)
    return actor.name if actor else actor_id


def _day(value: str) -> str:
    return parse_time(value).strftime("%Y-%m-%d %H:%M UTC")


def _page_context(view: BatchView, shipment_id: str | None, now: datetime) -> dict[str, Any]:
    """What the page shows, read from the verified entries."""
    directory = view.directory
    origin: dict[str, Any] | None = None
    inspections: list[dict[str, Any]] = []
    journey: list[dict[str, Any]] = []
    shipments: dict[str, dict[str, Any]] = {}
    recall: dict[str, str] | None = None
    events = []
    for parsed in view.parsed:
        statement = parsed.statement
        data = statement.get("data", {})
        kind = statement.get("type")
        events.append(
            {
                "index": parsed.index,
                "type": kind,
                "actor": _name(directory, statement.get("actor", "")),
                "hash": parsed.hash.hex(),
            }
        )
        if kind == EventType.ORIGIN and origin is None:
            country = pycountry.countries.get(alpha_2=data.get("country", ""))
            origin = {
                **data,
                "producer": _name(directory, statement["actor"]),
                "country_name": country.name if country else data.get("country"),
                "produced_at": _day(data["produced_at"]),
                "documents": data.get("documents", []),
            }
        elif kind == EventType.INSPECTION:
            report = data.get("report", {})
            inspections.append(
                {
                    "inspector": _name(directory, statement["actor"]),
                    "standard": data.get("standard"),
                    "result": data.get("result"),
                    "inspected_at": _day(data["inspected_at"]),
                    "report_sha256": report.get("sha256"),
                    "report_url": report.get("url"),
                }
            )
        elif kind == EventType.SHIPMENT:
            shipments[data["shipment_id"]] = {
                "id": data["shipment_id"],
                "placed_at": data["placed_at"],
                "promised_by": data["promised_by"],
                "delivered_at": None,
            }
            journey.append(
                {
                    "kind": "shipment",
                    "at": _day(data["placed_at"]),
                    "shipment": data["shipment_id"],
                    "place": data.get("destination"),
                }
            )
        elif kind == EventType.HANDOFF:
            journey.append(
                {
                    "kind": "handoff",
                    "at": _day(data["at"]),
                    "sender": _name(directory, data["from"]),
                    "recipient": _name(directory, data["to"]),
                    "place": data.get("place"),
                    "temperature": (data.get("condition") or {}).get("temperature_c"),
                }
            )
        elif kind == EventType.DELIVERY:
            if data["shipment_id"] in shipments:
                shipments[data["shipment_id"]]["delivered_at"] = data["delivered_at"]
            journey.append(
                {
                    "kind": "delivery",
                    "at": _day(data["delivered_at"]),
                    "place": data.get("place"),
                    "sender": _name(directory, statement["actor"]),
                }
            )
        elif kind == EventType.RECALL:
            recall = {"reason": data.get("reason", ""), "date": _day(parsed.logged_at)}
            journey.append({"kind": "recall", "at": _day(parsed.logged_at), "place": data.get("reason")})
    shipment = None
    if shipment_id and shipment_id in shipments:
        shipment = dict(shipments[shipment_id])
        shipment["status"] = sla_status(shipment["promised_by"], shipment["delivered_at"], now)
        for key in ("placed_at", "promised_by", "delivered_at"):
            if shipment[key]:
                shipment[key] = _day(shipment[key])
    if not view.report.ok:
        verdict = "failed"
    elif recall is not None:
        verdict = "recalled"
    else:
        verdict = "verified"
    return {
        "verdict": verdict,
        "origin": origin,
        "inspections": inspections,
        "journey": journey,
        "shipment": shipment,
        "recall": recall,
        "events": events,
        "problems": view.report.problems,
    }


def _web_link(url: object) -> str | None:
    """Only http(s) links reach the page (the schema already refuses others; a page never trusts that alone)."""
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def sla_status(promised_by: str, delivered_at: str | None, now: datetime) -> str:
    promise = parse_time(promised_by)
    if delivered_at is not None:
        return "on_time" if parse_time(delivered_at) <= promise else "late"
    if now > promise:
        return "overdue"
    return "at_risk" if promise - now <= AT_RISK_WINDOW else "in_transit"


def _render_product(request: Request, store: Any, settings: Any, sku: str, lot: str) -> HTMLResponse:
    lang = _language(request)
    try:
        view = batch_view(store, sku, lot)
    except NotFoundError:
        return _not_found(request, bad_link=False)
    context = _page_context(view, request.query_params.get("shipment"), datetime.now(UTC))
    log_key = str(store.signer.verifier)
    html = _TEMPLATES.get_template("product.html").render(
        **_base_context(request, lang),
        **context,
        sku=sku,
        lot=lot,
        checkpoint=view.checkpoint_note,
        log_key=log_key,
        base_url=settings.base_url,
        certificate_url=f"/v1/batches/{quote(sku, safe='')}/{quote(lot, safe='')}/certificate.pdf",
        ledger_json=_script_json(view.browser_data(log_key)),
        i18n_json=_script_json(
            {
                "ok": TEXT[lang]["browser_ok"],
                "failed": TEXT[lang]["browser_failed"],
                "unsupported": TEXT[lang]["browser_unsupported"] + " " + TEXT[lang][context["verdict"]],
            }
        ),
    )
    return HTMLResponse(
        html, headers={"Content-Language": lang, "Cache-Control": "no-cache", "Vary": "Accept-Language"}
    )


@router.get("/p/{sku}/{lot}", response_class=HTMLResponse, summary="Product page of a batch without a GTIN")
def product_page(
    sku: Annotated[str, PathParam(description="batch SKU")],
    lot: Annotated[str, PathParam(description="batch lot")],
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
) -> HTMLResponse:
    # Checked here rather than by the path's type: a shopper who mistyped a link gets the page that says so
    if not (_IDENT.fullmatch(sku) and _IDENT.fullmatch(lot)):
        return _not_found(request, bad_link=True)
    return _render_product(request, store, settings, sku, lot)


@router.get("/01/{path:path}", response_class=HTMLResponse, summary="Product page by GS1 Digital Link")
def digital_link_page(
    path: Annotated[str, PathParam(description="{gtin}/10/{lot}, optionally followed by /21/{serial}")],
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """/01/{gtin}/10/{lot}, optionally /21/{serial}: AIs in that order, a GTIN with a valid check digit."""
    parts = path.split("/")
    if len(parts) not in (3, 5) or parts[1] != "10" or (len(parts) == 5 and parts[3] != "21") or not all(parts):
        return _not_found(request, bad_link=True)
    gtin, lot = parts[0], parts[2]
    try:
        validate_gtin(gtin)
    except ValueError:
        return _not_found(request, bad_link=True)
    if not _IDENT.fullmatch(lot):
        return _not_found(request, bad_link=True)
    batch = store.batch_for_gtin(gtin, lot)
    if batch is None:
        return _not_found(request, bad_link=False)
    return _render_product(request, store, settings, *batch)


def _batch_url(store: Any, settings: Any, sku: str, lot: str) -> str:
    """The page URL the batch's QR code carries (404 problem for an unknown batch)."""
    first = parse_leaf(store.batch_entries(sku, lot)[0].leaf).statement
    gtin = first.get("data", {}).get("gtin") if first.get("type") == EventType.ORIGIN else None
    return product_url(settings.base_url, sku, lot, gtin)


@router.get(
    "/v1/batches/{sku}/{lot}/qr.png",
    tags=["batches"],
    summary="QR code of the batch's product page (PNG)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def batch_qr_png(sku: SkuPath, lot: LotPath, store: StoreDep, settings: SettingsDep) -> Response:
    return Response(qr_png(_batch_url(store, settings, sku, lot)), media_type="image/png")


@router.get(
    "/v1/batches/{sku}/{lot}/qr.svg",
    tags=["batches"],
    summary="QR code of the batch's product page (SVG)",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
def batch_qr_svg(sku: SkuPath, lot: LotPath, store: StoreDep, settings: SettingsDep) -> Response:
    return Response(qr_svg(_batch_url(store, settings, sku, lot)), media_type="image/svg+xml")
