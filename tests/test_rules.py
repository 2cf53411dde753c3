"""BatchState.copy: a savepoint must be a full, independent copy (a rolled-back request leaves no trace)."""

from __future__ import annotations

import dataclasses

from ledger.rules import BatchState, ShipmentState


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
