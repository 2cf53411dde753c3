"""Property-based run over the whole OpenAPI schema: no request, however odd, gets a 5xx."""

from __future__ import annotations

import base64
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from api.app import create_app
from api.settings import Settings
from ledger.events import format_time
from ledger.verify import verify_ledger
from tests.factory import inspection_data, make_world, origin_data

_DIR = Path(tempfile.mkdtemp(prefix="chainproof-schemathesis-"))
_APP = create_app(Settings(checkpoint_interval_s=0.05, data_dir=_DIR, rate_limits=False))
_WORLD = make_world(_APP.state.store)
_APP.state.store.append(_WORLD.journey("COF", "L1"))
_TOKEN = _APP.state.store.issue_token(_WORLD.admin.id)

schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {_TOKEN}"}
    response = case.call()
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    # pages for shoppers answer with an HTML page (a 404 that says so plainly); the API with problem+json
    if response.status_code >= 400 and not case.operation.path.startswith(("/p/", "/01/")):
        content_type = response.headers["content-type"][0]  # schemathesis keeps every value of a header
        assert content_type.startswith("application/problem+json"), content_type


# -- stateful: sequences of calls that follow the OpenAPI links, with validly signed statements -----------------

_STATE_DIR = Path(tempfile.mkdtemp(prefix="chainproof-stateful-"))
_STATE_APP = create_app(Settings(checkpoint_interval_s=0.05, data_dir=_STATE_DIR, rate_limits=False))
_STATE_WORLD = make_world(_STATE_APP.state.store)
_STATE_TOKENS = {
    party.id: _STATE_APP.state.store.issue_token(party.id)
    for party in (
        _STATE_WORLD.merchant,
        _STATE_WORLD.inspector,
        _STATE_WORLD.carrier,
        _STATE_WORLD.second_carrier,
        _STATE_WORLD.admin,
    )
}
# The ledger's own sequences: appends, then what they link to. Actor administration has its own tests; revoking
# the signing keys or tokens the sequences use would leave nothing but refusals to explore.
stateful_schema = schemathesis.openapi.from_asgi("/openapi.json", _STATE_APP).include(
    path_regex=r"^/(v1/(events|batches|log)|p/)"
)


def _signed_events() -> st.SearchStrategy[dict[str, Any]]:
    """Events on a few batches, by the party whose role may record them (or, now and then, one whose may not),
    signed with that party's registered key: the rules, not the signature check, decide what is appended."""
    w = _STATE_WORLD
    now = datetime.now(UTC)
    times = st.integers(-72, 1).map(lambda hours: format_time(now + timedelta(hours=hours)))
    batch = st.tuples(st.sampled_from(["S1", "S2"]), st.sampled_from(["1", "2"]))
    shipment_ids = st.sampled_from(["SO-1", "SO-2"])
    parties = st.sampled_from([w.merchant, w.inspector, w.carrier, w.second_carrier, w.admin])
    actor_ids = st.sampled_from([w.merchant.id, w.carrier.id, w.second_carrier.id, "act_nobody"])
    data = {
        "origin": st.builds(lambda t: origin_data(produced_at=t), times),
        "inspection": st.builds(
            lambda t, result: inspection_data(result) | {"inspected_at": t}, times, st.sampled_from(["pass", "fail"])
        ),
        "shipment": st.builds(
            lambda sid, t, hours: {
                "shipment_id": sid,
                "destination": "DE-HH",
                "placed_at": t,
                "promised_by": format_time(datetime.fromisoformat(t) + timedelta(hours=hours)),
            },
            shipment_ids,
            times,
            st.integers(-2, 96),
        ),
        "handoff": st.builds(
            lambda sender, recipient, sid, t: (
                {"from": sender, "to": recipient, "place": "Hub", "at": t} | ({"shipment_id": sid} if sid else {})
            ),
            actor_ids,
            actor_ids,
            st.none() | shipment_ids,
            times,
        ),
        "delivery": st.builds(lambda sid, t: {"shipment_id": sid, "delivered_at": t}, shipment_ids, times),
        "recall": st.just({"reason": "retained sample failed"}),
    }

    @st.composite
    def event(draw: st.DrawFn) -> dict[str, Any]:
        kind = draw(st.sampled_from(sorted(data)))
        sku, lot = draw(batch)
        lot = f"{lot}-{_RUNS[0]}"  # batches of this run only: what the server answers depends on the draws alone
        party = draw(parties)
        submission = party.submit(kind, sku, lot, draw(data[kind]))
        return {"statement": submission.statement, "signature": base64.b64encode(submission.signature).decode()}

    return event()


@stateful_schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    operation = context.operation
    if operation is not None and operation.method.upper() == "POST" and operation.path == "/v1/events":
        return _signed_events()
    if operation is not None and operation.method.upper() == "POST" and operation.path == "/v1/events/batch":
        return st.lists(_signed_events(), min_size=1, max_size=4).map(lambda events: {"events": events})
    return st.just(body)


_RUNS = [0]


class LedgerStateMachine(stateful_schema.as_state_machine()):  # type: ignore[misc]
    def setup(self) -> None:
        # Hypothesis replays a sequence to shrink it, and requires that the replay behaves as the first run did:
        # each run writes to batches of its own, so the ledger that earlier runs left behind changes nothing.
        _RUNS[0] += 1

    def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
        """Each write is sent with its signer's token (an admin's for everything else)."""
        for name in list(case.headers or {}):
            if name.lower() == "idempotency-key":  # keys, like batches, belong to one run (see setup)
                case.headers[name] = f"{case.headers[name]}-{_RUNS[0]}"[:200]
        token = _STATE_TOKENS[_STATE_WORLD.admin.id]
        body = case.body if isinstance(case.body, dict) else {}
        statement = body.get("statement") or (body.get("events") or [{}])[0].get("statement", {})
        if isinstance(statement, dict) and statement.get("actor") in _STATE_TOKENS:
            token = _STATE_TOKENS[statement["actor"]]
        return {"headers": {"Authorization": f"Bearer {token}"}}

    def validate_response(
        self, response: Any, case: schemathesis.Case, additional_checks: Any = None, **_: Any
    ) -> None:
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
        )
        if response.status_code >= 400 and not case.operation.path.startswith(("/p/", "/01/")):
            assert response.headers["content-type"][0].startswith("application/problem+json")


@pytest.mark.slow
def test_stateful_sequences_with_signed_statements() -> None:
    before = _STATE_APP.state.store.size()
    LedgerStateMachine.run(
        settings=settings(
            max_examples=25, stateful_step_count=8, deadline=None, suppress_health_check=list(HealthCheck)
        )
    )
    store = _STATE_APP.state.store
    assert store.size() > before, "no signed statement was ever appended: the run exercised nothing but refusals"
    report = verify_ledger(store.iter_entries(), store.signer.verifier, store.issue_checkpoint())
    assert report.ok, report.problems  # whatever sequence ran, the log it left verifies
