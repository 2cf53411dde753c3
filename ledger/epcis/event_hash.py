"""The CBV 2.0 EPCIS event hash (CBV 2.0 section 8.8.1): an event's pre-hash string, and its
`ni:///sha-256;<hex>?ver=CBV2.0` identifier, computed from the event's JSON-LD form.

The pre-hash string concatenates the event's fields as `key=value` in the canonical property order, without
separators; lists are written once by name and their elements sorted; standard vocabulary in bare, URN or CURIE
form is written as its Web URI; EPC and Digital Link URIs as constrained canonical Digital Link URIs; times in UTC
to the millisecond; numbers without trailing zeros; ILMD and user extensions as `{namespace}name=value`, sorted.
`eventID`, `recordTime`, `errorDeclaration` and comments are not part of an event's content. The reference is the
published generator's examples (tests/vectors/epcis-event-hash/): every one of them this implementation supports
must reproduce, and `tests/test_epcis_hash.py` lists the ones it does not.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.epcis.identifiers import canonical_gs1_uri

CBV = "https://ref.gs1.org/cbv/"
GS1_VOC = "https://gs1.org/voc/"
WELL_KNOWN_PREFIXES = {
    "cbv": CBV,
    "gs1": GS1_VOC,
    "epcis": "https://ref.gs1.org/epcis/",
    "cbvmda": "urn:epcglobal:cbv:mda:",
}
"""Prefixes the standard EPCIS 2.0 JSON-LD context defines (a document's own @context may add more)."""

_URN_VOCABULARY = {
    "urn:epcglobal:cbv:bizstep:": CBV + "BizStep-",
    "urn:epcglobal:cbv:disp:": CBV + "Disp-",
    "urn:epcglobal:cbv:btt:": CBV + "BTT-",
    "urn:epcglobal:cbv:sdt:": CBV + "SDT-",
    "urn:epcglobal:cbv:er:": CBV + "ER-",
}
# Fields whose values are standard vocabulary: a bare word means the term under this base.
_BARE_BASE = {
    "bizStep": CBV + "BizStep-",
    "disposition": CBV + "Disp-",
    "set": CBV + "Disp-",
    "unset": CBV + "Disp-",
    "bizTransactionType": CBV + "BTT-",
    "sourceOrDestinationType": CBV + "SDT-",
    "reason": CBV + "ER-",
    "sensorType": GS1_VOC,
    "exception": GS1_VOC,
    "microorganism": GS1_VOC,
    "chemicalSubstance": GS1_VOC,
}
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})", re.IGNORECASE)
_QUANTITY = ("epcClass", "quantity", "uom")
_SENSOR_METADATA = (
    "time", "startTime", "endTime", "deviceID", "deviceMetadata", "rawData", "dataProcessingMethod", "bizRules",
)  # fmt: skip
_SENSOR_REPORT = (
    "type", "exception", "deviceID", "deviceMetadata", "rawData", "dataProcessingMethod", "time", "microorganism",
    "chemicalSubstance", "value", "component", "stringValue", "booleanValue", "hexBinaryValue", "uriValue",
    "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue", "uom", "coordinateReferenceSystem",
)  # fmt: skip
_IGNORED = {"type", "eventID", "recordTime", "errorDeclaration", "comment", "rdfs:comment", "@context", "#text"}


class Prefixes:
    """The JSON-LD prefixes in force for a document: the standard context's, then the document's own."""

    def __init__(self, context: object = None) -> None:
        self.map = dict(WELL_KNOWN_PREFIXES)
        for item in context if isinstance(context, list) else [context]:
            if isinstance(item, Mapping):
                self.map.update({str(k): str(v) for k, v in item.items() if isinstance(v, str)})

    def key(self, name: str) -> str | None:
        """An extension's key as `{namespace}local`; None for a term of the EPCIS vocabulary itself."""
        prefix, colon, local = name.partition(":")
        if colon and prefix in self.map:
            return "{" + self.map[prefix] + "}" + local
        if name.startswith(("http://", "https://", "urn:")):
            return "{" + name + "}"
        return None

    def value(self, text: str) -> str:
        """A standard-vocabulary CURIE as its URI (`cbv:BizStep-receiving`, `gs1:Temperature`); user CURIEs stay."""
        prefix, colon, local = text.partition(":")
        base = self.map.get(prefix) if colon and not local.startswith("//") else None
        if base is not None and base.startswith(("https://ref.gs1.org/", "https://gs1.org/")):
            return base + local
        return text


def format_number(value: float) -> str:
    """A number without trailing zeros: 1.0 as '1', 0.34340 as '0.3434'."""
    return str(int(value)) if value == int(value) else repr(value)


def format_time(text: str) -> str:
    """A time in UTC to the millisecond, the fourth decimal rounding the third (half up), with 'Z'."""
    match = _TIME.fullmatch(text.strip())
    if match is None:
        return text.strip()
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    fraction = (fraction or "").ljust(4, "0")
    millis = int(fraction[:3]) + (1 if fraction[3] >= "5" else 0)
    moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    if offset.upper() != "Z":
        sign = 1 if offset[0] == "+" else -1
        moment -= sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    moment += timedelta(milliseconds=millis)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _Writer:
    def __init__(self, prefixes: Prefixes) -> None:
        self.prefixes = prefixes

    def scalar(self, value: object, vocabulary: str | None = None, time: bool = False) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return format_number(float(value))
        text = str(value).strip()
        if time:
            return format_time(text)
        for urn, base in _URN_VOCABULARY.items():
            if text.startswith(urn):
                return base + text[len(urn) :]
        if vocabulary is not None and text and ":" not in text:
            return _BARE_BASE[vocabulary] + text
        text = self.prefixes.value(text)
        if _NUMBER.fullmatch(text):
            return format_number(float(text))
        return canonical_gs1_uri(text) or text

    def field(self, name: str, value: object, vocabulary: str | None = None) -> str:
        if value is None:
            return ""
        written = self.scalar(value, vocabulary, time="time" in name.lower() and "offset" not in name.lower())
        return f"{name}={written}" if written != "" else ""

    def fields(self, obj: Mapping[str, Any], order: Sequence[str], vocabulary: Mapping[str, str]) -> str:
        """An object's standard fields in their order, then its extensions."""
        text = "".join(self.field(name, obj.get(name), vocabulary.get(name)) for name in order if name in obj)
        return text + self.extensions(obj, set(order))

    def extensions(self, obj: Mapping[str, Any], known: set[str]) -> str:
        """User extensions of an object (keys with a namespace), each as `{namespace}local[=value]`, sorted."""
        parts = []
        for name, value in obj.items():
            if name in known or name in _IGNORED:
                continue
            key = self.prefixes.key(name)
            if key is not None:
                parts.extend(self.extension(key, value))
        return "".join(sorted(parts))

    def extension(self, key: str, value: object) -> list[str]:
        if isinstance(value, list):
            return [text for item in value for text in self.extension(key, item)]
        if isinstance(value, Mapping):
            inner = []
            for name, child in value.items():
                if name in _IGNORED:
                    continue
                if name == "#text" or name == "@value":
                    inner.append("=" + self.scalar(child))
                    continue
                child_key = self.prefixes.key(name) or name
                inner.extend(self.extension(child_key, child))
            return [key + "".join(sorted(inner))]
        written = self.scalar(value)
        return [f"{key}={written}" if written != "" else key]

    def listed(self, name: str, values: object, item: str) -> str:
        """A list of plain values, `name` then each `item=value` sorted."""
        if not isinstance(values, list) or not values:
            return ""
        return name + "".join(sorted(self.field(item, v) for v in values))

    def quantities(self, name: str, values: object) -> str:
        if not isinstance(values, list) or not values:
            return ""
        elements = ["quantityElement" + self.fields(q, _QUANTITY, {}) for q in values if isinstance(q, Mapping)]
        return name + "".join(sorted(elements))

    def typed(self, name: str, values: object, item: str, vocabulary: str) -> str:
        """bizTransactionList, sourceList, destinationList: each element's type, then its value; sorted."""
        if not isinstance(values, list) or not values:
            return ""
        elements = []
        for element in values:
            if not isinstance(element, Mapping):
                continue
            text = self.field("type", element.get("type"), vocabulary) + self.field(item, element.get(item))
            elements.append(text + self.extensions(element, {"type", item}))
        return name + "".join(sorted(elements))

    def location(self, name: str, value: object) -> str:
        if not isinstance(value, Mapping):
            return ""
        return name + self.field("id", value.get("id")) + self.extensions(value, {"id"})

    def sensors(self, values: object) -> str:
        if not isinstance(values, list) or not values:
            return ""
        elements = []
        for element in values:
            if not isinstance(element, Mapping):
                continue
            text = "sensorElement"
            metadata = element.get("sensorMetadata")
            if isinstance(metadata, Mapping):
                text += "sensorMetadata" + self.fields(metadata, _SENSOR_METADATA, {})
            reports = element.get("sensorReport")
            if isinstance(reports, list):
                vocabulary = {"type": "sensorType", "exception": "exception", "microorganism": "microorganism",
                              "chemicalSubstance": "chemicalSubstance"}  # fmt: skip
                text += "".join(
                    sorted("sensorReport" + self.fields(r, _SENSOR_REPORT, vocabulary) for r in reports
                           if isinstance(r, Mapping))
                )  # fmt: skip
            text += self.extensions(element, {"sensorMetadata", "sensorReport"})
            elements.append(text)
        return "sensorElementList" + "".join(sorted(elements))

    def persistent(self, value: object) -> str:
        if not isinstance(value, Mapping):
            return ""
        text = ""
        for name in ("set", "unset"):
            items = value.get(name)
            if isinstance(items, list) and items:
                text += "".join(sorted(self.field(name, v, name) for v in items))
        return "persistentDisposition" + text if text else ""

    def ilmd(self, value: object) -> str:
        if not isinstance(value, Mapping):
            return ""
        text = self.extensions(value, set())
        return "ilmd" + text if text else ""


def prehash(event: Mapping[str, Any], prefixes: Prefixes | None = None) -> str:
    """The event's pre-hash string (CBV 2.0 section 8.8.1)."""
    w = _Writer(prefixes or Prefixes())
    e = event
    parts = [
        "eventType=" + str(e.get("type", "")),
        w.field("eventTime", e.get("eventTime")),
        w.field("eventTimeZoneOffset", e.get("eventTimeZoneOffset")),
        w.field("certificationInfo", e.get("certificationInfo")),
        w.listed("epcList", e.get("epcList"), "epc"),
        w.field("parentID", e.get("parentID")),
        w.listed("inputEPCList", e.get("inputEPCList"), "epc"),
        w.listed("childEPCs", e.get("childEPCs"), "epc"),
        w.quantities("quantityList", e.get("quantityList")),
        w.quantities("childQuantityList", e.get("childQuantityList")),
        w.quantities("inputQuantityList", e.get("inputQuantityList")),
        w.listed("outputEPCList", e.get("outputEPCList"), "epc"),
        w.quantities("outputQuantityList", e.get("outputQuantityList")),
        w.field("action", e.get("action")),
        w.field("transformationID", e.get("transformationID")),
        w.field("bizStep", e.get("bizStep"), "bizStep"),
        w.field("disposition", e.get("disposition"), "disposition"),
        w.persistent(e.get("persistentDisposition")),
        w.location("readPoint", e.get("readPoint")),
        w.location("bizLocation", e.get("bizLocation")),
        w.typed("bizTransactionList", e.get("bizTransactionList"), "bizTransaction", "bizTransactionType"),
        w.typed("destinationList", e.get("destinationList"), "destination", "sourceOrDestinationType"),
        w.typed("sourceList", e.get("sourceList"), "source", "sourceOrDestinationType"),
        w.sensors(e.get("sensorElementList")),
        w.ilmd(e.get("ilmd")),
        w.extensions(e, _STANDARD_FIELDS),
    ]
    return "".join(parts)


_STANDARD_FIELDS = {
    "eventTime", "eventTimeZoneOffset", "certificationInfo", "epcList", "parentID", "inputEPCList", "childEPCs",
    "quantityList", "childQuantityList", "inputQuantityList", "outputEPCList", "outputQuantityList", "action",
    "transformationID", "bizStep", "disposition", "persistentDisposition", "readPoint", "bizLocation",
    "bizTransactionList", "sourceList", "destinationList", "sensorElementList", "ilmd",
}  # fmt: skip


def event_hash(event: Mapping[str, Any], prefixes: Prefixes | None = None) -> str:
    """The event's CBV 2.0 hash identifier: `ni:///sha-256;<hex>?ver=CBV2.0`."""
    digest = hashlib.sha256(prehash(event, prefixes).encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver=CBV2.0"


def document_events(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The events of an EPCISDocument or EPCISQueryDocument, in document order."""
    body = document.get("epcisBody")
    if not isinstance(body, Mapping):
        return []
    if isinstance(body.get("eventList"), list):
        return [e for e in body["eventList"] if isinstance(e, Mapping)]
    results = body.get("queryResults")
    if isinstance(results, Mapping):
        events = (results.get("resultsBody") or {}).get("eventList")
        return [e for e in events if isinstance(e, Mapping)] if isinstance(events, list) else []
    single = body.get("event")
    return [single] if isinstance(single, Mapping) else []


__all__ = ["Prefixes", "document_events", "event_hash", "format_number", "format_time", "prehash"]
