"""Per-batch heads (issue: safe for operators and big batches).

Found from outside: the first write to a big batch after a restart replayed its whole chain (0.9 s for 6.8k
events). Now each batch's state is kept in derived tables written by the append itself; they are exempt from the
append-only triggers, rebuilt from the log by `chainproof db rebuild`, and checked against it by `verify --db`.
A head is never trusted blindly: one that disagrees with its batch's entries is replaced by a replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, event, text
from typer.testing import CliRunner

from cli.main import app as cli_app
from ledger.entry import parse_leaf
from ledger.errors import RuleError
from ledger.hashing import leaf_hash
from ledger.logkey import load_or_create_log_signer
from ledger.storage import LedgerStore, create_db_engine, default_sqlite_url, migrate
from ledger.storage.db import alembic_config
from ledger.storage.heads import compare, replay_batches, stored_rows
from ledger.verify import verify_ledger
from tests.factory import World, handoff_data, make_world, origin_data, shipment_data

runner = CliRunner()


def _reads_of_leaves(engine: Engine) -> tuple[list[str], Any]:
    """Record every SELECT that reads leaf bytes (a chain replay reads them; a head lookup does not), except the
    registrations a new process reads once to know who may sign."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        head = statement.lstrip().upper()
        registrations = "_identity" in str(parameters)
        if head.startswith(("SELECT", "WITH")) and "LEAF" in head and "INSERT" not in head and not registrations:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    return seen, record


def _expected(store: LedgerStore) -> Any:
    return replay_batches(e.leaf for e in store.iter_entries())


def _differences(store: LedgerStore) -> list[str]:
    with store.engine.connect() as conn:
        heads, shipments = stored_rows(conn)
    return compare(_expected(store), heads, shipments)


def test_the_first_append_after_a_restart_reads_heads_not_chains(world: World) -> None:
    store = world.store
    store.append(world.journey("BIG", "1", shipments=40))  # 162 events
    store.append([world.merchant.submit("shipment", "BIG", "1", shipment_data("OPEN"))])
    assert _differences(store) == []
    restarted = LedgerStore(store.engine, store.signer)  # a new process: nothing cached
    seen, listener = _reads_of_leaves(store.engine)
    try:
        result = restarted.append(
            [world.merchant.submit("handoff", "BIG", "1", handoff_data(world.merchant.id, world.carrier.id, "OPEN"))]
        )
    finally:
        event.remove(store.engine, "before_cursor_execute", listener)
    assert seen == []
    last = store.batch_entries("BIG", "1")
    assert parse_leaf(last[-1].leaf).prev == leaf_hash(last[-2].leaf)  # linked to the batch's true last entry
    assert result[0].index == last[-1].stored_index
    # the rules still see what the head and the shipment rows say: a delivered shipment stays delivered
    again = LedgerStore(store.engine, store.signer)
    with pytest.raises(RuleError, match="SHP-3 is already delivered"):
        again.append(
            [
                world.second_carrier.submit(
                    "delivery", "BIG", "1", {"shipment_id": "SHP-3", "delivered_at": "2026-11-08T15:00:00Z"}
                )
            ]
        )
    with pytest.raises(RuleError, match="already has its origin"):
        again.append([world.merchant.submit("origin", "BIG", "1", origin_data())])
    assert _differences(store) == []
    assert verify_ledger(store.iter_entries(), store.signer.verifier, store.issue_checkpoint()).ok


@pytest.mark.parametrize("doctoring", ["deleted", "stale", "unreadable", "shipment-deleted"])
def test_a_head_that_disagrees_with_the_log_cannot_fork_a_chain(world: World, doctoring: str) -> None:
    store = world.store
    store.append(world.journey("F", "1", shipments=2))
    store.append([world.merchant.submit("shipment", "F", "1", shipment_data("OPEN"))])
    with store.engine.begin() as conn:  # derived tables take UPDATE and DELETE: no trigger stops these
        if doctoring == "deleted":
            conn.execute(text("DELETE FROM batch_heads WHERE sku = 'F'"))
        elif doctoring == "stale":  # as if the head were one event behind
            old = conn.execute(text("SELECT state FROM batch_heads WHERE sku = 'F'")).scalar_one()
            conn.execute(
                text("UPDATE batch_heads SET last_index = last_index - 1, state = :s WHERE sku = 'F'"), {"s": old}
            )
        elif doctoring == "unreadable":
            conn.execute(text("UPDATE batch_heads SET state = '{' WHERE sku = 'F'"))
        else:
            conn.execute(text("UPDATE batch_shipments SET state = 'x' WHERE shipment_id = 'OPEN'"))
    restarted = LedgerStore(store.engine, store.signer)
    restarted.append(
        [world.merchant.submit("handoff", "F", "1", handoff_data(world.merchant.id, world.carrier.id, "OPEN"))]
    )
    with pytest.raises(RuleError, match="already has its origin"):  # a fresh state would have let it in
        LedgerStore(store.engine, store.signer).append([world.merchant.submit("origin", "F", "1", origin_data())])
    report = verify_ledger(store.iter_entries(), store.signer.verifier, store.issue_checkpoint())
    assert report.ok, report.problems
    assert _differences(store) == []  # and the head was written back as the log says


def test_a_new_batch_with_a_left_over_head_row_starts_clean(world: World) -> None:
    store = world.store
    with store.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO batch_heads (sku, lot, last_index, state) VALUES ('N', '1', 7, :s)"),
            {"s": json.dumps({"owner": world.other_merchant.id})},
        )
    LedgerStore(store.engine, store.signer).append([world.merchant.submit("origin", "N", "1", origin_data())])
    assert _differences(store) == []


def test_derived_tables_are_not_append_only_but_the_log_is(world: World) -> None:
    from sqlalchemy.exc import DBAPIError

    store = world.store
    store.append([world.merchant.submit("origin", "A", "1", origin_data())])
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO batch_heads (sku, lot, last_index, state) VALUES ('A', 'B', 0, '{}')"))
        conn.execute(text("UPDATE batch_heads SET last_index = 1"))
        conn.execute(text("DELETE FROM batch_heads"))
    with pytest.raises(DBAPIError), store.engine.begin() as conn:
        conn.execute(text("DELETE FROM entries"))


def _cli(*args: str | Path, code: int = 0, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(cli_app, [str(a) for a in args], env=env)
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}: {result.output}"
    return result.output


def test_verify_db_names_a_doctored_head_and_db_rebuild_mends_it(world: World, tmp_path: Path) -> None:
    store = world.store
    store.append(world.journey("D", "1", shipments=2))
    store.issue_checkpoint()
    store.append(world.journey("D", "2"))  # after the checkpoint: its heads are checked too
    url = store.engine.url.render_as_string(hide_password=False)
    key = ["--log-key", str(store.signer.verifier), "--state", str(tmp_path / "state")]
    assert json.loads(_cli("verify", "--db", url, *key, "--format", "json"))["ok"] is True
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE batch_heads SET state = replace(state, :a, :b) WHERE lot = '1'"),
            {"a": world.merchant.id, "b": world.other_merchant.id},
        )
        conn.execute(text("UPDATE batch_shipments SET state = replace(state, 'true', 'false') WHERE lot = '2'"))
        conn.execute(text("DELETE FROM batch_heads WHERE lot = '2'"))
    out = _cli("verify", "--db", url, *key, code=1)
    assert "batch_heads row for D/1 says" in out
    assert world.other_merchant.id in out
    assert "batch_heads has no row for D/2" in out
    assert "batch_shipments row for shipment SHP-0 of D/2 says" in out
    assert "chainproof db rebuild" in out
    assert "rebuilt the heads of 2 batches" in _cli("db", "rebuild", "--db", url)
    assert json.loads(_cli("verify", "--db", url, *key, "--format", "json"))["ok"] is True
    assert _differences(store) == []


def test_migration_0006_fills_the_heads_from_the_log(tmp_path: Path) -> None:
    engine = create_db_engine(default_sqlite_url(tmp_path))
    migrate(engine)
    store = LedgerStore(engine, load_or_create_log_signer(tmp_path / "log.key", "chainproof.test/log"))
    world = make_world(store)
    store.append(world.journey("M", "1", shipments=3) + world.journey("M", "2"))
    store.append([world.merchant.submit("shipment", "M", "2", shipment_data("OPEN"))])
    with engine.begin() as conn:  # back to revision 0005, as a database of the previous release
        conn.execute(text("DROP TABLE cosignatures"))
        conn.execute(text("DROP TABLE epcis_events"))
        conn.execute(text("DROP TABLE sla_shipments"))
        conn.execute(text("DROP TABLE sla_batches"))
        conn.execute(text("DROP TABLE batch_shipments"))
        conn.execute(text("DROP TABLE batch_heads"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0005'"))
    command.upgrade(alembic_config(engine), "head")
    with engine.connect() as conn:
        heads, shipments = stored_rows(conn)
    assert {batch for batch in heads if batch[0] != "_identity"} == {("M", "1"), ("M", "2")}
    assert len(shipments) == 5
    assert _differences(store) == []
    engine.dispose()
