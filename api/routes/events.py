"""Recording signed events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from api.deps import CurrentActor, SettingsDep, StoreDep
from api.problems import ProblemError
from api.schemas import EventBatch, Recorded, RecordedBatch, SignedEvent
from api.settings import Settings
from api.urls import product_url
from ledger.canonical import canonical_json
from ledger.errors import EncodingError
from ledger.hashing import b64decode, sha256
from ledger.rules import Actor
from ledger.signing import SIGNATURE_SIZE
from ledger.storage import AppendResult, Idempotency, LedgerStore, Submission

router = APIRouter(prefix="/v1", tags=["events"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Any unique string: a retried request with the same key returns the first result instead "
        "of appending again.",
    ),
]


def _submission(event: SignedEvent, actor: Actor, position: int | None) -> Submission:
    where = "" if position is None else f"event {position}: "
    try:
        signature = b64decode(event.signature, what="signature", size=SIGNATURE_SIZE)
    except EncodingError as exc:
        raise ProblemError(422, where + str(exc), "invalid") from exc
    signer = event.statement.get("actor")
    if signer != actor.id:
        raise ProblemError(
            403,
            f"{where}the statement is signed for actor {signer!r} but the token belongs to {actor.id!r}",
            "forbidden",
        )
    return Submission(event.statement, signature)


def _append(
    store: LedgerStore,
    settings: Settings,
    actor: Actor,
    submissions: list[Submission],
    idempotency_key: str | None,
    body: object,
    path: str,
    response: Response,
) -> list[Recorded]:
    idempotency = None
    if idempotency_key is not None:
        digest = sha256(path.encode() + b"\n" + canonical_json(body))
        idempotency = Idempotency(actor.id, idempotency_key, digest)
    results, replayed = store.append_queued(submissions, idempotency)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return [_recorded(settings, r) for r in results]


def _recorded(settings: Settings, result: AppendResult) -> Recorded:
    return Recorded(
        index=result.index,
        entry_hash=result.entry_hash.hex(),
        sku=result.sku,
        lot=result.lot,
        product_url=product_url(settings.base_url, result.sku, result.lot, result.gtin),
    )


@router.post(
    "/events",
    status_code=201,
    response_model=Recorded,
    summary="Record one signed event",
    responses={401: {}, 403: {}, 409: {}, 413: {}, 422: {}},
)
def record_event(
    event: SignedEvent,
    actor: CurrentActor,
    store: StoreDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Recorded:
    """Check the statement (fields, signature by a valid key of the caller, role, custody, chain order) and append
    it to the log. Nothing is written if anything fails."""
    submission = _submission(event, actor, None)
    return _append(store, settings, actor, [submission], idempotency_key, event.model_dump(), "/v1/events", response)[0]


@router.post(
    "/events/batch",
    status_code=201,
    response_model=RecordedBatch,
    summary="Record up to 1,000 signed events, all or nothing",
    responses={401: {}, 403: {}, 409: {}, 413: {}, 422: {}},
)
def record_events(
    batch: EventBatch,
    actor: CurrentActor,
    store: StoreDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> RecordedBatch:
    """Append the events in order in one transaction: if any event fails, none is written."""
    if not batch.events:
        raise ProblemError(422, "events must hold at least one event", "invalid")
    if len(batch.events) > settings.max_batch_events:
        raise ProblemError(413, f"at most {settings.max_batch_events} events per request, got {len(batch.events)}")
    submissions = [_submission(event, actor, n) for n, event in enumerate(batch.events)]
    recorded = _append(
        store, settings, actor, submissions, idempotency_key, batch.model_dump(), "/v1/events/batch", response
    )
    return RecordedBatch(recorded=recorded)
