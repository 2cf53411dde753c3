"""What the ledger records: signed statements about a batch (SKU + lot), and the fields of each event type.

A statement is the JSON object an actor signs. Its canonical bytes (RFC 8785) prefixed with the statement
context are what the Ed25519 signature covers (see `ledger.signing`).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from ledger.canonical import canonical_json
from ledger.errors import ValidationError
from ledger.hashing import sha256

# re-exported (the aliases mark it so): the enums live in ledger.kinds, importable without pydantic
from ledger.kinds import EventType as EventType
from ledger.kinds import Role as Role

STATEMENT_VERSION = 1
_RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_SHA256_HEX_RE = r"^[0-9a-f]{64}$"
IDENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
KEY_ID_PATTERN = r"^[0-9a-f]{16}$"


def parse_time(value: str, what: str = "time") -> datetime:
    """Parse an RFC 3339 timestamp with an explicit offset; return it in UTC."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be an RFC 3339 time with an offset, like 2026-11-20T08:00:00Z")
    parsed = _parse_rfc3339(value)
    if parsed is None:
        raise ValidationError(f"{what} must be an RFC 3339 time with an offset, like 2026-11-20T08:00:00Z")
    if isinstance(parsed, str):
        raise ValidationError(f"{what} {value!r} {parsed}")
    return parsed


@functools.lru_cache(maxsize=4096)
def _parse_rfc3339(value: str) -> datetime | str | None:
    """The time in UTC; None if not RFC 3339 in form; why not, if not a real date in range. Cached: an entry names
    the same times several times (its schema, the rules and the verifier each read them)."""
    if not _RFC3339_RE.fullmatch(value):
        return None
    try:  # Python 3.11 reads "Z" and truncates fractions beyond microseconds
        moment = datetime.fromisoformat(value).astimezone(UTC)
    except ValueError as exc:
        return f"is not a real date and time: {exc}"
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00, before year 1 in UTC
        moment = None
    if moment is None or not EARLIEST_TIME <= moment <= LATEST_TIME:
        return f"is outside the years {EARLIEST_TIME.year}-{LATEST_TIME.year} (UTC)"
    return moment


EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
"""Times outside this range are refused: nothing in a supply chain happened before 1970, and Python's datetime,
PostgreSQL's timestamptz and JavaScript's Date cannot all carry a year beyond 9999 (nor, in UTC, before year 1)."""


def format_time(moment: datetime) -> str:
    """UTC, microseconds, 'Z': the form the server writes (e.g. logged_at)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def gtin_check_digit(body: str) -> int:
    """GS1 check digit over the digits before it: weights 3,1,3,... from the right."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def validate_gtin(gtin: str) -> str:
    """GTIN-8/12/13/14 with a correct GS1 check digit; returned as given."""
    if not re.fullmatch(r"\d{8}|\d{12}|\d{13}|\d{14}", gtin):
        raise ValueError("a GTIN is 8, 12, 13 or 14 digits")
    expected = gtin_check_digit(gtin[:-1])
    if int(gtin[-1]) != expected:
        raise ValueError(f"GTIN check digit is {gtin[-1]}, expected {expected}")
    return gtin


def gtin14(gtin: str) -> str:
    """The 14-digit form GS1 Digital Link uses in AI (01)."""
    return gtin.zfill(14)


def _rfc3339(value: str) -> str:
    try:
        parse_time(value)
    except ValidationError as exc:
        raise ValueError(str(exc)) from exc
    return value


Timestamp = Annotated[
    str,
    Field(description="RFC 3339 time with an offset, e.g. 2026-11-20T08:00:00Z", examples=["2026-11-20T08:00:00Z"]),
]
EpcisEventId = Annotated[
    str,
    Field(
        max_length=200,
        pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:[!-~]{1,190}$",
        description="the eventID an imported EPCIS event carried (a URI; kept so the export gives it back)",
    ),
]
# Control characters (C0, DEL, C1) and bidirectional embeddings, overrides and isolates (U+202A-U+202E,
# U+2066-U+2069) are refused in every text field: a NUL cannot be stored by PostgreSQL, and a right-to-left override
# makes a name or place display as another (an override before "tcepsnI" shows "Inspect"). Written with \x escapes
# and literal characters, which Python's and pydantic's (Rust) regular expressions read alike.
_BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"
_REFUSED = "\\x00-\\x1f\\x7f-\\x9f" + _BIDI_CONTROLS  # a character class's ranges: what text may not hold
_REFUSED_BESIDE_LF = "\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f" + _BIDI_CONTROLS
TEXT_PATTERN = f"^[^{_REFUSED}]*$"
LINES_PATTERN = f"^[^{_REFUSED_BESIDE_LF}]*$"
"""TEXT_PATTERN, but newlines (LF) allowed: for free text that may run over several lines (a recall's reason)."""
_REFUSED_IN_TEXT = re.compile(f"[{_REFUSED}]")
_REFUSED_IN_LINES = re.compile(f"[{_REFUSED_BESIDE_LF}]")


def text_problem(value: str, lines: bool = False) -> str | None:
    """Why `value` is not acceptable text (naming the character and where it is), or None if it is."""
    found = (_REFUSED_IN_LINES if lines else _REFUSED_IN_TEXT).search(value)
    if found is None:
        return None
    char = found.group()
    name = unicodedata.name(char, "a control character")
    return (
        f"holds U+{ord(char):04X} ({name}) at position {found.start()}: control characters and bidirectional "
        "overrides (U+202A-U+202E, U+2066-U+2069) are not allowed in text"
    )


def check_text(value: str, what: str, lines: bool = False) -> str:
    """`value` if it is acceptable text; ValidationError naming `what` and the character otherwise."""
    problem = text_problem(value, lines)
    if problem is not None:
        raise ValidationError(f"{what} {problem}")
    return value


_TEXT_PATTERNS = (TEXT_PATTERN, LINES_PATTERN)


# Each limit is a type of its own: a Field(max_length=...) on top of an Annotated one does not lower its limit (the
# later constraint wins: a unit of 40 characters passed as Text with max_length=32).
Text = Annotated[str, Field(min_length=1, max_length=500, pattern=TEXT_PATTERN)]
ShortText = Annotated[str, Field(max_length=200, pattern=TEXT_PATTERN)]
Unit = Annotated[str, Field(min_length=1, max_length=32, pattern=TEXT_PATTERN)]
MeasurementName = Annotated[str, Field(min_length=1, max_length=100, pattern=TEXT_PATTERN)]
MeasurementText = Annotated[str, Field(max_length=200, pattern=TEXT_PATTERN)]
MeasurementUnit = Annotated[str, Field(max_length=32, pattern=TEXT_PATTERN)]
Note = Annotated[str, Field(max_length=500, pattern=LINES_PATTERN)]
Lines = Annotated[str, Field(min_length=1, max_length=2000, pattern=LINES_PATTERN)]
ActorId = Annotated[str, Field(min_length=1, max_length=64, pattern=TEXT_PATTERN)]
Ident = Annotated[
    str,
    Field(pattern=IDENT_PATTERN, description="1-64 characters: letters, digits and . _ : - (no slash: a URL segment)"),
]


class Signed(Protocol):
    """Anything signed at a time: a batch statement or a registration."""

    @property
    def signed_at(self) -> str: ...


class _Strict(BaseModel):
    # strict: "1200" is not a number and 1 is not a string; what is signed is exactly what is checked.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)


class Document(_Strict):
    """A document kept outside the ledger: only its SHA-256 (and what helps find and check it) is recorded."""

    sha256: str = Field(pattern=_SHA256_HEX_RE, description="SHA-256 of the document bytes, lowercase hex")
    media_type: ShortText | None = Field(default=None, description="e.g. application/pdf")
    size: int | None = Field(default=None, ge=0, description="document size in bytes")
    url: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^https?://[^\s<>\"" + _REFUSED + "]+$",
        description="where the document may be fetched (http or https)",
    )
    name: ShortText | None = Field(default=None, description="file name or title")


class OriginData(_Strict):
    product: Text = Field(description="product name")
    country: str = Field(description="origin country, ISO 3166-1 alpha-2")
    region: Text | None = Field(default=None, description="region of origin")
    facility: Text | None = Field(default=None, description="production facility")
    produced_at: Timestamp
    quantity: float = Field(gt=0, description="quantity produced in this batch")
    unit: Unit = Field(description="unit of the quantity, e.g. kg, pcs")
    gtin: str | None = Field(default=None, description="GTIN-8/12/13/14 with a valid GS1 check digit")
    documents: list[Document] = Field(default_factory=list, max_length=50)
    owner: ActorId | None = Field(
        default=None,
        description="the merchant the batch belongs to, when an admin records its origin on the merchant's behalf "
        "(an EPCIS import); otherwise the signer",
    )
    epcis_event_id: EpcisEventId | None = None

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        import pycountry  # here: only an origin names a country, and the import is a tenth of a CLI start

        if not re.fullmatch(r"[A-Z]{2}", value) or pycountry.countries.get(alpha_2=value) is None:
            raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
        return value

    @field_validator("gtin")
    @classmethod
    def _gtin(cls, value: str | None) -> str | None:
        return None if value is None else validate_gtin(value)

    _time = field_validator("produced_at")(_rfc3339)


class Measurement(_Strict):
    name: MeasurementName
    value: float | MeasurementText
    unit: MeasurementUnit | None = None


class InspectionData(_Strict):
    standard: Text = Field(description="standard or scheme inspected against, e.g. ISO 22000")
    result: Literal["pass", "fail", "conditional"]
    inspected_at: Timestamp
    report: Document = Field(description="the inspection report (its SHA-256, never the document itself)")
    measurements: list[Measurement] = Field(default_factory=list, max_length=100)
    epcis_event_id: EpcisEventId | None = None

    _time = field_validator("inspected_at")(_rfc3339)


class ShipmentData(_Strict):
    shipment_id: Ident = Field(description="the merchant's id for this order, unique within the batch")
    destination: Text = Field(
        description="destination region or facility code (never a person's address: the log is public)"
    )
    placed_at: Timestamp
    promised_by: Timestamp = Field(description="promised delivery deadline (the SLA promise)")
    quantity: float | None = Field(default=None, gt=0, description="quantity ordered (for on-time-in-full)")
    unit: Unit | None = Field(default=None, description="unit of the quantity ordered, e.g. kg, pcs")
    epcis_event_id: EpcisEventId | None = None

    _times = field_validator("placed_at", "promised_by")(_rfc3339)

    @model_validator(mode="after")
    def _quantity_and_unit(self) -> ShipmentData:
        if (self.quantity is None) != (self.unit is None):
            raise ValueError("quantity and unit go together: give both or neither")
        return self


class Condition(_Strict):
    temperature_c: float | None = Field(default=None, ge=-273.15, le=1000, description="temperature in Celsius")
    humidity_pct: float | None = Field(default=None, ge=0, le=100, description="relative humidity, percent")
    note: Note | None = None


class HandoffData(_Strict):
    from_actor: ActorId = Field(alias="from", description="actor id handing custody over (the current custodian)")
    to: ActorId = Field(description="actor id receiving custody")
    place: Text
    at: Timestamp
    shipment_id: Ident | None = Field(default=None, description="the shipment this handoff belongs to")
    condition: Condition | None = None
    epcis_event_id: EpcisEventId | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True, defer_build=True)
    _time = field_validator("at")(_rfc3339)


class DeliveryData(_Strict):
    shipment_id: Ident
    delivered_at: Timestamp
    place: Text | None = None
    quantity: float | None = Field(
        default=None, ge=0, description="quantity delivered, in the shipment's unit (for on-time-in-full)"
    )
    epcis_event_id: EpcisEventId | None = None

    _time = field_validator("delivered_at")(_rfc3339)


class ShipmentCancelData(_Strict):
    """The merchant closes a shipment without a delivery (before one): it counts in no rate, only apart."""

    shipment_id: Ident
    cancelled_at: Timestamp
    reason: Note | None = None
    epcis_event_id: EpcisEventId | None = None

    _time = field_validator("cancelled_at")(_rfc3339)


class RecallData(_Strict):
    reason: Lines = Field(description="why the batch is recalled (may run over several lines)")
    recalled_at: Timestamp | None = Field(
        default=None, description="when the recall was decided, if not when it is logged (an imported EPCIS event)"
    )
    epcis_event_id: EpcisEventId | None = None

    _time = field_validator("recalled_at")(_rfc3339)


DATA_MODELS: dict[EventType, type[_Strict]] = {
    EventType.ORIGIN: OriginData,
    EventType.INSPECTION: InspectionData,
    EventType.SHIPMENT: ShipmentData,
    EventType.HANDOFF: HandoffData,
    EventType.DELIVERY: DeliveryData,
    EventType.RECALL: RecallData,
    EventType.SHIPMENT_CANCEL: ShipmentCancelData,
}


class Statement(_Strict):
    """What an actor signs. `data` holds the type's fields (see the *Data models)."""

    v: Literal[1] = Field(description="statement format version")
    type: Literal["origin", "inspection", "shipment", "handoff", "delivery", "recall", "shipment_cancel"]
    sku: Ident = Field(description="stock keeping unit of the batch")
    lot: Ident = Field(description="lot or batch number")
    actor: ActorId = Field(description="id of the recording actor")
    key_id: str = Field(pattern=KEY_ID_PATTERN, description="id of the actor's key that signed")
    signed_at: Timestamp
    data: dict[str, Any]

    _time = field_validator("signed_at")(_rfc3339)


_STATEMENT_ADAPTER = TypeAdapter(Statement)


def new_statement(
    kind: str, sku: str, lot: str, actor: str, key_id: str, signed_at: str, data: dict[str, Any]
) -> dict[str, Any]:
    """A statement as JSON, ready to canonicalize and sign (what every client, the CLI included, sends)."""
    return {
        "v": STATEMENT_VERSION,
        "type": kind,
        "sku": sku,
        "lot": lot,
        "actor": actor,
        "key_id": key_id,
        "signed_at": signed_at,
        "data": data,
    }


def validation_message(error: Mapping[str, Any]) -> str:
    """A pydantic error's message, with the text patterns' (unreadable) regular expressions replaced by what the
    value holds that is refused."""
    value, pattern = error.get("input"), (error.get("ctx") or {}).get("pattern")
    if error.get("type") == "string_pattern_mismatch" and isinstance(value, str) and pattern in _TEXT_PATTERNS:
        problem = text_problem(value, lines=pattern == LINES_PATTERN)
        if problem is not None:
            return problem
    if error.get("type") == "string_pattern_mismatch" and pattern == IDENT_PATTERN:
        return (
            f"{str(value)[:80]!r} is not an identifier: 1-64 letters, digits and . _ : - starting with a letter or "
            "digit (it is a URL segment: no slash, space or other character)"
        )
    return str(error["msg"]).removeprefix("Value error, ")


def _describe(exc: PydanticValidationError, prefix: str) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in (prefix, *error["loc"]) if p != "")
        parts.append(f"{where}: {validation_message(error)}")
    return "; ".join(parts)


class _Enveloped(Protocol):
    @property
    def data(self) -> dict[str, Any]: ...


EnvelopeT = TypeVar("EnvelopeT", bound=_Enveloped)


def validate_envelope(
    raw: Any, statement_model: Callable[[Any], EnvelopeT], data_model: Callable[[EnvelopeT], type[BaseModel]]
) -> tuple[EnvelopeT, BaseModel]:
    """Check a statement of any family (batch events here, registrations in ledger.identities): the envelope with
    `statement_model`, then its `data` with the model `data_model` picks for it. Raises ValidationError naming the
    field and what is wrong."""
    if not isinstance(raw, dict):
        raise ValidationError("statement must be a JSON object")
    try:
        statement = statement_model(raw)
    except PydanticValidationError as exc:
        raise ValidationError(_describe(exc, "statement")) from exc
    try:
        data = data_model(statement).model_validate(statement.data)
    except PydanticValidationError as exc:
        raise ValidationError(_describe(exc, "statement.data")) from exc
    return statement, data


def _event_data_model(statement: Statement) -> type[BaseModel]:
    return DATA_MODELS[EventType(statement.type)]


def validate_statement(raw: Any) -> tuple[Statement, BaseModel]:
    """Check a statement (as parsed JSON) and its type's data; return both as models.

    Raises ValidationError naming the field and what is wrong.
    """
    return validate_envelope(raw, _STATEMENT_ADAPTER.validate_python, _event_data_model)


def content_identity(statement: Mapping[str, Any]) -> bytes:
    """What a statement says, whenever and with whichever key it was signed: SHA-256 of the canonical JSON of the
    statement without `signed_at` and `key_id`. The server refuses exact replays (the same signed bytes); a client
    that signs again (a resumed import) skips an event whose content identity its batch already holds."""
    return sha256(canonical_json({k: v for k, v in statement.items() if k not in ("signed_at", "key_id")}))


def batch_key(sku: str, lot: str) -> str:
    return f"{sku}/{lot}"
