"""GET /v1/epcis/events, the EPCIS 2.0 REST query subset, against answers worked out by hand from the events each
test records (their business times are written out below)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.conftest import postgresql_database
from tests.factory import World, handoff_data, inspection_data, make_world, origin_data, shipment_data
from tests.servers import until_checkpointed
from tests.test_epcis_export import VALIDATOR

BASE = "https://trace.example"
GTIN = "04006381333931"


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[TestClient, World]]:
    with ExitStack() as stack:
        db_url = stack.enter_context(postgresql_database()) if request.param == "postgresql" else None
        yield from _site(tmp_path, db_url)


def _site(tmp_path: Path, db_url: str | None) -> Iterator[tuple[TestClient, World]]:
    app = create_app(
        Settings(
            checkpoint_interval_s=0.05, data_dir=tmp_path, db_url=db_url, public_url=BASE, log_name="trace.example/log"
        )
    )
    world = make_world(app.state.store)
    m, lab, c1 = world.merchant, world.inspector, world.carrier
    # Batch A (GTIN, lot A1): origin 11-01 06:00, inspection 11-02 10:00, order 11-03 09:00, handoff 11-04 12:00,
    # delivery 11-08 15:00. Batch B (no GTIN): origin 11-01 05:00, order 11-05 00:00.
    # Batch C (same GTIN, lot C1): origin 11-06 00:00, recall (logged now).
    world.store.append(
        [
            m.submit("origin", "OIL", "A1", origin_data(gtin=GTIN)),
            m.submit("origin", "TEA", "B1", origin_data(produced_at="2026-11-01T05:00:00Z")),
            lab.submit("inspection", "OIL", "A1", inspection_data()),
            m.submit("shipment", "OIL", "A1", shipment_data("SO-1")),
            m.submit("handoff", "OIL", "A1", handoff_data(m.id, c1.id, "SO-1")),
            m.submit("shipment", "TEA", "B1", shipment_data("SO-9") | {"placed_at": "2026-11-05T00:00:00+00:00"}),
            m.submit("origin", "OIL", "C1", origin_data(gtin=GTIN, produced_at="2026-11-06T01:00:00+01:00")),
            c1.submit("delivery", "OIL", "A1", {"shipment_id": "SO-1", "delivered_at": "2026-11-08T15:00:00Z"}),
            m.submit("recall", "OIL", "C1", {"reason": "Seal failure"}),
        ]
    )
    with TestClient(app) as client:
        yield client, world


def _query(client: TestClient, **params: Any) -> tuple[list[tuple[str, str, str]], dict[str, Any], Any]:
    answer = client.get("/v1/epcis/events", params=params)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert list(VALIDATOR.iter_errors(document)) == []
    events = document["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    listed = []
    for event in events:
        batch = event["quantityList"][0]["epcClass"].rsplit("/", 1)[-1]
        listed.append((batch, event["bizStep"], event["eventTime"][:16]))
    return listed, document, answer


ALL = [
    ("B1", "commissioning", "2026-11-01T05:00"),
    ("A1", "commissioning", "2026-11-01T06:00"),
    ("A1", "inspecting", "2026-11-02T10:00"),
    ("A1", "shipping", "2026-11-03T09:00"),
    ("A1", "shipping", "2026-11-04T12:00"),
    ("B1", "shipping", "2026-11-05T00:00"),
    ("C1", "commissioning", "2026-11-06T01:00"),  # 00:00 UTC, written with its +01:00 offset
    ("A1", "receiving", "2026-11-08T15:00"),
]


def test_all_events_in_event_time_order_without_registrations(site) -> None:
    client, _world = site
    listed, document, _answer = _query(client)
    assert listed[: len(ALL)] == ALL
    assert [(b, s) for b, s, _t in listed[len(ALL) :]] == [("C1", "holding")]  # the recall: logged just now
    assert document["type"] == "EPCISQueryDocument"
    assert document["epcisBody"]["queryResults"]["queryName"] == "SimpleEventQuery"
    # every event's provenance is beside it, by eventID
    events = document["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert sorted(document["chainproof:provenance"]) == sorted(e["eventID"] for e in events)


def test_time_window_business_step_and_class(site) -> None:
    client, _world = site
    window, _d, _a = _query(client, GE_eventTime="2026-11-02T10:00:00Z", LT_eventTime="2026-11-06T00:00:00Z")
    assert window == ALL[2:6]  # GE is inclusive, LT exclusive (C1's origin is at 11-06 00:00 UTC exactly)
    shipped, _d, _a = _query(client, EQ_bizStep="shipping|https://ref.gs1.org/cbv/BizStep-receiving")
    assert shipped == [e for e in ALL if e[1] in ("shipping", "receiving")]
    lot, _d, _a = _query(client, MATCH_anyEPCClass=f"https://id.gs1.org/01/{GTIN}/10/A1")
    assert lot == [e for e in ALL if e[0] == "A1"]
    # the same batch named on another Digital Link domain, with a 13-digit GTIN, or as an EPC class URI
    assert _query(client, MATCH_anyEPCClass="https://shop.example/01/4006381333931/10/A1")[0] == lot
    assert _query(client, MATCH_anyEPCClass="urn:epc:class:lgtin:4006381.033393.A1")[0] == lot
    gtin_level, _d, _a = _query(client, MATCH_anyEPCClass=f"https://id.gs1.org/01/{GTIN}", EQ_bizStep="commissioning")
    assert gtin_level == [ALL[1], ALL[6]]  # both lots of the GTIN
    own, _d, _a = _query(client, MATCH_anyEPCClass=f"{BASE}/p/TEA/B1")
    assert own == [e for e in ALL if e[0] == "B1"]
    nothing, _d, _a = _query(client, MATCH_anyEPCClass=f"https://id.gs1.org/01/{GTIN}/10/NOPE")
    assert nothing == []


def test_paging_across_a_page_boundary_reads_one_checkpoint(site) -> None:
    client, world = site
    seen: list[tuple[str, str, str]] = []
    params: dict[str, Any] = {"perPage": "3", "LT_eventTime": "2026-11-10T00:00:00Z"}
    pages = 0
    while True:
        listed, document, answer = _query(client, **params)
        seen += listed
        pages += 1
        if pages == 1:  # an event appended after the first page, inside the window: not in this query's pages
            world.store.append([world.merchant.submit("shipment", "TEA", "B1", shipment_data("SO-10"))])
        link = answer.headers.get("link")
        if link is None:
            assert "chainproof:nextPageToken" not in document["epcisBody"]["queryResults"]
            break
        url = re.fullmatch(r'<([^>]+)>; rel="next"', link)
        assert url is not None
        assert url.group(1).startswith(f"{BASE}/v1/epcis/events?")
        params = dict(parse_qsl(urlsplit(url.group(1)).query))
        assert params["nextPageToken"] == document["epcisBody"]["queryResults"]["chainproof:nextPageToken"]
        assert params["perPage"] == "3"
    assert pages == 3
    assert seen == ALL
    # a fresh query sees the new order, once a checkpoint covers it
    until_checkpointed(world.store)
    again, _d, _a = _query(client, EQ_bizStep="shipping", MATCH_anyEPCClass=f"{BASE}/p/TEA/B1")
    assert [t for _b, _s, t in again] == ["2026-11-03T09:00", "2026-11-05T00:00"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"EQ_action": "ADD", "MATCH_epc": "x"}, "unsupported query parameters: EQ_action, MATCH_epc"),
        ({"perPage": "0"}, "perPage must be a whole number from 1 to 1000"),
        ({"perPage": "1001"}, "perPage must be a whole number from 1 to 1000"),
        ({"GE_eventTime": "yesterday"}, "GE_eventTime:"),
        ({"EQ_bizStep": "inspect"}, "'inspect' is not a CBV 2.0 business step"),
        ({"MATCH_anyEPCClass": "urn:epc:id:sgtin:x"}, "is not a batch class this ledger holds"),
        ({"nextPageToken": "%%%"}, "nextPageToken is not one this server gave"),
        ({"nextPageToken": "WzEwMDAwMDAsMCwwXQ"}, "nextPageToken is not one this server gave"),  # [1000000,0,0]
    ],
)
def test_what_it_does_not_answer_is_refused_by_name(site, params: dict[str, str], words: str) -> None:
    client, _world = site
    answer = client.get("/v1/epcis/events", params=params)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert words in answer.json()["detail"]


def test_a_rebuilt_database_is_indexed_again(site) -> None:
    client, world = site
    before, _d, _a = _query(client)
    world.store.rebuild_heads()
    after, _d, _a = _query(client)
    assert after == before


def test_a_made_up_page_token_beyond_any_database_integer_is_a_400(site) -> None:
    import base64

    client, _world = site
    for values in ([10**30, 0, 0], [1, 10**30, 0], [1, 0, -1]):
        token = base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")
        answer = client.get("/v1/epcis/events", params={"nextPageToken": token})
        assert answer.status_code == 400, values
        assert "nextPageToken is not one this server gave" in answer.json()["detail"]
