"""Nothing personal goes into the public log: destinations and places that look like a street address, an e-mail
address or a phone number are refused at intake (the store, so the API; and `record` before it signs)."""

from __future__ import annotations

import pytest

from ledger.errors import ValidationError
from ledger.privacy import personal_data_problem
from tests.factory import World, origin_data, shipment_data

PERSONAL = [
    ("alice@example.com", "e-mail address"),
    ("+49 40 1234567", "phone number"),
    ("(555) 123-4567", "phone number"),
    ("555-123-4567", "phone number"),
    ("138 0013 8000", "phone number"),
    ("13800138000", "phone number"),
    ("+8613800138000", "phone number"),
    ("221B Baker Street", "street address"),
    ("10 Downing St", "street address"),
    ("1600 Pennsylvania Ave NW", "street address"),
    ("12 rue de Rivoli, Paris", "street address"),
    ("Hauptstraße 5, Hamburg", "street address"),
    ("Musterstr. 12", "street address"),
    ("Apt 4, Leeds", "street address"),
    ("PO Box 123", "street address"),
    ("南京东路100号", "street address"),
    ("上海市浦东新区世纪大道88号", "street address"),
]
NOT_PERSONAL = [
    "DE-HH",
    "FR-75",
    "CN-31",
    "US-NJ",
    "Djibouti port",
    "Hamburg Hub 3",
    "GLN 4012345000009",
    "4012345000009",
    "WH-2026-0001",
    "Warehouse 7",
    "Dock 4, Port of Rotterdam",
    "Route 66 depot",
    "Zone B-12",
    "Shenzhen DC",
    "Cold store 2 (4 °C)",
    "Pier 39",
    "Lot 42",
]


@pytest.mark.parametrize(("value", "kind"), PERSONAL)
def test_personal_data_is_recognised(value: str, kind: str) -> None:
    article = "an" if kind.startswith("e-") else "a"
    assert personal_data_problem(value) == f"looks like {article} {kind}"


@pytest.mark.parametrize("value", NOT_PERSONAL)
def test_regions_sites_and_codes_pass(value: str) -> None:
    assert personal_data_problem(value) is None


def test_the_store_refuses_an_address_as_destination_and_writes_nothing(world: World) -> None:
    store = world.store
    store.append([world.merchant.submit("origin", "P", "1", origin_data())])
    before = store.size()
    data = {**shipment_data("S1"), "destination": "221B Baker Street, London"}
    with pytest.raises(ValidationError) as refused:
        store.append([world.merchant.submit("shipment", "P", "1", data)])
    message = str(refused.value)
    assert "statement.data.destination looks like a street address" in message
    assert "never a person's address" in message
    assert store.size() == before
    handoff = {
        "from": world.merchant.id,
        "to": world.carrier.id,
        "place": "call +49 40 1234567",
        "at": "2026-11-04T12:00:00Z",
    }
    with pytest.raises(ValidationError, match=r"statement\.data\.place looks like a phone number"):
        store.append([world.merchant.submit("handoff", "P", "1", handoff)])
    assert store.size() == before
