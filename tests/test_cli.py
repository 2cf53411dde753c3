"""The CLI's database commands: exit codes and messages."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app
from ledger.logkey import load_or_create_log_signer
from ledger.storage import LedgerStore, create_db_engine, default_sqlite_url, migrate
from tests.factory import make_world

runner = CliRunner()


def test_db_upgrade_and_verify(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CHAINPROOF_DATA_DIR", str(tmp_path))
    url = default_sqlite_url(tmp_path)
    assert runner.invoke(app, ["db", "upgrade", "--db", url]).exit_code == 0
    engine = create_db_engine(url)
    migrate(engine)
    store = LedgerStore(engine, load_or_create_log_signer(tmp_path / "log-key.pem", "chainproof.local/log"))
    world = make_world(store)
    store.append(world.journey("CLI", "1"))
    result = runner.invoke(app, ["verify", "--db", url])
    assert result.exit_code == 2  # audits never sign: no checkpoint (nor key) is there to verify against yet
    assert "no log key yet" in result.output
    store.issue_checkpoint()  # as the server does when a client asks for one
    result = runner.invoke(app, ["verify", "--db", url])
    assert result.exit_code == 0, result.output
    assert "verified: all holds" in result.output
    handoff = world.at(3)
    tampered = store.entries(handoff, handoff + 1)[0].leaf.replace(b"Djibouti", b"Djibouty")
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER entries_no_update"))
        conn.execute(text("UPDATE entries SET leaf = :leaf WHERE idx = :i"), {"leaf": tampered, "i": handoff})
    result = runner.invoke(app, ["verify", "--db", url, "--format", "json"])
    assert result.exit_code == 1
    assert f'"index": {handoff}' in result.output


def test_verify_without_log_key_is_a_usage_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    result = runner.invoke(app, ["verify", "--db", default_sqlite_url(tmp_path), "--log-key-file", missing])
    assert result.exit_code == 2
    assert "no database at" in result.output
    migrate(create_db_engine(default_sqlite_url(tmp_path)))  # a schema, but no log has opened it yet
    result = runner.invoke(app, ["verify", "--db", default_sqlite_url(tmp_path), "--log-key-file", missing])
    assert result.exit_code == 2
    assert "give --log-key" in result.output


def test_actor_add_demo_and_verify(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CHAINPROOF_DATA_DIR", str(tmp_path))
    from ledger.signing import generate_private_key, public_key_pem

    pub = tmp_path / "admin.pem.pub"
    pub.write_bytes(public_key_pem(generate_private_key()))
    result = runner.invoke(
        app, ["actor", "add", "--name", "Ops", "--role", "admin", "--public-key", str(pub), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    import json

    created = json.loads(result.stdout)
    assert created["id"].startswith("act_")
    assert created["token"].startswith("cpt_")
    again = runner.invoke(app, ["actor", "add", "--name", "Ops", "--role", "admin", "--public-key", str(pub)])
    assert again.exit_code == 2
    assert "already bound" in again.output  # the same public key again
    missing = runner.invoke(app, ["actor", "add", "--name", "X", "--role", "admin", "--public-key", "nope.pub"])
    assert missing.exit_code == 2
    bad_role = runner.invoke(app, ["actor", "add", "--name", "X", "--role", "king", "--public-key", str(pub)])
    assert bad_role.exit_code == 2

    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "recalled" in result.output
    assert runner.invoke(app, ["demo"]).exit_code == 2
    assert runner.invoke(app, ["demo", "--if-empty"]).exit_code == 0
    result = runner.invoke(app, ["verify", "--format", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["ok"]
    assert summary["batches"] == 4
