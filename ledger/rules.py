"""Who may record what, and in what order: the rules of a batch, shared by the API (before an append) and the
verifier (after the fact). Pure: state in, verdict out.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel

from ledger.errors import RuleError
from ledger.events import (
    DeliveryData,
    EventType,
    HandoffData,
    InspectionData,
    OriginData,
    RecallData,
    Role,
    ShipmentCancelData,
    ShipmentData,
    Signed,
    Statement,
    parse_time,
)
from ledger.signing import key_id_for


@dataclass(frozen=True, slots=True)
class Actor:
    id: str
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class ActorKey:
    key_id: str
    actor_id: str
    public_key: bytes
    valid_from: datetime
    revoked_at: datetime | None = None

    def valid_at(self, moment: datetime) -> bool:
        return self.valid_from <= moment and (self.revoked_at is None or moment < self.revoked_at)


@dataclass(frozen=True)
class Directory:
    """Actors and their keys, as published (GET /v1/actors/... or a bundle) or stored."""

    actors: Mapping[str, Actor]
    keys: Mapping[str, ActorKey]

    def check_signer(self, statement: Statement, at: datetime) -> tuple[Actor, ActorKey]:
        """The statement's actor and key, if the key is that actor's and valid at `at` (when it was logged)."""
        actor = self.actors.get(statement.actor)
        if actor is None:
            raise RuleError(f"actor {statement.actor!r} is not registered", "unauthorized")
        key = self.keys.get(statement.key_id)
        if key is None:
            raise RuleError(f"key {statement.key_id} is not registered", "unauthorized")
        if key.actor_id != actor.id:
            raise RuleError(f"key {key.key_id} belongs to {key.actor_id!r}, not to {actor.id!r}", "forbidden")
        if not _key_id_matches(key.key_id, key.public_key):
            raise RuleError(f"key id {key.key_id} does not match its public key", "invalid")
        if not key.valid_at(at):
            if key.revoked_at is not None and at >= key.revoked_at:
                raise RuleError(f"key {key.key_id} was revoked at {key.revoked_at.isoformat()}", "forbidden")
            raise RuleError(f"key {key.key_id} is not valid before {key.valid_from.isoformat()}", "forbidden")
        return actor, key


CLOCK_SKEW = timedelta(minutes=5)
"""How far ahead of the log's clock a signer's clock may be."""


def event_time(data: BaseModel) -> str | None:
    """When the event happened, as its signer says (None for a recall that names no time: its time is when it was
    logged)."""
    if isinstance(data, OriginData):
        return data.produced_at
    if isinstance(data, InspectionData):
        return data.inspected_at
    if isinstance(data, ShipmentData):
        return data.placed_at
    if isinstance(data, HandoffData):
        return data.at
    if isinstance(data, DeliveryData):
        return data.delivered_at
    if isinstance(data, ShipmentCancelData):
        return data.cancelled_at
    if isinstance(data, RecallData):
        return data.recalled_at
    return None


def check_times(statement: Signed, data: BaseModel, logged_at: datetime) -> None:
    """Nothing is signed, or happened, in the future of the moment it was logged (beyond CLOCK_SKEW)."""
    limit = logged_at + CLOCK_SKEW
    if parse_time(statement.signed_at) > limit:
        raise RuleError(f"signed_at {statement.signed_at} is in the future of the log's clock", "invalid")
    happened = event_time(data)
    if happened is not None and parse_time(happened) > limit:
        raise RuleError(f"event time {happened} is in the future of the log's clock", "invalid")


@functools.lru_cache(maxsize=1024)
def _key_id_matches(key_id: str, public_key: bytes) -> bool:
    return key_id_for(public_key) == key_id


def batch_owner(signer: str, origin: BaseModel) -> str:
    """Whose batch an origin starts: the merchant it names on whose behalf an admin signed it, else the signer."""
    owner = getattr(origin, "owner", None)
    return owner if isinstance(owner, str) else signer


ALLOWED: dict[Role, frozenset[EventType]] = {
    Role.ADMIN: frozenset(EventType),
    Role.MERCHANT: frozenset(
        {EventType.ORIGIN, EventType.SHIPMENT, EventType.HANDOFF, EventType.RECALL, EventType.SHIPMENT_CANCEL}
    ),
    Role.INSPECTOR: frozenset({EventType.INSPECTION}),
    Role.CARRIER: frozenset({EventType.HANDOFF, EventType.DELIVERY}),
    Role.AUDITOR: frozenset(),
}


@dataclass(slots=True)
class ShipmentState:
    custodian: str
    promised_by: str
    delivered: bool = False
    cancelled: bool = False


@dataclass(slots=True)
class BatchState:
    """What a batch's chain says so far: its owner, last entry hash, custody and recall."""

    sku: str
    lot: str
    owner: str | None = None
    gtin: str | None = None
    last_hash: bytes | None = None
    last_index: int | None = None
    length: int = 0
    custodian: str | None = None
    recalled_at: str | None = None
    recall_reason: str | None = None
    shipments: dict[str, ShipmentState] = field(default_factory=dict)

    def copy(self) -> BatchState:
        # Field by field: copy.copy goes through __reduce_ex__, several times slower, and appends copy a state
        # per batch per request under the append lock.
        return BatchState(
            self.sku,
            self.lot,
            self.owner,
            self.gtin,
            self.last_hash,
            self.last_index,
            self.length,
            self.custodian,
            self.recalled_at,
            self.recall_reason,
            {k: ShipmentState(v.custodian, v.promised_by, v.delivered, v.cancelled) for k, v in self.shipments.items()},
        )

    def check(self, statement: Statement, data: BaseModel, actor: Actor, actors: Mapping[str, Actor]) -> None:
        """Raise RuleError if `actor` may not record this event on this batch now."""
        kind = EventType(statement.type)
        if kind not in ALLOWED[actor.role]:
            raise RuleError(f"role {actor.role} may not record {kind} events", "forbidden")
        if kind is EventType.ORIGIN:
            if self.length:
                raise RuleError(f"batch {self.sku}/{self.lot} already has its origin", "conflict")
            owner = getattr(data, "owner", None)
            if owner is not None and owner != actor.id:
                if actor.role is not Role.ADMIN:
                    raise RuleError("only an admin records an origin on another merchant's behalf", "forbidden")
                if owner not in actors or actors[owner].role is not Role.MERCHANT:
                    raise RuleError(f"origin owner {owner!r} is not a registered merchant", "invalid")
            return
        if not self.length:
            raise RuleError(
                f"batch {self.sku}/{self.lot} has no origin yet: its first event must be origin", "conflict"
            )
        if actor.role is Role.MERCHANT and actor.id != self.owner:
            raise RuleError(f"batch {self.sku}/{self.lot} belongs to another merchant", "forbidden")
        if kind is EventType.SHIPMENT:
            assert isinstance(data, ShipmentData)
            if self.recalled_at is not None:
                raise RuleError(f"batch {self.sku}/{self.lot} is recalled: no new shipments", "conflict")
            if data.shipment_id in self.shipments:
                raise RuleError(f"shipment {data.shipment_id} already exists in this batch", "conflict")
            if parse_time(data.promised_by) < parse_time(data.placed_at):
                raise RuleError("promised_by is before placed_at", "invalid")
        elif kind is EventType.HANDOFF:
            assert isinstance(data, HandoffData)
            self._check_custody(data.shipment_id, data.from_actor, actor)
            if data.to not in actors:
                raise RuleError(f"handoff recipient {data.to!r} is not a registered actor", "invalid")
            if data.to == data.from_actor:
                raise RuleError("a handoff needs two different parties", "invalid")
        elif kind is EventType.DELIVERY:
            assert isinstance(data, DeliveryData)
            # the deliverer is the signer, except that an admin may record a delivery for the custodian
            self._check_custody(data.shipment_id, None if actor.role is Role.ADMIN else actor.id, actor)
        elif kind is EventType.SHIPMENT_CANCEL:
            assert isinstance(data, ShipmentCancelData)
            self._open_shipment(data.shipment_id)
        elif kind is EventType.RECALL and self.recalled_at is not None:
            raise RuleError(f"batch {self.sku}/{self.lot} is already recalled", "conflict")

    def _open_shipment(self, shipment_id: str) -> ShipmentState:
        """The shipment, if it exists and is neither delivered nor cancelled (RuleError otherwise)."""
        shipment = self.shipments.get(shipment_id)
        if shipment is None:
            raise RuleError(f"shipment {shipment_id} does not exist in this batch", "conflict")
        if shipment.delivered:
            raise RuleError(f"shipment {shipment_id} is already delivered", "conflict")
        if shipment.cancelled:
            raise RuleError(f"shipment {shipment_id} was cancelled", "conflict")
        return shipment

    def _check_custody(self, shipment_id: str | None, sender: str | None, actor: Actor) -> None:
        custodian = (self.custodian or "") if shipment_id is None else self._open_shipment(shipment_id).custodian
        if sender is not None and sender != custodian:
            raise RuleError(f"{sender!r} is not the current custodian ({custodian!r})", "forbidden")
        if actor.role is not Role.ADMIN and actor.id != custodian:
            raise RuleError(f"only the current custodian ({custodian!r}) may hand this on", "forbidden")

    def apply(self, statement: Statement, data: BaseModel, entry_hash: bytes, index: int, logged_at: str) -> None:
        """Advance the state past an entry (checked or not: the verifier records problems and carries on)."""
        kind = EventType(statement.type)
        if kind is EventType.ORIGIN and self.owner is None:
            self.owner = batch_owner(statement.actor, data)
            self.custodian = self.owner
            self.gtin = getattr(data, "gtin", None)
        elif isinstance(data, ShipmentData) and data.shipment_id not in self.shipments:
            self.shipments[data.shipment_id] = ShipmentState(self.owner or statement.actor, data.promised_by)
        elif isinstance(data, HandoffData):
            if data.shipment_id is None:
                self.custodian = data.to
            elif data.shipment_id in self.shipments:
                self.shipments[data.shipment_id].custodian = data.to
        elif isinstance(data, DeliveryData) and data.shipment_id in self.shipments:
            self.shipments[data.shipment_id].delivered = True
        elif isinstance(data, ShipmentCancelData) and data.shipment_id in self.shipments:
            self.shipments[data.shipment_id].cancelled = True
        elif kind is EventType.RECALL and self.recalled_at is None:
            self.recalled_at = logged_at
            self.recall_reason = str(getattr(data, "reason", ""))
        self.link(entry_hash, index)

    def link(self, entry_hash: bytes, index: int) -> None:
        """Advance the chain alone (an actor's registrations chain like a batch, with no batch rules)."""
        self.last_hash = entry_hash
        self.last_index = index
        self.length += 1
