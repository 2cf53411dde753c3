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


def _party_since_long_ago(actor: Actor) -> Party:
    """An actor with a new key that a directory row would call valid since 2020."""
    private_key = generate_private_key()
    raw = public_key_bytes(private_key)
    return Party(actor, ActorKey(key_id_for(raw), actor.id, raw, parse_time(LONG_AGO)), private_key)


def _insert_rows(store: LedgerStore, actors: list[Actor], parties: list[Party]) -> None:
    """Actor and key rows as written straight into the tables (INSERTs the append-only triggers let through)."""
    with store.engine.begin() as conn:
        for actor in actors:
            conn.execute(
                text("INSERT INTO actors (id, name, role, created_at) VALUES (:id, :name, :role, :at)"),
                {"id": actor.id, "name": actor.name, "role": actor.role.value, "at": LONG_AGO},
            )
        for party in parties:
            conn.execute(
                text("INSERT INTO actor_keys (key_id, actor_id, public_key, valid_from) VALUES (:k, :a, :p, :at)"),
                {"k": party.key.key_id, "a": party.id, "p": party.key.public_key, "at": LONG_AGO},
            )


def _judge_by_rows(monkeypatch: pytest.MonkeyPatch, parties: list[Party]) -> None:
    """A server that checks no rule and takes each signer's key from the rows (as the old version did, or a
    compromised one would)."""
    rows = {p.key.key_id: load_public_key(p.key.public_key) for p in parties}
    monkeypatch.setattr(LedgerStore, "_judge", staticmethod(lambda _r, item, _s, _i: rows[item.statement.key_id]))


def _rogue_rows(store: LedgerStore, world: World) -> tuple[Party, Party]:
    """INSERTs the append-only triggers do not stop: a lab of the attacker's, and a second key for the real
    inspector, both valid "since 2020"."""
    lab = _party_since_long_ago(Actor("act_sgs_lab", "SGS Test Lab", Role.INSPECTOR))
    extra = _party_since_long_ago(world.inspector.actor)
    _insert_rows(store, [lab.actor], [lab, extra])
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
    _judge_by_rows(monkeypatch, [lab, extra])  # a compromised server logs both forgeries
    forged = [r.index for r in store.append([lab.submit("inspection", "TEA", "1", inspection_data())])]
    forged += [r.index for r in store.append([extra.submit("inspection", "TEA", "1", inspection_data())])]
    monkeypatch.undo()
    store.issue_checkpoint()
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


def test_db_upgrade_moves_an_old_directory_into_the_log_keeping_its_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger from before identities in the log (actors and keys only as rows): the server refuses it until
    `db upgrade` appends the directory as registrations signed by the log key; entries logged before that are
    judged by the old times (a key revoked back then stays revoked for them), every later one by log index."""
    from ledger.errors import LedgerError
    from ledger.logkey import load_or_create_log_signer
    from ledger.storage import create_db_engine, default_sqlite_url, migrate
    from ledger.storage.opening import open_log_store
    from tests.factory import origin_data, shipment_data

    url = default_sqlite_url(tmp_path)
    engine = create_db_engine(url)
    migrate(engine)
    key_file = tmp_path / "log-key.pem"
    store = LedgerStore(engine, load_or_create_log_signer(key_file, "chainproof.test/log"))
    store.bind_log_key()
    shop = _party_since_long_ago(Actor("act_shop", "Old Shop", Role.MERCHANT))
    old = _party_since_long_ago(shop.actor)
    _insert_rows(store, [shop.actor], [shop, old])  # the directory as the old version wrote it
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO key_revocations (key_id, revoked_at, reason) VALUES (:k, '2021-01-01T00:00:00Z', 'lost')"
            ),
            {"k": old.key.key_id},
        )
    _judge_by_rows(monkeypatch, [shop, old])  # entries logged by the old version, from its directory
    store.append([shop.submit("origin", "OLD", "1", origin_data())])
    revoked_use = store.append([old.submit("shipment", "OLD", "1", shipment_data("S1"))])[0].index
    monkeypatch.undo()
    store.issue_checkpoint()
    with pytest.raises(LedgerError, match="chainproof db upgrade"):
        open_log_store(engine, key_file, None, None)
    env = {"CHAINPROOF_LOG_KEY_FILE": str(key_file), "CHAINPROOF_DATA_DIR": str(tmp_path)}
    result = runner.invoke(app, ["db", "upgrade", "--db", url], env=env)
    assert result.exit_code == 0, result.output
    assert "as 4 registrations" in result.output  # the actor, two keys, one revocation
    upgraded = open_log_store(engine, key_file, None, None)
    upgraded.append([shop.submit("shipment", "OLD", "1", shipment_data("S2"))])
    with pytest.raises(RuleError, match="revoked"):
        upgraded.append([old.submit("shipment", "OLD", "1", shipment_data("S3"))])
    upgraded.issue_checkpoint()
    again = runner.invoke(app, ["db", "upgrade", "--db", url], env=env)
    assert "registrations" not in again.output  # once only
    result = runner.invoke(
        app, ["verify", "--db", url, "--state", str(tmp_path / "state"), "--format", "json"], env=env
    )
    problems = json.loads(result.stdout)["problems"]
    assert [(p["index"], p["code"]) for p in problems] == [(revoked_use, "rule")], problems
    assert "revoked" in problems[0]["message"]


# -- auditors watch identities ---------------------------------------------------------------------------------


def _cli(*args: object, code: int = 0) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}: {result.output}"
    return result.stdout


def test_auditors_list_identities_and_catch_look_alike_names(tmp_path: Path) -> None:
    """`actors` lists every actor and key with the index that registered, bound or revoked it; `monitor
    --watch-names` names the entries that registered "SGS  Test Lab" and "SGS Test Lab" with a Cyrillic e next to
    the genuine "SGS Test Lab", and only those."""
    from tests.servers import start_server

    server = start_server(tmp_path / "server")
    try:
        store = server.store
        parties = {
            name: store.add_actor(name, Role.INSPECTOR, public_key_bytes(generate_private_key()))[0]
            for name in ("SGS Test Lab", "SGS  Test Lab", "SGS T\u0435st Lab", "Bureau Veritas", "sgs test labs")
        }
        genuine = parties["SGS Test Lab"]
        revoked = store.add_key(genuine.id, public_key_bytes(generate_private_key()))
        store.revoke_key(revoked.key_id, "test")
        store.issue_checkpoint()
        registry = store.registry()
        watch = tmp_path / "watch.txt"
        watch.write_text(f"# labs we work with\nSGS Test Lab @{genuine.id}\n")
        state = ("--state", tmp_path / "state")
        out = _cli(
            "monitor", "--server", server.url, "--once", "--watch-names", watch, *state, "--format", "json", code=1
        )
        alerts = {p["index"]: p["message"] for p in json.loads(out)["problems"]}
        look_alikes = [parties["SGS  Test Lab"], parties["SGS T\u0435st Lab"]]
        assert sorted(alerts) == sorted(registry.actors[a.id].registered_at for a in look_alikes)
        assert all("reads as the watched name 'SGS Test Lab'" in message for message in alerts.values())
        # once a look-alike is known to be genuine too, nothing is left to flag
        watch.write_text("".join(f"SGS Test Lab @{a.id}\n" for a in (genuine, *look_alikes)))
        assert "ok: log size" in _cli("monitor", "--server", server.url, "--once", "--watch-names", watch, *state)

        listed = json.loads(_cli("actors", "--server", server.url, *state, "--format", "json"))
        assert listed["ok"] is True
        by_id = {a["id"]: a for a in listed["actors"]}
        assert set(by_id) == {a.id for a in parties.values()}
        lab = by_id[genuine.id]
        assert (lab["registered_at_index"], lab["operator_attested"]) == (
            registry.actors[genuine.id].registered_at,
            True,
        )
        keys = {k["key_id"]: k for k in lab["keys"]}
        assert keys[revoked.key_id]["revoked_at_index"] == registry.keys[revoked.key_id].revoked_at
        assert keys[revoked.key_id]["bound_at_index"] < keys[revoked.key_id]["revoked_at_index"]
        text = _cli("actors", "--server", server.url, *state)
        assert f"key {revoked.key_id}  bound at {keys[revoked.key_id]['bound_at_index']}, revoked at" in text
        bundle = tmp_path / "log.cpb"
        _cli("export", "--server", server.url, "--out", bundle)
        assert json.loads(_cli("actors", "--bundle", bundle, "--format", "json"))["actors"] == listed["actors"]
    finally:
        server.stop()


def test_a_fork_of_the_directory_is_caught_like_any_fork(tmp_path: Path) -> None:
    """Two auditors shown different registrations at the same index (two copies of one log, each growing its
    own way): the auditor who saw one view and then meets the other is told the log forked."""
    import shutil

    from ledger.logkey import load_or_create_log_signer
    from ledger.storage import create_db_engine, default_sqlite_url, migrate

    base = tmp_path / "base"
    base.mkdir()
    key_file = base / "log-key.pem"
    engine = create_db_engine(default_sqlite_url(base))
    migrate(engine)
    store = LedgerStore(engine, load_or_create_log_signer(key_file, "chainproof.test/log"))
    store.add_actor("Ops", Role.ADMIN, public_key_bytes(generate_private_key()))
    store.issue_checkpoint()
    engine.dispose()
    views = []
    for view, lab_name in (("a", "SGS Test Lab"), ("b", "SGS Test Lab (Shenzhen)")):
        shutil.copytree(base, tmp_path / view)
        forked = LedgerStore(create_db_engine(default_sqlite_url(tmp_path / view)), store.signer)
        forked.add_actor(lab_name, Role.INSPECTOR, public_key_bytes(generate_private_key()), actor_id="act_lab")
        forked.issue_checkpoint()
        forked.engine.dispose()
        views.append(default_sqlite_url(tmp_path / view))
    state = ("--state", tmp_path / "auditor", "--log-key", str(store.signer.verifier))
    assert "verified: all holds" in _cli("verify", "--db", views[0], *state)
    out = _cli("verify", "--db", views[1], *state, "--format", "json", code=1)
    assert {p["code"] for p in json.loads(out)["problems"]} & {"root-mismatch", "inconsistent"}, out


def test_the_server_refuses_key_bindings_the_rules_forbid(world: World) -> None:
    """Through the append pipeline, signed by actors: a non-admin binding a key to someone else, a proof of
    possession that does not verify, a key already bound to another actor; and an admin's genuine binding with
    its proof is accepted and marked as proven."""
    from ledger.canonical import canonical_json
    from ledger.hashing import b64encode
    from ledger.identities import IdentityType, possession_message, registration
    from ledger.signing import sign_raw, sign_statement
    from ledger.storage import Submission
    from tests.factory import signed_now

    store = world.store

    def key_add(by: Party, actor: str, new_key: object, proof_by: object | None = None) -> Submission:
        raw = public_key_bytes(new_key)  # type: ignore[arg-type]
        data = {"actor": actor, "key_id": key_id_for(raw), "public_key": b64encode(raw)}
        statement = registration(IdentityType.KEY_ADD, actor, by.id, by.key.key_id, signed_now(), data)
        if proof_by is not None:
            data["possession"] = b64encode(sign_raw(proof_by, possession_message(statement)))  # type: ignore[arg-type]
        return Submission(statement, sign_statement(by.private_key, canonical_json(statement)))

    size = store.size()
    with pytest.raises(RuleError, match=r"only an admin .* may record key_add") as caught:
        store.append([key_add(world.merchant, world.inspector.id, generate_private_key())])
    assert caught.value.kind == "forbidden"
    new_key, impostor = generate_private_key(), generate_private_key()
    with pytest.raises(RuleError, match=r"proof of possession .* does not verify"):
        store.append([key_add(world.admin, world.inspector.id, new_key, proof_by=impostor)])
    with pytest.raises(RuleError, match="already bound to"):
        store.append([key_add(world.admin, world.carrier.id, world.inspector.private_key)])
    assert store.size() == size  # nothing of the refused requests was written
    bound = store.append([key_add(world.admin, world.inspector.id, new_key, proof_by=new_key)])[0].index
    registered = store.registry().keys[key_id_for(public_key_bytes(new_key))]
    assert (registered.added_at, registered.possession, registered.operator_attested) == (bound, True, False)
