"""The fulfilment-SLA tracker: shipments' statuses, reports and signed scorecards, computed from the ledger's
signed events (ledger/sla.py) over a signed checkpoint, so that anyone holding the log can recompute them.

Read access is a convenience, not confidentiality: merchants see their own shipments and figures, carriers the
shipments they carried, admins and auditors everything; the log itself stays public (docs/sla.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response

from api.deps import CurrentActor, SettingsDep, StoreDep
from api.problems import ProblemError
from api.settings import Settings
from ledger.errors import NotFoundError
from ledger.events import IDENT_PATTERN, TEXT_PATTERN, Role
from ledger.hashing import b64encode
from ledger.note import open_checkpoint
from ledger.rules import Actor
from ledger.scorecard import issue_scorecard, scorecard_claims
from ledger.sla import (
    GROUP_BY,
    STATUSES,
    Filters,
    Parameters,
    ShipmentRecord,
    checkpointed,
    format_seconds,
    parse_bound,
    report,
    report_csv,
    shipment_view,
)
from ledger.sla_columns import Evaluation
from ledger.storage import LedgerStore

router = APIRouter(prefix="/v1/sla", tags=["sla"])
_LARGEST_INDEX = 2**53 - 1
SHIPMENTS_PER_PAGE = 100

MerchantQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=64, pattern=TEXT_PATTERN, description="only this merchant's shipments (actor id)"),
]
CarrierQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=64, pattern=TEXT_PATTERN, description="only shipments this carrier held (actor id)"),
]
LaneQuery = Annotated[
    str | None,
    Query(max_length=600, pattern=TEXT_PATTERN, description="only this lane, written CC[-region]>destination"),
]
FromQuery = Annotated[
    str | None, Query(alias="from", max_length=40, description="placed at or after (RFC 3339 or YYYY-MM-DD)")
]
ToQuery = Annotated[
    str | None, Query(alias="to", max_length=40, description="placed before (a date: up to the end of that day)")
]
AsOfQuery = Annotated[
    str | None,
    Query(max_length=40, description="the moment the report is as of (RFC 3339 or YYYY-MM-DD); default now"),
]
TreeSizeQuery = Annotated[
    int | None,
    Query(ge=0, le=_LARGEST_INDEX, description="an issued checkpoint's tree size to compute over; default the latest"),
]


@dataclass(frozen=True)
class View:
    """What one request computes over: a signed checkpoint, a moment, the thresholds."""

    size: int
    root: str
    note: str
    as_of: int
    parameters: Parameters

    def header(self) -> dict[str, Any]:
        return {
            "checkpoint": {"size": self.size, "root": self.root},
            "as_of": format_seconds(self.as_of),
            "parameters": self.parameters.to_json(),
        }


def scope(actor: Actor, merchant: str | None, carrier: str | None) -> tuple[str | None, str | None]:
    """The merchant and carrier filters this actor may use: merchants see their own shipments, carriers the ones
    they carried, admins and auditors everything."""
    if actor.role in (Role.ADMIN, Role.AUDITOR):
        return merchant, carrier
    if actor.role is Role.MERCHANT:
        if merchant not in (None, actor.id):
            raise ProblemError(403, f"merchants see their own shipments: leave merchant out or give {actor.id}")
        return actor.id, carrier
    if actor.role is Role.CARRIER:
        if carrier not in (None, actor.id):
            raise ProblemError(403, f"carriers see the shipments they carried: leave carrier out or give {actor.id}")
        return merchant, actor.id
    raise ProblemError(403, f"the SLA figures are for merchants, carriers, admins and auditors; you are {actor.role}")


def may_see(actor: Actor, record: ShipmentRecord) -> bool:
    if actor.role in (Role.ADMIN, Role.AUDITOR):
        return True
    if actor.role is Role.MERCHANT:
        return record.merchant == actor.id
    return actor.role is Role.CARRIER and actor.id in record.carriers


def parameters_from(
    settings: Settings,
    window_share: float | None,
    within_hours: str | None,
    lane_percentile: int | None,
    lane_min_history: int | None,
    recorded_late_hours: int | None,
) -> Parameters:
    """The server's thresholds (settings), each replaceable by the request's own."""
    base = settings.sla_parameters
    try:
        hours = base.within_hours
        if within_hours is not None:
            hours = tuple(int(part) for part in within_hours.split(",") if part.strip())
        return Parameters(
            window_share=base.window_share if window_share is None else window_share,
            lane_percentile=base.lane_percentile if lane_percentile is None else lane_percentile,
            lane_min_history=base.lane_min_history if lane_min_history is None else lane_min_history,
            within_hours=hours,
            recorded_late_after_s=base.recorded_late_after_s
            if recorded_late_hours is None
            else recorded_late_hours * 3600,
        )
    except ValueError as exc:
        raise ProblemError(422, f"SLA thresholds: {exc}", "invalid") from exc


def view_of(store: LedgerStore, tree_size: int | None, as_of: str | None, parameters: Parameters) -> View:
    """The checkpoint (the latest, or the one issued at `tree_size`) and the moment a request computes over."""
    try:
        note = store.checkpoint() if tree_size is None else store.checkpoint_at(tree_size)
    except NotFoundError as exc:
        raise ProblemError(404, f"{exc}: give the tree size of an issued checkpoint", "not-found") from exc
    checkpoint = open_checkpoint(note, store.signer.verifier, store.origin).checkpoint
    moment = int(time.time()) if as_of is None else _bound(as_of, "as_of")
    return View(checkpoint.size, b64encode(checkpoint.root_hash), note, moment, parameters)


def _bound(value: str, what: str, *, end: bool = False) -> int:
    try:
        return parse_bound(value, what, end=end)
    except ValueError as exc:
        raise ProblemError(422, str(exc), "invalid") from exc


def _group_by(value: str | None) -> list[str]:
    if not value:
        return []
    found = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [part for part in found if part not in GROUP_BY]
    if unknown:
        raise ProblemError(422, f"cannot group by {unknown[0][:40]!r}: choose from {', '.join(GROUP_BY)}", "invalid")
    return list(dict.fromkeys(found))


def evaluation(store: LedgerStore, view: View) -> Evaluation:
    """Every shipment as the view sees it, with its status (the store keeps them as columns)."""
    return store.sla_evaluation(
        size=view.size, as_of_us=view.as_of * 1_000_000 + 999_999, as_of=view.as_of, parameters=view.parameters
    )


def report_filters(
    merchant: str | None, carrier: str | None, lane: str | None, placed_from: str | None, placed_to: str | None
) -> Filters:
    """A report's filters from its query (bounds: RFC 3339 or a date; `to` a date means to the end of that day)."""
    return Filters(
        merchant=merchant,
        carrier=carrier,
        lane=lane,
        placed_from=None if placed_from is None else _bound(placed_from, "from"),
        placed_to=None if placed_to is None else _bound(placed_to, "to", end=True),
    )


def build_report(
    store: LedgerStore,
    view: View,
    *,
    merchant: str | None = None,
    carrier: str | None = None,
    lane: str | None = None,
    placed_from: str | None = None,
    placed_to: str | None = None,
    group_by: list[str] | None = None,
    evaluated: Evaluation | None = None,
) -> dict[str, Any]:
    """The report over the view's checkpoint at its as_of (what `sla report --bundle` computes offline)."""
    filters = report_filters(merchant, carrier, lane, placed_from, placed_to)
    evaluated = evaluated or evaluation(store, view)
    body = report(evaluated, as_of=view.as_of, filters=filters, group_by=group_by or [])
    return checkpointed(body, size=view.size, root=view.root)


@router.get("/report", summary="On-time, OTIF, within-24 h/48 h rates, lead times and custody times, grouped")
def sla_report(
    store: StoreDep,
    settings: SettingsDep,
    actor: CurrentActor,
    merchant: MerchantQuery = None,
    carrier: CarrierQuery = None,
    lane: LaneQuery = None,
    placed_from: FromQuery = None,
    placed_to: ToQuery = None,
    as_of: AsOfQuery = None,
    group_by: Annotated[
        str | None, Query(max_length=100, description="merchant, carrier, lane or week (several: comma-separated)")
    ] = None,
    output_format: Annotated[
        Literal["json", "csv"], Query(alias="format", description="json, or csv (a row for the total and each group)")
    ] = "json",
    tree_size: TreeSizeQuery = None,
    window_share: Annotated[
        float | None, Query(gt=0, le=1, description="at risk past this share of the window (server default 0.8)")
    ] = None,
    within_hours: Annotated[
        str | None,
        Query(
            max_length=40,
            pattern=r"^\d{1,4}(,\d{1,4}){0,5}$",
            description="the within-N-hours thresholds, comma-separated (default 24,48)",
        ),
    ] = None,
    lane_percentile: Annotated[
        int | None, Query(ge=1, le=100, description="the lane's typical progress: this percentile (default 75)")
    ] = None,
    lane_min_history: Annotated[
        int | None, Query(ge=1, le=100_000, description="earlier shipments a lane needs for that (default 5)")
    ] = None,
    recorded_late_hours: Annotated[
        int | None, Query(ge=0, le=10_000, description="logged this many hours late counts as recorded late (6)")
    ] = None,
) -> Response:
    """The figures of the shipments you may see, over the latest signed checkpoint (or `tree_size`'s) at `as_of`,
    with every definition and threshold used embedded. Rates are fractions 0..1, or null with `<rate>_reason`."""
    merchant, carrier = scope(actor, merchant, carrier)
    parameters = parameters_from(
        settings, window_share, within_hours, lane_percentile, lane_min_history, recorded_late_hours
    )
    view = view_of(store, tree_size, as_of, parameters)
    body = build_report(
        store,
        view,
        merchant=merchant,
        carrier=carrier,
        lane=lane,
        placed_from=placed_from,
        placed_to=placed_to,
        group_by=_group_by(group_by),
    )
    if output_format == "csv":
        return PlainTextResponse(report_csv(body), media_type="text/csv; charset=utf-8")
    return _json(body)


def _json(body: dict[str, Any]) -> Response:
    from fastapi.responses import JSONResponse

    return JSONResponse(body)


@router.get("/shipments", summary="Shipments with their SLA status (at_risk, overdue, ...), paged")
def sla_shipments(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    actor: CurrentActor,
    status: Annotated[
        str | None,
        Query(max_length=100, description=f"one or more of {', '.join(STATUSES)} (comma-separated)"),
    ] = None,
    merchant: MerchantQuery = None,
    carrier: CarrierQuery = None,
    lane: LaneQuery = None,
    as_of: AsOfQuery = None,
    tree_size: TreeSizeQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="shipments per page")] = SHIPMENTS_PER_PAGE,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="skip this many (the `next` link sets it)")] = 0,
) -> Response:
    """The shipments you may see, oldest order first, each with its status and why (at_risk, overdue). `next`
    pins the checkpoint and as_of, so that paging through a list never shifts under you."""
    merchant, carrier = scope(actor, merchant, carrier)
    wanted = _statuses(status)
    view = view_of(store, tree_size, as_of, settings.sla_parameters)
    evaluated = evaluation(store, view)
    listed = evaluated.listed(Filters(merchant=merchant, carrier=carrier, lane=lane), wanted)
    page = listed[offset : offset + limit]
    next_url = None
    if offset + limit < len(listed):
        query = {k: v for k, v in request.query_params.items() if k not in ("offset", "tree_size", "as_of")}
        query |= {"offset": str(offset + limit), "tree_size": str(view.size), "as_of": format_seconds(view.as_of)}
        next_url = f"{request.url.path}?{urlencode(query)}"
    return _json(
        {
            **view.header(),
            "total": len(listed),
            "shipments": [shipment_view(evaluated.seen_record(row), evaluated.status_of(row)) for row in page],
            "next": next_url,
        }
    )


def _statuses(value: str | None) -> set[str] | None:
    if not value:
        return None
    found = {part.strip() for part in value.split(",") if part.strip()}
    unknown = sorted(found - set(STATUSES))
    if unknown:
        raise ProblemError(422, f"unknown status {unknown[0][:40]!r}: choose from {', '.join(STATUSES)}", "invalid")
    return found


@router.get("/shipments/{shipment_id}", summary="One shipment: status, promise, timeline and why")
def sla_shipment(
    store: StoreDep,
    settings: SettingsDep,
    actor: CurrentActor,
    shipment_id: Annotated[str, Path(pattern=IDENT_PATTERN, description="the shipment id")],
    sku: Annotated[str | None, Query(pattern=IDENT_PATTERN, description="the batch, if the id is in several")] = None,
    lot: Annotated[str | None, Query(pattern=IDENT_PATTERN, description="the batch's lot, with sku")] = None,
    as_of: AsOfQuery = None,
    tree_size: TreeSizeQuery = None,
) -> Response:
    """A shipment id is unique within its batch: when several batches you may see hold it, name the batch with
    `sku` and `lot` (the 409 lists them)."""
    if actor.role not in (Role.ADMIN, Role.AUDITOR, Role.MERCHANT, Role.CARRIER):
        scope(actor, None, None)  # refuses, saying who may
    view = view_of(store, tree_size, as_of, settings.sla_parameters)
    evaluated = evaluation(store, view)
    columns = evaluated.columns
    rows = [
        row
        for row in columns.rows_with_id(shipment_id)
        if (sku is None or columns.keys[row][0] == sku)
        and (lot is None or columns.keys[row][1] == lot)
        and evaluated.seen[row]
        and may_see(actor, evaluated.seen_record(row))
    ]
    matches = [evaluated.seen_record(row) for row in rows]
    if not matches:
        raise ProblemError(404, f"no shipment {shipment_id} that you may see (as of the checkpoint)", "not-found")
    if len(matches) > 1:
        batches = ", ".join(sorted(f"{r.sku}/{r.lot}" for r in matches))
        raise ProblemError(
            409, f"shipment id {shipment_id} is in several batches ({batches}): give sku and lot", "ambiguous"
        )
    return _json({**view.header(), **shipment_view(matches[0], evaluated.status_of(rows[0]))})


@router.get("/scorecard", summary="A merchant's delivery figures as a note signed by the log key")
def sla_scorecard(
    store: StoreDep,
    settings: SettingsDep,
    actor: CurrentActor,
    merchant: MerchantQuery = None,
    placed_from: FromQuery = None,
    placed_to: ToQuery = None,
    as_of: AsOfQuery = None,
    tree_size: TreeSizeQuery = None,
) -> Response:
    """The merchant's figures (total and per ISO week) over a signed checkpoint, signed by the log key, with the
    checkpoint beside them: `chainproof sla verify` recomputes every figure from the log. A merchant may ask for
    its own; admins and auditors for any merchant's."""
    if actor.role is Role.MERCHANT:
        merchant, _ = scope(actor, merchant, None)
    elif actor.role not in (Role.ADMIN, Role.AUDITOR):
        raise ProblemError(403, f"scorecards are for merchants (their own), admins and auditors; you are {actor.role}")
    if merchant is None:
        raise ProblemError(422, "say whose scorecard: merchant=<actor id>", "invalid")
    registered = store.registry(covering=store.size()).rule_actors.get(merchant)
    if registered is None or registered.role is not Role.MERCHANT:
        raise ProblemError(404, f"{merchant!r} is not a registered merchant", "not-found")
    view = view_of(store, tree_size, as_of, settings.sla_parameters)
    body = build_report(store, view, merchant=merchant, placed_from=placed_from, placed_to=placed_to, group_by=["week"])
    card = issue_scorecard(scorecard_claims(body, merchant), view.note, store.signer)
    return _json(card.to_json())
