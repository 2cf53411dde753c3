"""A batch as a GS1 EPCIS 2.0 JSON-LD document, read from its verified entries through the batch's typed history
(docs/epcis.md has the mapping, with a worked example per event type).

Every event is an ObjectEvent about the batch's class (`https://id.gs1.org/01/{gtin14}/10/{lot}`, or the batch's
own page on this platform when it has no GTIN) in CBV vocabulary only. What CBV has no term for rides in the
namespace `urn:chainproof:epcis:` (prefix `chainproof`). Each event's `eventID` is its CBV 2.0 event hash (or the
one an import kept); its provenance (log index, entry hash, signer) is in the document-level map
`chainproof:provenance`, keyed by `eventID`, so the event's content, and its hash, survive a round trip.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel

from ledger.entry import parse_leaf
from ledger.epcis.event_hash import Prefixes, event_hash
from ledger.epcis.vocabulary import unit_code
from ledger.events import (
    DeliveryData,
    HandoffData,
    InspectionData,
    OriginData,
    RecallData,
    ShipmentCancelData,
    ShipmentData,
    format_time,
    gtin14,
    gtin_check_digit,
    parse_time,
    validate_statement,
)
from ledger.history import BatchHistory, Recorded, batch_events
from ledger.rules import batch_owner
from ledger.rules import event_time as business_time
from ledger.verify import BatchReport

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
NAMESPACE = "urn:chainproof:epcis:"
PREFIX = "chainproof"
CONTEXT: list[Any] = [EPCIS_CONTEXT, {PREFIX: NAMESPACE}]
_OFFSET = re.compile(r"(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE)


class Places:
    """URIs for the places, parties and orders a batch's events name: a GLN as its GS1 Digital Link URI, anything
    else under this platform's public URL (`{base}/epcis/places/...`, `/epcis/parties/{actor id}`,
    `/epcis/orders/{sku}/{lot}/{id}`)."""

    def __init__(self, base_url: str, glns: Mapping[str, str] | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.glns = dict(glns or {})

    def place(self, text: str) -> str:
        if re.fullmatch(r"\d{13}", text) and gtin_check_digit(text[:-1]) == int(text[-1]):
            return f"https://id.gs1.org/414/{text}"
        return f"{self.base}/epcis/places/{quote(text, safe='')}"

    def party(self, actor_id: str) -> str:
        gln = self.glns.get(actor_id)
        return f"https://id.gs1.org/417/{gln}" if gln else f"{self.base}/epcis/parties/{quote(actor_id, safe='')}"

    def order(self, sku: str, lot: str, shipment_id: str) -> str:
        return f"{self.base}/epcis/orders/{quote(sku, safe='')}/{quote(lot, safe='')}/{quote(shipment_id, safe='')}"

    def batch_class(self, sku: str, lot: str, gtin: str | None) -> str:
        if gtin:
            return f"https://id.gs1.org/01/{gtin14(gtin)}/10/{quote(lot, safe='')}"
        return f"{self.base}/p/{quote(sku, safe='')}/{quote(lot, safe='')}"


def time_zone_offset(timestamp: str) -> str:
    """The offset a recorded time was written with, as EPCIS writes it ('Z' is '+00:00')."""
    match = _OFFSET.search(timestamp)
    return "+00:00" if match is None or match.group(1).upper() == "Z" else match.group(1)


def _x(name: str) -> str:
    return f"{PREFIX}:{name}"


class BatchEvents:
    """Makes the EPCIS events of one batch. A delivery's quantity is in its order's unit: `units` (shipment id ->
    unit) holds the orders seen so far, or, for events read one by one, the orders they name."""

    def __init__(
        self, sku: str, lot: str, gtin: str | None, places: Places, units: Mapping[str, str | None] | None = None
    ) -> None:
        self.sku, self.lot, self.places = sku, lot, places
        self.epc_class = places.batch_class(sku, lot, gtin)
        self.units: dict[str, str | None] = dict(units or {})

    def event(self, recorded: Recorded[Any]) -> dict[str, Any]:
        """The EPCIS event (without its eventID) of one of the batch's events."""
        makers: dict[type[BaseModel], Callable[[Any], dict[str, Any]]] = {
            OriginData: self.origin,
            InspectionData: self.inspection,
            ShipmentData: self.shipment,
            HandoffData: self.handoff,
            DeliveryData: self.delivery,
            ShipmentCancelData: self.cancel,
            RecallData: self.recall,
        }
        return makers[type(recorded.data)](recorded)

    def common(self, recorded: Recorded[Any]) -> dict[str, Any]:
        at = event_time(recorded.data, recorded.logged_at)
        return {
            "type": "ObjectEvent",
            "eventTime": at,
            "eventTimeZoneOffset": time_zone_offset(at),
            "recordTime": format_time(parse_time(recorded.logged_at)),
        }

    def quantity(self, quantity: float | None, unit: str | None) -> dict[str, Any]:
        element: dict[str, Any] = {"epcClass": self.epc_class}
        if quantity is not None and unit is not None:
            element |= {"quantity": quantity, "uom": unit_code(unit)}
        return {"quantityList": [element]}

    def order(self, shipment_id: str) -> list[dict[str, str]]:
        return [{"type": "po", "bizTransaction": self.places.order(self.sku, self.lot, shipment_id)}]

    def origin(self, r: Recorded[OriginData]) -> dict[str, Any]:
        d = r.data
        event = self.common(r) | self.quantity(d.quantity, d.unit)
        event |= {"action": "ADD", "bizStep": "commissioning", "disposition": "active"}
        if d.facility:
            location = {"id": self.places.place(d.facility)}
            event |= {"readPoint": location, "bizLocation": dict(location)}
        ilmd: dict[str, Any] = {
            "cbvmda:countryOfOrigin": d.country,
            _x("product"): d.product,
            _x("sku"): self.sku,
            _x("owner"): batch_owner(r.actor, d),
        }
        if d.region:
            ilmd[_x("region")] = d.region
        if d.gtin:
            ilmd[_x("gtin")] = d.gtin
        if d.documents:
            ilmd[_x("documents")] = [doc.model_dump(exclude_none=True) for doc in d.documents]
        return event | {"ilmd": ilmd}

    def inspection(self, r: Recorded[InspectionData]) -> dict[str, Any]:
        d = r.data
        event = self.common(r) | self.quantity(None, None) | {"action": "OBSERVE"}
        event["bizStep"] = "inspecting"
        # EPCIS has no conditional pass: rather than claim either, a conditional result writes no disposition
        disposition = {"pass": "conformant", "fail": "non_conformant"}.get(d.result)
        if disposition:
            event["disposition"] = disposition
        if d.report.url:
            event["certificationInfo"] = d.report.url
        event |= {_x("standard"): d.standard, _x("result"): d.result, _x("reportSha256"): d.report.sha256}
        report = d.report.model_dump(exclude_none=True, exclude={"sha256", "url"})
        if report:
            event[_x("report")] = report
        if d.measurements:
            event[_x("measurements")] = [m.model_dump(exclude_none=True) for m in d.measurements]
        return event

    def shipment(self, r: Recorded[ShipmentData]) -> dict[str, Any]:
        d = r.data
        self.units[d.shipment_id] = d.unit
        event = self.common(r) | self.quantity(d.quantity, d.unit)
        event |= {"action": "OBSERVE", "bizStep": "shipping", "disposition": "in_transit"}
        event["bizTransactionList"] = self.order(d.shipment_id)
        event["destinationList"] = [{"type": "location", "destination": self.places.place(d.destination)}]
        return event | {_x("shipmentId"): d.shipment_id, _x("destination"): d.destination,
                        _x("promisedBy"): d.promised_by}  # fmt: skip

    def handoff(self, r: Recorded[HandoffData]) -> dict[str, Any]:
        d = r.data
        event = self.common(r) | self.quantity(None, None) | {"action": "OBSERVE"}
        # the current custodian records a handoff (the rules require it): its side of it is shipping; the receiving
        # end of a journey is the delivery
        event["bizStep"] = "shipping"
        event["disposition"] = "in_transit"
        event["readPoint"] = {"id": self.places.place(d.place)}
        if d.shipment_id is not None:
            event["bizTransactionList"] = self.order(d.shipment_id)
        event["sourceList"] = [{"type": "possessing_party", "source": self.places.party(d.from_actor)}]
        event["destinationList"] = [{"type": "possessing_party", "destination": self.places.party(d.to)}]
        condition = d.condition
        if condition is not None and (condition.temperature_c is not None or condition.humidity_pct is not None):
            reports = []
            if condition.temperature_c is not None:
                reports.append({"type": "Temperature", "value": condition.temperature_c, "uom": "CEL"})
            if condition.humidity_pct is not None:
                reports.append({"type": "RelativeHumidity", "value": condition.humidity_pct, "uom": "A93"})
            event["sensorElementList"] = [{"sensorMetadata": {"time": d.at}, "sensorReport": reports}]
        extensions = {_x("place"): d.place, _x("from"): d.from_actor, _x("to"): d.to}
        if d.shipment_id is not None:
            extensions[_x("shipmentId")] = d.shipment_id
        if condition is not None and condition.note:
            extensions[_x("note")] = condition.note
        return event | extensions

    def delivery(self, r: Recorded[DeliveryData]) -> dict[str, Any]:
        d = r.data
        event = self.common(r) | self.quantity(d.quantity, self.units.get(d.shipment_id))
        # CBV has no disposition for "delivered to the customer": none is claimed; the order and the extension say it
        event |= {"action": "OBSERVE", "bizStep": "receiving"}
        if d.place:
            event["readPoint"] = {"id": self.places.place(d.place)}
        event["bizTransactionList"] = self.order(d.shipment_id)
        extensions = {_x("shipmentId"): d.shipment_id, _x("delivered"): True}
        if d.place:
            extensions[_x("place")] = d.place
        return event | extensions

    def cancel(self, r: Recorded[ShipmentCancelData]) -> dict[str, Any]:
        d = r.data
        event = self.common(r) | self.quantity(None, None) | {"action": "OBSERVE"}
        event |= {"bizStep": "void_shipping", "bizTransactionList": self.order(d.shipment_id)}
        event[_x("shipmentId")] = d.shipment_id
        if d.reason:
            event[_x("reason")] = d.reason
        return event

    def recall(self, r: Recorded[RecallData]) -> dict[str, Any]:
        event = self.common(r) | self.quantity(None, None)
        return event | {"action": "OBSERVE", "bizStep": "holding", "disposition": "recalled",
                        _x("reason"): r.data.reason}  # fmt: skip


BIZ_STEP_OF_TYPE = {
    "origin": "commissioning",
    "inspection": "inspecting",
    "shipment": "shipping",
    "handoff": "shipping",
    "delivery": "receiving",
    "shipment_cancel": "void_shipping",
    "recall": "holding",
}
"""Each event type's CBV business step, as the events above write it (what the query index files them under)."""


def event_time(data: BaseModel, logged_at: str) -> str:
    """An event's EPCIS eventTime: its business time as signed (a recall naming none: when it was logged)."""
    happened = business_time(data)
    return format_time(parse_time(logged_at)) if happened is None else happened


def provenance_of(index: int, entry_hash: bytes, signer: str) -> dict[str, Any]:
    return {"logIndex": index, "entryHash": entry_hash.hex(), "signer": signer}


def batch_document(
    report: BatchReport,
    places: Places,
    created: datetime,
) -> dict[str, Any]:
    """The batch's verified events, read through its typed history, as an EPCISDocument (refuses, with
    ValidationError, a unit it cannot code)."""
    state = report.state
    sku, lot = (state.sku, state.lot) if state else ("", "")
    history = BatchHistory(sku, lot)
    entry_of: dict[int, tuple[bytes, str]] = {}
    for parsed, statement, data in batch_events(report.entries):
        history.add(parsed.index, parsed.logged_at, statement, data)
        entry_of[parsed.index] = (parsed.hash, statement.actor)
    maker = BatchEvents(sku, lot, state.gtin if state else None, places)
    recorded: list[Recorded[Any]] = [history.origin] if history.origin is not None else []
    recorded += [*history.inspections, *history.journey]
    if history.recall is not None:
        recorded.append(history.recall)
    recorded.sort(key=lambda r: r.index)
    prefixes = Prefixes(CONTEXT)
    events, provenance = [], {}
    for entry in recorded:
        event = maker.event(entry)
        event_id = entry.data.epcis_event_id or event_hash(event, prefixes)
        events.append({"eventID": event_id, **event})
        provenance[event_id] = provenance_of(entry.index, *entry_of[entry.index])
    return epcis_document(events, provenance, created)


def events_of_entries(
    entries: Sequence[tuple[int, bytes]],
    gtins: Mapping[tuple[str, str], str],
    units: Mapping[tuple[str, str, str], str | None],
    places: Places,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """EPCIS events (with their eventIDs) and their provenance, of entries read one by one (a query's page):
    `gtins` and `units` give what each needs from its batch."""
    prefixes = Prefixes(CONTEXT)
    events, provenance = [], {}
    for index, leaf in entries:
        parsed = parse_leaf(leaf)
        statement, data = validate_statement(parsed.statement)
        key = (statement.sku, statement.lot)
        orders = {shipment: unit for (sku, lot, shipment), unit in units.items() if (sku, lot) == key}
        maker = BatchEvents(statement.sku, statement.lot, gtins.get(key), places, orders)
        event = maker.event(Recorded(index, parsed.logged_at, statement.actor, data))
        event_id = getattr(data, "epcis_event_id", None) or event_hash(event, prefixes)
        events.append({"eventID": event_id, **event})
        provenance[event_id] = provenance_of(index, parsed.hash, statement.actor)
    return events, provenance


def epcis_document(events: list[dict[str, Any]], provenance: dict[str, Any], created: datetime) -> dict[str, Any]:
    return {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": format_time(created),
        "epcisBody": {"eventList": events},
        _x("provenance"): provenance,
    }


__all__ = [
    "BIZ_STEP_OF_TYPE",
    "CONTEXT",
    "NAMESPACE",
    "PREFIX",
    "BatchEvents",
    "Places",
    "batch_document",
    "epcis_document",
    "event_time",
    "events_of_entries",
    "provenance_of",
    "time_zone_offset",
]
