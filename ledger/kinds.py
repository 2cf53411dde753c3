"""The kinds of things the ledger names: event types and actor roles (plain enums, importable without the
statement models, so that a command-line start does not pay for pydantic)."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    ORIGIN = "origin"
    INSPECTION = "inspection"
    SHIPMENT = "shipment"
    HANDOFF = "handoff"
    DELIVERY = "delivery"
    RECALL = "recall"
    SHIPMENT_CANCEL = "shipment_cancel"


class Role(StrEnum):
    ADMIN = "admin"
    MERCHANT = "merchant"
    INSPECTOR = "inspector"
    CARRIER = "carrier"
    AUDITOR = "auditor"
