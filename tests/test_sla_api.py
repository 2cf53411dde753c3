"""The SLA API over the hand-computed scenario (tests/sla_scenario.py): figures, access, paging, CSV, and bad
input (events the rules refuse, parameters that make no sense) answered with problems, nothing written."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests import sla_scenario
from tests.factory import origin_data
from tests.servers import until_checkpointed
from tests.test_api import Api, _problem, api  # noqa: F401 (the fixture)

AS_OF = sla_scenario.AS_OF
HOUR = 3600


@pytest.fixture
def sla_api(api: Api) -> Api:  # noqa: F811
    sla_scenario.build(api.world)
    until_checkpointed(api.store)
    return api


def _get(on: Api, path: str, who: Any = None, **params: Any) -> Any:
    party = who or on.world.admin
    return on.client.get(path, params=params, headers=on.auth(party))


def test_the_report_is_the_hand_computed_one_over_a_named_checkpoint(sla_api: Api) -> None:
    r = _get(sla_api, "/v1/sla/report", as_of=AS_OF, group_by="merchant,carrier,lane,week")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["checkpoint"]["size"] == sla_api.store.size()
    assert body["as_of"] == AS_OF
    total = body["total"]
    assert (total["shipments"], total["cancelled"], total["due"]) == (9, 1, 5)
    assert total["on_time_rate"] == 0.6
    assert total["otif_rate"] == 0.25
    assert total["within_24h_rate"] == 0.5
    assert total["lead_time_s"] == {"p50": 24 * HOUR, "p90": 48 * HOUR, "p95": 48 * HOUR}
    assert {(g["by"], g["key"]) for g in body["groups"]} >= {("lane", "US-NY>US-NJ"), ("week", "2026-W45")}
    assert body["parameters"]["window_share"] == 0.8
    assert "on_time_rate" in body["definitions"]


def test_csv_has_the_total_and_the_groups(sla_api: Api) -> None:
    r = _get(sla_api, "/v1/sla/report", as_of=AS_OF, group_by="merchant", format="csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["by"] for row in rows] == ["total", "merchant", "merchant"]
    assert rows[0]["on_time_rate"] == "0.6"
    assert rows[0]["within_24h_rate"] == "0.5"
    assert rows[0]["checkpoint_size"] == str(sla_api.store.size())


def test_who_sees_what(sla_api: Api) -> None:
    w = sla_api.world
    mine = _get(sla_api, "/v1/sla/report", w.other_merchant, as_of=AS_OF).json()
    assert mine["total"]["shipments"] == 1  # S10 only
    assert mine["filters"]["merchant"] == w.other_merchant.id
    _problem(_get(sla_api, "/v1/sla/report", w.other_merchant, merchant=w.merchant.id), 403)
    carried = _get(sla_api, "/v1/sla/report", w.carrier, as_of=AS_OF).json()
    assert carried["total"]["shipments"] == 4  # S1-S4
    _problem(_get(sla_api, "/v1/sla/report", w.carrier, carrier=w.second_carrier.id), 403)
    _problem(_get(sla_api, "/v1/sla/report", w.inspector), 403)
    assert _get(sla_api, "/v1/sla/report", w.auditor, as_of=AS_OF).json()["total"]["shipments"] == 9
    _problem(sla_api.client.get("/v1/sla/report"), 401)
    listed = _get(sla_api, "/v1/sla/shipments", w.other_merchant, as_of=AS_OF).json()
    assert [s["shipment_id"] for s in listed["shipments"]] == ["S10"]
    _problem(_get(sla_api, "/v1/sla/shipments/S1", w.other_merchant, as_of=AS_OF), 404)
    assert _get(sla_api, "/v1/sla/shipments/S1", w.carrier, as_of=AS_OF).status_code == 200
    _problem(_get(sla_api, "/v1/sla/shipments/S10", w.carrier, as_of=AS_OF), 404)  # carried by the second carrier


def test_at_risk_and_overdue_lists_with_reasons_and_stable_paging(sla_api: Api) -> None:
    body = _get(sla_api, "/v1/sla/shipments", status="at_risk,overdue", as_of=AS_OF).json()
    assert [(s["shipment_id"], s["status"]) for s in body["shipments"]] == [
        ("S4", "overdue"),
        ("S7", "at_risk"),
        ("S8", "at_risk"),
    ]
    s8 = body["shipments"][2]
    assert s8["reasons"] == ["lane_progress"]
    assert s8["reason"].startswith("no handoff yet, 100% of this lane's 5 earlier shipments")
    first = _get(sla_api, "/v1/sla/shipments", limit=4, as_of=AS_OF).json()
    assert first["total"] == 10
    assert len(first["shipments"]) == 4
    second = sla_api.client.get(first["next"], headers=sla_api.auth(sla_api.world.admin)).json()
    third = sla_api.client.get(second["next"], headers=sla_api.auth(sla_api.world.admin)).json()
    ids = [s["shipment_id"] for page in (first, second, third) for s in page["shipments"]]
    assert sorted(ids) == sorted(f"S{n}" for n in range(1, 11))
    assert third["next"] is None


def test_one_shipment_with_its_timeline(sla_api: Api) -> None:
    body = _get(sla_api, "/v1/sla/shipments/S2", as_of=AS_OF).json()
    assert body["status"] == "late"
    assert [step["event"] for step in body["timeline"]] == ["shipment", "handoff", "handoff", "delivery"]
    assert body["promised_by"] == "2026-11-03T09:00:00Z"
    assert body["lane"] == sla_scenario.LANE
    s7 = _get(sla_api, "/v1/sla/shipments/S7", as_of=AS_OF).json()
    assert s7["status"] == "at_risk"
    assert s7["reason"] == "92% of the delivery window has passed (promised by 2026-11-10T16:00:00Z)"


def test_an_id_in_two_batches_asks_for_the_batch(sla_api: Api) -> None:
    w = sla_api.world
    sla_api.store.append([w.merchant.submit("origin", "COF", "L9", origin_data())])
    shipment = sla_scenario.shipment("S1", "2026-11-09T08:00:00Z", "2026-11-11T08:00:00Z")
    sla_api.store.append([w.merchant.submit("shipment", "COF", "L9", shipment)])
    until_checkpointed(sla_api.store)
    problem = _problem(_get(sla_api, "/v1/sla/shipments/S1"), 409)
    assert "COF/L1, COF/L9" in problem["detail"]
    assert _get(sla_api, "/v1/sla/shipments/S1", sku="COF", lot="L9").json()["lot"] == "L9"


@pytest.mark.parametrize(
    ("params", "status", "phrase"),
    [
        ({"group_by": "colour"}, 422, "cannot group by 'colour'"),
        ({"from": "last tuesday"}, 422, "from"),
        ({"as_of": "2026-13-45"}, 422, "as_of"),
        ({"tree_size": "3"}, 404, "no checkpoint was issued at tree size 3"),
        ({"window_share": "1.5"}, 422, "window_share"),
        ({"format": "xml"}, 422, "format"),
    ],
)
def test_bad_report_parameters_are_problems(sla_api: Api, params: dict[str, str], status: int, phrase: str) -> None:
    problem = _problem(_get(sla_api, "/v1/sla/report", **params), status)
    assert phrase in problem["detail"]


def test_bad_status_filter_is_a_problem(sla_api: Api) -> None:
    assert "unknown status 'lost'" in _problem(_get(sla_api, "/v1/sla/shipments", status="lost"), 422)["detail"]


def test_events_the_sla_rules_refuse_are_problems_and_nothing_is_written(api: Api) -> None:  # noqa: F811
    w = api.world
    api.store.append([w.merchant.submit("origin", "BAD", "1", origin_data())])
    placed, promised = "2026-11-03T09:00:00Z", "2026-11-05T09:00:00Z"
    cases: list[tuple[Any, str, dict[str, Any], int, str]] = [
        (w.carrier, "delivery", {"shipment_id": "NOPE", "delivered_at": placed}, 409, "does not exist"),
        (
            w.merchant,
            "shipment",
            {"shipment_id": "EARLY", "destination": "DE-HH", "placed_at": promised, "promised_by": placed},
            422,
            "promised_by is before placed_at",
        ),
    ]
    for party, kind, data, status, phrase in cases:
        before = api.size()
        assert phrase in _problem(api.record(party, kind, "BAD", "1", data), status)["detail"]
        assert api.size() == before
    # a delivered shipment takes no second delivery and no handoff; a cancelled one neither
    api.store.append(
        [
            w.merchant.submit("shipment", "BAD", "1", sla_scenario.shipment("D1", placed, promised)),
            w.merchant.submit("handoff", "BAD", "1", sla_scenario.handoff(w.merchant, w.carrier, "D1", placed)),
            w.carrier.submit("delivery", "BAD", "1", {"shipment_id": "D1", "delivered_at": promised}),
            w.merchant.submit("shipment", "BAD", "1", sla_scenario.shipment("C1", placed, promised)),
            w.merchant.submit("shipment_cancel", "BAD", "1", {"shipment_id": "C1", "cancelled_at": placed}),
        ]
    )
    refused: list[tuple[Any, str, dict[str, Any], str]] = [
        (w.carrier, "delivery", {"shipment_id": "D1", "delivered_at": promised}, "already delivered"),
        (w.carrier, "handoff", sla_scenario.handoff(w.carrier, w.second_carrier, "D1", promised), "already delivered"),
        (w.merchant, "shipment_cancel", {"shipment_id": "D1", "cancelled_at": promised}, "already delivered"),
        (w.merchant, "handoff", sla_scenario.handoff(w.merchant, w.carrier, "C1", promised), "was cancelled"),
        (w.merchant, "shipment_cancel", {"shipment_id": "C1", "cancelled_at": promised}, "was cancelled"),
        (w.other_merchant, "shipment_cancel", {"shipment_id": "D1", "cancelled_at": promised}, "another merchant"),
        (w.carrier, "shipment_cancel", {"shipment_id": "C1", "cancelled_at": promised}, "may not record"),
    ]
    for party, kind, data, phrase in refused:
        before = api.size()
        response = api.record(party, kind, "BAD", "1", data)
        assert response.status_code in (403, 409), response.text
        assert phrase in _problem(response, response.status_code)["detail"]
        assert api.size() == before
    address = sla_scenario.shipment("ADDR", placed, promised, destination="alice@example.com")
    problem = _problem(api.record(w.merchant, "shipment", "BAD", "1", address), 422)
    assert "statement.data.destination looks like an e-mail address" in problem["detail"]


def test_a_server_reads_the_shipments_at_start_not_at_its_first_report(tmp_path: Any) -> None:
    """The projection is read into memory in the background when the server starts, before any report asks."""
    import time

    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings
    from ledger.logkey import load_or_create_log_signer
    from ledger.storage import LedgerStore, create_db_engine, default_sqlite_url, migrate
    from tests.factory import make_world

    engine = create_db_engine(default_sqlite_url(tmp_path))
    migrate(engine)
    world = make_world(LedgerStore(engine, load_or_create_log_signer(tmp_path / "log.key", "trace.example/log")))
    sla_scenario.build(world)
    engine.dispose()
    app = create_app(
        Settings(
            checkpoint_interval_s=0.05, data_dir=tmp_path, log_name="trace.example/log", public_url="http://testserver"
        )
    )
    with TestClient(app):
        store = app.state.store
        deadline = time.monotonic() + 10
        while not len(store._sla_columns) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(store._sla_columns) == 10
