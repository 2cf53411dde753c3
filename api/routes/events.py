"""Recording signed events.

The body is read as bytes and parsed strictly (no duplicate keys, UTF-8 only): statements are signed data, so
the server must not guess which of two values a client meant. Results are serialized directly.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentActor, settings_of, store_of
from api.problems import ProblemError
from api.schemas import Recorded, RecordedBatch, SignedEvent
from api.settings import Settings
from api.urls import product_url
from api.visibility import CheckpointWaiter
from ledger.canonical import parse_json
from ledger.errors import EncodingError
from ledger.hashing import b64decode, sha256
from ledger.rules import Actor
from ledger.signing import SIGNATURE_SIZE
from ledger.storage import AppendResult, Idempotency, Submission

router = APIRouter(prefix="/v1", tags=["events"])
_CHECKED_ON_THE_LOOP = 4  # events; larger requests are checked on a worker thread, not to stall other requests

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Any unique string: a retried request with the same key returns the first result instead "
        "of appending again.",
    ),
]

_EVENT_SCHEMA = SignedEvent.model_json_schema()
_ONE_EVENT_BODY = {"required": True, "content": {"application/json": {"schema": _EVENT_SCHEMA}}}
_BATCH_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "events": {
                        "type": "array",
                        "items": _EVENT_SCHEMA,
                        "minItems": 1,
                        "maxItems": 1000,
                        "description": "1 to 1,000 signed events, appended all or nothing, in order.",
                    }
                },
                "required": ["events"],
                "additionalProperties": False,
            }
        }
    },
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": "RFC 9457 problem", "content": {"application/problem+json": {}}}
    for code in (400, 401, 403, 409, 413, 422)
}


def _parse(body: bytes) -> Any:
    try:
        return parse_json(body)
    except EncodingError as exc:
        raise ProblemError(400, f"request body is not valid JSON: {exc}", "malformed") from exc


def submission_of(item: Any, actor: Actor, position: int | None) -> Submission:
    where = "" if position is None else f"event {position}: "
    if not isinstance(item, dict) or set(item) != {"statement", "signature"}:
        raise ProblemError(422, where + "an event is an object with exactly 'statement' and 'signature'", "invalid")
    statement, signature_text = item["statement"], item["signature"]
    if not isinstance(statement, dict):
        raise ProblemError(422, where + "statement must be an object", "invalid")
    if not isinstance(signature_text, str):
        raise ProblemError(422, where + "signature must be a base64 string", "invalid")
    try:
        signature = b64decode(signature_text, what="signature", size=SIGNATURE_SIZE)
    except EncodingError as exc:
        raise ProblemError(422, where + str(exc), "invalid") from exc
    signer = statement.get("actor")
    if signer != actor.id:
        raise ProblemError(
            403,
            f"{where}the statement is signed for actor {signer!r} but the token belongs to {actor.id!r}",
            "forbidden",
        )
    return Submission(statement, signature)


def _recorded(settings: Settings, result: AppendResult) -> dict[str, Any]:
    return {
        "index": result.index,
        "entry_hash": result.entry_hash.hex(),
        "sku": result.sku,
        "lot": result.lot,
        "product_url": product_url(settings.base_url, result.sku, result.lot, result.gtin),
    }


async def _record(
    request: Request,
    body: bytes,
    submissions: list[Submission],
    actor: Actor,
    store: Any,
    idempotency_key: str | None,
) -> tuple[list[AppendResult], dict[str, str]]:
    idempotency = None
    if idempotency_key is not None:  # "the same request" is the same bytes to the same endpoint
        idempotency = Idempotency(actor.id, idempotency_key, sha256(request.url.path.encode() + b"\n" + body))
    if len(submissions) <= _CHECKED_ON_THE_LOOP and store.knows_keys(s.statement.get("key_id") for s in submissions):
        # A few events with known keys are checked right here (a fraction of a millisecond, no database) and the
        # commit is awaited: no thread is handed the request and none is parked on the commit, which is most of a
        # small request's cost. Otherwise the check may read the database, which the event loop must not wait on.
        outcome = await asyncio.wrap_future(store.submit_queued(submissions, idempotency))
        results, replayed = outcome.unwrap()
    else:
        results, replayed = await run_in_threadpool(store.append_queued, submissions, idempotency)
    waiter: CheckpointWaiter = request.app.state.checkpoints
    await waiter.wait(max(result.index for result in results) + 1)  # readers can see it (api/visibility.py)
    return results, {"Idempotent-Replayed": "true"} if replayed else {}


@router.post(
    "/events",
    status_code=201,
    response_model=Recorded,
    summary="Record one signed event",
    openapi_extra={"requestBody": _ONE_EVENT_BODY},
    responses=_ERRORS,
)
async def record_event(
    request: Request,
    actor: CurrentActor,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Body: `{"statement": {...}, "signature": "<base64>"}`. Checks the statement (fields, signature by a valid
    key of the caller, role, custody, chain order) and appends it to the log. Nothing is written if anything
    fails."""
    store, settings = store_of(request), settings_of(request)
    body = await request.body()
    submission = submission_of(_parse(body), actor, None)
    results, headers = await _record(request, body, [submission], actor, store, idempotency_key)
    return JSONResponse(_recorded(settings, results[0]), status_code=201, headers=headers)


@router.post(
    "/events/batch",
    status_code=201,
    response_model=RecordedBatch,
    summary="Record up to 1,000 signed events, all or nothing",
    openapi_extra={"requestBody": _BATCH_BODY},
    responses=_ERRORS,
)
async def record_events(
    request: Request,
    actor: CurrentActor,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Body: `{"events": [{"statement": ..., "signature": ...}, ...]}`. Appends the events in order in one
    transaction: if any event fails, none is written."""
    store, settings = store_of(request), settings_of(request)
    body = await request.body()
    payload = _parse(body)
    if not isinstance(payload, dict) or set(payload) != {"events"} or not isinstance(payload["events"], list):
        raise ProblemError(422, "body must be an object with exactly one field, 'events', a list", "invalid")
    events = payload["events"]
    if not events:
        raise ProblemError(422, "events must hold at least one event", "invalid")
    if len(events) > settings.max_batch_events:
        raise ProblemError(413, f"at most {settings.max_batch_events} events per request, got {len(events)}")
    submissions = [submission_of(event, actor, n) for n, event in enumerate(events)]
    results, headers = await _record(request, body, submissions, actor, store, idempotency_key)
    return JSONResponse({"recorded": [_recorded(settings, r) for r in results]}, status_code=201, headers=headers)
