"""The finding of the identities issue, end to end on a database: an attacker with write access to the database
registers a "lab" of their own and gives an existing inspector a second key, straight into the actor tables.
The server refuses every statement those rows would authorize (before and after a restart), and when a
compromised server logs them anyway, `verify --db` names every rogue row and every entry signed with a key the
log never bound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app
from ledger.errors import RuleError
from ledger.events import Role, parse_time
from ledger.rules import Actor, ActorKey
from ledger.signing import generate_private_key, key_id_for, load_public_key, public_key_bytes
from ledger.storage import LedgerStore
from tests.factory import Party, World, inspection_data

runner = CliRunner()
LONG_AGO = "2020-01-01T00:00:00Z"


def _rogue_rows(store: LedgerStore, world: World) -> tuple[Party, Party]:
    """INSERTs the append-only triggers do not stop: a lab of the attacker's, and a second key for the real
    inspector, both valid "since 2020"."""
    lab_key, extra_key = generate_private_key(), generate_private_key()
    lab = Party(
        Actor("act_sgs_lab", "SGS Test Lab", Role.INSPECTOR),
        ActorKey(key_id_for(public_key_bytes(lab_key)), "act_sgs_lab", public_key_bytes(lab_key), parse_time(LONG_AGO)),
        lab_key,
    )
    extra = Party(
        world.inspector.actor,
        ActorKey(
            key_id_for(public_key_bytes(extra_key)),
            world.inspector.id,
            public_key_bytes(extra_key),
            parse_time(LONG_AGO),
        ),
        extra_key,
    )
    with store.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO actors (id, name, role, created_at) VALUES (:id, :name, 'inspector', :at)"),
            {"id": lab.id, "name": lab.actor.name, "at": LONG_AGO},
        )
        for party in (lab, extra):
            conn.execute(
                text("INSERT INTO actor_keys (key_id, actor_id, public_key, valid_from) VALUES (:k, :a, :p, :at)"),
                {"k": party.key.key_id, "a": party.id, "p": party.key.public_key, "at": LONG_AGO},
            )
    return lab, extra


def test_rows_written_outside_the_log_authorize_nothing_and_are_named(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = world.store
    store.append(world.journey("TEA", "1"))
    lab, extra = _rogue_rows(store, world)
    for appender in (store, LedgerStore(store.engine, store.signer)):  # this process, and one started afterwards
        with pytest.raises(RuleError, match="'act_sgs_lab' is not registered in the log"):
            appender.append([lab.submit("inspection", "TEA", "1", inspection_data())])
        with pytest.raises(RuleError, match=f"key {extra.key.key_id} is not bound in the log"):
            appender.append([extra.submit("inspection", "TEA", "1", inspection_data())])
    assert store.authenticate(store.issue_token(world.inspector.id)) == world.inspector.actor
    # a compromised server that skips the rules (taking each key from the rows) logs both forgeries
    rows = {p.key.key_id: load_public_key(p.key.public_key) for p in (lab, extra)}
    monkeypatch.setattr(LedgerStore, "_judge", staticmethod(lambda _r, item, _s, _i: rows[item.statement.key_id]))
    forged = [r.index for r in store.append([lab.submit("inspection", "TEA", "1", inspection_data())])]
    forged += [r.index for r in store.append([extra.submit("inspection", "TEA", "1", inspection_data())])]
    monkeypatch.undo()
    store.checkpoint()
    url = store.engine.url.render_as_string(hide_password=False)
    key = ["--log-key", str(store.signer.verifier), "--state", str(tmp_path / "state")]
    result = runner.invoke(app, ["verify", "--db", url, *key, "--format", "json"])
    assert result.exit_code == 1, result.output
    problems = json.loads(result.stdout)["problems"]
    rule_problems = {p["index"]: p["message"] for p in problems if p["code"] == "rule"}
    assert sorted(rule_problems) == forged
    assert "'act_sgs_lab' is not registered in the log" in rule_problems[forged[0]]
    assert f"key {extra.key.key_id} is not bound in the log" in rule_problems[forged[1]]
    named = sorted(p["message"] for p in problems if p["code"] == "directory")
    assert len(named) == 3, named
    assert any("actor row 'act_sgs_lab' (SGS Test Lab, inspector) is not registered in the log" in r for r in named)
    assert any(f"key row {lab.key.key_id} (of 'act_sgs_lab') is not bound in the log" in r for r in named)
    assert any(f"key row {extra.key.key_id} (of {world.inspector.id!r}) is not bound in the log" in r for r in named)
