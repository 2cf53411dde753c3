"""Shopper-facing routes: product pages (GS1 Digital Link and /p/), and the batch's QR code."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from api.deps import LotPath, SettingsDep, SkuPath, StoreDep
from api.pages.i18n import LANGUAGES, TEXT, VERIFY_TEXT, choose_language, country_name
from api.pages.view import BatchPage, Shown, summaries
from api.urls import product_url
from certificates.qr import qr_png, qr_svg
from ledger.entry import parse_leaf
from ledger.errors import LedgerError, NotFoundError
from ledger.events import (
    IDENT_PATTERN,
    DeliveryData,
    EventType,
    HandoffData,
    RecallData,
    ShipmentCancelData,
    ShipmentData,
    parse_time,
    validate_gtin,
    validate_statement,
)
from ledger.hashing import leaf_hash
from ledger.label import label_fragment
from ledger.rules import Actor, batch_owner
from ledger.sla import ShipmentRecord, Status, format_seconds

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
_IDENT = re.compile(IDENT_PATTERN)


def _script_json(value: Any) -> Markup:
    """JSON for a <script type="application/json"> element: '<' escaped so no '</script>' can end it early."""
    return Markup(json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c"))  # noqa: S704


def _language(request: Request) -> str:
    return choose_language(request.query_params.get("lang"), request.headers.get("accept-language"))


def _base_context(request: Request, lang: str) -> dict[str, Any]:
    def lang_query(code: str) -> str:
        return urlencode({**request.query_params, "lang": code})

    def page_query(before: int | None) -> str:
        query = {k: v for k, v in request.query_params.items() if k != "before"}
        return urlencode(query if before is None else {**query, "before": before})

    return {"lang": lang, "t": TEXT[lang], "languages": LANGUAGES, "lang_query": lang_query, "page_query": page_query}


def _not_found(request: Request, bad_link: bool) -> HTMLResponse:
    lang = _language(request)
    html = _TEMPLATES.get_template("not_found.html").render(**_base_context(request, lang), bad_link=bad_link)
    return HTMLResponse(html, status_code=404, headers={"Content-Language": lang})


def _name(actors: Mapping[str, Actor], actor_id: str) -> str:
    actor = actors.get(actor_id)
    return actor.name if actor else actor_id


def _attested(page: BatchPage, actor_id: str) -> bool:
    """Whether the log key, not an admin, registered this actor (the bootstrap, or a migrated directory)."""
    registered = page.registry.actors.get(actor_id)
    return registered is not None and registered.operator_attested


def _day(value: str) -> str:
    return parse_time(value).strftime("%Y-%m-%d %H:%M UTC")


def _page_context(
    page: BatchPage, now: datetime, lang: str = "en", status: tuple[ShipmentRecord, Status] | None = None
) -> dict[str, Any]:
    """What the page shows, read from the checked entries: the origin, the latest inspections, the recall, and the
    journey and events of the page's window (the newest, or an older page)."""
    directory = page.registry.rule_actors
    origin: dict[str, Any] | None = None
    if page.origin_event is not None:
        made = page.origin_event.data
        origin = {
            **made.model_dump(),
            "quantity": _number(made.quantity),
            "producer": _name(directory, batch_owner(page.origin_event.actor, made)),
            "producer_attested": _attested(page, batch_owner(page.origin_event.actor, made)),
            "country_name": country_name(made.country, lang) or made.country,
            "produced_at": _day(made.produced_at),
        }
    inspections = []
    for recorded in reversed(page.inspection_events):  # newest first
        inspected = recorded.data
        inspections.append(
            {
                "inspector": _name(directory, recorded.actor),
                "inspector_attested": _attested(page, recorded.actor),
                "standard": inspected.standard,
                "result": inspected.result,
                "inspected_at": _day(inspected.inspected_at),
                "report_sha256": inspected.report.sha256,
                "report_url": inspected.report.url,
            }
        )
    recall: dict[str, str] | None = None
    if page.recall_event is not None:
        recall = {"reason": page.recall_event.data.reason, "date": _day(page.recall_event.logged_at)}
    journey: list[dict[str, Any]] = []
    events = []
    for shown in page.events:
        statement = shown.statement
        kind = statement.get("type")
        events.append(
            {
                "index": shown.index,
                "type": kind,
                "actor": _name(directory, statement.get("actor", "")),
                "hash": shown.parsed.hash.hex(),
            }
        )
        step = _journey_step(directory, shown)
        if step is not None:
            journey.append(step)
    shipment = None
    if page.shipment is not None and status is not None:
        found, judged = status  # the order as the projection holds it at the page's checkpoint, and its status
        text = TEXT[lang]
        shipment = {
            "id": found.shipment_id,
            "status": judged.name,
            # the full reason in English; in Chinese, what each rule means (the figures are in the English text)
            "reason": judged.reason if lang == "en" else "；".join(text[f"sla_reason_{c}"] for c in judged.codes),
            "placed_at": _day(format_seconds(found.placed_at)),
            "promised_by": _day(format_seconds(found.promised_by)),
            "delivered_at": _day(format_seconds(found.delivery.at)) if found.delivery else None,
        }
    if not page.ok:
        verdict = "failed"
    elif recall is not None:
        verdict = "recalled"
    else:
        verdict = "verified"
    return {
        "verdict": verdict,
        "origin": origin,
        "inspections": inspections,
        "inspection_count": page.inspection_count,
        "journey": journey,
        "shipment": shipment,
        "recall": recall,
        "events": events,
        "events_total": page.length,
        "older": page.older,
        "newer": page.newer,
        "problems": page.problems[:20],
        "problem_count": len(page.problems),
    }


def _number(value: float) -> int | float:
    """1200.0 as 1200: a quantity reads as it was written."""
    return int(value) if value.is_integer() else value


def _journey_step(directory: Mapping[str, Actor], shown: Shown) -> dict[str, Any] | None:
    """An event of the page's window as a step of the journey, read as its typed model (an entry that does not
    validate is in the page's problems, not in the journey)."""
    try:
        statement, data = validate_statement(shown.statement)
    except LedgerError:
        return None
    if isinstance(data, ShipmentData):
        return {"kind": "shipment", "at": _day(data.placed_at), "shipment": data.shipment_id, "place": data.destination}
    if isinstance(data, HandoffData):
        return {
            "kind": "handoff",
            "at": _day(data.at),
            "sender": _name(directory, data.from_actor),
            "recipient": _name(directory, data.to),
            "place": data.place,
            "temperature": None if data.condition is None else data.condition.temperature_c,
        }
    if isinstance(data, DeliveryData):
        return {
            "kind": "delivery",
            "at": _day(data.delivered_at),
            "place": data.place,
            "sender": _name(directory, statement.actor),
        }
    if isinstance(data, ShipmentCancelData):
        return {"kind": "shipment_cancel", "at": _day(data.cancelled_at), "shipment": data.shipment_id}
    if isinstance(data, RecallData):
        return {"kind": "recall", "at": _day(shown.parsed.logged_at), "place": data.reason}
    return None


def _proofs_from_tiles(data: dict[str, Any], enabled: bool) -> dict[str, Any]:
    """With proofs from tiles, the page's script builds each inclusion proof from the log's tiles under /tlog/,
    which every page shares (a CDN keeps them), instead of reading one made for this page."""
    if not enabled:
        return data
    for key in ("entries", "registrations"):
        data[key] = [
            {k: v for k, v in item.items() if k != "proof"} | ({"needs_proof": True} if "proof" in item else {})
            for item in data[key]
        ]
    return data | {"tiles": "/tlog"}


def witnesses_for_page(policy: Any, warn_after_s: float) -> dict[str, Any]:
    """The witnesses the page's script checks the checkpoint's cosignatures against (the log's policy), and how old
    the newest may be before the page warns that a recent recall could be missing."""
    if policy is None or not policy.witnesses:
        return {}
    witnesses = [{"name": name, "vkey": str(w.key)} for name, w in sorted(policy.witnesses.items())]
    return {"witnesses": witnesses, "witness_warn_s": warn_after_s}


def _web_link(url: object) -> str | None:
    """Only http(s) links reach the page (the schema already refuses others; a page never trusts that alone)."""
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def _render_product(request: Request, store: Any, settings: Any, sku: str, lot: str) -> HTMLResponse:
    lang = _language(request)
    before_text = request.query_params.get("before")
    before = int(before_text) if before_text and before_text.isdigit() and len(before_text) <= 18 else None
    if before_text is not None and before is None:
        return _not_found(request, bad_link=True)
    try:
        page = summaries(store).page(sku, lot, before=before, shipment_id=request.query_params.get("shipment"))
    except NotFoundError:
        return _not_found(request, bad_link=False)
    now = datetime.now(UTC)
    status = None
    if page.shipment is not None:  # the order's status by the SLA rules, over the page's checkpoint, now
        status = store.sla_shipment_status(
            sku,
            lot,
            page.shipment.shipment_id,
            size=page.checkpoint_size,
            as_of=int(now.timestamp()),
            parameters=settings.sla_parameters,
        )
    context = _page_context(page, now, lang, status)
    asked = request.query_params.get("shipment")
    context["shipment_unknown"] = asked if asked and page.shipment is None else None
    log_key = str(store.signer.verifier)
    html = _TEMPLATES.get_template("product.html").render(
        **_base_context(request, lang),
        **context,
        sku=sku,
        lot=lot,
        checkpoint=page.checkpoint_note,
        log_key=log_key,
        base_url=settings.base_url,
        certificate_url=f"/v1/batches/{quote(sku, safe='')}/{quote(lot, safe='')}/certificate.pdf",
        ledger_json=_script_json(
            _proofs_from_tiles(page.browser_data(log_key), settings.page_proofs_from_tiles)
            | witnesses_for_page(request.app.state.policy, settings.witness_warn_s)
        ),
        i18n_json=_script_json(
            {
                "ok": TEXT[lang]["browser_ok"],
                "label_ok": TEXT[lang]["label_ok"],
                "recall_stands": TEXT[lang]["recall_stands"],
                "no_label": TEXT[lang]["no_label"],
                "failed": TEXT[lang]["browser_failed"],
                "unsupported": TEXT[lang]["browser_unsupported"] + " " + TEXT[lang][context["verdict"]],
                "witness_ok": TEXT[lang]["witness_ok"],
                "witness_stale": TEXT[lang]["witness_stale"],
                "witness_none": TEXT[lang]["witness_none"],
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


def _batch_url(store: Any, settings: Any, sku: str, lot: str, shipment: str | None = None) -> str:
    """The URL the batch's QR code carries: its product page (with `?shipment=` for one order's label, which opens
    the page on that shipment's status), and the label fragment pinning the log key and the origin entry (404
    problem for an unknown batch or shipment)."""
    found = store.batch_range(sku, lot, first=1)
    if not found:
        raise NotFoundError(f"batch {sku}/{lot} does not exist")
    first = parse_leaf(found[0].leaf).statement
    gtin = first.get("data", {}).get("gtin") if first.get("type") == EventType.ORIGIN else None
    fragment = label_fragment(str(store.signer.verifier), leaf_hash(found[0].leaf))
    url = product_url(settings.base_url, sku, lot, gtin)
    if shipment is not None:
        if summaries(store).page(sku, lot, shipment_id=shipment).shipment is None:
            raise NotFoundError(f"batch {sku}/{lot} has no shipment {shipment} (in the latest checkpoint)")
        url += "?" + urlencode({"shipment": shipment})
    return url + fragment


ShipmentQuery = Annotated[
    str | None, Query(pattern=IDENT_PATTERN, description="a shipment of the batch: the label opens its status")
]


@router.get(
    "/v1/batches/{sku}/{lot}/qr.png",
    tags=["batches"],
    summary="QR code of the batch's product page (PNG)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def batch_qr_png(
    sku: SkuPath, lot: LotPath, store: StoreDep, settings: SettingsDep, shipment: ShipmentQuery = None
) -> Response:
    return Response(qr_png(_batch_url(store, settings, sku, lot, shipment)), media_type="image/png")


@router.get(
    "/v1/batches/{sku}/{lot}/qr.svg",
    tags=["batches"],
    summary="QR code of the batch's product page (SVG)",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
def batch_qr_svg(
    sku: SkuPath, lot: LotPath, store: StoreDep, settings: SettingsDep, shipment: ShipmentQuery = None
) -> Response:
    return Response(qr_svg(_batch_url(store, settings, sku, lot, shipment)), media_type="image/svg+xml")


@router.get("/verify", response_class=HTMLResponse, summary="Check a certificate of authenticity in the browser")
def verify_page(request: Request, store: StoreDep) -> HTMLResponse:
    """A buyer drops a certificate PDF or JSON here; the browser checks it against this ledger's key with the
    product page's verifier (api/static/certificate.js), then asks the ledger whether a recall revoked it since.
    The file never leaves the browser."""
    lang = _language(request)
    log_key = str(store.signer.verifier)
    html = _TEMPLATES.get_template("verify.html").render(
        **_base_context(request, lang),
        v=VERIFY_TEXT[lang],
        log_key=log_key,
        verify_json=_script_json({"log_key": log_key, "lang": lang, "text": VERIFY_TEXT[lang]}),
    )
    return HTMLResponse(html, headers={"Content-Language": lang, "Vary": "Accept-Language"})
