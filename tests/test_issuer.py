"""Checkpoints are issued on a cadence by one process, witnessed or not: a read never signs one, an append is
answered once a checkpoint covers it (or after a bound, when the issuer is down), and one worker among all, on
either database, holds the issuer's lock; another takes over when it stops."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import Engine, text

from ledger.cosignature import Policy
from ledger.logkey import load_or_create_log_signer
from ledger.note import Checkpoint, parse_note
from ledger.storage import LedgerStore, create_db_engine, default_sqlite_url, migrate
from ledger.witnessing import LogWitnessing, issuer_lock, run_issuer
from tests.factory import Party, World, make_world, origin_data
from tests.servers import LOG, Server, start_server


def _post(server: Server, party: Party, sku: str) -> httpx.Response:
    token = server.store.issue_token(party.id)
    submission = party.submit("origin", sku, "1", origin_data())
    body = {"statement": submission.statement, "signature": base64.b64encode(submission.signature).decode()}
    return httpx.post(f"{server.url}/v1/events", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _size(note: str) -> int:
    return Checkpoint.parse_body(parse_note(note).text).size


def _checkpoint_rows(store: LedgerStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM checkpoints")).scalar_one())


def test_a_read_never_signs_and_an_append_waits_for_the_issuer_then_gives_up(tmp_path: Path) -> None:
    """The issuer is elsewhere and down: another process holds its lock and issues nothing. Reads keep serving
    the checkpoint issued before, however many there are, and sign none; an append is answered at the bound,
    recorded, and not shown before a checkpoint covers it. (Before, a read of an unwitnessed log signed the
    current tree.)"""
    data_dir = tmp_path / "server"
    data_dir.mkdir()
    engine = create_db_engine(default_sqlite_url(data_dir))
    migrate(engine)
    LedgerStore(engine, load_or_create_log_signer(data_dir / "log-key.pem", LOG)).issue_checkpoint()
    engine.dispose()
    with issuer_lock(engine, data_dir / "checkpoint-issuer.lock") as held:  # the issuer's process, hung
        assert held
        server = start_server(data_dir, append_wait_s=0.3)
        try:
            world = make_world(server.store)  # registrations appended through the store: not yet shown
            started = _size(httpx.get(f"{server.url}/v1/log/checkpoint").text)
            rows = _checkpoint_rows(server.store)
            began = time.monotonic()
            answer = _post(server, world.merchant, "WAIT")
            waited = time.monotonic() - began
            assert answer.status_code == 201, answer.text
            assert waited >= 0.3  # no checkpoint came: answered at the bound, not before
            assert server.store.size() == answer.json()["index"] + 1  # recorded all the same
            for path in (
                "/v1/log/checkpoint",
                "/tlog/checkpoint",
                "/p/WAIT/1",
                "/v1/batches/WAIT/1",
                "/v1/epcis/events",
            ):
                httpx.get(f"{server.url}{path}")
            assert _size(httpx.get(f"{server.url}/v1/log/checkpoint").text) == started
            assert httpx.get(f"{server.url}/v1/batches/WAIT/1").status_code == 404  # not shown before a checkpoint
            assert _checkpoint_rows(server.store) == rows  # no read signed one
        finally:
            server.stop()


def test_an_append_wakes_an_issuer_in_its_own_process(tmp_path: Path) -> None:
    """An issuer on an hour's cadence, in the process that takes the append: the append wakes it, and is answered
    as soon as its checkpoint is issued, not at the bound."""
    server = start_server(tmp_path / "server", checkpoint_interval_s=3600, append_wait_s=30)
    try:
        world = make_world(server.store)
        for n in range(3):
            began = time.monotonic()
            answer = _post(server, world.merchant, f"WAKE{n}")
            assert answer.status_code == 201, answer.text
            assert time.monotonic() - began < 10  # not the 30 s bound
            assert _size(httpx.get(f"{server.url}/v1/log/checkpoint").text) > answer.json()["index"]
    finally:
        server.stop()


def test_an_append_is_answered_once_readers_can_see_it(tmp_path: Path) -> None:
    """With the issuer on its cadence, whoever recorded an event reads it back at once, through any read."""
    server = start_server(tmp_path / "server", checkpoint_interval_s=0.2)
    try:
        world = make_world(server.store)
        for n in range(3):
            answer = _post(server, world.merchant, f"SEEN{n}")
            assert answer.status_code == 201, answer.text
            index = answer.json()["index"]
            assert _size(httpx.get(f"{server.url}/v1/log/checkpoint").text) > index
            assert httpx.get(f"{server.url}/v1/batches/SEEN{n}/1").status_code == 200
    finally:
        server.stop()


def _engines(engine: Engine) -> tuple[Engine, Engine]:
    """Two engines on one database, as two worker processes would hold."""
    url = engine.url.render_as_string(hide_password=False)
    return create_db_engine(url), create_db_engine(url)


def test_one_worker_holds_the_issuer_lock_until_it_lets_go(engine: Engine, tmp_path: Path) -> None:
    first, second = _engines(engine)
    lock_file = tmp_path / "checkpoint-issuer.lock"
    try:
        with issuer_lock(first, lock_file) as held:
            assert held
            with issuer_lock(second, lock_file) as also:
                assert not also
        with issuer_lock(second, lock_file) as held_now:
            assert held_now
    finally:
        first.dispose()
        second.dispose()


class _Counting(LogWitnessing):
    def __init__(self, store: LedgerStore, name: str, ticks: list[str]) -> None:
        super().__init__(store, Policy())
        self.name, self.ticks = name, ticks

    def tick(self) -> int | None:
        self.ticks.append(self.name)
        return super().tick()


def test_two_workers_one_issues_and_the_other_takes_over(plain_world: World, tmp_path: Path, monkeypatch) -> None:
    """Two workers run the issuer loop: only one ticks; when it stops, the other takes the lock and issues what
    was appended since."""
    import ledger.witnessing as witnessing_module

    monkeypatch.setattr(witnessing_module, "TAKEOVER_PAUSE_S", 0.05)
    store = plain_world.store
    other_engine = create_db_engine(store.engine.url.render_as_string(hide_password=False))
    other = LedgerStore(other_engine, store.signer)
    ticks: list[str] = []
    stops = {"A": threading.Event(), "B": threading.Event()}
    lock_file = tmp_path / "checkpoint-issuer.lock"
    workers = {
        "A": threading.Thread(target=run_issuer, args=(_Counting(store, "A", ticks), 0.02, stops["A"], lock_file)),
        "B": threading.Thread(target=run_issuer, args=(_Counting(other, "B", ticks), 0.02, stops["B"], lock_file)),
    }
    try:
        workers["A"].start()
        deadline = time.monotonic() + 10
        while "A" not in ticks and time.monotonic() < deadline:
            time.sleep(0.01)
        workers["B"].start()
        time.sleep(0.5)
        assert set(ticks) == {"A"}  # B tried, did not get the lock, and never ticked
        stops["A"].set()
        workers["A"].join(10)
        store.append(plain_world.journey("TAKE", "1"))
        size = store.size()
        while (store.checkpointed_size() or 0) < size and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.checkpointed_size() == size  # B took over
        assert ticks[-1] == "B"
    finally:
        for stop in stops.values():
            stop.set()
        for worker in workers.values():
            worker.join(10)
        other_engine.dispose()
