"""Hostile clients against a real server, on SQLite and PostgreSQL: a valid token, validly signed statements with
hostile contents, and malformed bodies. Every answer is a 4xx problem naming what is wrong, nothing is written,
and the keep-alive connection stays usable for the next request."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import Engine

from ledger.entry import MAX_LEAF_BYTES
from ledger.events import format_time
from tests.factory import Party, World, inspection_data, make_world, origin_data
from tests.servers import Server, start_server


class Client:
    """One HTTP/1.1 connection, kept: a server that drops it after an error is caught by `same_connection`."""

    def __init__(self, server: Server, world: World) -> None:
        self.server = server
        self.world = world
        self.tokens = {p.id: world.store.issue_token(p.id) for p in (world.merchant, world.admin, world.inspector)}
        address = urlsplit(server.url)
        self.connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
        self.connection.connect()
        self.socket = self.connection.sock

    def request(
        self, method: str, path: str, body: bytes | None = None, party: Party | None = None, **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        sent = {"Content-Type": "application/json"} | headers
        if party is not None:
            sent["Authorization"] = f"Bearer {self.tokens[party.id]}"
        self.connection.request(method, path, body=body, headers=sent)
        response = self.connection.getresponse()
        payload = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload

    def post_event(self, party: Party, statement: dict[str, Any], **headers: str) -> tuple[int, dict[str, Any]]:
        status, _headers, payload = self.request("POST", "/v1/events", event_body(party, statement), party, **headers)
        return status, json.loads(payload)

    def same_connection(self) -> bool:
        """The server kept the connection open, and it still answers."""
        status, headers, _payload = self.request("GET", "/healthz")
        return status == 200 and self.connection.sock is self.socket and headers.get("connection") != "close"

    def close(self) -> None:
        self.connection.close()


def event_body(party: Party, statement: dict[str, Any]) -> bytes:
    submission = party.sign(statement)
    body = {"statement": submission.statement, "signature": base64.b64encode(submission.signature).decode()}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[Client]:
    server = start_server(tmp_path, db_url=engine.url.render_as_string(hide_password=False))
    world = make_world(server.store)
    client = Client(server, world)
    try:
        yield client
    finally:
        client.close()
        server.stop()


def assert_problem(status: int, body: dict[str, Any], expected: int, *words: str) -> None:
    assert status == expected, body
    assert body["status"] == expected, body
    assert body["type"].startswith("https://chainproof.dev/problems/"), body
    for word in words:
        assert word in body["detail"], body["detail"]


def _raw(client: Client, body: bytes) -> tuple[int, dict[str, Any]]:
    status, _headers, payload = client.request("POST", "/v1/events", body, client.world.merchant)
    return status, json.loads(payload)


def test_deep_nesting_is_refused_and_the_connection_kept(client: Client) -> None:
    store = client.world.store
    assert_problem(*_raw(client, b"[" * 10_000 + b"]" * 10_000), 400, "nested deeper than 32")
    assert client.same_connection()
    nested: Any = "x"
    for _ in range(40):
        nested = {"n": nested}
    statement = client.world.merchant.statement("origin", "DEEP", "1", origin_data(region=nested))
    assert_problem(*client.post_event(client.world.merchant, statement), 400, "nested deeper")
    assert client.same_connection()
    assert store.size() == client.world.base


def test_huge_numbers_are_refused(client: Client) -> None:
    merchant = client.world.merchant
    statement = merchant.statement("origin", "NUM", "1", origin_data())
    body = event_body(merchant, statement).replace(b'"quantity":1200', b'"quantity":' + b"9" * 5000)
    assert_problem(*_raw(client, body), 400, "outside +/- 2**53 - 1")
    assert client.same_connection()
    body = event_body(merchant, statement).replace(b'"quantity":1200', b'"quantity":1e400')
    assert_problem(*_raw(client, body), 400, "too large")
    body = event_body(merchant, statement).replace(b'"quantity":1200', b'"quantity":1.' + b"5" * 100)
    assert_problem(*_raw(client, body), 400, "longer than 32 characters")
    assert client.same_connection()
    assert client.world.store.size() == client.world.at(0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("signed_at", "0001-01-01T00:00:00+01:00"),
        ("signed_at", "9999-12-31T23:59:59-01:00"),
        ("signed_at", "1900-01-01T00:00:00Z"),
        ("produced_at", "0001-01-01T00:00:00+01:00"),
        ("produced_at", "9999-12-31T23:59:59-01:00"),
        ("produced_at", "1969-12-31T23:59:59Z"),
    ],
)
def test_times_outside_1970_to_9999_are_refused(client: Client, field: str, value: str) -> None:
    merchant = client.world.merchant
    if field == "signed_at":
        statement = merchant.statement("origin", "TIME", "1", origin_data()) | {"signed_at": value}
    else:
        statement = merchant.statement("origin", "TIME", "1", origin_data(produced_at=value))
    assert_problem(*client.post_event(merchant, statement), 422, "outside the years 1970-9999")
    assert client.same_connection()
    assert client.world.store.size() == client.world.at(0)


def test_signed_at_must_fall_within_the_intake_window(client: Client) -> None:
    merchant = client.world.merchant
    now = datetime.now(UTC)
    old = merchant.statement("origin", "WIN", "1", origin_data()) | {"signed_at": format_time(now - timedelta(days=15))}
    assert_problem(*client.post_event(merchant, old), 422, "before the server received it", "sign it again")
    ahead = merchant.statement("origin", "WIN", "1", origin_data()) | {
        "signed_at": format_time(now + timedelta(hours=1))
    }
    assert_problem(*client.post_event(merchant, ahead), 422, "signed_at")
    days_late = merchant.statement("origin", "WIN", "1", origin_data()) | {
        "signed_at": format_time(now - timedelta(days=13))
    }  # an offline carrier uploading days later is within the window
    status, body = client.post_event(merchant, days_late)
    assert status == 201, body
    assert client.world.store.size() == client.world.at(1)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Bureau\u202e tcepsnI", "U+202E"),
        ("Green\x00coffee", "U+0000"),
        ("Green\u2066coffee", "U+2066"),
        ("Green\x85coffee", "U+0085"),
        ("Green\ncoffee", "U+000A"),
    ],
)
def test_control_and_bidi_characters_are_refused_in_text(client: Client, text: str, named: str) -> None:
    merchant = client.world.merchant
    statement = merchant.statement("origin", "TXT", "1", origin_data(product=text))
    assert_problem(*client.post_event(merchant, statement), 422, named, "statement.data.product")
    status, _headers, payload = client.request(
        "POST",
        "/v1/actors",
        json.dumps({"name": text, "role": "merchant", "public_key": "A" * 43 + "="}).encode(),
        client.world.admin,
    )
    assert_problem(status, json.loads(payload), 422, named)
    assert client.same_connection()
    assert client.world.store.size() == client.world.at(0)


def test_a_recall_reason_may_run_over_lines(client: Client) -> None:
    merchant = client.world.merchant
    assert client.post_event(merchant, merchant.statement("origin", "LN", "1", origin_data()))[0] == 201
    statement = merchant.statement("recall", "LN", "1", {"reason": "Sample 4 failed.\nSee the lab report."})
    assert client.post_event(merchant, statement)[0] == 201


def test_string_limits_hold_inside_measurements(client: Client) -> None:
    inspector = client.world.inspector
    merchant = client.world.merchant
    assert client.post_event(merchant, merchant.statement("origin", "MS", "1", origin_data()))[0] == 201
    data = inspection_data() | {"measurements": [{"name": "note", "value": "x" * 201}]}
    status, body = client.post_event(inspector, inspector.statement("inspection", "MS", "1", data))
    assert_problem(status, body, 422, "measurements.0.value")
    data = inspection_data() | {"measurements": [{"name": "moisture", "value": 10.5, "unit": "u" * 33}]}
    status, body = client.post_event(inspector, inspector.statement("inspection", "MS", "1", data))
    assert_problem(status, body, 422, "measurements.0.unit")
    assert client.world.store.size() == client.world.at(1)


def test_an_entry_is_at_most_65535_bytes(client: Client) -> None:
    merchant = client.world.merchant
    documents = [{"sha256": f"{n:064x}", "url": "https://docs.example/" + "d" * 1900} for n in range(40)]
    statement = merchant.statement("origin", "BIG", "1", origin_data(documents=documents))
    status, body = client.post_event(merchant, statement)
    assert_problem(status, body, 422, str(MAX_LEAF_BYTES))
    assert client.same_connection()
    assert client.world.store.size() == client.world.at(0)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/batches/A%00/1",
        "/v1/batches/A/%E2%80%AE1",
        "/v1/batches/A%00/1/certificate.json",
        "/v1/batches/A%00/1/qr.png",
        "/v1/actors/act%00x",
        "/v1/actors/act%00x/keys",
    ],
)
def test_hostile_path_segments_get_a_problem(client: Client, path: str) -> None:
    status, headers, payload = client.request("GET", path)
    assert status in (404, 422), payload
    assert headers["content-type"].startswith("application/problem+json")
    assert client.same_connection()


@pytest.mark.parametrize("path", ["/p/A%00/1", "/01/04006381333931/10/L%00", "/p/A/%E2%80%AE"])
def test_hostile_page_links_get_the_not_found_page(client: Client, path: str) -> None:
    status, headers, _payload = client.request("GET", path)
    assert status == 404
    assert headers["content-type"].startswith("text/html")
    assert client.same_connection()


def test_a_signed_statement_is_appended_once(client: Client) -> None:
    merchant = client.world.merchant
    body = event_body(merchant, merchant.statement("origin", "RPL", "1", origin_data()))
    status, _h, first = client.request("POST", "/v1/events", body, merchant)
    assert status == 201
    for _ in range(2):
        status, _h, again = client.request("POST", "/v1/events", body, merchant)
        problem = json.loads(again)
        assert_problem(status, problem, 409, f"already in the log, at index {client.world.at(0)}")
        assert problem["index"] == json.loads(first)["index"] == client.world.at(0)
        assert problem["type"].endswith("/duplicate-statement")
    # a retry with the request's Idempotency-Key still gets the first result, as before
    keyed = event_body(merchant, merchant.statement("shipment", "RPL", "1", _shipment("S1")))
    results = [client.request("POST", "/v1/events", keyed, merchant, **{"Idempotency-Key": "k1"}) for _ in range(2)]
    assert [r[0] for r in results] == [201, 201]
    assert results[0][2] == results[1][2]
    assert results[1][1].get("idempotent-replayed") == "true"
    # ... and without it, the same bytes are a replay
    status, _h, payload = client.request("POST", "/v1/events", keyed, merchant)
    assert_problem(status, json.loads(payload), 409, "at index 1")
    # the same statement twice in one batch request: refused whole
    twice = merchant.sign(merchant.statement("shipment", "RPL", "1", _shipment("S2")))
    one = {"statement": twice.statement, "signature": base64.b64encode(twice.signature).decode()}
    status, _h, payload = client.request(
        "POST", "/v1/events/batch", json.dumps({"events": [one, one]}).encode(), merchant
    )
    assert_problem(status, json.loads(payload), 409, "event 1:")
    assert client.world.store.size() == client.world.at(2)
    assert client.same_connection()


def _shipment(shipment_id: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "shipment_id": shipment_id,
        "destination": "DE-HH",
        "placed_at": format_time(now - timedelta(hours=1)),
        "promised_by": format_time(now + timedelta(days=2)),
    }


def test_a_bad_identifier_is_explained_not_shown_as_a_pattern(client: Client) -> None:
    merchant = client.world.merchant
    statement = merchant.statement("origin", "TEA/1", "1", origin_data())
    status, body = client.post_event(merchant, statement)
    assert_problem(status, body, 422, "statement.sku: 'TEA/1' is not an identifier: 1-64 letters, digits")
    assert "^[A-Za-z0-9]" not in body["detail"]
