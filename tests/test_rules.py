"""The batch rules on their own: BatchState.copy (a savepoint must be a full, independent copy), custody, and who
may record what."""

from __future__ import annotations

import dataclasses

import pytest

from ledger.errors import RuleError
from ledger.events import Role, validate_statement
from ledger.rules import Actor, BatchState, ShipmentState


def test_copy_keeps_every_field_and_shares_nothing_mutable() -> None:
    state = BatchState(
        "SKU",
        "LOT",
        owner="act_m",
        gtin="04006381333931",
        last_hash=b"h" * 32,
        last_index=7,
        length=3,
        custodian="act_c",
        recalled_at="2026-11-25T00:00:00Z",
        recall_reason="mould",
        shipments={"S1": ShipmentState("act_c", "2026-12-01T00:00:00Z", delivered=True)},
    )
    # every field set to a non-default value, so a field the copy forgets shows up below
    defaults = BatchState("SKU", "LOT")
    for f in dataclasses.fields(BatchState):
        if f.name not in ("sku", "lot"):
            assert getattr(state, f.name) != getattr(defaults, f.name), f.name
    clone = state.copy()
    assert clone == state
    clone.shipments["S1"].custodian = "act_x"
    clone.shipments["S2"] = ShipmentState("act_m", "2026-12-02T00:00:00Z")
    clone.length += 1
    assert state.shipments == {"S1": ShipmentState("act_c", "2026-12-01T00:00:00Z", delivered=True)}
    assert state.length == 3


# -- the custody rules, each stated against the rule itself (mutants of them survived the whole suite) -----------

MERCHANT, CARRIER, SECOND, ADMIN = (
    Actor("act_m", "Merchant", Role.MERCHANT),
    Actor("act_c", "Carrier", Role.CARRIER),
    Actor("act_c2", "Second carrier", Role.CARRIER),
    Actor("act_a", "Ops", Role.ADMIN),
)
ACTORS = {a.id: a for a in (MERCHANT, CARRIER, SECOND, ADMIN)}


def _record(state: BatchState, actor: Actor, kind: str, data: dict[str, object]) -> None:
    statement, model = validate_statement(
        {
            "v": 1,
            "type": kind,
            "sku": "SKU",
            "lot": "LOT",
            "actor": actor.id,
            "key_id": "0" * 16,
            "signed_at": "2026-11-20T08:00:00Z",
            "data": data,
        }
    )
    state.check(statement, model, actor, ACTORS)
    state.apply(statement, model, bytes(32), state.length, "2026-11-20T08:00:00.000000Z")


def _shipped_to(carrier: Actor) -> BatchState:
    state = BatchState("SKU", "LOT")
    _record(
        state,
        MERCHANT,
        "origin",
        {"product": "Tea", "country": "IN", "produced_at": "2026-11-01T00:00:00Z", "quantity": 5, "unit": "kg"},
    )
    _record(
        state,
        MERCHANT,
        "shipment",
        {
            "shipment_id": "S1",
            "destination": "FR",
            "placed_at": "2026-11-02T00:00:00Z",
            "promised_by": "2026-11-09T00:00:00Z",
        },
    )
    _record(
        state,
        MERCHANT,
        "handoff",
        {"from": MERCHANT.id, "to": carrier.id, "place": "Port", "at": "2026-11-03T00:00:00Z", "shipment_id": "S1"},
    )
    return state


def test_a_delivered_shipment_is_delivered_once_and_handed_on_never() -> None:
    state = _shipped_to(CARRIER)
    _record(state, CARRIER, "delivery", {"shipment_id": "S1", "delivered_at": "2026-11-05T00:00:00Z"})
    for actor, kind, data in [
        (CARRIER, "delivery", {"shipment_id": "S1", "delivered_at": "2026-11-06T00:00:00Z"}),
        (ADMIN, "delivery", {"shipment_id": "S1", "delivered_at": "2026-11-06T00:00:00Z"}),
        (
            CARRIER,
            "handoff",
            {"from": CARRIER.id, "to": SECOND.id, "place": "Hub", "at": "2026-11-06T00:00:00Z", "shipment_id": "S1"},
        ),
    ]:
        with pytest.raises(RuleError, match="already delivered") as refused:
            _record(state, actor, kind, data)
        assert refused.value.kind == "conflict"


def test_a_handoff_names_the_custodian_as_its_sender() -> None:
    """The signer holds custody, but the statement says someone else handed it over: refused, whoever signs."""
    state = _shipped_to(CARRIER)
    for signer in (CARRIER, ADMIN):
        with pytest.raises(RuleError, match="is not the current custodian") as refused:
            _record(
                state,
                signer,
                "handoff",
                {
                    "from": SECOND.id,
                    "to": MERCHANT.id,
                    "place": "Hub",
                    "at": "2026-11-04T00:00:00Z",
                    "shipment_id": "S1",
                },
            )
        assert refused.value.kind == "forbidden"
    _record(
        state,
        CARRIER,
        "handoff",
        {"from": CARRIER.id, "to": SECOND.id, "place": "Hub", "at": "2026-11-04T00:00:00Z", "shipment_id": "S1"},
    )
    assert state.shipments["S1"].custodian == SECOND.id


def test_who_may_record_what_stated_by_hand() -> None:
    """The role table, written out here rather than read from `ALLOWED` (a test deriving its expectation from the
    table under test cannot catch a wrong entry in it)."""
    from ledger.rules import ALLOWED

    expected = {
        Role.ADMIN: {"origin", "inspection", "shipment", "handoff", "delivery", "recall", "shipment_cancel"},
        Role.MERCHANT: {"origin", "shipment", "handoff", "recall", "shipment_cancel"},
        Role.INSPECTOR: {"inspection"},
        Role.CARRIER: {"handoff", "delivery"},
        Role.AUDITOR: set(),
    }
    assert {role: {kind.value for kind in kinds} for role, kinds in ALLOWED.items()} == expected
