"""The HTTP API on SQLite and PostgreSQL: endpoints, the permission matrix, bad input, idempotency, proofs."""

from __future__ import annotations

import base64
import dataclasses
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import app_from_env, create_app
from api.settings import Settings
from ledger import merkle
from ledger.events import EventType, Role
from ledger.note import NoteVerifier, open_checkpoint
from ledger.rules import ALLOWED
from ledger.signing import generate_private_key, public_key_bytes, public_key_pem
from ledger.storage import LedgerStore
from ledger.verify import check_consistency
from tests.factory import (
    Party,
    World,
    handoff_data,
    inspection_data,
    make_world,
    origin_data,
    shipment_data,
    signed_now,
)

PUBLIC_URL = "https://trace.example"


class Api:
    def __init__(self, client: TestClient, world: World) -> None:
        self.client = client
        self.world = world
        self.store: LedgerStore = world.store
        self.tokens = {party.id: world.store.issue_token(party.id) for party in self.parties()}

    def parties(self) -> list[Party]:
        w = self.world
        return [w.merchant, w.other_merchant, w.inspector, w.carrier, w.second_carrier, w.admin, w.auditor]

    def auth(self, party: Party) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[party.id]}"}

    @staticmethod
    def body(submission) -> dict[str, Any]:
        return {"statement": submission.statement, "signature": base64.b64encode(submission.signature).decode()}

    def record(self, party: Party, kind: str, sku: str, lot: str, data: dict[str, Any], **headers: str):
        submission = party.submit(kind, sku, lot, data)
        return self.client.post("/v1/events", json=self.body(submission), headers=self.auth(party) | headers)

    def size(self) -> int:
        return self.store.size()


@pytest.fixture
def api(engine: Engine, tmp_path: Path) -> Iterator[Api]:
    settings = Settings(
        checkpoint_interval_s=0.05,
        data_dir=tmp_path,
        db_url=engine.url.render_as_string(hide_password=False),
        public_url=PUBLIC_URL,
        log_name="trace.example/log",
    )
    app = create_app(settings)
    with TestClient(app) as client:
        yield Api(client, make_world(app.state.store))


def _problem(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["detail"]
    return body


def test_record_and_read_a_batch(api: Api) -> None:
    w = api.world
    r = api.record(w.merchant, "origin", "COF", "L1", origin_data(gtin="4006381333931"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["index"] == w.at(0)
    assert body["product_url"] == f"{PUBLIC_URL}/01/04006381333931/10/L1"
    assert len(bytes.fromhex(body["entry_hash"])) == 32
    r = api.record(w.inspector, "inspection", "COF", "L1", inspection_data())
    assert r.status_code == 201, r.text
    batch = api.client.get("/v1/batches/COF/L1").json()
    assert [e["index"] for e in batch["events"]] == [w.at(0), w.at(1)]
    assert batch["verification"]["verified"] is True, batch["verification"]
    assert batch["gtin"] == "4006381333931"
    assert batch["events"][1]["statement"]["type"] == "inspection"
    assert api.client.get("/v1/batches/COF/nope").status_code == 404


def test_product_url_without_gtin_and_bad_identifiers(api: Api) -> None:
    w = api.world
    r = api.record(w.merchant, "origin", "TEA-1", "L.1", origin_data())
    assert r.json()["product_url"] == f"{PUBLIC_URL}/p/TEA-1/L.1"
    for sku, lot in (("TEA/1", "L1"), ("TEA", "L 1"), ("", "L1"), ("T" * 65, "L1")):
        _problem(api.record(w.merchant, "origin", sku, lot, origin_data()), 422)
    assert api.size() == api.world.at(1)


def test_events_batch_is_all_or_nothing(api: Api) -> None:
    w = api.world
    events = [api.body(s) for s in w.journey("B", "1")]
    r = api.client.post("/v1/events/batch", json={"events": events[:2]}, headers=api.auth(w.merchant))
    _problem(r, 403)  # the second event is the inspector's: the merchant's token cannot send it
    assert api.size() == api.world.at(0)
    own = [api.body(w.merchant.submit("origin", "B", "2", origin_data()))] + [
        api.body(w.merchant.submit("shipment", "B", "2", shipment_data(f"S{n}"))) for n in range(5)
    ]
    r = api.client.post("/v1/events/batch", json={"events": own}, headers=api.auth(w.merchant))
    assert r.status_code == 201, r.text
    assert [x["index"] for x in r.json()["recorded"]] == [w.at(n) for n in range(6)]
    dup = [api.body(w.merchant.submit("shipment", "B", "2", shipment_data("S9")))] * 2
    _problem(api.client.post("/v1/events/batch", json={"events": dup}, headers=api.auth(w.merchant)), 409)
    assert api.size() == api.world.at(6)


def _prepare(api: Api, caller: Party, kind: EventType, lot: str) -> dict[str, Any]:
    """Set up batch `lot` so that `caller` would be allowed to record `kind` if its role allows it."""
    w = api.world
    owner = caller if caller.actor.role is Role.MERCHANT else w.merchant
    if kind is EventType.ORIGIN:
        return origin_data()
    api.store.append([owner.submit("origin", "PM", lot, origin_data())])
    if kind is EventType.INSPECTION:
        return inspection_data()
    if kind is EventType.SHIPMENT:
        return shipment_data("S1")
    if kind is EventType.RECALL:
        return {"reason": "contamination"}
    api.store.append([owner.submit("shipment", "PM", lot, shipment_data("S1"))])
    holder = owner
    if caller.actor.role is Role.CARRIER:
        api.store.append([owner.submit("handoff", "PM", lot, handoff_data(owner.id, caller.id, "S1"))])
        holder = caller
    if kind is EventType.HANDOFF:
        recipient = w.second_carrier if caller is not w.second_carrier else w.carrier
        return handoff_data(holder.id, recipient.id, "S1")
    if kind is EventType.SHIPMENT_CANCEL:
        return {"shipment_id": "S1", "cancelled_at": "2026-11-04T08:00:00Z", "reason": "the buyer withdrew"}
    return {"shipment_id": "S1", "delivered_at": "2026-11-08T15:00:00Z"}


@pytest.mark.parametrize("kind", list(EventType))
@pytest.mark.parametrize("role", list(Role))
def test_permission_matrix(api: Api, role: Role, kind: EventType) -> None:
    w = api.world
    caller = {
        Role.ADMIN: w.admin,
        Role.MERCHANT: w.merchant,
        Role.INSPECTOR: w.inspector,
        Role.CARRIER: w.carrier,
        Role.AUDITOR: w.auditor,
    }[role]
    data = _prepare(api, caller, kind, f"{role}-{kind}")
    before = api.size()
    r = api.record(caller, kind.value, "PM", f"{role}-{kind}", data)
    if kind in ALLOWED[role]:
        assert r.status_code == 201, r.text
        assert api.size() == before + 1
    else:
        _problem(r, 403)
        assert api.size() == before


@pytest.mark.parametrize("kind", ["shipment", "recall", "handoff"])
def test_merchant_cannot_touch_another_merchants_batch(api: Api, kind: str) -> None:
    w = api.world
    api.record(w.merchant, "origin", "X", "1", origin_data())
    data = {
        "shipment": shipment_data("S1"),
        "recall": {"reason": "not mine"},
        "handoff": handoff_data(w.merchant.id, w.other_merchant.id),
    }[kind]
    body = _problem(api.record(w.other_merchant, kind, "X", "1", data), 403)
    assert "another merchant" in body["detail"] or "custodian" in body["detail"]
    assert api.size() == api.world.at(1)


def test_custody_is_enforced(api: Api) -> None:
    w = api.world
    api.record(w.merchant, "origin", "C", "1", origin_data())
    api.record(w.merchant, "shipment", "C", "1", shipment_data("S1"))
    # a carrier cannot insert itself into the journey
    body = _problem(api.record(w.carrier, "handoff", "C", "1", handoff_data(w.merchant.id, w.carrier.id, "S1")), 403)
    assert "custodian" in body["detail"]
    _problem(
        api.record(
            w.second_carrier, "delivery", "C", "1", {"shipment_id": "S1", "delivered_at": "2026-11-08T15:00:00Z"}
        ),
        403,
    )
    assert (
        api.record(w.merchant, "handoff", "C", "1", handoff_data(w.merchant.id, w.carrier.id, "S1")).status_code == 201
    )
    _problem(
        api.record(w.second_carrier, "handoff", "C", "1", handoff_data(w.carrier.id, w.second_carrier.id, "S1")), 403
    )
    assert (
        api.record(
            w.carrier, "delivery", "C", "1", {"shipment_id": "S1", "delivered_at": "2026-11-08T15:00:00Z"}
        ).status_code
        == 201
    )
    assert api.size() == api.world.at(4)


def _signed_body(api: Api, party: Party, kind: str, data: dict[str, Any], **statement: Any) -> dict[str, Any]:
    return api.body(party.sign(party.statement(kind, "BAD", "1", data) | statement))


BAD_INPUTS = {
    "bad-gtin": (
        lambda a: _signed_body(a, a.world.merchant, "origin", origin_data(gtin="4006381333932")),
        422,
        "check digit",
    ),
    "unknown-type": (lambda a: _signed_body(a, a.world.merchant, "teleport", {}), 422, "type"),
    "future-time": (
        lambda a: _signed_body(a, a.world.merchant, "origin", origin_data(produced_at="2099-01-01T00:00:00Z")),
        422,
        "future",
    ),
    "missing-field": (
        lambda a: _signed_body(
            a, a.world.merchant, "origin", {k: v for k, v in origin_data().items() if k != "country"}
        ),
        422,
        "country",
    ),
    "bad-country": (lambda a: _signed_body(a, a.world.merchant, "origin", origin_data(country="XX")), 422, "ISO 3166"),
    "not-json": (lambda a: "{not json", 400, "not valid JSON"),
    "duplicate-key": (lambda a: '{"statement": {}, "statement": {}, "signature": ""}', 400, "duplicate"),
    "missing-signature": (lambda a: {"statement": {"v": 1}}, 422, "signature"),
    "statement-not-object": (lambda a: {"statement": [], "signature": ""}, 422, "object"),
    "bad-signature-base64": (
        lambda a: {"statement": {"actor": a.world.merchant.id}, "signature": "%%%"},
        422,
        "base64",
    ),
    "forged-signature": (
        lambda a: {
            **_signed_body(a, a.world.merchant, "origin", origin_data()),
            "signature": base64.b64encode(bytes(64)).decode(),
        },
        422,
        "signature",
    ),
    # a key id that is not a string must not break the (cached) key lookup before validation
    "key-id-not-a-string": (
        lambda a: _signed_body(a, a.world.merchant, "origin", origin_data(), key_id=["k"]),
        422,
        "key_id",
    ),
    "first-not-origin": (lambda a: _signed_body(a, a.world.merchant, "recall", {"reason": "x"}), 409, "origin"),
    "not-your-statement": (lambda a: _signed_body(a, a.world.other_merchant, "origin", origin_data()), 403, "token"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_problem_and_writes_nothing(api: Api, case: str) -> None:
    make, status, words = BAD_INPUTS[case]
    api.record(api.world.merchant, "origin", "OK", "1", origin_data())
    before, checkpoint = api.size(), api.store.issue_checkpoint()
    payload = make(api)
    headers = api.auth(api.world.merchant)
    if isinstance(payload, str):
        r = api.client.post("/v1/events", content=payload, headers=headers | {"content-type": "application/json"})
    else:
        r = api.client.post("/v1/events", json=payload, headers=headers)
    body = _problem(r, status)
    assert words.lower() in body["detail"].lower()
    assert api.size() == before
    assert api.store.issue_checkpoint() == checkpoint


def test_second_origin_is_a_conflict(api: Api) -> None:
    api.record(api.world.merchant, "origin", "O", "1", origin_data())
    _problem(api.record(api.world.merchant, "origin", "O", "1", origin_data()), 409)
    assert api.size() == api.world.at(1)


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer cpt_nope", "Basic abc"])
def test_missing_or_bad_token_is_401(api: Api, header: str | None) -> None:
    body = api.body(api.world.merchant.submit("origin", "A", "1", origin_data()))
    headers = {} if header is None else {"Authorization": header}
    r = api.client.post("/v1/events", json=body, headers=headers)
    _problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert api.size() == api.world.at(0)


def test_revoked_token_is_401(api: Api) -> None:
    w = api.world
    assert api.client.post("/v1/tokens/revoke", headers=api.auth(w.merchant)).status_code == 204
    _problem(api.record(w.merchant, "origin", "A", "1", origin_data()), 401)


def test_oversized_body_is_413(api: Api) -> None:
    huge = {"statement": {"padding": "x" * (5 * 1024 * 1024)}, "signature": ""}
    _problem(api.client.post("/v1/events", json=huge, headers=api.auth(api.world.merchant)), 413)
    many = [api.body(api.world.merchant.submit("origin", "M", str(n), origin_data())) for n in range(1001)]
    _problem(api.client.post("/v1/events/batch", json={"events": many}, headers=api.auth(api.world.merchant)), 413)
    assert api.size() == api.world.at(0)


def test_idempotent_retries(api: Api) -> None:
    w = api.world
    body = api.body(w.merchant.submit("origin", "I", "1", origin_data()))
    headers = api.auth(w.merchant) | {"Idempotency-Key": "req-1"}
    first = api.client.post("/v1/events", json=body, headers=headers)
    again = api.client.post("/v1/events", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert api.size() == api.world.at(1)
    other = api.body(w.merchant.submit("origin", "I", "2", origin_data()))
    _problem(api.client.post("/v1/events", json=other, headers=headers), 422)
    assert api.size() == api.world.at(1)


def test_log_endpoints_and_proofs_check_out(api: Api) -> None:
    w = api.world
    for lot in range(3):
        api.client.post(
            "/v1/events/batch",
            json={"events": [api.body(w.merchant.submit("origin", "P", str(lot), origin_data()))]},
            headers=api.auth(w.merchant),
        )
    key = NoteVerifier.parse(api.client.get("/v1/log/key").text)
    old_note = api.client.get("/v1/log/checkpoint").text
    for lot in range(3, 12):
        api.record(w.merchant, "origin", "P", str(lot), origin_data())
    r = api.client.get("/v1/log/checkpoint")
    assert r.headers["content-type"].startswith("text/plain")
    cp = open_checkpoint(r.text, key, "trace.example/log").checkpoint
    assert cp.size == w.at(12)
    page = api.client.get("/v1/log/entries", params={"start": 0, "end": cp.size}).json()
    assert [e["index"] for e in page["entries"]] == list(range(cp.size))
    for entry in page["entries"]:
        leaf = base64.b64decode(entry["leaf"])
        proof = api.client.get("/v1/log/proof/inclusion", params={"index": entry["index"], "tree_size": cp.size}).json()
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        from ledger.hashing import leaf_hash

        merkle.verify_inclusion(entry["index"], cp.size, leaf_hash(leaf), hashes, cp.root_hash)
    proof = api.client.get("/v1/log/proof/consistency", params={"first": w.at(3), "second": cp.size}).json()
    assert (
        check_consistency(old_note, r.text, [base64.b64decode(h) for h in proof["hashes"]], key, "trace.example/log")
        == []
    )
    _problem(api.client.get("/v1/log/proof/inclusion", params={"index": cp.size, "tree_size": cp.size}), 400)
    _problem(api.client.get("/v1/log/proof/inclusion", params={"index": 0, "tree_size": cp.size + 1}), 400)
    _problem(api.client.get("/v1/log/proof/consistency", params={"first": 5, "second": 3}), 400)
    _problem(api.client.get("/v1/log/proof/inclusion", params={"index": -1, "tree_size": 3}), 422)
    _problem(api.client.get("/v1/log/entries", params={"start": 5, "end": 2}), 400)


def test_entries_are_paged(api: Api, monkeypatch) -> None:
    w = api.world
    events = [api.body(w.merchant.submit("origin", "PG", str(n), origin_data())) for n in range(7)]
    api.client.post("/v1/events/batch", json={"events": events}, headers=api.auth(w.merchant))
    state = api.client.app.state  # type: ignore[attr-defined]
    monkeypatch.setattr(state, "settings", dataclasses.replace(state.settings, max_entries_page=3))
    page = api.client.get("/v1/log/entries", params={"start": w.at(0), "end": w.at(7)}).json()
    assert [e["index"] for e in page["entries"]] == [w.at(0), w.at(1), w.at(2)]
    assert page["next"] == w.at(3)
    last = api.client.get("/v1/log/entries", params={"start": w.at(6), "end": w.at(100)}).json()
    assert [e["index"] for e in last["entries"]] == [w.at(6)]
    assert last["next"] is None


def _signer(party: Any) -> Any:
    from cli.identities import RegistrationSigner

    return RegistrationSigner(party.id, party.private_key, party.key.key_id)


def test_actors_keys_and_tokens(api: Api) -> None:
    from ledger.identities import IdentityType

    w = api.world
    private = generate_private_key()
    body = {"name": "New Carrier", "role": "carrier", "public_key": public_key_pem(private).decode()}
    _problem(api.client.post("/v1/actors", json=body, headers=api.auth(w.merchant)), 403)
    unsigned = _problem(api.client.post("/v1/actors", json=body, headers=api.auth(w.admin)), 422)
    assert unsigned["type"].endswith("/unsigned-registration")
    admin, signed_at = _signer(w.admin), signed_now()
    new_id = "act_newcarrier"
    registrations = [
        admin.event(IdentityType.ACTOR, new_id, {"id": new_id, "name": "New Carrier", "role": "carrier"}, signed_at),
        admin.key_add(new_id, public_key_bytes(private), private, signed_at),
    ]
    mismatched = [
        admin.event(IdentityType.ACTOR, new_id, {"id": new_id, "name": "New Carrier", "role": "admin"}, signed_at),
        registrations[1],
    ]
    refused = _problem(
        api.client.post("/v1/actors", json=body | {"registrations": mismatched}, headers=api.auth(w.admin)), 422
    )
    assert "data.role is 'admin', but the request says 'carrier'" in refused["detail"]
    r = api.client.post("/v1/actors", json=body | {"registrations": registrations}, headers=api.auth(w.admin))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["id"] == new_id
    assert api.store.authenticate(created["token"]) is not None
    actor = api.client.get(f"/v1/actors/{created['id']}").json()
    assert actor["role"] == "carrier"
    assert actor["keys"][0]["key_id"] == created["key_id"]
    keys = api.client.get(f"/v1/actors/{w.merchant.id}/keys").json()
    assert keys[0]["public_key"] == base64.b64encode(w.merchant.key.public_key).decode()
    assert api.client.get("/v1/actors/act_nobody").status_code == 404
    _problem(api.client.post(f"/v1/keys/{w.merchant.key.key_id}/revoke", json={}, headers=api.auth(w.carrier)), 403)
    revocation = _signer(w.merchant).event(
        IdentityType.KEY_REVOKE,
        w.merchant.id,
        {"actor": w.merchant.id, "key_id": w.merchant.key.key_id, "reason": "lost"},
        signed_now(),
    )
    r = api.client.post(
        f"/v1/keys/{w.merchant.key.key_id}/revoke",
        json={"reason": "lost", "registration": revocation},
        headers=api.auth(w.merchant),
    )
    assert r.status_code == 204, r.text
    assert api.client.get(f"/v1/actors/{w.merchant.id}/keys").json()[0]["revoked_at"] is not None
    body = _problem(api.record(w.merchant, "origin", "R", "1", origin_data()), 403)
    assert "revoked" in body["detail"]
    _problem(api.client.post("/v1/actors", json=body | {"role": "king"}, headers=api.auth(w.admin)), 422)
    bad_key = {"name": "x", "role": "carrier", "public_key": "AAAA"}
    _problem(api.client.post("/v1/actors", json=bad_key, headers=api.auth(w.admin)), 422)
    assert len(api.client.get("/v1/actors").json()) == 8


def test_health_and_docs(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert api.client.get("/readyz").json()["status"] == "ready"
    spec = api.client.get("/openapi.json").json()
    for path in (
        "/v1/events",
        "/v1/events/batch",
        "/v1/batches/{sku}/{lot}",
        "/v1/log/checkpoint",
        "/v1/log/key",
        "/v1/log/entries",
        "/v1/log/proof/inclusion",
        "/v1/log/proof/consistency",
        "/v1/actors/{actor_id}",
        "/v1/actors/{actor_id}/keys",
    ):
        assert path in spec["paths"], path
    assert api.client.get("/docs").status_code == 200
    _problem(api.client.get("/v1/nothing-here"), 404)


def test_openapi_describes_every_field_and_every_error(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    undescribed = [
        f"{name}.{prop}"
        for name, schema in schemas.items()
        for prop, field in schema.get("properties", {}).items()
        if "description" not in field
    ]
    assert undescribed == []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                assert parameter.get("description") or parameter["schema"].get("description"), (path, parameter)
            for code, response in operation.get("responses", {}).items():
                if code.startswith("4"):
                    assert "application/problem+json" in response["content"], (path, method, code)


def test_openapi_says_which_operations_need_a_token_and_they_do(api: Api) -> None:
    """Every operation marked with the bearer scheme refuses a request without a token (401), and no other does."""
    spec = api.client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearerToken"]["description"],
    }
    marked = set()
    for path, operations in spec["paths"].items():
        url = path.replace("{", "").replace("}", "")  # any value will do for a path parameter
        for method, operation in operations.items():
            status = api.client.request(method.upper(), url, json={}).status_code
            if operation.get("security") == [{"bearerToken": []}]:
                marked.add((method.upper(), path))
                assert status == 401, (method, path)
            else:
                assert status != 401, (method, path)
    assert {("POST", "/v1/events"), ("POST", "/v1/events/batch"), ("POST", "/v1/actors")} <= marked


def test_the_serving_factory_freezes_start_up_objects_and_collects_less_often(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `chainproof serve` runs in each worker: the collector no longer rescans what start-up built."""
    monkeypatch.setenv("CHAINPROOF_DATA_DIR", str(tmp_path))
    for name in ("CHAINPROOF_DB", "CHAINPROOF_LOG_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    threshold = gc.get_threshold()
    gc.unfreeze()
    try:
        app = app_from_env()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] >= 10 * threshold[0]
        with TestClient(app) as client:  # and it still serves
            assert client.get("/readyz").json()["tree_size"] == 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
