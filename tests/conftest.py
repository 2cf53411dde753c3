from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from ledger.logkey import load_or_create_log_signer
from ledger.storage import LedgerStore, create_db_engine, default_sqlite_url, migrate
from tests.factory import EagerlyCheckpointedStore, World, make_world

# CI runs the same examples every time (a failure there is reproducible, and main stays green on a clean clone);
# developers' runs explore new ones (HYPOTHESIS_PROFILE=ci reproduces CI's).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))

POSTGRES_URL = os.environ.get("CHAINPROOF_TEST_POSTGRES_URL")
LOG_NAME = "chainproof.test/log"
SKIP_PG = "CHAINPROOF_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped (.ci/run sets it)"


@pytest.fixture(autouse=True)
def _isolated_auditor_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI remembers logs it verified; tests must not share (or leave) that memory."""
    monkeypatch.setenv("CHAINPROOF_STATE_DIR", str(tmp_path_factory.mktemp("auditor-state")))


@contextmanager
def postgresql_database(prefix: str = "chainproof_t_") -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database of its own (skips without one), dropped afterwards: whoever
    connects to it must have closed their connections by then, or they are cut."""
    if not POSTGRES_URL:
        pytest.skip(SKIP_PG)
    name = prefix + secrets.token_hex(6)
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgresql_engine() -> Iterator[Engine]:
    """A fresh, migrated PostgreSQL database of its own, dropped afterwards."""
    with postgresql_database() as url:
        engine = create_db_engine(url)
        try:
            migrate(engine)
            yield engine
        finally:
            engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_db_engine(default_sqlite_url(tmp_path))
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture
def store(engine: Engine, tmp_path: Path) -> LedgerStore:
    return EagerlyCheckpointedStore(engine, load_or_create_log_signer(tmp_path / "log.key", LOG_NAME))


@pytest.fixture
def world(store: LedgerStore) -> World:
    return make_world(store)


@pytest.fixture
def plain_world(engine: Engine, tmp_path: Path) -> World:
    """Over the store as deployed: nothing signs a checkpoint but the issuer (here: the test, explicitly)."""
    return make_world(LedgerStore(engine, load_or_create_log_signer(tmp_path / "log.key", LOG_NAME)))


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for every test that needs a browser (started once: it takes seconds)."""
    from tests.chromium import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (Debian chromium; make test-deps installs it)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
