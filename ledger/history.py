"""One typed history of a batch: its events, read as the typed models of `ledger.events`, folded into what
readers want to know (the origin, inspections, custody, shipments, the recall).

The product page, certificates, the SLA tracker and the EPCIS export read a batch through this fold instead of
each walking raw statements. It follows the same first-wins conventions as `ledger.rules.BatchState.apply`: the
first origin, the first shipment of an id, its first delivery or cancellation; events for a shipment the batch does
not hold, and custody steps after a shipment closed, are not part of its history (the rules refuse them, and the
verifier reports them where a log holds them).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, MutableSequence
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from pydantic import BaseModel

from ledger.entry import ParsedEntry, parse_leaf
from ledger.errors import LedgerError
from ledger.events import (
    DeliveryData,
    HandoffData,
    InspectionData,
    OriginData,
    RecallData,
    ShipmentCancelData,
    ShipmentData,
    Statement,
    parse_time,
    validate_statement,
)
from ledger.identities import is_registration
from ledger.rules import batch_owner
from ledger.sla import Closing, ShipmentRecord, Step, epoch_seconds, epoch_us, origin_name

DataT = TypeVar("DataT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Recorded(Generic[DataT]):
    """An event of the batch: where it is in the log, who signed it, and its typed data."""

    index: int
    logged_at: str
    actor: str
    data: DataT


@dataclass
class BatchHistory:
    """A batch's history so far, advanced event by event (`add`), in log order.

    With `keep_events=False` only what shipments need is kept (the owner, the origin's place, the shipments): the
    form a fold over a whole log uses. `max_inspections` keeps only the latest ones (all are counted)."""

    sku: str
    lot: str
    keep_events: bool = True
    max_inspections: int | None = None
    owner: str | None = None
    origin: Recorded[OriginData] | None = None
    origin_place: str = ""  # the lane's origin: country, and region if any
    origin_index: int | None = None
    inspections: MutableSequence[Recorded[InspectionData]] = field(default_factory=list)
    inspection_count: int = 0
    custody: list[Recorded[HandoffData]] = field(default_factory=list)  # handoffs of the batch, not of a shipment
    # the batch's movements in log order: shipments, every handoff, deliveries and cancellations the history holds
    journey: list[Recorded[ShipmentData | HandoffData | DeliveryData | ShipmentCancelData]] = field(
        default_factory=list
    )
    shipments: dict[str, ShipmentRecord] = field(default_factory=dict)
    recall: Recorded[RecallData] | None = None
    events: int = 0

    def __post_init__(self) -> None:
        if self.max_inspections is not None:
            self.inspections = deque(self.inspections, maxlen=self.max_inspections)

    def add(self, index: int, logged_at: str, statement: Statement, data: BaseModel) -> None:
        """Advance past one checked event of this batch."""
        self.events += 1
        actor = statement.actor
        if isinstance(data, OriginData):
            if self.owner is None:
                self.owner = batch_owner(actor, data)
                self.origin_place = origin_name(data.country, data.region)
                self.origin_index = index
                if self.keep_events:
                    self.origin = Recorded(index, logged_at, actor, data)
        elif isinstance(data, ShipmentData):
            if data.shipment_id not in self.shipments:
                self.shipments[data.shipment_id] = ShipmentRecord(
                    sku=self.sku,
                    lot=self.lot,
                    shipment_id=data.shipment_id,
                    merchant=self.owner or actor,
                    origin=self.origin_place,
                    destination=data.destination,
                    placed_at=epoch_seconds(parse_time(data.placed_at)),
                    promised_by=epoch_seconds(parse_time(data.promised_by)),
                    index=index,
                    logged_us=epoch_us(parse_time(logged_at)),
                    quantity=data.quantity,
                    unit=data.unit,
                )
                if self.keep_events:
                    self.journey.append(Recorded(index, logged_at, actor, data))
        elif isinstance(data, HandoffData):
            if data.shipment_id is None:
                if self.keep_events:
                    self.custody.append(Recorded(index, logged_at, actor, data))
                    self.journey.append(Recorded(index, logged_at, actor, data))
                return
            record = self._open(data.shipment_id)
            if record is not None:
                step = Step(data.from_actor, data.to, epoch_seconds(parse_time(data.at)), index, _us(logged_at))
                self.shipments[record.shipment_id] = replace(record, steps=(*record.steps, step))
                if self.keep_events:
                    self.journey.append(Recorded(index, logged_at, actor, data))
        elif isinstance(data, DeliveryData):
            record = self._open(data.shipment_id)
            if record is not None:
                at = epoch_seconds(parse_time(data.delivered_at))
                closing = Closing(at, index, _us(logged_at), actor, data.quantity)
                self.shipments[record.shipment_id] = replace(record, delivery=closing)
                if self.keep_events:
                    self.journey.append(Recorded(index, logged_at, actor, data))
        elif isinstance(data, ShipmentCancelData):
            record = self._open(data.shipment_id)
            if record is not None:
                at = epoch_seconds(parse_time(data.cancelled_at))
                self.shipments[record.shipment_id] = replace(record, cancel=Closing(at, index, _us(logged_at), actor))
                if self.keep_events:
                    self.journey.append(Recorded(index, logged_at, actor, data))
        elif isinstance(data, RecallData):
            if self.recall is None and self.keep_events:
                self.recall = Recorded(index, logged_at, actor, data)
        elif isinstance(data, InspectionData):
            self.inspection_count += 1
            if self.keep_events:
                self.inspections.append(Recorded(index, logged_at, actor, data))

    def _open(self, shipment_id: str) -> ShipmentRecord | None:
        record = self.shipments.get(shipment_id)
        return None if record is None or record.closed else record


def _us(logged_at: str) -> int:
    return epoch_us(parse_time(logged_at))


def batch_events(entries: Iterable[ParsedEntry]) -> Iterator[tuple[ParsedEntry, Statement, BaseModel]]:
    """The batch events among parsed entries, typed (registrations and entries that do not validate skipped: the
    verifier reports those)."""
    for parsed in entries:
        if is_registration(parsed.statement):
            continue
        try:
            statement, data = validate_statement(parsed.statement)
        except LedgerError:
            continue
        yield parsed, statement, data


def shipment_records(leaves: Iterable[bytes]) -> list[ShipmentRecord]:
    """Every shipment of a log, from its leaves in log order: what the SLA projection must hold."""
    return list(ShipmentFold().add_leaves(leaves).records())


class ShipmentFold:
    """The shipments of a whole log, folded entry by entry (each batch's history kept lean)."""

    def __init__(self) -> None:
        self.batches: dict[tuple[str, str], BatchHistory] = {}

    def add_leaves(self, leaves: Iterable[bytes]) -> ShipmentFold:
        parsed_entries = []
        for leaf in leaves:
            try:
                parsed_entries.append(parse_leaf(leaf))
            except LedgerError:
                continue
            if len(parsed_entries) >= 2000:
                self.add_parsed(parsed_entries)
                parsed_entries = []
        self.add_parsed(parsed_entries)
        return self

    def add_parsed(self, entries: Iterable[ParsedEntry]) -> None:
        for parsed, statement, data in batch_events(entries):
            self.add(parsed.index, parsed.logged_at, statement, data)

    def add(self, index: int, logged_at: str, statement: Statement, data: BaseModel) -> None:
        """One checked batch event, in log order (the verifier feeds its events here as it checks them)."""
        key = (statement.sku, statement.lot)
        history = self.batches.get(key)
        if history is None:
            history = self.batches[key] = BatchHistory(statement.sku, statement.lot, keep_events=False)
        history.add(index, logged_at, statement, data)

    def records(self) -> Iterator[ShipmentRecord]:
        for history in self.batches.values():
            yield from history.shipments.values()

    def origins(self) -> dict[tuple[str, str], tuple[str, str, int]]:
        """Each batch with an origin: (owner, origin place, index of the origin event)."""
        return {
            key: (history.owner, history.origin_place, history.origin_index)
            for key, history in self.batches.items()
            if history.owner is not None and history.origin_index is not None
        }
