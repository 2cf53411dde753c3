"""A batch exported as GS1 EPCIS 2.0: valid against GS1's JSON schema (with URI formats checked) and CBV's lists,
each event as docs/epcis.md maps it, each eventID its CBV 2.0 event hash, provenance beside the events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from ledger.entry import parse_leaf
from ledger.epcis.event_hash import Prefixes, event_hash
from ledger.epcis.vocabulary import BIZ_STEPS, DISPOSITIONS
from ledger.hashing import leaf_hash
from tests.factory import World, handoff_data, inspection_data, make_world, origin_data, shipment_data
from tests.servers import until_checkpointed

SCHEMA_FILE = Path(__file__).parent / "vectors" / "epcis" / "EPCIS-JSON-Schema.json"
BASE = "https://trace.example"


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


VALIDATOR = _validator()


def check_epcis(document: dict[str, Any]) -> None:
    """Valid against GS1's schema, with `format: uri` and `date-time` checked, and CBV vocabulary only (the schema
    alone lets any URI through as a business step)."""
    errors = sorted(VALIDATOR.iter_errors(document), key=lambda e: list(e.path))
    assert errors == [], [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    for event in document["epcisBody"]["eventList"]:
        assert event["bizStep"] in BIZ_STEPS, event["bizStep"]
        assert event.get("disposition", "active") in DISPOSITIONS, event.get("disposition")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, World]]:
    app = create_app(
        Settings(checkpoint_interval_s=0.05, data_dir=tmp_path, public_url=BASE, log_name="trace.example/log")
    )
    world = make_world(app.state.store)
    with TestClient(app) as client:
        yield client, world


def _full_batch(world: World) -> None:
    """Every event type: origin (GTIN, quantity), two inspections (one with a report URL), an order with its
    quantity, handoffs with temperature and humidity, a delivery, a cancelled order, a recall."""
    m, lab, c1, c2 = world.merchant, world.inspector, world.carrier, world.second_carrier
    origin = origin_data() | {"gtin": "04006381333931", "facility": "0614141073467"}
    world.store.append(
        [
            m.submit("origin", "OIL", "L1", origin),
            lab.submit("inspection", "OIL", "L1", inspection_data()),
            lab.submit(
                "inspection",
                "OIL",
                "L1",
                inspection_data()
                | {"result": "conditional", "report": inspection_data()["report"] | {"url": "https://lab.example/r/2"}},
            ),
            m.submit("shipment", "OIL", "L1", shipment_data("SO-1") | {"quantity": 400.0, "unit": "kg"}),
            m.submit("handoff", "OIL", "L1", handoff_data(m.id, c1.id, "SO-1")),
            c1.submit(
                "handoff",
                "OIL",
                "L1",
                handoff_data(c1.id, c2.id, "SO-1") | {"condition": {"temperature_c": 4.5, "humidity_pct": 61.0}},
            ),
            c2.submit(
                "delivery",
                "OIL",
                "L1",
                {"shipment_id": "SO-1", "delivered_at": "2026-11-08T15:00:00+01:00", "quantity": 398.5},
            ),
            m.submit("shipment", "OIL", "L1", shipment_data("SO-2")),
            m.submit("shipment_cancel", "OIL", "L1", {"shipment_id": "SO-2", "cancelled_at": "2026-11-05T08:00:00Z"}),
            m.submit("recall", "OIL", "L1", {"reason": "Seal failure"}),
        ]
    )


def test_a_batch_exports_as_valid_epcis_with_cbv_vocabulary(site) -> None:
    client, world = site
    _full_batch(world)
    until_checkpointed(world.store)
    answer = client.get("/v1/batches/OIL/L1/epcis")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/ld+json"
    document = answer.json()
    check_epcis(document)
    assert document["@context"][0] == "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
    events = document["epcisBody"]["eventList"]
    assert [(e["bizStep"], e.get("disposition")) for e in events] == [
        ("commissioning", "active"),
        ("inspecting", "conformant"),
        ("inspecting", None),  # conditional: EPCIS has no such disposition, and none is claimed
        ("shipping", "in_transit"),
        ("shipping", "in_transit"),  # a handoff: recorded by the custodian handing over
        ("shipping", "in_transit"),
        ("receiving", None),  # the delivery
        ("shipping", "in_transit"),
        ("void_shipping", None),
        ("holding", "recalled"),
    ]
    batch_class = "https://id.gs1.org/01/04006381333931/10/L1"
    assert all(e["quantityList"][0]["epcClass"] == batch_class for e in events)
    origin, _lab, conditional, order, _sent, received, delivery, _order2, cancel, recall = events
    assert origin["quantityList"] == [{"epcClass": batch_class, "quantity": 1200, "uom": "KGM"}]
    assert origin["readPoint"] == {"id": "https://id.gs1.org/414/0614141073467"}  # the facility is a GLN
    assert origin["ilmd"]["cbvmda:countryOfOrigin"] == "ET"
    assert conditional["certificationInfo"] == "https://lab.example/r/2"
    assert conditional["chainproof:reportSha256"] == inspection_data()["report"]["sha256"]
    assert conditional["chainproof:result"] == "conditional"
    assert order["quantityList"][0] | {"epcClass": ""} == {"epcClass": "", "quantity": 400, "uom": "KGM"}
    assert order["bizTransactionList"] == [{"type": "po", "bizTransaction": f"{BASE}/epcis/orders/OIL/L1/SO-1"}]
    assert order["chainproof:promisedBy"] == "2026-11-10T18:00:00Z"
    assert order["destinationList"] == [{"type": "location", "destination": f"{BASE}/epcis/places/DE-HH"}]
    assert received["sourceList"] == [
        {"type": "possessing_party", "source": f"{BASE}/epcis/parties/{world.carrier.id}"}
    ]
    assert received["destinationList"] == [
        {"type": "possessing_party", "destination": f"{BASE}/epcis/parties/{world.second_carrier.id}"}
    ]
    assert received["readPoint"] == {"id": f"{BASE}/epcis/places/Djibouti%20port"}
    assert received["sensorElementList"][0]["sensorReport"] == [
        {"type": "Temperature", "value": 4.5, "uom": "CEL"},
        {"type": "RelativeHumidity", "value": 61.0, "uom": "A93"},
    ]
    assert delivery["eventTime"] == "2026-11-08T15:00:00+01:00"
    assert delivery["eventTimeZoneOffset"] == "+01:00"
    assert delivery["quantityList"][0]["quantity"] == 398.5  # in the order's unit
    assert delivery["quantityList"][0]["uom"] == "KGM"
    assert cancel["bizTransactionList"][0]["bizTransaction"].endswith("/SO-2")
    assert recall["chainproof:reason"] == "Seal failure"
    # each eventID is the event's own CBV 2.0 hash; the log's provenance rides beside, keyed by it
    prefixes = Prefixes(document["@context"])
    entries = world.store.batch_entries("OIL", "L1")
    provenance = document["chainproof:provenance"]
    for event, entry in zip(events, entries, strict=True):
        content = {k: v for k, v in event.items() if k != "eventID"}
        assert event["eventID"] == event_hash(content, prefixes)
        assert provenance[event["eventID"]]["logIndex"] == entry.stored_index
        assert provenance[event["eventID"]]["entryHash"] == leaf_hash(entry.leaf).hex()
    assert len(set(provenance)) == len(events)


def test_a_batch_without_gtin_uses_the_platforms_own_link(site) -> None:
    client, world = site
    world.store.append(world.journey("COF", "7"))
    until_checkpointed(world.store)
    document = client.get("/v1/batches/COF/7/epcis").json()
    check_epcis(document)
    assert {e["quantityList"][0]["epcClass"] for e in document["epcisBody"]["eventList"]} == {f"{BASE}/p/COF/7"}


def test_export_refuses_a_unit_it_cannot_code_and_an_unknown_batch(site) -> None:
    client, world = site
    world.store.append([world.merchant.submit("origin", "ODD", "1", origin_data() | {"unit": "sacks"})])
    until_checkpointed(world.store)
    refused = client.get("/v1/batches/ODD/1/epcis")
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert "unit 'sacks' has no UN/ECE Recommendation 20 code" in refused.json()["detail"]
    unknown = client.get("/v1/batches/NO/SUCH/epcis")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


def test_the_gs1_examples_pass_the_same_checks() -> None:
    """The checks themselves: GS1's own examples pass them (they name the document by a JSON-LD blank node,
    `_:document1`, which is not a URI: formats are checked without it), and a business step outside CBV fails even
    where the schema lets it through as a URI."""
    examples = {path.name: json.loads(path.read_text()) for path in (SCHEMA_FILE.parent / "examples").glob("*.jsonld")}
    assert len(examples) == 5
    schema = json.loads(SCHEMA_FILE.read_text())
    for name, document in examples.items():
        assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(document)) == [], name
        assert document.pop("id").startswith("_:")
        check_epcis(document)
    document = examples["Example_9.6.1-ObjectEvent.jsonld"]
    document["epcisBody"]["eventList"][0]["bizStep"] = "https://example.com/inspect"
    assert list(VALIDATOR.iter_errors(document)) == []
    with pytest.raises(AssertionError, match=r"https://example\.com/inspect"):
        check_epcis(document)


def test_every_demo_batch_exports_and_the_cli_writes_it(tmp_path: Path) -> None:
    """The demo's batches (origins with facilities, orders, handoffs with temperatures, a recall, an at-risk
    order) all export as valid EPCIS, through `chainproof epcis export` against a running server."""
    from typer.testing import CliRunner

    from cli.demo import seed_demo
    from cli.main import app as cli_app
    from tests.servers import start_server

    server = start_server(tmp_path / "server")
    try:
        seed_demo(server.store, server.settings.data_dir / "keys")
        until_checkpointed(server.store)
        statements = [parse_leaf(e.leaf).statement for e in server.store.entries(0, server.store.size())]
        batches = {(s["sku"], s["lot"]) for s in statements if not s["sku"].startswith("_")}
        assert len(batches) >= 4
        runner = CliRunner()
        for sku, lot in sorted(batches):
            out = tmp_path / f"{sku}-{lot}.jsonld"
            said = runner.invoke(
                cli_app, ["epcis", "export", "--sku", sku, "--lot", lot, "--out", str(out), "--server", server.url]
            )
            assert said.exit_code == 0, said.output
            assert said.output.startswith(f"wrote {out}: ")
            document = json.loads(out.read_bytes())
            check_epcis(document)
            assert len(document["epcisBody"]["eventList"]) == len(server.store.batch_entries(sku, lot))
        refused = runner.invoke(cli_app, ["epcis", "export", "--sku", "NO", "--lot", "SUCH", "--server", server.url])
        assert refused.exit_code != 0
        assert "does not exist" in refused.output
    finally:
        server.stop()
