"""Actors, their public keys and API tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.asgi import bearer_token
from api.deps import ActorIdPath, CurrentActor, KeyIdPath, StoreDep, TokenIdPath, require_admin
from api.problems import ProblemError
from api.routes.events import submission_of
from api.schemas import (
    ActorCreate,
    ActorCreated,
    ActorOut,
    KeyCreate,
    KeyOut,
    KeyRevoke,
    SignedEvent,
    TokenInfoOut,
    TokenOut,
)
from api.visibility import CheckpointWaiter
from ledger.errors import NotFoundError
from ledger.events import Role, format_time
from ledger.hashing import b64encode, sha256_hex
from ledger.identities import RegisteredActor, RegisteredKey, Registry
from ledger.rules import Actor
from ledger.signing import parse_public_key_text
from ledger.storage import AppendResult, Submission

router = APIRouter(prefix="/v1", tags=["actors"])


def key_out(key: RegisteredKey) -> KeyOut:
    return KeyOut(
        key_id=key.key_id,
        actor_id=key.actor_id,
        public_key=b64encode(key.public_key),
        valid_from=format_time(key.valid_from) if key.valid_from is not None else "",
        revoked_at=None if key.revoked_time is None else format_time(key.revoked_time),
        bound_at_index=key.added_at,
        revoked_at_index=key.revoked_at,
        possession=key.possession,
        operator_attested=key.operator_attested,
    )


def actor_out(actor: RegisteredActor, registry: Registry) -> ActorOut:
    keys = sorted((k for k in registry.keys.values() if k.actor_id == actor.id), key=lambda k: k.added_at)
    return ActorOut(
        id=actor.id,
        name=actor.name,
        role=actor.role,
        keys=[key_out(k) for k in keys],
        registered_at_index=actor.registered_at,
        changed_at_index=actor.changed_at,
        operator_attested=actor.operator_attested,
        gln=actor.gln,
    )


def _actor(registry: Registry, actor_id: str) -> RegisteredActor:
    actor = registry.actors.get(actor_id)
    if actor is None:
        raise ProblemError(404, f"actor {actor_id!r} does not exist", "not-found")
    return actor


def _self_or_admin(caller: Actor, actor_id: str) -> None:
    if caller.id != actor_id and caller.role is not Role.ADMIN:
        raise ProblemError(403, "only the actor itself or an admin may do this", "forbidden")


@router.get("/actors", response_model=list[ActorOut], summary="Every actor with its public keys")
def list_actors(store: StoreDep) -> list[ActorOut]:
    registry = store.registry()
    return [actor_out(a, registry) for a in sorted(registry.actors.values(), key=lambda a: a.id)]


@router.get("/me", response_model=ActorOut, summary="The actor the API token belongs to")
def whoami(caller: CurrentActor, store: StoreDep) -> ActorOut:
    registry = store.registry()
    return actor_out(_actor(registry, caller.id), registry)


@router.get("/actors/{actor_id}", response_model=ActorOut, summary="One actor with its public keys")
def get_actor(actor_id: ActorIdPath, store: StoreDep) -> ActorOut:
    registry = store.registry()
    return actor_out(_actor(registry, actor_id), registry)


@router.get("/actors/{actor_id}/keys", response_model=list[KeyOut], summary="An actor's keys and validity periods")
def get_actor_keys(actor_id: ActorIdPath, store: StoreDep) -> list[KeyOut]:
    registry = store.registry()
    return actor_out(_actor(registry, actor_id), registry).keys


def _signed(
    events: list[SignedEvent] | None, caller: Actor, expected: list[tuple[str, dict[str, Any]]], how: str
) -> list[Submission]:
    """The signed registrations a request carries, checked to say what its body says (type, and each data field
    given in `expected`); a 422 naming the difference, or the missing signature, otherwise."""
    if events is None:
        raise ProblemError(
            422,
            f"who may sign is recorded in the log, signed by whoever decides it: send {how}, signed with your key "
            "(the chainproof CLI builds it: actor add --server / key add / key revoke, with --key)",
            "unsigned-registration",
        )
    submissions = [submission_of(e.model_dump(), caller, n if len(events) > 1 else None) for n, e in enumerate(events)]
    for n, (submission, (kind, fields)) in enumerate(zip(submissions, expected, strict=True)):
        statement = submission.statement
        data = statement.get("data")
        if statement.get("type") != kind or not isinstance(data, dict):
            raise ProblemError(422, f"registration {n} must be a {kind} statement", "invalid")
        for name, value in fields.items():
            if data.get(name) != value:
                raise ProblemError(
                    422,
                    f"registration {n}'s data.{name} is {data.get(name)!r}, but the request says {value!r}",
                    "invalid",
                )
    return submissions


def _appended(request: Request, results: list[AppendResult]) -> None:
    """Answered once readers can see the registrations (api/visibility.py)."""
    waiter: CheckpointWaiter = request.app.state.checkpoints
    waiter.wait_blocking(max(result.index for result in results) + 1)


@router.post("/actors", status_code=201, response_model=ActorCreated, summary="Register an actor (admins only)")
def create_actor(request: Request, body: ActorCreate, caller: CurrentActor, store: StoreDep) -> ActorCreated:
    """Appends the actor's `actor` and `key_add` registrations, signed by the admin, and issues its first token."""
    require_admin(caller)
    public_key = b64encode(parse_public_key_text(body.public_key))
    events = body.registrations
    actor_id = events[0].statement.get("lot") if events else None
    submissions = _signed(
        events,
        caller,
        [
            ("actor", {"id": actor_id, "name": body.name, "role": body.role.value, "gln": body.gln}),
            ("key_add", {"actor": actor_id, "public_key": public_key}),
        ],
        "registrations: [actor, key_add]",
    )
    _appended(request, store.append_queued(submissions)[0])
    key_id = str(submissions[1].statement["data"]["key_id"])
    return ActorCreated(id=str(actor_id), key_id=key_id, token=store.issue_token(str(actor_id)))


@router.post("/actors/{actor_id}/keys", status_code=201, response_model=KeyOut, summary="Add a key (rotation)")
def add_key(request: Request, actor_id: ActorIdPath, body: KeyCreate, caller: CurrentActor, store: StoreDep) -> KeyOut:
    """Appends the key's `key_add` registration, signed by the actor itself or an admin."""
    _self_or_admin(caller, actor_id)
    public_key = b64encode(parse_public_key_text(body.public_key))
    events = None if body.registration is None else [body.registration]
    submissions = _signed(events, caller, [("key_add", {"actor": actor_id, "public_key": public_key})], "registration")
    _appended(request, store.append_queued(submissions)[0])
    return key_out(store.registry().keys[str(submissions[0].statement["data"]["key_id"])])


@router.post("/keys/{key_id}/revoke", status_code=204, summary="Revoke a key: it signs nothing from now on")
def revoke_key(request: Request, key_id: KeyIdPath, body: KeyRevoke, caller: CurrentActor, store: StoreDep) -> None:
    """Appends the key's `key_revoke` registration, signed by the key's actor or an admin."""
    key = store.registry().keys.get(key_id)
    if key is None:
        raise ProblemError(404, f"key {key_id} does not exist", "not-found")
    _self_or_admin(caller, key.actor_id)
    events = None if body.registration is None else [body.registration]
    fields: dict[str, Any] = {"actor": key.actor_id, "key_id": key_id} | (
        {"reason": body.reason} if body.reason else {}
    )
    _appended(request, store.append_queued(_signed(events, caller, [("key_revoke", fields)], "registration"))[0])


@router.post("/actors/{actor_id}/tokens", status_code=201, response_model=TokenOut, summary="Issue an API token")
def issue_token(actor_id: ActorIdPath, caller: CurrentActor, store: StoreDep) -> TokenOut:
    _self_or_admin(caller, actor_id)
    token = store.issue_token(actor_id)
    return TokenOut(token=token, id=sha256_hex(token.encode())[:16])


@router.get(
    "/actors/{actor_id}/tokens",
    response_model=list[TokenInfoOut],
    summary="An actor's tokens, by id (never the tokens)",
)
def list_tokens(actor_id: ActorIdPath, caller: CurrentActor, store: StoreDep) -> list[TokenInfoOut]:
    _self_or_admin(caller, actor_id)
    return [TokenInfoOut(id=t.id, actor_id=t.actor_id, created_at=t.created_at, revoked_at=t.revoked_at)
            for t in store.list_tokens(actor_id)]  # fmt: skip


@router.post("/tokens/{token_id}/revoke", status_code=204, summary="Revoke a token by its id")
def revoke_token_by_id(token_id: TokenIdPath, caller: CurrentActor, store: StoreDep) -> None:
    """By an admin, or the token's own actor. Other workers may accept the token for up to 5 seconds more (each
    remembers a token it has checked that long)."""
    try:
        found = store.token_by_id(token_id)
    except NotFoundError as exc:
        raise ProblemError(404, str(exc), "not-found") from exc
    _self_or_admin(caller, found.actor_id)
    store.revoke_token_id(token_id)


@router.post("/tokens/revoke", status_code=204, summary="Revoke the token this request is sent with")
def revoke_token(request: Request, caller: CurrentActor, store: StoreDep) -> None:
    token = bearer_token(request.headers["authorization"])
    assert token is not None  # current_actor accepted it
    store.revoke_token(token)
    request.app.state.token_cache.forget(token)
