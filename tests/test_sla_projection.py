"""The SLA projection (ledger/storage/sla.py): derived rows written by appends, filled by migration 0008, checked
against the log by `verify --db` (a doctored row is named), mended by `db rebuild`; and, for random histories,
the report from the projection is the report recomputed from the raw events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app as cli_app
from ledger.history import ShipmentFold, shipment_records
from ledger.logkey import load_or_create_log_signer
from ledger.sla import ShipmentRecord, report
from ledger.storage import LedgerStore, create_db_engine, default_sqlite_url, migrate
from ledger.storage.db import alembic_config
from tests import sla_scenario
from tests.factory import Party, World, make_world, origin_data

runner = CliRunner()
EVER = 2**62


def _cli(*args: str | Path, code: int = 0) -> str:
    result = runner.invoke(cli_app, [str(a) for a in args])
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}: {result.output}"
    return result.output


def _from_log(store: LedgerStore) -> list[ShipmentRecord]:
    return sorted(shipment_records(e.leaf for e in store.entries(0, store.size())), key=ShipmentRecord.key)


def _projected(store: LedgerStore) -> list[ShipmentRecord]:
    return sorted(store.sla_records(size=store.size(), as_of_us=EVER), key=ShipmentRecord.key)


def test_verify_db_names_a_doctored_shipment_row_and_rebuild_mends_it(world: World, tmp_path: Path) -> None:
    store = world.store
    sla_scenario.build(world)
    store.issue_checkpoint()
    url = store.engine.url.render_as_string(hide_password=False)
    key = ["--log-key", str(store.signer.verifier), "--state", str(tmp_path / "state")]
    assert json.loads(_cli("verify", "--db", url, *key, "--format", "json"))["ok"] is True
    with store.engine.begin() as conn:
        # S2 was delivered late: a doctored row makes it on time, and S4 (overdue) disappears
        conn.execute(text("UPDATE sla_shipments SET delivered_at = promised_by WHERE shipment_id = 'S2'"))
        conn.execute(text("DELETE FROM sla_shipments WHERE shipment_id = 'S4'"))
        conn.execute(text("UPDATE sla_batches SET origin = 'KE' WHERE lot = 'L2'"))
        conn.execute(text("UPDATE sla_shipments SET last_idx = 0 WHERE shipment_id = 'S1'"))  # hides S1's changes
    out = _cli("verify", "--db", url, *key, code=1)
    assert "sla_shipments row for shipment S2 of COF/L1: delivered_at is" in out
    assert "sla_shipments has no row for shipment S4 of COF/L1" in out
    assert "sla_shipments row for shipment S10 of TEA/L2: its batch's origin (sla_batches) is 'KE'" in out
    assert "sla_shipments row for shipment S1 of COF/L1: last_idx is 0, the log says" in out
    assert "chainproof db rebuild" in out
    _cli("db", "rebuild", "--db", url)
    assert json.loads(_cli("verify", "--db", url, *key, "--format", "json"))["ok"] is True
    assert _projected(store) == _from_log(store)


def test_migration_0008_fills_the_projection_from_the_log(tmp_path: Path) -> None:
    engine = create_db_engine(default_sqlite_url(tmp_path))
    migrate(engine)
    store = LedgerStore(engine, load_or_create_log_signer(tmp_path / "log.key", "chainproof.test/log"))
    world = make_world(store)
    sla_scenario.build(world)
    with engine.begin() as conn:  # back to revision 0007, as a database of the previous release
        conn.execute(text("DROP TABLE cosignatures"))
        conn.execute(text("DROP TABLE epcis_events"))
        conn.execute(text("DROP TABLE sla_shipments"))
        conn.execute(text("DROP TABLE sla_batches"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0007'"))
    command.upgrade(alembic_config(engine), "head")
    assert len(_projected(store)) == 10
    assert _projected(store) == _from_log(store)
    assert store.sla_differences(ShipmentFold(), 0) == []
    engine.dispose()


# -- the projection and the raw events agree, for random histories --------------------------------------------------

_HOUR = 3600
_BASE = 1_793_520_000  # 2026-11-01T08:00:00Z

_shipment_plans = st.lists(
    st.fixed_dictionaries(
        {
            "placed": st.integers(0, 96),  # hours after the base
            "window": st.integers(0, 72),  # promised_by - placed_at, hours
            "destination": st.sampled_from(["DE-HH", "FR-75"]),
            "quantity": st.none() | st.integers(1, 20),
            "steps": st.lists(st.integers(0, 30), max_size=3),  # hours from the previous custody point
            "end": st.sampled_from(["open", "deliver", "cancel"]),
            "end_after": st.integers(0, 60),
            "delivered_quantity": st.none() | st.integers(0, 20),
            "recording_delay": st.lists(st.integers(0, 30), min_size=5, max_size=5),  # hours, per event
        }
    ),
    min_size=1,
    max_size=10,
)


def _at(seconds: int) -> str:
    from datetime import UTC, datetime

    from ledger.events import format_time

    return format_time(datetime.fromtimestamp(seconds, UTC))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=_shipment_plans, as_of_hours=st.integers(0, 200))
def test_the_report_from_the_projection_is_the_report_from_the_events(
    world: World, plans: list[dict[str, Any]], as_of_hours: int
) -> None:
    store = world.store
    recorder = sla_scenario.Recorder(store)
    lot = f"P{store.size()}"
    w = world
    recorder.record(w.merchant, "origin", "PROP", lot, origin_data(produced_at=_at(_BASE)), _at(_BASE))
    events: list[tuple[int, int, int, Party, str, dict[str, Any]]] = []  # (logged, shipment, seq, signer, ...)
    for number, plan in enumerate(plans):
        sid = f"S{number}"
        placed = _BASE + plan["placed"] * _HOUR
        delays = [d * _HOUR for d in plan["recording_delay"]]
        steps: list[tuple[Party, str, dict[str, Any], int]] = []
        data: dict[str, Any] = {
            "shipment_id": sid,
            "destination": plan["destination"],
            "placed_at": _at(placed),
            "promised_by": _at(placed + plan["window"] * _HOUR),
        }
        if plan["quantity"] is not None:
            data.update(quantity=plan["quantity"], unit="pcs")
        steps.append((w.merchant, "shipment", data, placed))
        holder, moment = w.merchant, placed
        for hours in plan["steps"]:
            moment += hours * _HOUR
            to = w.second_carrier if holder is w.carrier else w.carrier
            handoff = {"from": holder.id, "to": to.id, "place": "Hub", "at": _at(moment), "shipment_id": sid}
            steps.append((holder, "handoff", handoff, moment))
            holder = to
        moment += plan["end_after"] * _HOUR
        if plan["end"] == "deliver" and holder is not w.merchant:
            delivery: dict[str, Any] = {"shipment_id": sid, "delivered_at": _at(moment)}
            if plan["delivered_quantity"] is not None:
                delivery["quantity"] = plan["delivered_quantity"]
            steps.append((holder, "delivery", delivery, moment))
        elif plan["end"] == "cancel":
            steps.append((w.merchant, "shipment_cancel", {"shipment_id": sid, "cancelled_at": _at(moment)}, moment))
        logged = 0
        for seq, (signer, kind, payload, happened) in enumerate(steps):
            logged = max(logged, happened + delays[seq])  # each shipment's events are logged in order
            events.append((logged, number, seq, signer, kind, payload))
    for logged, _number, _seq, signer, kind, payload in sorted(events, key=lambda e: e[:3]):
        recorder.record(signer, kind, "PROP", lot, payload, _at(logged))
    size = store.size()
    as_of = _BASE + as_of_hours * _HOUR
    raw = [r for r in (r.seen(size, as_of * 1_000_000) for r in _from_log(store)) if r is not None]
    projected = store.sla_records(size=size, as_of_us=as_of * 1_000_000)
    group_by = ["merchant", "carrier", "lane", "week"]
    assert report(projected, as_of=as_of, group_by=group_by) == report(raw, as_of=as_of, group_by=group_by)
    assert _projected(store) == _from_log(store)
