"""The subset of the EPCIS 2.0 REST query interface Chainproof answers (`GET /v1/epcis/events`): parameters,
checked, and the page token.

Supported: `GE_eventTime`, `LT_eventTime`, `EQ_bizStep` (CBV terms, bare or as Web URIs), `MATCH_anyEPCClass`
(a batch's class, `https://id.gs1.org/01/{gtin}/10/{lot}` on any Digital Link domain or as an EPC class URI, a
GTIN-level pattern `https://id.gs1.org/01/{gtin}` or `urn:epc:idpat:sgtin:...*`, or the platform's own batch
link), `perPage` and `nextPageToken`. A list takes repeated parameters or values separated by `|`. Anything else
is refused by name: an answer that silently ignored a filter would claim events it did not check.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

from ledger.epcis.identifiers import canonical_gs1_uri
from ledger.epcis.vocabulary import BIZ_STEPS
from ledger.errors import ValidationError
from ledger.events import parse_time
from ledger.sla import epoch_us

SUPPORTED = ("GE_eventTime", "LT_eventTime", "EQ_bizStep", "MATCH_anyEPCClass", "perPage", "nextPageToken")
DEFAULT_PER_PAGE = 100
MOST_PER_PAGE = 1000
MOST_CLASSES = 100
_BIZ_STEP_URI = "https://ref.gs1.org/cbv/BizStep-"
_BIGINT = 1 << 63
_URN_BIZ_STEP = "urn:epcglobal:cbv:bizstep:"


@dataclass(frozen=True)
class EpcClass:
    """A class to match: a batch (GTIN and lot), all lots of a GTIN, or a batch by its platform link."""

    gtin: str | None = None
    lot: str | None = None
    sku: str | None = None


@dataclass(frozen=True)
class EventQuery:
    since_us: int | None = None  # GE_eventTime
    before_us: int | None = None  # LT_eventTime
    biz_steps: frozenset[str] = frozenset()
    classes: tuple[EpcClass, ...] = ()
    per_page: int = DEFAULT_PER_PAGE
    after: tuple[int, int] | None = None  # (event time, log index) of the previous page's last event
    tree_size: int | None = None  # the checkpoint the first page was read at: every page reads the same
    raw: dict[str, list[str]] = field(default_factory=dict, compare=False)


def _values(params: dict[str, list[str]], name: str) -> list[str]:
    return [part for value in params.get(name, []) for part in value.split("|") if part != ""]


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name, [])
    if len(values) > 1:
        raise ValidationError(f"{name} is given {len(values)} times: give it once")
    return values[0] if values else None


def _time_us(params: dict[str, list[str]], name: str) -> int | None:
    text = _one(params, name)
    if text is None:
        return None
    try:
        moment = parse_time(text)
    except ValidationError as exc:
        raise ValidationError(f"{name}: {exc} (an RFC 3339 time with an offset, e.g. 2026-11-01T00:00:00Z)") from exc
    return epoch_us(moment)


def _biz_step(value: str) -> str:
    for prefix in (_BIZ_STEP_URI, _URN_BIZ_STEP):
        if value.startswith(prefix):
            value = value[len(prefix) :]
    if value not in BIZ_STEPS:
        raise ValidationError(f"EQ_bizStep: {value!r} is not a CBV 2.0 business step (e.g. shipping, receiving)")
    return value


def _epc_class(value: str, base_url: str) -> EpcClass:
    own = re.fullmatch(re.escape(base_url.rstrip("/")) + r"/p/([^/?#]+)/([^/?#]+)", value)
    if own is not None:
        return EpcClass(sku=unquote(own.group(1)), lot=unquote(own.group(2)))
    canonical = canonical_gs1_uri(value)
    if canonical is not None:
        match = re.fullmatch(r"https://id\.gs1\.org/01/(\d{14})(?:/10/([^/]+))?", canonical)
        if match is not None:
            lot = match.group(2)
            return EpcClass(gtin=match.group(1), lot=None if lot is None else unquote(lot))
    raise ValidationError(
        f"MATCH_anyEPCClass: {value!r} is not a batch class this ledger holds: give a GS1 Digital Link "
        "https://id.gs1.org/01/{gtin}/10/{lot}, a GTIN-level https://id.gs1.org/01/{gtin}, an EPC class or pattern "
        f"URI, or a batch link {base_url.rstrip('/')}/p/{{sku}}/{{lot}}"
    )


def encode_token(tree_size: int, event_time_us: int, index: int) -> str:
    raw = json.dumps([tree_size, event_time_us, index], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[int, int, int]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        size, at, index = json.loads(raw)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (size, at, index)):
            raise ValueError("not three integers")
        if not (0 <= size < _BIGINT and -_BIGINT <= at < _BIGINT and 0 <= index < _BIGINT):
            raise ValueError("out of range")  # what a database column holds: a made-up token is a 400, not a 500
    except (ValueError, TypeError) as exc:
        raise ValidationError("nextPageToken is not one this server gave: start again without it") from exc
    return size, at, index


def parse_query(items: Iterable[tuple[str, str]], base_url: str) -> EventQuery:
    """The query a request's parameters ask; ValidationError naming every parameter it does not support."""
    params: dict[str, list[str]] = {}
    for name, value in items:
        params.setdefault(name, []).append(value)
    unsupported = sorted(name for name in params if name not in SUPPORTED)
    if unsupported:
        raise ValidationError(
            f"unsupported query parameters: {', '.join(unsupported)}; this server answers {', '.join(SUPPORTED)}"
        )
    per_page_text = _one(params, "perPage")
    per_page = DEFAULT_PER_PAGE
    if per_page_text is not None:
        if not per_page_text.isdigit() or not 1 <= int(per_page_text) <= MOST_PER_PAGE:
            raise ValidationError(f"perPage must be a whole number from 1 to {MOST_PER_PAGE}, got {per_page_text!r}")
        per_page = int(per_page_text)
    token = _one(params, "nextPageToken")
    tree_size, after = None, None
    if token is not None:
        tree_size, at, index = _decode_token(token)
        after = (at, index)
    classes = _values(params, "MATCH_anyEPCClass")
    if len(classes) > MOST_CLASSES:
        raise ValidationError(f"MATCH_anyEPCClass names {len(classes)} classes: at most {MOST_CLASSES} a query")
    return EventQuery(
        since_us=_time_us(params, "GE_eventTime"),
        before_us=_time_us(params, "LT_eventTime"),
        biz_steps=frozenset(_biz_step(v) for v in _values(params, "EQ_bizStep")),
        classes=tuple(_epc_class(v, base_url) for v in classes),
        per_page=per_page,
        after=after,
        tree_size=tree_size,
        raw=params,
    )


__all__ = ["DEFAULT_PER_PAGE", "MOST_PER_PAGE", "SUPPORTED", "EpcClass", "EventQuery", "encode_token", "parse_query"]
