"""One key per log, and audits that never write (issue: safe for operators).

Found from outside: `chainproof verify --db` run from another directory found a stray ./var/log-key.pem, signed a
checkpoint of the database with it, stored it and said all holds; from then on every client's verification of the
log failed. Now a database records its log's name and key; nothing signs it with another key; audits open it
read-only; and a new install names its log so that two installs never share a name auditors pin keys to."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from api.app import create_app
from api.settings import Settings
from cli.main import app as cli_app
from ledger.errors import WrongLogKeyError
from ledger.logkey import load_or_create_log_signer
from ledger.note import open_checkpoint
from ledger.storage import LedgerStore, read_log_meta
from ledger.storage.opening import default_log_name, open_log_store
from ledger.verify import verify_ledger
from tests.factory import make_world
from tests.servers import Server, start_server, until_checkpointed

runner = CliRunner()


def cli(*args: str | Path, code: int = 0, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(cli_app, [str(a) for a in args], env=env)
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}: {result.output}"
    return result.stdout if code == 0 else result.output


def _files_digest(directory: Path) -> dict[str, str]:
    """The data directory's files: the database and the log key. SQLite's -shm index and an empty -wal, which a
    reader of a WAL database may create beside it, are not the database."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file() and not p.name.endswith("-shm") and not (p.name.endswith("-wal") and p.stat().st_size == 0)
    }


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Server]:
    server = start_server(tmp_path / "server", checkpoint_interval_s=3600)  # its issuer ticks at start only
    world = make_world(server.store)
    server.store.append(world.journey("AUD", "1"))
    server.store.issue_checkpoint()
    server.store.append(world.journey("AUD", "2"))  # logged after the latest checkpoint
    yield server
    server.stop()


def test_an_audit_from_another_directory_writes_nothing(served: Server, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    load_or_create_log_signer(elsewhere / "log-key.pem", "chainproof.local/log")  # the stray key of the finding
    db = f"sqlite:///{served.settings.data_dir / 'chainproof.db'}"
    served.store.engine.dispose()
    before = _files_digest(served.settings.data_dir)
    with served.store.engine.connect() as conn:
        checkpoints_before = conn.execute(text("SELECT count(*) FROM checkpoints")).scalar()
    env = {"CHAINPROOF_DATA_DIR": str(elsewhere)}
    out = cli("verify", "--db", db, "--format", "json", "--state", tmp_path / "state", env=env)
    summary = json.loads(out)
    assert summary["ok"] is True
    assert summary["not_yet_checkpointed"] == 6  # counted, not a failure: the log has not signed them yet
    cli("export", "--db", db, "--out", tmp_path / "x.cpb", env=env)
    assert _files_digest(served.settings.data_dir) == before  # byte-identical
    with served.store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM checkpoints")).scalar() == checkpoints_before
    # and the served checkpoint still verifies with the log's key
    note = served.store.issue_checkpoint()
    open_checkpoint(note, served.store.signer.verifier, served.store.origin)


def test_audits_refuse_an_old_schema_rather_than_migrate(tmp_path: Path) -> None:
    from alembic import command

    from ledger.storage import create_db_engine
    from ledger.storage.db import alembic_config

    engine = create_db_engine(f"sqlite:///{tmp_path / 'old.db'}")
    command.upgrade(alembic_config(engine), "0003")
    engine.dispose()
    out = cli("verify", "--db", f"sqlite:///{tmp_path / 'old.db'}", code=2)
    assert "run 'chainproof db upgrade'" in out
    out = cli("verify", "--db", f"sqlite:///{tmp_path / 'none.db'}", code=2)
    assert "no database at" in out
    assert not (tmp_path / "none.db").exists()


def test_another_log_key_is_refused_naming_both(engine: Engine, tmp_path: Path) -> None:
    store = open_log_store(engine, tmp_path / "log-key.pem", "trace.example/log", None)
    recorded = str(store.signer.verifier)
    assert read_log_meta(engine).verifier_key == recorded  # type: ignore[union-attr]
    stray = LedgerStore(engine, load_or_create_log_signer(tmp_path / "stray.pem", "trace.example/log"))
    with pytest.raises(WrongLogKeyError) as refused:
        stray.issue_checkpoint()  # whatever path a process took to a store, it never signs with a foreign key
    assert recorded in str(refused.value)
    assert str(stray.signer.verifier) in str(refused.value)
    with pytest.raises(WrongLogKeyError, match="no key file at"):
        open_log_store(engine, tmp_path / "missing" / "log-key.pem", None, None)
    assert not (tmp_path / "missing" / "log-key.pem").exists()  # no key is made up for an existing log
    with pytest.raises(WrongLogKeyError):
        open_log_store(engine, tmp_path / "log-key.pem", "renamed.example/log", None)
    # the log's own key and name open it, the name read from the database when none is configured
    assert open_log_store(engine, tmp_path / "log-key.pem", None, None).origin == "trace.example/log"


def test_the_server_refuses_a_foreign_key_at_start(tmp_path: Path) -> None:
    create_app(Settings(checkpoint_interval_s=0.05, data_dir=tmp_path, public_url="https://trace.example"))
    load_or_create_log_signer(tmp_path / "other.pem", "trace.example/log")
    with pytest.raises(WrongLogKeyError, match="refusing to sign"):
        create_app(Settings(checkpoint_interval_s=0.05, data_dir=tmp_path, log_key_file=tmp_path / "other.pem"))


def test_log_names_follow_the_public_host_or_are_unique(tmp_path: Path) -> None:
    assert default_log_name("https://trace.example:8443/x") == "trace.example/log"
    local = {default_log_name(url) for url in ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]", None)}
    assert len(local) == 4  # each a name of its own
    assert all(name.startswith("chainproof-") and name.endswith(".local/log") for name in local)
    # two installs on one machine (or make clean && make run) never share a log name
    first = create_app(Settings(checkpoint_interval_s=0.05, data_dir=tmp_path / "a")).state.store.origin
    second = create_app(Settings(checkpoint_interval_s=0.05, data_dir=tmp_path / "b")).state.store.origin
    assert first != second
    # ... and one install keeps its name across restarts
    assert create_app(Settings(checkpoint_interval_s=0.05, data_dir=tmp_path / "a")).state.store.origin == first


def test_a_changed_log_key_says_how_to_trust_the_new_one(tmp_path: Path) -> None:
    first = start_server(tmp_path / "one")
    state = tmp_path / "state"
    try:
        world = make_world(first.store)
        first.store.append(world.journey("K", "1"))
        until_checkpointed(first.store)
        cli("verify", "--server", first.url, "--state", state)
        log_name = first.store.origin
    finally:
        first.stop()
    # the same log name, a new key (an operator who lost the key and started over under the same name)
    second = start_server(tmp_path / "two", log_name=log_name)
    try:
        world = make_world(second.store)
        second.store.append(world.journey("K", "1"))
        until_checkpointed(second.store)
        out = cli("verify", "--server", second.url, "--state", state, code=1)
        assert "log-key-changed" in out
        new_key = str(second.store.signer.verifier)
        assert f"--log-key '{new_key}'" in out
        cli("verify", "--server", second.url, "--state", state, "--log-key", new_key)  # trusted deliberately
        cli("verify", "--server", second.url, "--state", state)  # and remembered
    finally:
        second.stop()


def test_default_data_dir_is_not_the_current_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CHAINPROOF_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env()
    assert settings.data_dir.resolve() != tmp_path.resolve()
    assert not Path("var").exists()
    assert os.path.isabs(settings.data_dir)


def test_verify_db_against_stored_checkpoints_only(engine: Engine, tmp_path: Path) -> None:
    store = open_log_store(engine, tmp_path / "log-key.pem", "trace.example/log", None)
    world = make_world(store)
    store.append(world.journey("S", "1"))
    url = engine.url.render_as_string(hide_password=False)
    assert "no checkpoint" in cli("verify", "--db", url, "--state", tmp_path / "st", code=2)
    store.issue_checkpoint()
    out = cli("verify", "--db", url, "--state", tmp_path / "st", "--format", "json")
    assert json.loads(out)["ok"] is True
    report = verify_ledger(store.iter_entries(), store.signer.verifier, store.latest_checkpoint())
    assert report.ok
