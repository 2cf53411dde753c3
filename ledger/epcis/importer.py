"""EPCIS 2.0 documents into Chainproof events (docs/epcis.md, "Importing"): the whole document checked first, then
each ObjectEvent mapped to the event type its business step means, or set aside with the reason.

An invalid document (a missing or malformed eventTime or offset, a business step or disposition outside CBV that
is not a URI, a GTIN with a wrong check digit, an eventID that is a CBV 2.0 hash of other content, a mapped event
that breaks Chainproof's schema) is refused as a whole, naming the event and the field: nothing is sent. An event
that is valid EPCIS but means nothing Chainproof records (another event type, a business step with no Chainproof
event, instance-level EPCs, a party that is no registered actor, an event the importing actor's role may not
record, a batch neither the document nor the ledger holds) is skipped, with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from ledger.epcis.event_hash import Prefixes, document_events, event_hash
from ledger.epcis.export import NAMESPACE
from ledger.epcis.identifiers import canonical_gs1_uri
from ledger.epcis.vocabulary import BIZ_STEPS, DISPOSITIONS, UNITS_OF_CODE
from ledger.errors import LedgerError, ValidationError
from ledger.events import IDENT_PATTERN, EventType, gtin14, parse_time, validate_gtin
from ledger.sla import epoch_us

MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
"""The largest document an import reads (about 50,000 events)."""
_CBV = "https://ref.gs1.org/cbv/"
_URN = {"bizStep": "urn:epcglobal:cbv:bizstep:", "disposition": "urn:epcglobal:cbv:disp:"}
_WEB = {"bizStep": _CBV + "BizStep-", "disposition": _CBV + "Disp-"}
_OFFSET = re.compile(r"[+-](0\d|1[0-4]):[0-5]\d")
_IDENT = re.compile(IDENT_PATTERN)


@dataclass(frozen=True)
class Mapped:
    """An EPCIS event as the Chainproof event it becomes: `number` is its place in the document, from 1."""

    number: int
    event_id: str | None
    event_time_us: int
    type: EventType
    sku: str
    lot: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Skipped:
    number: int
    event_id: str | None
    reason: str


@dataclass(frozen=True)
class Ledger:
    """What an import needs to know of the ledger it writes to."""

    base_url: str
    actor_id: str  # the importing actor
    actor_ids: frozenset[str]  # every registered actor
    actor_of_gln: Mapping[str, str]  # party GLN -> the actor that registered it
    allowed: frozenset[EventType]  # what the importing actor's role may record
    batch_of_gtin: Callable[[str, str], str | None]  # (GTIN-14, lot) -> the SKU of the ledger's batch, if any
    has_batch: Callable[[str, str], bool]  # (sku, lot) -> whether the ledger holds the batch


@dataclass
class ImportPlan:
    mapped: list[Mapped]  # in event-time order (document order among equal times)
    skipped: list[Skipped]


class _SkipError(Exception):
    """This event means nothing Chainproof records: why."""


def _invalid(number: int, event: Mapping[str, Any], field: str, problem: str) -> ValidationError:
    event_id = event.get("eventID")
    named = f"event {number}" + (f" ({event_id})" if isinstance(event_id, str) else "")
    return ValidationError(f"{named}: {field}: {problem}")


class _Reader:
    """One event's fields, extensions read by namespace whatever prefix the document gives it."""

    def __init__(self, event: Mapping[str, Any], prefixes: Prefixes, number: int) -> None:
        self.event, self.prefixes, self.number = event, prefixes, number

    def ext(self, name: str, where: Mapping[str, Any] | None = None) -> Any:
        for key, value in (where if where is not None else self.event).items():
            if self.prefixes.key(key) == "{" + NAMESPACE + "}" + name:
                return value
        return None

    def invalid(self, field: str, problem: str) -> ValidationError:
        return _invalid(self.number, self.event, field, problem)

    def vocabulary(self, field: str, allowed: frozenset[str]) -> str | None:
        """A bizStep or disposition as its bare CBV term; None if absent; a URI outside CBV is kept (not ours)."""
        value = self.event.get(field)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.invalid(field, "must be a string")
        for prefix in (_URN[field], _WEB[field]):
            if value.startswith(prefix):
                value = value[len(prefix) :]
        if value in allowed:
            return value
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", value):
            return value  # a URI: another vocabulary, valid EPCIS
        raise self.invalid(field, f"{value!r} is neither a CBV 2.0 term nor a URI")


def _text_of_place(uri: object) -> str | None:
    """A location URI as the text Chainproof holds: a GLN's digits, a platform place's text, else the URI."""
    if not isinstance(uri, str):
        return None
    canonical = canonical_gs1_uri(uri)
    if canonical is not None and (gln := re.fullmatch(r"https://id\.gs1\.org/414/(\d{13})", canonical)):
        return gln.group(1)
    own = re.fullmatch(r"https?://[^/]+(?:/[^?#]*)?/epcis/places/([^/?#]+)", uri)
    return unquote(own.group(1)) if own else uri


def _location(event: Mapping[str, Any], name: str) -> str | None:
    value = event.get(name)
    return _text_of_place(value.get("id")) if isinstance(value, Mapping) else None


def _typed(entries: object, kind: str, item: str) -> list[str]:
    """The values of a source or destination list of one type."""
    if not isinstance(entries, list):
        return []
    found = []
    for entry in entries:
        if isinstance(entry, Mapping) and str(entry.get("type", "")).removeprefix(_CBV + "SDT-") == kind:
            value = entry.get(item)
            if isinstance(value, str):
                found.append(value)
    return found


def _order(event: Mapping[str, Any]) -> str | None:
    """The shipment id an event's order names: the last segment of its purchase-order URI."""
    entries = event.get("bizTransactionList")
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if isinstance(entry, Mapping) and str(entry.get("type", "")).removeprefix(_CBV + "BTT-") == "po":
            value = entry.get("bizTransaction")
            if isinstance(value, str):
                return unquote(value.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1])
    return None


class _Mapper:
    def __init__(self, ledger: Ledger, prefixes: Prefixes) -> None:
        self.ledger, self.prefixes = ledger, prefixes
        self.document_batches: dict[tuple[str, str], str] = {}  # (GTIN-14, lot) -> SKU, from the document's origins
        self.started: set[tuple[str, str]] = set()  # batches an origin of this import starts
        # a Chainproof export names a batch without a GTIN by its page on the exporting platform, whatever its host
        own = re.escape(ledger.base_url.rstrip("/"))
        host = r"https?://[^/?#]+(?:/[^?#]*)?" if NAMESPACE in prefixes.map.values() else own
        self.platform_batch = re.compile(host + r"/p/([^/?#]+)/([^/?#]+)")

    def may(self, kind: EventType) -> None:
        if kind not in self.ledger.allowed:
            raise _SkipError(f"the importing actor's role may not record a {kind.value}")

    def party(self, r: _Reader, uri: str) -> str:
        canonical = canonical_gs1_uri(uri)
        gln = re.fullmatch(r"https://id\.gs1\.org/417/(\d{13})", canonical or "")
        if gln is not None:
            actor = self.ledger.actor_of_gln.get(gln.group(1))
            if actor is None:
                raise _SkipError(f"party GLN {gln.group(1)} ({uri}) is no registered actor's")
            return actor
        own = re.fullmatch(r"https?://[^/]+(?:/[^?#]*)?/epcis/parties/([^/?#]+)", uri)
        actor = unquote(own.group(1)) if own else None
        if actor is None or actor not in self.ledger.actor_ids:
            raise _SkipError(f"party {uri} maps to no registered actor")
        return actor

    def batch(self, r: _Reader, origin: bool) -> tuple[str, str, str | None]:
        """(sku, lot, GTIN-14 or None) of the batch the event is about."""
        event = r.event
        quantities = event.get("quantityList")
        if not isinstance(quantities, list) or not quantities:
            if any(event.get(f) for f in ("epcList", "parentID", "childEPCs")):
                raise _SkipError("instance-level EPCs: Chainproof records batches (a product class and a lot)")
            raise _SkipError("names no product class (quantityList)")
        classes = {q.get("epcClass") for q in quantities if isinstance(q, Mapping)}
        if len(classes) != 1:
            raise _SkipError("names several product classes: Chainproof records one batch per event")
        epc_class = str(next(iter(classes)))
        own = self.platform_batch.fullmatch(epc_class)
        if own is not None:
            sku, lot = unquote(own.group(1)), unquote(own.group(2))
            if not origin and (sku, lot) not in self.started and not self.ledger.has_batch(sku, lot):
                raise _SkipError(f"batch {epc_class}: neither this document's commissioning nor the ledger holds it")
            return sku, lot, None
        canonical = canonical_gs1_uri(epc_class)
        match = re.fullmatch(r"https://id\.gs1\.org/01/(\d{14})(?:/10/([^/]+))?", canonical or "")
        if match is None:
            raise _SkipError(f"product class {epc_class} is not a GTIN and lot, nor a batch of this platform")
        gtin, lot_text = match.group(1), match.group(2)
        try:
            validate_gtin(gtin)
        except ValueError as exc:
            raise r.invalid("quantityList.epcClass", f"{epc_class}: {exc}") from exc
        if lot_text is None:
            raise _SkipError(f"product class {epc_class} names no lot: Chainproof records batches")
        lot = unquote(lot_text)
        if not _IDENT.fullmatch(lot):
            raise _SkipError(f"lot {lot!r} is not one Chainproof can hold (letters, digits and . _ : -, up to 64)")
        found = self.document_batches.get((gtin, lot)) or self.ledger.batch_of_gtin(gtin, lot)
        if found is None and origin:
            named = r.ext("sku", event.get("ilmd") if isinstance(event.get("ilmd"), Mapping) else {})
            found = named if isinstance(named, str) and _IDENT.fullmatch(named) else gtin
        if found is None:
            raise _SkipError(f"batch {epc_class}: neither this document's commissioning nor the ledger holds it")
        return found, lot, gtin

    def quantity(self, r: _Reader) -> tuple[float | None, str | None]:
        quantities = r.event.get("quantityList") or [{}]
        first = quantities[0] if isinstance(quantities[0], Mapping) else {}
        amount, code = first.get("quantity"), first.get("uom")
        if amount is None:
            return None, None
        if code is None:
            raise _SkipError("a quantity without a unit (uom)")
        unit = UNITS_OF_CODE.get(str(code))
        if unit is None:
            raise _SkipError(f"unit code {code!r} is not in Chainproof's UN/ECE Rec 20 table")
        return float(amount), unit

    def map(
        self, r: _Reader, biz_step: str | None, disposition: str | None
    ) -> tuple[EventType, str, str, dict[str, Any]]:
        e, at = r.event, str(r.event["eventTime"])
        step = biz_step or ""
        if step == "commissioning" and e.get("action") == "ADD":
            return self.origin(r, at)
        if step == "inspecting":
            return self.inspection(r, at, disposition)
        parties = _typed(e.get("sourceList"), "possessing_party", "source")
        if step in ("shipping", "receiving") and parties:
            return self.handoff(r, at, parties)
        if step == "shipping":
            return self.shipment(r, at)
        if step == "receiving":
            return self.delivery(r, at)
        if step == "void_shipping":
            return self.cancel(r, at)
        if step == "holding" and disposition == "recalled":
            return self.recall(r, at)
        raise _SkipError(f"business step {step or '(none)'} has no Chainproof event")

    def origin(self, r: _Reader, at: str) -> tuple[EventType, str, str, dict[str, Any]]:
        self.may(EventType.ORIGIN)
        sku, lot, gtin = self.batch(r, origin=True)
        found = r.event.get("ilmd")
        ilmd: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        wanted = "{urn:epcglobal:cbv:mda:}countryOfOrigin"
        country = next((v for k, v in ilmd.items() if self.prefixes.key(k) == wanted), None)
        if not isinstance(country, str):
            raise _SkipError("no country of origin (ilmd cbvmda:countryOfOrigin)")
        quantity, unit = self.quantity(r)
        if quantity is None or unit is None:
            raise _SkipError("no quantity produced (quantityList quantity and uom)")
        product = r.ext("product", ilmd)
        data: dict[str, Any] = {
            "product": product if isinstance(product, str) else f"GTIN {gtin}",
            "country": country,
            "produced_at": at,
            "quantity": quantity,
            "unit": unit,
        }
        owner = r.ext("owner", ilmd)
        if isinstance(owner, str) and owner != self.ledger.actor_id:
            if EventType.RECALL not in self.ledger.allowed or EventType.DELIVERY not in self.ledger.allowed:
                raise _SkipError(
                    f"the batch belongs to {owner}: only an admin (or {owner} itself) may import its origin"
                )
            if owner not in self.ledger.actor_ids:
                raise _SkipError(f"the batch's owner {owner} is not a registered actor")
            data["owner"] = owner
        facility = _location(r.event, "bizLocation") or _location(r.event, "readPoint")
        extras = {"region": r.ext("region", ilmd), "facility": facility, "gtin": r.ext("gtin", ilmd) or gtin,
                  "documents": r.ext("documents", ilmd)}  # fmt: skip
        data |= {k: v for k, v in extras.items() if v is not None}
        return EventType.ORIGIN, sku, lot, data

    def inspection(self, r: _Reader, at: str, disposition: str | None) -> tuple[EventType, str, str, dict[str, Any]]:
        self.may(EventType.INSPECTION)
        sku, lot, _gtin = self.batch(r, origin=False)
        digest = r.ext("reportSha256")
        if not isinstance(digest, str):
            raise _SkipError(
                "no report SHA-256 (chainproof:reportSha256): the report's hash is what the ledger records"
            )
        result = r.ext("result") or {"conformant": "pass", "non_conformant": "fail"}.get(disposition or "")
        if result is None:
            raise _SkipError("no result: neither chainproof:result nor a conformant or non_conformant disposition")
        report: dict[str, Any] = {"sha256": digest}
        extra = r.ext("report")
        if isinstance(extra, Mapping):
            report |= dict(extra)
        certification = r.event.get("certificationInfo")
        if isinstance(certification, list):
            certification = certification[0] if certification else None
        if isinstance(certification, str):
            report["url"] = certification
        data: dict[str, Any] = {"standard": r.ext("standard") or "unspecified", "result": result,
                                "inspected_at": at, "report": report}  # fmt: skip
        if r.ext("measurements") is not None:
            data["measurements"] = r.ext("measurements")
        return EventType.INSPECTION, sku, lot, data

    def shipment_id(self, r: _Reader) -> str:
        named = r.ext("shipmentId") or _order(r.event)
        if not isinstance(named, str):
            raise _SkipError("names no order (a bizTransaction of type po, or chainproof:shipmentId)")
        if not _IDENT.fullmatch(named):
            raise _SkipError(f"order {named!r} is not an id Chainproof can hold")
        return named

    def shipment(self, r: _Reader, at: str) -> tuple[EventType, str, str, dict[str, Any]]:
        self.may(EventType.SHIPMENT)
        sku, lot, _gtin = self.batch(r, origin=False)
        promised = r.ext("promisedBy")
        if not isinstance(promised, str):
            raise _SkipError("no promised delivery time (chainproof:promisedBy)")
        destination = r.ext("destination")
        if destination is None:
            places = _typed(r.event.get("destinationList"), "location", "destination")
            destination = _text_of_place(places[0]) if places else None
        if destination is None:
            raise _SkipError("no destination (a destinationList entry of type location)")
        data: dict[str, Any] = {"shipment_id": self.shipment_id(r), "destination": destination, "placed_at": at,
                                "promised_by": promised}  # fmt: skip
        quantity, unit = self.quantity(r)
        if quantity is not None:
            data |= {"quantity": quantity, "unit": unit}
        return EventType.SHIPMENT, sku, lot, data

    def handoff(self, r: _Reader, at: str, sources: list[str]) -> tuple[EventType, str, str, dict[str, Any]]:
        self.may(EventType.HANDOFF)
        sku, lot, _gtin = self.batch(r, origin=False)
        targets = _typed(r.event.get("destinationList"), "possessing_party", "destination")
        if len(sources) != 1 or len(targets) != 1:
            raise _SkipError("a handoff names one possessing party handing over and one receiving")
        sender = r.ext("from") or self.party(r, sources[0])
        recipient = r.ext("to") or self.party(r, targets[0])
        place = r.ext("place") or _location(r.event, "readPoint")
        if place is None:
            raise _SkipError("no place (readPoint)")
        data: dict[str, Any] = {"from": sender, "to": recipient, "place": place, "at": at}
        if r.ext("shipmentId") is not None or _order(r.event) is not None:
            data["shipment_id"] = self.shipment_id(r)
        condition: dict[str, Any] = {}
        for element in r.event.get("sensorElementList") or []:
            for report in element.get("sensorReport") or [] if isinstance(element, Mapping) else []:
                kind = str(report.get("type", "")).removeprefix("https://gs1.org/voc/").removeprefix("gs1:")
                if kind == "Temperature" and report.get("uom", "CEL") == "CEL" and "value" in report:
                    condition["temperature_c"] = float(report["value"])
                elif kind == "RelativeHumidity" and report.get("uom", "A93") in ("A93", "P1") and "value" in report:
                    condition["humidity_pct"] = float(report["value"])
        if r.ext("note") is not None:
            condition["note"] = r.ext("note")
        if condition:
            data["condition"] = condition
        return EventType.HANDOFF, sku, lot, data

    def delivery(self, r: _Reader, at: str) -> tuple[EventType, str, str, dict[str, Any]]:
        self.may(EventType.DELIVERY)
        sku, lot, _gtin = self.batch(r, origin=False)
        data: dict[str, Any] = {"shipment_id": self.shipment_id(r), "delivered_at": at}
        place = r.ext("place") or _location(r.event, "readPoint")
        if place is not None:
            data["place"] = place
        quantity, _unit = self.quantity(r)
        if quantity is not None:
            data["quantity"] = quantity
        return EventType.DELIVERY, sku, lot, data

    def cancel(self, r: _Reader, at: str) -> tuple[EventType, str, str, dict[str, Any]]:
        self.may(EventType.SHIPMENT_CANCEL)
        sku, lot, _gtin = self.batch(r, origin=False)
        data: dict[str, Any] = {"shipment_id": self.shipment_id(r), "cancelled_at": at}
        if r.ext("reason") is not None:
            data["reason"] = r.ext("reason")
        return EventType.SHIPMENT_CANCEL, sku, lot, data

    def recall(self, r: _Reader, at: str) -> tuple[EventType, str, str, dict[str, Any]]:
        self.may(EventType.RECALL)
        sku, lot, _gtin = self.batch(r, origin=False)
        reason = r.ext("reason")
        data = {"reason": reason if isinstance(reason, str) else "recalled (EPCIS holding, disposition recalled)"}
        return EventType.RECALL, sku, lot, data | {"recalled_at": at}


def plan_import(
    document: object, ledger: Ledger, check_data: Callable[[EventType, dict[str, Any]], None]
) -> ImportPlan:
    """What importing `document` would record, and what it would skip; ValidationError (naming the event and the
    field) if any event is invalid. `check_data` raises ValidationError for data Chainproof's schema refuses."""
    if not isinstance(document, Mapping) or document.get("type") not in ("EPCISDocument", "EPCISQueryDocument"):
        raise ValidationError("not an EPCIS 2.0 document: its type is not EPCISDocument or EPCISQueryDocument")
    prefixes = Prefixes(document.get("@context"))
    events = document_events(document)
    if not events:
        raise ValidationError("the document holds no events (epcisBody.eventList)")
    mapper = _Mapper(ledger, prefixes)
    mapped: list[Mapped] = []
    skipped: list[Skipped] = []
    for number, event in enumerate(events, start=1):
        r = _Reader(event, prefixes, number)
        event_id = event.get("eventID") if isinstance(event.get("eventID"), str) else None
        _check(r, prefixes)
        if event.get("type") != "ObjectEvent":
            skipped.append(Skipped(number, event_id, f"{event.get('type')}: Chainproof imports ObjectEvents"))
            continue
        biz_step = r.vocabulary("bizStep", BIZ_STEPS)
        disposition = r.vocabulary("disposition", DISPOSITIONS)
        try:
            kind, sku, lot, data = mapper.map(r, biz_step, disposition)
        except _SkipError as why:
            skipped.append(Skipped(number, event_id, str(why)))
            continue
        if event_id is not None:
            data["epcis_event_id"] = event_id
        try:
            check_data(kind, data)
        except LedgerError as exc:
            raise r.invalid(f"as a Chainproof {kind.value}", str(exc)) from exc
        if kind is EventType.ORIGIN:  # later events of the document find the batch it starts
            mapper.started.add((sku, lot))
            if "gtin" in data:
                mapper.document_batches.setdefault((gtin14(str(data["gtin"])), lot), sku)
        mapped.append(Mapped(number, event_id, epoch_us(parse_time(str(event["eventTime"]))), kind, sku, lot, data))
    mapped.sort(key=lambda m: (m.event_time_us, m.number))
    return ImportPlan(mapped, skipped)


def _check(r: _Reader, prefixes: Prefixes) -> None:
    """What makes an event invalid EPCIS, whatever it maps to."""
    e = r.event
    at = e.get("eventTime")
    if not isinstance(at, str):
        raise r.invalid("eventTime", "missing: every EPCIS event has one")
    try:
        parse_time(at)
    except LedgerError as exc:
        raise r.invalid("eventTime", f"{at!r} is not an RFC 3339 time with an offset ({exc})") from exc
    offset = e.get("eventTimeZoneOffset")
    if not isinstance(offset, str) or not _OFFSET.fullmatch(offset):
        raise r.invalid("eventTimeZoneOffset", f"{offset!r} is not an offset from -14:00 to +14:00 as ±hh:mm")
    event_id = e.get("eventID")
    if isinstance(event_id, str) and event_id.startswith("ni:///") and event_id.endswith("?ver=CBV2.0"):
        content = {k: v for k, v in e.items() if k != "eventID"}
        computed = event_hash(content, prefixes)
        if computed != event_id:
            raise r.invalid(
                "eventID", f"states the CBV 2.0 hash {event_id}, but the event's content hashes to {computed}"
            )


__all__ = ["MAX_DOCUMENT_BYTES", "ImportPlan", "Ledger", "Mapped", "Skipped", "plan_import"]
