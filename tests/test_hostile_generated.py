"""Hypothesis-generated hostile requests to every endpoint of a real server, over one kept-alive connection:
validly signed statements whose fields hold hostile values, raw bodies, odd path segments and queries. No answer
is a 5xx; every 4xx is problem+json (or the shopper's not-found page); a refused write leaves the log as it was;
and the connection stays usable."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import EncodingError
from tests.factory import inspection_data, make_world, origin_data
from tests.servers import start_server
from tests.test_hostile import Client, event_body

_SERVER = None
_CLIENT: Client | None = None
_GENERATED = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


def _client() -> Client:
    """One server and connection for the module (hypothesis runs a test body many times in one fixture scope)."""
    global _SERVER, _CLIENT
    if _CLIENT is None:
        _SERVER = start_server(Path(tempfile.mkdtemp(prefix="chainproof-hostile-")), rate_limits=False)
        world = make_world(_SERVER.store)
        _CLIENT = Client(_SERVER, world)
        merchant = world.merchant
        _CLIENT.post_event(merchant, merchant.statement("origin", "GEN", "1", origin_data()))
    return _CLIENT


@pytest.fixture(scope="module", autouse=True)
def _stop_server() -> Any:
    yield
    if _CLIENT is not None and _SERVER is not None:
        _CLIENT.close()
        _SERVER.stop()


hostile_text = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Zl", "Zp", "Cs"]), min_size=1, max_size=5),
    st.sampled_from(
        ["\u202e", "\x00", "\u2066x\u2069", "a" * 70_000, "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
    ),
)
hostile_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
hostile_value = st.recursive(
    hostile_scalar,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _templates() -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "origin": ("merchant", origin_data(documents=[{"sha256": "c" * 64, "name": "spec.pdf"}])),
        "inspection": ("inspector", inspection_data()),
        "recall": ("merchant", {"reason": "contamination"}),
    }


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(copy[path[0]], path[1:], new)  # type: ignore[index, call-overload]
    return copy


def _assert_fine(client: Client, status: int, headers: dict[str, str], before: int, wrote: bool = False) -> None:
    assert status < 500, (status, headers)
    if status >= 400:
        assert headers["content-type"].startswith(("application/problem+json", "text/html")), headers
        assert client.world.store.size() == before
    elif not wrote:
        assert client.world.store.size() == before
    assert client.same_connection()


@_GENERATED
@given(st.data())
def test_signed_statements_with_hostile_fields(data: st.DataObject) -> None:
    client = _client()
    kind = data.draw(st.sampled_from(sorted(_templates())))
    role, template = _templates()[kind]
    party = getattr(client.world, role)
    statement = party.statement(kind, "GEN", "1", template)
    path = data.draw(st.sampled_from(_paths(statement)))
    hostile = _replace(statement, path, data.draw(hostile_value))
    before = client.world.store.size()
    try:
        body = event_body(party, hostile)
    except (EncodingError, AttributeError, TypeError):  # not even signable: send it with a made-up signature
        body = json.dumps({"statement": hostile, "signature": "A" * 86 + "=="}).encode()
    status, headers, _payload = client.request("POST", "/v1/events", body, party)
    _assert_fine(client, status, headers, before, wrote=True)


@_GENERATED
@given(
    st.one_of(
        st.binary(max_size=200),
        hostile_value.map(lambda v: json.dumps(v).encode()),
        st.integers(1, 2000).map(lambda n: b'{"events":' + b"[" * n + b"]" * n + b"}"),
        st.sampled_from([b'{"events":[]}', b'{"events":{}}', b"\xff\xfe", b'{"a":1,"a":2}', b"1" * 5000, b"-0e99999"]),
    ),
    st.sampled_from(["/v1/events", "/v1/events/batch", "/v1/actors", "/v1/keys/0123456789abcdef/revoke"]),
)
def test_raw_bodies(body: bytes, endpoint: str) -> None:
    client = _client()
    before = client.world.store.size()
    status, headers, _payload = client.request("POST", endpoint, body, client.world.admin)
    _assert_fine(client, status, headers, before)


@_GENERATED
@given(
    hostile_text,
    st.sampled_from(
        [
            "/v1/batches/{x}/1",
            "/v1/batches/GEN/{x}/certificate.json",
            "/v1/batches/{x}/1/qr.svg",
            "/v1/actors/{x}",
            "/v1/actors/{x}/keys",
            "/p/{x}/1",
            "/01/{x}/10/1",
            "/01/04006381333931/10/{x}",
            "/v1/log/entries?start={x}",
            "/v1/log/proof/inclusion?index={x}&tree_size=1",
            "/p/GEN/1?shipment={x}&lang={x}",
        ]
    ),
)
def test_hostile_paths_and_queries(text: str, template: str) -> None:
    client = _client()
    before = client.world.store.size()
    status, headers, _payload = client.request("GET", template.replace("{x}", quote(text[:300], safe="")))
    _assert_fine(client, status, headers, before)
