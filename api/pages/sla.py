"""The SLA dashboard (`/sla`): the delivery report as tables and server-drawn SVG charts, for signed-in merchants,
carriers, admins and auditors, in English and Simplified Chinese, readable without JavaScript.

Signing in: the API token as a bearer header, or typed once into the sign-in form, which keeps it in a cookie
(HttpOnly: no script can read it; SameSite=Strict: no other site's request carries it; Secure over HTTPS; only
for /sla; gone at sign-out or when the browser closes)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.asgi import bearer_token
from api.deps import SettingsDep, StoreDep
from api.pages import charts
from api.pages.i18n import SLA_TEXT, TEXT
from api.pages.routes import _TEMPLATES, _base_context, _language
from api.problems import ProblemError
from api.routes.sla import View, build_report, evaluation, report_filters, scope, view_of
from api.settings import Settings
from ledger.rules import Actor
from ledger.sla import GROUP_BY, Filters, format_seconds, shipment_view, span
from ledger.storage import LedgerStore

router = APIRouter(tags=["pages"], include_in_schema=False)
SESSION_COOKIE = "chainproof_sla"
SESSION_SECONDS = 8 * 3600
CHART_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox"
"""matplotlib styles its SVG with style attributes; an SVG shown by <img> runs no script whatever it holds."""
_SHOWN_AT_RISK = 50
_FORM_LIMIT = 4096


class _ReportCache:
    """The last reports computed, for a minute: a page view and its three charts ask for the same report (the
    charts' URLs pin the page's checkpoint and as_of)."""

    def __init__(self, size: int = 32, seconds: float = 60.0) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[Any, ...], tuple[float, Any]] = OrderedDict()
        self._size, self._seconds = size, seconds

    def get(self, key: tuple[Any, ...], compute: Any) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] > now:
                self._items.move_to_end(key)
                return hit[1]
        value = compute()
        with self._lock:
            self._items[key] = (now + self._seconds, value)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


_CACHE = _ReportCache()


def _viewer(request: Request, store: LedgerStore) -> Actor | None:
    token = bearer_token(request.headers.get("authorization", "")) or request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        return None
    cache = request.app.state.token_cache
    actor: Actor | None = cache.get(token)
    if actor is None:
        actor = store.authenticate(token)
        if actor is not None:
            cache.put(token, actor)
    return actor


def _sign_in_page(request: Request, error: str | None = None, status: int = 401) -> HTMLResponse:
    lang = _language(request)
    html = _TEMPLATES.get_template("sla_sign_in.html").render(
        **_base_context(request, lang), s=SLA_TEXT[lang], error=error
    )
    return HTMLResponse(html, status_code=status, headers=_private(lang))


def _private(lang: str) -> dict[str, str]:
    return {"Cache-Control": "no-store", "Content-Language": lang, "Vary": "Accept-Language, Cookie, Authorization"}


class _Query:
    """The dashboard's filters, read from the query string (what the form and the chart links send)."""

    def __init__(self, request: Request) -> None:
        q = request.query_params
        self.placed_from = q.get("from") or None
        self.placed_to = q.get("to") or None
        self.merchant = q.get("merchant") or None
        self.carrier = q.get("carrier") or None
        group = q.get("group_by") or "week"
        self.group_by = group if group in GROUP_BY else "week"
        self.tree_size = q.get("tree_size")
        self.as_of = q.get("as_of")
        for value in (self.placed_from, self.placed_to, self.merchant, self.carrier, self.tree_size, self.as_of):
            if value is not None and len(value) > 64:
                raise ProblemError(422, "a filter is longer than 64 characters", "invalid")

    def view(self, store: LedgerStore, settings: Settings) -> View:
        size = None
        if self.tree_size is not None:
            if not self.tree_size.isdigit() or len(self.tree_size) > 15:
                raise ProblemError(422, f"tree_size {self.tree_size[:20]!r} is not a number", "invalid")
            size = int(self.tree_size)
        return view_of(store, size, self.as_of, settings.sla_parameters)


def _computed(store: LedgerStore, settings: Settings, actor: Actor, query: _Query) -> tuple[View, dict[str, Any]]:
    """The view and the report for this viewer and these filters (cached for the page's charts)."""
    merchant, carrier = scope(actor, query.merchant, query.carrier)
    view = query.view(store, settings)
    key = (actor.id, merchant, carrier, query.placed_from, query.placed_to, query.group_by, view.size, view.as_of)

    def compute() -> tuple[View, dict[str, Any]]:
        evaluated = evaluation(store, view)
        body = build_report(
            store,
            view,
            merchant=merchant,
            carrier=carrier,
            placed_from=query.placed_from,
            placed_to=query.placed_to,
            group_by=sorted({query.group_by, "week"}, key=GROUP_BY.index),
            evaluated=evaluated,
        )
        risky = evaluated.listed(Filters(merchant=merchant, carrier=carrier), {"at_risk", "overdue"})
        risky.sort(key=lambda row: int(evaluated.a.promised[row]))
        rows = evaluated.admitted(report_filters(merchant, carrier, None, query.placed_from, query.placed_to))
        delivered = rows[evaluated.delivered[rows] & ~evaluated.cancelled[rows]]
        leads = ((evaluated.a.d_at[delivered] - evaluated.a.placed[delivered]) / 3600).tolist()
        body["_at_risk"] = [
            shipment_view(evaluated.seen_record(row), evaluated.status_of(row)) for row in risky[:_SHOWN_AT_RISK]
        ]
        body["_at_risk_total"] = len(risky)
        body["_lead_hours"] = leads
        return view, body

    result: tuple[View, dict[str, Any]] = _CACHE.get(key, compute)
    return result


@router.get("/sla", response_class=HTMLResponse)
def sla_dashboard(request: Request, store: StoreDep, settings: SettingsDep) -> HTMLResponse:
    lang = _language(request)
    text = SLA_TEXT[lang]
    actor = _viewer(request, store)
    if actor is None:
        return _sign_in_page(request)
    try:
        query = _Query(request)
        view, body = _computed(store, settings, actor, query)
    except ProblemError as exc:
        return _dashboard_error(request, lang, exc)
    names = store.registry(covering=view.size).rule_actors

    def name(actor_id: str) -> str:
        found = names.get(actor_id)
        return found.name if found is not None else actor_id

    hours = body["parameters"]["within_hours"]
    rows = [_row(text["total"], body["total"], hours)]
    rows += [
        _row(name(g["key"]) if g["by"] in ("merchant", "carrier") else g["key"], g, hours)
        for g in body["groups"]
        if g["by"] == query.group_by
    ]
    pinned = {
        k: v
        for k, v in {
            "from": query.placed_from,
            "to": query.placed_to,
            "merchant": query.merchant,
            "carrier": query.carrier,
            "group_by": query.group_by,
            "lang": lang,
            "tree_size": str(view.size),
            "as_of": format_seconds(view.as_of),
        }.items()
        if v
    }
    charts_query = urlencode(pinned)
    html = _TEMPLATES.get_template("sla.html").render(
        **_base_context(request, lang),
        s=text,
        actor=actor,
        view=view,
        as_of=format_seconds(view.as_of),
        query=query,
        group_choices=GROUP_BY,
        hours=hours,
        rows=rows,
        at_risk=[
            {**item, "merchant_name": name(item["merchant"]), "reason": _reason(item, lang)}
            for item in body["_at_risk"]
        ],
        at_risk_total=body["_at_risk_total"],
        charts_query=charts_query,
        is_admin=actor.role.value in ("admin", "auditor"),
    )
    return HTMLResponse(html, headers=_private(lang))


def _reason(item: dict[str, Any], lang: str) -> str | None:
    """Why a shipment is at risk or overdue: in English the full reason, figures and all; in Chinese, what each
    rule that holds means (as the product page says it)."""
    if lang == "en":
        return item["reason"]  # type: ignore[no-any-return]
    return "；".join(TEXT[lang][f"sla_reason_{code}"] for code in item["reasons"])


def _row(label: str, figures: dict[str, Any], hours: list[int]) -> dict[str, Any]:
    lead = figures.get("lead_time_s")
    return {
        "label": label,
        "shipments": figures["shipments"],
        "delivered": figures["delivered"],
        "on_time_rate": _percent(figures["on_time_rate"]),
        "otif_rate": _percent(figures["otif_rate"]),
        "within": [_percent(figures.get(f"within_{h}h_rate")) for h in hours],
        "late": figures["late"],
        "overdue": figures["overdue"],
        "at_risk": figures["at_risk"],
        "cancelled": figures["cancelled"],
        "lead": f"{span(lead['p50'])} / {span(lead['p90'])}" if lead else "–",
    }


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _dashboard_error(request: Request, lang: str, exc: ProblemError) -> HTMLResponse:
    html = _TEMPLATES.get_template("sla_error.html").render(
        **_base_context(request, lang), s=SLA_TEXT[lang], detail=exc.detail
    )
    return HTMLResponse(html, status_code=exc.status, headers=_private(lang))


@router.get("/sla/charts/{chart}.svg")
def sla_chart(
    chart: Annotated[str, Path(pattern="^(weekly|lead|custody)$")],
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
) -> Response:
    lang = _language(request)
    text = SLA_TEXT[lang]
    actor = _viewer(request, store)
    if actor is None:
        raise ProblemError(401, "sign in at /sla, or send an API token as 'Authorization: Bearer <token>'", "no-token")
    query = _Query(request)
    view, body = _computed(store, settings, actor, query)
    if chart == "weekly":
        weeks = [g for g in body["groups"] if g["by"] == "week"]
        svg = charts.on_time_by_week(
            [g["key"] for g in weeks], [g["on_time_rate"] for g in weeks], text["chart_weekly"], text["chart_empty"]
        )
    elif chart == "lead":
        lead = body["total"].get("lead_time_s") or {}
        marks = {name: value / 3600 for name, value in lead.items()}
        svg = charts.lead_time_histogram(
            body["_lead_hours"], marks, text["chart_lead"], text["chart_lead_axis"], text["chart_empty"]
        )
    else:
        names = store.registry(covering=view.size).rule_actors
        slowest = body["total"]["custody"][:10]
        svg = charts.slowest_custody(
            [names[c["holder"]].name if c["holder"] in names else c["holder"] for c in slowest],
            [c["p50_s"] / 3600 for c in slowest],
            text["chart_custody"],
            text["chart_custody_axis"],
            text["chart_empty"],
        )
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={
            "Content-Security-Policy": CHART_CSP,
            "Cache-Control": "private, max-age=300",  # the URL pins the checkpoint and as_of: the chart never changes
            "Vary": "Cookie, Authorization",
        },
    )


@router.get("/sla/sign-in", response_class=HTMLResponse)
def sla_sign_in_form(request: Request) -> HTMLResponse:
    return _sign_in_page(request, status=200)


@router.post("/sla/sign-in", response_class=HTMLResponse)
async def sla_sign_in(request: Request, store: StoreDep, settings: SettingsDep) -> Response:
    body = await request.body()
    lang = _language(request)
    fields = parse_qs(body[:_FORM_LIMIT].decode("utf-8", "replace")) if len(body) <= _FORM_LIMIT else {}
    token = (fields.get("token") or [""])[0].strip()
    from starlette.concurrency import run_in_threadpool

    actor = await run_in_threadpool(store.authenticate, token) if token and len(token) <= 200 else None
    if actor is None:
        return _sign_in_page(request, SLA_TEXT[lang]["bad_token"])
    response = RedirectResponse(f"/sla?{urlencode({'lang': lang})}", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_SECONDS,
        path="/sla",
        httponly=True,
        samesite="strict",
        secure=settings.base_url.startswith("https://"),
    )
    return response


@router.post("/sla/sign-out")
def sla_sign_out(request: Request) -> Response:
    response = RedirectResponse(f"/sla?{urlencode({'lang': _language(request)})}", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/sla", httponly=True, samesite="strict")
    return response
