"""Batches of any size (issue: safe for operators and big batches).

Found from outside: a batch whose proofs needed more than about 1,000 Merkle nodes got 500 "Expression tree is too
large" on SQLite (page, batch JSON, certificate, QR), and on PostgreSQL a 1.4k-event page took 1.5 s and weighed
2.7 MB, re-verifying the whole batch with a proof per event on every view. A lot of 10,000 units with per-unit
events is ordinary. Asserted here: size and the number of queries, never time (bench/page_bench.py measures that).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from api.app import create_app
from api.pages.view import RECENT_EVENTS
from api.settings import Settings
from certificates.core import Certificate, verify_certificate
from ledger.storage import LedgerStore
from tests.conftest import postgresql_database
from tests.factory import World, make_world, origin_data

BIG = 2500  # shipments: with origin and inspection, 10,002 events
PAGE_LIMIT_BYTES = 200_000


class Queries:
    """Counts the statements an engine runs while active."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statements: list[str] = []

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):
            self.statements.append(statement)

    def __enter__(self) -> Queries:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def big_site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, World]]:
    """A 10,002-event batch, interleaved with small ones, served by the app (built once per database)."""
    data_dir = tmp_path_factory.mktemp("big")
    with ExitStack() as stack:
        db_url = None
        if request.param == "postgresql":
            db_url = stack.enter_context(postgresql_database("chainproof_big_"))
        # the issuer ticks at start (covering what is appended below) and not again: the tests count the queries
        # that pages make
        app = create_app(
            Settings(checkpoint_interval_s=3600, data_dir=data_dir, db_url=db_url, public_url="https://trace.example")
        )
        store: LedgerStore = app.state.store
        stack.callback(store.engine.dispose)  # before the database is dropped
        world = make_world(store)
        journey = world.journey("HUGE", "1", shipments=BIG)
        for start in range(0, len(journey), 1000):
            others = [world.merchant.submit("origin", "SMALL", f"{start}-{n}", origin_data()) for n in range(20)]
            store.append(journey[start : start + 1000] + others)
        store.append(world.journey("TINY", "1"))
        with TestClient(app) as client:
            yield client, world


def _ledger_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="ledger-data">(.*?)</script>', html, re.S)
    assert match
    return json.loads(match.group(1))


def test_a_10k_event_batch_page_is_small_and_reads_a_bounded_number_of_rows(
    big_site: tuple[TestClient, World],
) -> None:
    client, world = big_site
    engine = world.store.engine
    with Queries(engine) as cold:
        response = client.get("/p/HUGE/1")
    assert response.status_code == 200
    assert 'data-verdict="verified"' in response.text
    assert len(response.content) < PAGE_LIMIT_BYTES, len(response.content)
    data = _ledger_data(response.text)
    assert data["batch"]["events"] == 2 + 4 * BIG
    assert len(data["entries"]) == 2 + RECENT_EVENTS  # origin, inspection, the newest events
    assert sum("proof" in e for e in data["entries"]) == 2  # the inspection's (the origin links to it) and the last
    assert f"{2 + 4 * BIG} events" in response.text  # "Showing 50 of this batch's 10002 events"
    # the first view issues the checkpoint and reads the batch once (one range scan); the next ones read only what
    # is new (nothing): a handful of queries either way
    assert len(cold.statements) <= 12, cold.statements
    assert sum("FROM entries  WHERE entries.sku" in " ".join(s.split("\n")) for s in cold.statements) <= 1
    with Queries(engine) as warm:
        again = client.get("/p/HUGE/1?lang=zh")
    assert again.status_code == 200
    assert len(warm.statements) <= 8, warm.statements
    small = client.get("/p/TINY/1")
    with Queries(engine) as tiny:
        client.get("/p/TINY/1")
    assert small.status_code == 200
    assert len(warm.statements) == len(tiny.statements)  # no more queries for 10,002 events than for 6


def test_older_events_are_paged_and_each_page_is_a_checked_chain(big_site: tuple[TestClient, World]) -> None:
    client, _world = big_site
    html = client.get("/p/HUGE/1").text
    before = int(re.search(r'id="older-events" href="\?before=(\d+)', html).group(1))  # type: ignore[union-attr]
    older = client.get(f"/p/HUGE/1?before={before}")
    assert older.status_code == 200
    assert len(older.content) < PAGE_LIMIT_BYTES
    data = _ledger_data(older.text)
    window = data["batch"]["window"]
    listed = [e for e in data["entries"] if window[0] <= e["index"] <= window[1]]
    assert len(listed) == RECENT_EVENTS
    assert listed[-1]["index"] < before
    assert "proof" in listed[-1]  # the page's own chain ends in a proven entry
    assert 'id="newest-events"' in older.text
    assert client.get("/p/HUGE/1?before=x").status_code == 404  # a bad page link is the shopper's not-found page
    first = client.get("/p/HUGE/1?before=1")  # before the origin: the page of the first events
    assert first.status_code == 200


def test_batch_json_certificate_and_qr_of_a_10k_event_batch(big_site: tuple[TestClient, World]) -> None:
    client, world = big_site
    body = client.get("/v1/batches/HUGE/1").json()
    assert body["verification"]["verified"] is True
    assert body["events_total"] == 2 + 4 * BIG
    events = list(body["events"])
    while body["next"]:
        body = client.get(body["next"]).json()
        events += body["events"]
    indices = [e["index"] for e in events]
    assert len(indices) == 2 + 4 * BIG
    assert indices == sorted(set(indices))
    assert client.get("/v1/batches/HUGE/1?limit=0").status_code == 422
    assert client.get(f"/v1/batches/HUGE/1?after={2**63}").status_code == 422
    certificate = client.get("/v1/batches/HUGE/1/certificate.json")
    assert certificate.status_code == 200
    report = verify_certificate(Certificate.from_bytes(certificate.content), world.store.signer.verifier)
    assert report.ok, report.problems[:3]
    assert client.get("/v1/batches/HUGE/1/qr.svg").status_code == 200
    assert client.get("/v1/batches/HUGE/1/certificate.pdf").status_code == 200


def test_the_cli_checks_a_batch_across_pages(big_site: tuple[TestClient, World], tmp_path: Path) -> None:
    from cli.audit import batch_check
    from cli.client import ServerClient

    client, world = big_site

    class Through(ServerClient):  # the CLI's client, talking to the test app
        def __init__(self) -> None:
            super().__init__("http://testserver")
            self._http.close()
            self._http = client

        def close(self) -> None:  # the app's client is the module's, shared with the other tests
            pass

    with Through() as through:
        problems, summary = batch_check(through, world.store.signer.verifier, "HUGE", "1")
    assert problems == []
    assert summary["ok"] is True


def test_unknown_batches_take_no_place_among_the_summaries(big_site: tuple[TestClient, World]) -> None:
    """A scan of made-up lots must not push the real batches' summaries out (each costs a full read to rebuild)."""
    from api.pages.view import summaries
    from ledger.errors import NotFoundError

    client, world = big_site
    assert client.get("/p/HUGE/1").status_code == 200
    assert client.get("/p/HUGE/NOPE").status_code == 404
    kept = summaries(world.store)
    before = len(kept)
    for n in range(300):  # past the page rate limit, so straight to the summaries
        with pytest.raises(NotFoundError):
            kept.page("HUGE", f"NOPE-{n}")
    assert len(kept) == before
