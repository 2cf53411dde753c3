"""FastAPI dependencies: the store, the settings and the calling actor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.problems import ProblemError
from api.settings import Settings
from ledger.events import Role
from ledger.rules import Actor
from ledger.storage import LedgerStore


def get_store(request: Request) -> LedgerStore:
    store: LedgerStore = request.app.state.store
    return store


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def current_actor(request: Request, store: Annotated[LedgerStore, Depends(get_store)]) -> Actor:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProblemError(401, "send an API token as 'Authorization: Bearer <token>'", "no-token")
    actor = store.authenticate(token.strip())
    if actor is None:
        raise ProblemError(401, "the API token is unknown or revoked", "bad-token")
    return actor


StoreDep = Annotated[LedgerStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CurrentActor = Annotated[Actor, Depends(current_actor)]


def require_admin(actor: Actor) -> None:
    if actor.role is not Role.ADMIN:
        raise ProblemError(403, f"only admins may do this; you are {actor.role}", "forbidden")
