"""Builders for tests and benchmarks: actors with keys, and signed submissions of every event type."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.canonical import canonical_json
from ledger.events import Role, format_time, new_statement
from ledger.rules import Actor, ActorKey
from ledger.signing import Ed25519PrivateKey, generate_private_key, public_key_bytes, sign_statement
from ledger.storage import LedgerStore, Submission
from ledger.storage.store import AppendOutcome, PreparedAppend

_last_signed_at = datetime.min.replace(tzinfo=UTC)


class EagerlyCheckpointedStore(LedgerStore):
    """A log whose issuer signs a checkpoint the moment anything is committed (a zero cadence), for tests of what
    is read back after an append. The cadence itself, and that reads never sign, are tested with the plain store
    (tests/test_witnessing.py) and through servers, whose issuer runs as deployed."""

    def commit(self, group: Sequence[PreparedAppend], *, now: datetime | None = None) -> list[AppendOutcome]:
        outcomes = super().commit(group, now=now)
        self.issue_checkpoint(now=now)
        return outcomes


def signed_now() -> str:
    """The time to sign at: now (the server takes statements signed within its intake window), and never twice
    the same, so two statements built alike are two statements, not a replay of one."""
    global _last_signed_at
    _last_signed_at = max(datetime.now(UTC), _last_signed_at + timedelta(microseconds=1))
    return format_time(_last_signed_at)


@dataclass
class Party:
    actor: Actor
    key: ActorKey
    private_key: Ed25519PrivateKey

    @property
    def id(self) -> str:
        return self.actor.id

    def statement(self, kind: str, sku: str, lot: str, data: dict[str, Any]) -> dict[str, Any]:
        return new_statement(kind, sku, lot, self.actor.id, self.key.key_id, signed_now(), data)

    def sign(self, statement: dict[str, Any]) -> Submission:
        return Submission(statement, sign_statement(self.private_key, canonical_json(statement)))

    def submit(self, kind: str, sku: str, lot: str, data: dict[str, Any]) -> Submission:
        return self.sign(self.statement(kind, sku, lot, data))


def add_party(store: LedgerStore, name: str, role: Role | str) -> Party:
    private_key = generate_private_key()
    actor, key = store.add_actor(name, role, public_key_bytes(private_key))
    return Party(actor, key, private_key)


def origin_data(**extra: Any) -> dict[str, Any]:
    data = {
        "product": "Yirgacheffe green coffee",
        "country": "ET",
        "region": "Gedeo",
        "facility": "Washing station 4",
        "produced_at": "2026-11-01T06:00:00Z",
        "quantity": 1200,
        "unit": "kg",
    }
    data.update(extra)
    return data


def inspection_data(result: str = "pass") -> dict[str, Any]:
    return {
        "standard": "ISO 22000",
        "result": result,
        "inspected_at": "2026-11-02T10:00:00Z",
        "report": {"sha256": "ab" * 32, "media_type": "application/pdf", "size": 48211},
        "measurements": [{"name": "moisture", "value": 10.5, "unit": "%"}],
    }


def shipment_data(shipment_id: str) -> dict[str, Any]:
    return {
        "shipment_id": shipment_id,
        "destination": "DE-HH",
        "placed_at": "2026-11-03T09:00:00Z",
        "promised_by": "2026-11-10T18:00:00Z",
    }


def handoff_data(
    sender: str, recipient: str, shipment_id: str | None = None, temperature: float = 4.5
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "from": sender,
        "to": recipient,
        "place": "Djibouti port",
        "at": "2026-11-04T12:00:00Z",
        "condition": {"temperature_c": temperature},
    }
    if shipment_id is not None:
        data["shipment_id"] = shipment_id
    return data


@dataclass
class World:
    """A store with a merchant, an inspector, two carriers, an admin and an auditor."""

    store: LedgerStore
    merchant: Party
    other_merchant: Party
    inspector: Party
    carrier: Party
    second_carrier: Party
    admin: Party
    auditor: Party
    counter: itertools.count[int] = field(default_factory=itertools.count)
    base: int = 0  # the log's size once its actors are registered: the index of the first batch event

    def at(self, offset: int) -> int:
        """The log index `offset` entries after the registrations."""
        return self.base + offset

    def journey(self, sku: str, lot: str, shipments: int = 1) -> list[Submission]:
        """A full batch: origin, inspection, shipments each handed merchant -> carrier -> carrier and delivered."""
        subs = [
            self.merchant.submit("origin", sku, lot, origin_data()),
            self.inspector.submit("inspection", sku, lot, inspection_data()),
        ]
        for n in range(shipments):
            sid = f"SHP-{n}"
            subs += [
                self.merchant.submit("shipment", sku, lot, shipment_data(sid)),
                self.merchant.submit("handoff", sku, lot, handoff_data(self.merchant.id, self.carrier.id, sid)),
                self.carrier.submit("handoff", sku, lot, handoff_data(self.carrier.id, self.second_carrier.id, sid)),
                self.second_carrier.submit(
                    "delivery", sku, lot, {"shipment_id": sid, "delivered_at": "2026-11-08T15:00:00Z"}
                ),
            ]
        return subs


def make_world(store: LedgerStore) -> World:
    world = World(
        store,
        add_party(store, "Sidama Coffee Co", Role.MERCHANT),
        add_party(store, "Other Goods Ltd", Role.MERCHANT),
        add_party(store, "Bureau Inspect", Role.INSPECTOR),
        add_party(store, "Red Sea Freight", Role.CARRIER),
        add_party(store, "Hamburg Last Mile", Role.CARRIER),
        add_party(store, "Chainproof Ops", Role.ADMIN),
        add_party(store, "Audit Partners", Role.AUDITOR),
    )
    world.base = store.size()
    return world
