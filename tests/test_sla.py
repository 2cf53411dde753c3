"""The SLA rules and report on a fixed history (tests/sla_scenario.py), every answer worked out by hand there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.events import parse_time
from ledger.history import ShipmentFold, shipment_records
from ledger.logkey import load_or_create_log_signer
from ledger.sla import (
    Closing,
    Filters,
    Parameters,
    ShipmentRecord,
    Step,
    epoch_seconds,
    epoch_us,
    iso_week,
    percentile,
    report,
    statuses,
)
from ledger.sla_columns import ShipmentColumns, status_names
from ledger.storage import LedgerStore, create_db_engine, default_sqlite_url, migrate
from tests import sla_scenario
from tests.conftest import LOG_NAME
from tests.factory import World, make_world
from tests.sla_oracle import oracle_figures

HOUR = 3600


def _s(text: str) -> int:
    return epoch_seconds(parse_time(text))


AS_OF = _s(sla_scenario.AS_OF)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("sla")
    engine = create_db_engine(default_sqlite_url(tmp))
    migrate(engine)
    world = make_world(LedgerStore(engine, load_or_create_log_signer(tmp / "log.key", LOG_NAME)))
    sla_scenario.build(world)
    yield world
    engine.dispose()


def _records(world: World, size: int | None = None, as_of: int = AS_OF) -> list[ShipmentRecord]:
    store = world.store
    size = store.size() if size is None else size
    everything = shipment_records(e.leaf for e in store.entries(0, size))
    seen = [r.seen(size, as_of * 1_000_000 + 999_999) for r in everything]
    return [r for r in seen if r is not None]


def test_statuses_and_their_reasons(scenario: World) -> None:
    found = {key[2]: status for key, status in statuses(_records(scenario), AS_OF).items()}
    assert {sid: s.name for sid, s in found.items()} == {
        "S1": "on_time",
        "S2": "late",
        "S3": "on_time",
        "S4": "overdue",
        "S5": "cancelled",
        "S6": "in_transit",
        "S7": "at_risk",
        "S8": "at_risk",
        "S9": "in_transit",
        "S10": "on_time",
    }
    assert found["S7"].codes == ("window",)
    assert found["S7"].reason == "92% of the delivery window has passed (promised by 2026-11-10T16:00:00Z)"
    assert found["S8"].codes == ("lane_progress",)
    assert found["S8"].reason == (
        "no handoff yet, 100% of this lane's 5 earlier shipments had reached step 1 by now (4 h after the order; "
        "the lane's p75 is 2 h)"
    )
    assert found["S4"].reason == "not delivered, 3 d 4 h past the promise (2026-11-07T08:00:00Z)"


def test_the_report_total(scenario: World) -> None:
    total = report(_records(scenario), as_of=AS_OF)["total"]
    expected = {
        "shipments": 9,
        "cancelled": 1,
        "delivered": 4,
        "on_time": 3,
        "late": 1,
        "overdue": 1,
        "in_transit": 2,
        "at_risk": 2,
        "due": 5,
        "on_time_rate": 3 / 5,
        "otif_rate": 1 / 4,  # S1 only, of S1-S4 (S10 has no quantities: unknown, not counted as full)
        "otif_due_known": 4,
        "otif_unknown": 1,
        "within_24h_rate": 3 / 6,  # S1, S3, S10 of the 4 delivered and S4, S7 (placed >= 24 h before)
        "within_48h_rate": 4 / 6,  # S2 (exactly 48 h) too; S7 was placed exactly 48 h before as_of
        "lead_time_s": {"p50": 24 * HOUR, "p90": 48 * HOUR, "p95": 48 * HOUR},
        "events": 22,
        "recorded_late": 2,  # S3's shipment (7 h) and S2's delivery (3 days)
    }
    assert {k: total[k] for k in expected} == expected
    assert total["custody"] == [
        {"holder": scenario.second_carrier.id, "steps": 2, "p50_s": 23 * HOUR, "p90_s": 27 * HOUR},
        {"holder": scenario.carrier.id, "steps": 3, "p50_s": 22 * HOUR, "p90_s": 22 * HOUR + 1800},
        {"holder": scenario.merchant.id, "steps": 5, "p50_s": 2 * HOUR, "p90_s": 3 * HOUR},
        {"holder": scenario.other_merchant.id, "steps": 1, "p50_s": 1 * HOUR, "p90_s": 1 * HOUR},
    ]


def test_groups_by_merchant_carrier_lane_and_week(scenario: World) -> None:
    found = report(_records(scenario), as_of=AS_OF, group_by=["merchant", "carrier", "lane", "week"])
    groups = {(g["by"], g["key"]): g for g in found["groups"]}
    w = scenario
    assert set(groups) == {
        ("merchant", w.merchant.id),
        ("merchant", w.other_merchant.id),
        ("carrier", w.carrier.id),
        ("carrier", w.second_carrier.id),
        ("lane", "ET-Gedeo>DE-HH"),
        ("lane", "ET-Gedeo>FR-75"),
        ("lane", "US-NY>US-NJ"),
        ("week", "2026-W44"),
        ("week", "2026-W45"),
        ("week", "2026-W46"),
    }
    carrier = groups[("carrier", w.carrier.id)]  # S1-S4
    assert (carrier["shipments"], carrier["on_time"], carrier["late"], carrier["overdue"]) == (4, 2, 1, 1)
    assert carrier["on_time_rate"] == 2 / 4
    second = groups[("carrier", w.second_carrier.id)]  # S2, S7, S10
    assert (second["shipments"], second["delivered"], second["at_risk"]) == (3, 2, 1)
    assert second["on_time_rate"] == 1 / 2
    assert groups[("week", "2026-W44")]["shipments"] == 1  # S10, placed Sunday 1 November
    assert groups[("week", "2026-W45")]["shipments"] == 5  # S1-S4, S7 (S5 cancelled)
    assert groups[("week", "2026-W45")]["cancelled"] == 1
    assert groups[("week", "2026-W46")]["shipments"] == 3  # S6, S8, S9
    new_lane = groups[("lane", "ET-Gedeo>FR-75")]  # S9: nothing due yet
    assert new_lane["on_time_rate"] is None
    assert new_lane["on_time_rate_reason"] == "no shipment is due yet (none delivered or overdue)"
    assert new_lane["lead_time_s"] is None
    assert new_lane["within_24h_rate"] is None
    assert new_lane["within_24h_rate_reason"]


def test_filters(scenario: World) -> None:
    records = _records(scenario)
    mine = report(records, as_of=AS_OF, filters=Filters(merchant=scenario.other_merchant.id))["total"]
    assert (mine["shipments"], mine["on_time"], mine["on_time_rate"]) == (1, 1, 1.0)
    carried = report(records, as_of=AS_OF, filters=Filters(carrier=scenario.carrier.id))["total"]
    assert carried["shipments"] == 4
    week = report(
        records,
        as_of=AS_OF,
        filters=Filters(placed_from=_s("2026-11-02T00:00:00Z"), placed_to=_s("2026-11-03T00:00:00Z")),
    )
    assert week["total"]["shipments"] == 2  # S1, S2
    lane = report(records, as_of=AS_OF, filters=Filters(lane="US-NY>US-NJ"))["total"]
    assert lane["shipments"] == 1


def test_a_report_sees_only_what_was_logged_by_its_as_of(scenario: World) -> None:
    """At 11-05 00:00, S2's delivery (11-04 09:00, logged 11-07) is not known: S2 is overdue then, not late."""
    as_of = _s("2026-11-05T00:00:00Z")
    found = {k[2]: s.name for k, s in statuses(_records(scenario, as_of=as_of), as_of).items()}
    assert found == {"S1": "on_time", "S2": "overdue", "S3": "on_time", "S10": "on_time"}


def test_a_report_over_an_older_checkpoint_sees_only_its_entries(scenario: World) -> None:
    size = scenario.at(4)  # origin, S1's shipment, handoff and delivery
    found = {k[2]: s.name for k, s in statuses(_records(scenario, size=size), AS_OF).items()}
    assert found == {"S1": "on_time"}


def test_dst_and_offsets(scenario: World) -> None:
    [s10] = [r for r in _records(scenario) if r.shipment_id == "S10"]
    assert s10.placed_at == _s("2026-11-01T04:30:00Z")
    assert s10.delivery is not None
    assert s10.delivery.at - s10.placed_at == 24 * HOUR


def test_nearest_rank_percentiles_and_iso_weeks() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile([1, 2, 3, 4], 75) == 3
    assert percentile([1, 2, 3, 4, 5], 75) == 4
    assert percentile([7], 95) == 7
    assert percentile(list(range(1, 21)), 95) == 19
    assert iso_week(_s("2027-01-01T00:00:00Z")) == "2026-W53"
    assert iso_week(_s("2026-01-01T00:00:00Z")) == "2026-W01"
    assert iso_week(_s("2025-12-29T00:00:00Z")) == "2026-W01"


def test_parameters_are_embedded_and_change_the_figures(scenario: World) -> None:
    records = _records(scenario)
    strict = Parameters(window_share=0.5, within_hours=(12, 24))
    found = report(records, as_of=AS_OF, parameters=strict)
    assert found["parameters"]["window_share"] == 0.5
    assert "within_12h_rate" in found["total"]
    assert "within_48h_rate" not in found["total"]
    # S9 is 6 h into its 14 h window: 42%, under 50% still; at a 0.4 share it is at risk
    looser = report(records, as_of=AS_OF, parameters=Parameters(window_share=0.4))
    assert looser["total"]["at_risk"] == 3
    assert Parameters.from_json(found["parameters"]) == strict


def test_rates_are_never_above_one_or_invented(scenario: World) -> None:
    nothing = report([], as_of=AS_OF)["total"]
    for name in ("on_time_rate", "otif_rate", "within_24h_rate", "within_48h_rate"):
        assert nothing[name] is None
        assert nothing[f"{name}_reason"]


def test_epoch_helpers_drop_fractions() -> None:
    assert epoch_seconds(parse_time("2026-11-01T00:00:00.999Z")) == _s("2026-11-01T00:00:00Z")
    assert epoch_us(parse_time("1970-01-01T00:00:01.000002Z")) == 1_000_002


def test_the_projection_holds_what_the_log_says(scenario: World) -> None:
    """The rows the appends wrote are the records recomputed from the log's entries, field by field."""
    store = scenario.store
    size = store.size()
    everything = shipment_records(e.leaf for e in store.entries(0, size))
    projected = store.sla_records(size=size, as_of_us=2**62)
    assert sorted(projected, key=ShipmentRecord.key) == sorted(everything, key=ShipmentRecord.key)
    assert len(projected) == 10


def test_the_projection_on_each_database(world: World) -> None:
    """SQLite and PostgreSQL: the projection the appends wrote, the projection rebuilt, and the log agree, and
    the report over them is the hand-computed one."""
    sla_scenario.build(world)
    store = world.store
    size = store.size()
    everything = sorted(shipment_records(e.leaf for e in store.entries(0, size)), key=ShipmentRecord.key)
    assert sorted(store.sla_records(size=size, as_of_us=2**62), key=ShipmentRecord.key) == everything
    assert store.sla_differences(ShipmentFold(), 0) == []
    store.rebuild_heads()
    assert sorted(store.sla_records(size=size, as_of_us=2**62), key=ShipmentRecord.key) == everything
    seen = store.sla_records(size=size, as_of_us=AS_OF * 1_000_000)
    assert report(seen, as_of=AS_OF)["total"]["on_time_rate"] == 3 / 5
    # one shipment at a time, its lane read alone (what a product page asks): the statuses of the whole report
    expected = statuses(seen, AS_OF, Parameters())
    for (sku, lot, sid), status in expected.items():
        found = store.sla_shipment_status(sku, lot, sid, size=size, as_of=AS_OF, parameters=Parameters())
        assert found is not None
        assert found[1] == status
    assert store.sla_shipment_status("COF", "L1", "NOPE", size=size, as_of=AS_OF, parameters=Parameters()) is None


# -- the array-based report against a plain tally, for random shipments --------------------------------------------

_T0 = 1_793_000_000


@st.composite
def _random_records(draw: st.DrawFn) -> list[ShipmentRecord]:
    records = []
    index = 0
    for number in range(draw(st.integers(0, 30))):
        placed = _T0 + draw(st.integers(0, 20 * 86400))
        window = draw(st.integers(0, 4 * 86400))
        steps = []
        moment = placed
        holders = ["c1", "c2", "c3"]
        sender = "m1" if number % 3 else "m2"
        for _ in range(draw(st.integers(0, 3))):
            moment += draw(st.integers(0, 40 * 3600))
            holder = draw(st.sampled_from(holders))
            index += 1
            steps.append(Step(sender, holder, moment, index, (moment + draw(st.integers(0, 12 * 3600))) * 1_000_000))
            sender = holder
        end = draw(st.sampled_from(["open", "delivered", "cancelled"]))
        moment += draw(st.integers(0, 60 * 3600))
        index += 1
        closing = Closing(moment, index, moment * 1_000_000, "x", draw(st.none() | st.integers(0, 12).map(float)))
        records.append(
            ShipmentRecord(
                sku="S",
                lot=f"L{number % 4}",
                shipment_id=f"X{number}",
                merchant="m1" if number % 3 else "m2",
                origin=draw(st.sampled_from(["ET", "CN-Yunnan"])),
                destination=draw(st.sampled_from(["DE-HH", "FR-75"])),
                placed_at=placed,
                promised_by=placed + window,
                index=index - len(steps) - 1,
                logged_us=(placed + draw(st.integers(0, 10 * 3600))) * 1_000_000,
                quantity=draw(st.none() | st.integers(1, 12).map(float)),
                unit="pcs",
                steps=tuple(steps),
                delivery=closing if end == "delivered" and steps else None,
                cancel=closing if end == "cancelled" else None,
            )
        )
    return records


@settings(max_examples=60, deadline=None)
@given(
    records=_random_records(),
    as_of_days=st.integers(0, 25),
    share=st.sampled_from([0.5, 0.8, 1.0]),
    hours=st.sampled_from([(24, 48), (6,), (12, 24, 72)]),
)
def test_the_report_agrees_with_a_plain_tally(
    records: list[ShipmentRecord], as_of_days: int, share: float, hours: tuple[int, ...]
) -> None:
    as_of = _T0 + as_of_days * 86400
    parameters = Parameters(window_share=share, within_hours=hours, lane_min_history=2)
    group_by = ["merchant", "carrier", "lane", "week"]
    for filters in (Filters(), Filters(merchant="m1"), Filters(carrier="c2")):
        found = report(records, as_of=as_of, filters=filters, group_by=group_by, parameters=parameters)
        total, groups = oracle_figures(records, as_of, filters, group_by, parameters)
        assert found["total"] == total
        assert found["groups"] == groups


@st.composite
def _lane_records(draw: st.DrawFn) -> list[ShipmentRecord]:
    """Many shipments on one or two lanes, on a grid of whole hours: ties in placed_at, durations equal to the
    lane's percentile, shipments waiting at every custody point."""
    records = []
    index = 0
    for number in range(draw(st.integers(1, 40))):
        placed = _T0 + 3600 * draw(st.integers(0, 8))
        index += 1
        first = index
        steps = []
        moment = placed
        for _ in range(draw(st.integers(0, 3))):
            moment += 3600 * draw(st.integers(0, 6))
            index += 1
            steps.append(Step("m", draw(st.sampled_from(["c1", "c2"])), moment, index, moment * 1_000_000))
        delivered = steps and draw(st.booleans())
        moment += 3600 * draw(st.integers(0, 6))
        index += 1
        records.append(
            ShipmentRecord(
                sku="S",
                lot="L",
                shipment_id=f"X{number}",
                merchant="m",
                origin="ET",
                destination=draw(st.sampled_from(["DE-HH", "DE-HH", "FR-75"])),
                placed_at=placed,
                promised_by=placed + 3600 * draw(st.integers(0, 60)),
                index=first,
                logged_us=placed * 1_000_000,
                steps=tuple(steps),
                delivery=Closing(moment, index, moment * 1_000_000, "c") if delivered else None,
            )
        )
    return records


@settings(max_examples=80, deadline=None)
@given(
    records=st.one_of(_random_records(), _lane_records()),
    as_of_days=st.integers(0, 25) | st.integers(0, 60).map(lambda hours: hours / 24),
    size=st.integers(0, 200),
    share=st.sampled_from([0.5, 0.8, 1.0]),
    history=st.integers(1, 4),
)
def test_column_statuses_and_reasons_are_the_reference_ones(
    records: list[ShipmentRecord], as_of_days: float, size: int, share: float, history: int
) -> None:
    """Statuses worked out on columns, for a view cut at a tree size and an as_of, are those `statuses` gives the
    records cut the same way, reasons and all."""
    as_of = _T0 + int(as_of_days * 86400)
    as_of_us = as_of * 1_000_000
    parameters = Parameters(window_share=share, lane_min_history=history)
    view = ShipmentColumns.of(records).evaluate(size, as_of_us, as_of, parameters)
    seen = [r for r in (r.seen(size, as_of_us) for r in records) if r is not None]
    expected = statuses(seen, as_of, parameters)
    rows = {view.columns.keys[row]: row for row in range(len(records))}
    assert status_names(view) == {key: status.name for key, status in expected.items()}
    for key, status in expected.items():
        assert view.status_of(rows[key]) == status
        assert view.seen_record(rows[key]) == next(r for r in seen if r.key() == key)


@settings(max_examples=300, deadline=None)
@given(seconds=st.integers(-(10**9), 253402300799))
def test_times_are_formatted_as_datetime_formats_them(seconds: int) -> None:
    from datetime import UTC, datetime

    from ledger.sla import format_seconds

    assert format_seconds(seconds) == datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
