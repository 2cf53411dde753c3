"""FastAPI dependencies: the store, the settings and the calling actor."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from api.asgi import bearer_token
from api.problems import ProblemError
from api.settings import Settings
from ledger.events import IDENT_PATTERN, KEY_ID_PATTERN, TEXT_PATTERN, Role
from ledger.rules import Actor
from ledger.storage import LedgerStore


def store_of(request: Request) -> LedgerStore:
    store: LedgerStore = request.app.state.store
    return store


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# `async def` although they do no IO: FastAPI runs a plain `def` dependency on a worker thread, a thread handoff
# per dependency per request, for a mere attribute read. The event routes, the hot path, call `store_of` and
# `settings_of` directly instead: each dependency costs FastAPI about 20 µs per request to resolve.
async def get_store(request: Request) -> LedgerStore:
    return store_of(request)


async def get_settings(request: Request) -> Settings:
    return settings_of(request)


async def current_actor(request: Request) -> Actor:
    token = bearer_token(request.headers.get("authorization", ""))
    if token is None:
        raise ProblemError(401, "send an API token as 'Authorization: Bearer <token>'", "no-token")
    cache: TokenCache = request.app.state.token_cache
    actor = cache.get(token)
    if actor is None:
        actor = await run_in_threadpool(store_of(request).authenticate, token)
        if actor is None:
            raise ProblemError(401, "the API token is unknown or revoked", "bad-token")
        cache.put(token, actor)
    return actor


class TokenCache:
    """Recently authenticated tokens, for `ttl` seconds: a revocation reaches other workers within that time
    (this worker forgets a token at once when it revokes it)."""

    def __init__(self, ttl: float = 5.0, size: int = 10_000) -> None:
        self._ttl = ttl
        self._size = size
        self._entries: dict[str, tuple[float, Actor]] = {}

    def get(self, token: str) -> Actor | None:
        hit = self._entries.get(token)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, token: str, actor: Actor) -> None:
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[token] = (time.monotonic() + self._ttl, actor)

    def forget(self, token: str) -> None:
        self._entries.pop(token, None)


SkuPath = Annotated[str, Path(description="batch SKU", pattern=IDENT_PATTERN)]
LotPath = Annotated[str, Path(description="batch lot", pattern=IDENT_PATTERN)]
ActorIdPath = Annotated[str, Path(description="actor id", min_length=1, max_length=64, pattern=TEXT_PATTERN)]
KeyIdPath = Annotated[str, Path(description="key id (16 hex digits)", pattern=KEY_ID_PATTERN)]
TokenIdPath = Annotated[
    str, Path(description="token id: the first 16 hex digits of its stored hash", pattern=KEY_ID_PATTERN)
]

StoreDep = Annotated[LedgerStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CurrentActor = Annotated[Actor, Depends(current_actor)]


def require_admin(actor: Actor) -> None:
    if actor.role is not Role.ADMIN:
        raise ProblemError(403, f"only admins may do this; you are {actor.role}", "forbidden")
