"""Who may sign, as the database holds it: registration entries in the log (the truth) and their projection in
`actors` / `actor_keys` / `key_revocations` (for token ownership and listings; never for deciding who signs).

The store keeps the registry in memory and advances it from the log's `_identity` entries; the projection is
written in the same transaction as the registrations it shows, and `verify --db` compares it with the log, so a
row written outside the log (an attacker with database access) is named, and ignored everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import Connection

from ledger.canonical import canonical_json
from ledger.events import Role, format_time, parse_time
from ledger.hashing import b64decode, b64encode
from ledger.identities import (
    IDENTITY_SKU,
    LOG_ACTOR,
    ActorData,
    IdentityStatement,
    IdentityType,
    KeyAddData,
    KeyRevokeData,
    Registry,
    registration,
)
from ledger.note import NoteSigner
from ledger.rules import Actor, ActorKey, Directory
from ledger.signing import key_id_for, public_key_bytes, sign_statement
from ledger.storage.schema import actor_keys, actors, key_revocations

_REGISTRATIONS_FROM = "SELECT idx, leaf FROM entries WHERE sku = :sku AND idx >= :start AND idx < :end ORDER BY idx"
_CHAINS_OF = text(
    "SELECT idx, lot, leaf FROM entries WHERE sku = :sku AND lot IN :actors AND idx < :before ORDER BY idx"
).bindparams(bindparam("actors", expanding=True))
_ANY_REGISTRATION = "SELECT 1 FROM entries WHERE sku = :sku LIMIT 1"
_UPSERT_ACTOR = (
    "INSERT INTO actors (id, name, role, created_at) VALUES (:id, :name, :role, :at) "
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role"
)


@dataclass(frozen=True, slots=True)
class LoggedRegistration:
    """A registration as an append logs it: what the projection rows are written from."""

    index: int
    statement: IdentityStatement
    data: BaseModel
    logged_at: str


def read_registrations(conn: Connection, start: int, end: int) -> list[tuple[int, bytes]]:
    """(index, leaf) of the registrations logged at indices [start, end)."""
    rows = conn.execute(text(_REGISTRATIONS_FROM), {"sku": IDENTITY_SKU, "start": start, "end": end})
    return [(int(row[0]), bytes(row[1])) for row in rows]


def read_registration_chains(
    conn: Connection, actors: Sequence[str], before: int
) -> dict[str, list[tuple[int, bytes]]]:
    """The registrations concerning each of these actors (each actor's chain), below index `before`."""
    chains: dict[str, list[tuple[int, bytes]]] = {actor: [] for actor in actors}
    if actors:
        rows = conn.execute(_CHAINS_OF, {"sku": IDENTITY_SKU, "actors": list(actors), "before": before})
        for index, actor, leaf in rows:
            chains[str(actor)].append((int(index), bytes(leaf)))
    return chains


def has_registrations(conn: Connection) -> bool:
    return conn.execute(text(_ANY_REGISTRATION), {"sku": IDENTITY_SKU}).first() is not None


def write_projection(conn: Connection, logged: Sequence[LoggedRegistration]) -> None:
    """The projection rows of registrations being appended (same transaction)."""
    for item in logged:
        data = item.data
        if isinstance(data, ActorData):
            values = {"id": data.id, "name": data.name, "role": data.role, "at": item.logged_at}
            conn.execute(text(_UPSERT_ACTOR), values)
        elif isinstance(data, KeyAddData):
            # a migrated key's row is there already (the old directory's): kept as is, and compared by verify --db
            conn.execute(
                text(
                    "INSERT INTO actor_keys (key_id, actor_id, public_key, valid_from) VALUES (:k, :a, :p, :at) "
                    "ON CONFLICT (key_id) DO NOTHING"
                ),
                {
                    "k": data.key_id,
                    "a": data.actor,
                    "p": _raw(data.public_key),
                    "at": data.valid_from or item.logged_at,
                },
            )
        elif isinstance(data, KeyRevokeData):
            conn.execute(
                text(
                    "INSERT INTO key_revocations (key_id, revoked_at, reason) VALUES (:k, :at, :r) "
                    "ON CONFLICT (key_id) DO NOTHING"
                ),
                {"k": data.key_id, "at": data.revoked_at or item.logged_at, "r": data.reason or ""},
            )


def _raw(public_key_b64: str) -> bytes:
    return b64decode(public_key_b64, what="public key")


def stored_directory(conn: Connection) -> Directory:
    """The projection tables as they are (for comparing with the log, and for migrating an old ledger)."""

    key_query = select(actor_keys, key_revocations.c.revoked_at).outerjoin(
        key_revocations, key_revocations.c.key_id == actor_keys.c.key_id
    )
    keys = {
        row.key_id: ActorKey(
            row.key_id,
            row.actor_id,
            bytes(row.public_key),
            parse_time(row.valid_from),
            None if row.revoked_at is None else parse_time(row.revoked_at),
        )
        for row in conn.execute(key_query)
    }
    found = {row.id: Actor(row.id, row.name, Role(row.role)) for row in conn.execute(select(actors))}
    return Directory(found, keys)


def projection_differences(stored: Directory, registry: Registry) -> list[str]:
    """Where the projection tables and the log's registrations disagree: each a sentence naming the row. A row
    the log does not hold is a row written outside the log; the server ignores it."""
    problems = []
    for actor_id, actor in sorted(stored.actors.items()):
        logged = registry.rule_actors.get(actor_id)
        if logged is None:
            problems.append(f"actor row {actor_id!r} ({actor.name}, {actor.role}) is not registered in the log")
        elif logged != actor:
            problems.append(
                f"actor row {actor_id!r} says {actor.name!r}, {actor.role}; the log says {logged.name!r}, {logged.role}"
            )
    for actor_id in sorted(registry.actors.keys() - stored.actors.keys()):
        problems.append(f"actor {actor_id!r} is registered in the log but has no row")
    for key_id, key in sorted(stored.keys.items()):
        bound = registry.keys.get(key_id)
        if bound is None:
            problems.append(f"key row {key_id} (of {key.actor_id!r}) is not bound in the log")
            continue
        expected = bound.as_actor_key()
        if key.actor_id != expected.actor_id:
            problems.append(f"key row {key_id} names {key.actor_id!r}; the log binds it to {expected.actor_id!r}")
        if key.public_key != expected.public_key:
            problems.append(f"key row {key_id} holds another public key than the one the log binds")
        if key.valid_from != expected.valid_from:
            problems.append(
                f"key row {key_id} is valid from {format_time(key.valid_from)}; the log says "
                f"{format_time(expected.valid_from)}"
            )
        if key.revoked_at != expected.revoked_at:
            problems.append(
                f"key {key_id} is revoked at {_when(expected.revoked_at)} in the log, but at "
                f"{_when(key.revoked_at)} in its rows"
            )
    for key_id in sorted(registry.keys.keys() - stored.keys.keys()):
        problems.append(f"key {key_id} is bound in the log but has no row")
    return problems


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else format_time(moment)


Attested = tuple[IdentityType, str, dict[str, Any]]
"""A registration the log key is to sign: its type, the actor concerned, its data."""


def signed_by_log(
    signer: NoteSigner, attested: Iterable[Attested], signed_at: str
) -> list[tuple[dict[str, Any], bytes]]:
    """Operator-attested registrations: statements of actor `_log`, signed by the log key."""
    log_key = key_id_for(public_key_bytes(signer.private_key))
    statements = [
        registration(kind, concerned, LOG_ACTOR, log_key, signed_at, data) for kind, concerned, data in attested
    ]
    return [(s, sign_statement(signer.private_key, canonical_json(s))) for s in statements]


def migration_registrations(directory: Directory) -> list[Attested]:
    """An old directory as registrations (see ledger.identities, "Migration"): every actor, then every key with
    its old `valid_from`, then every revocation with its old time."""
    attested: list[Attested] = [
        (IdentityType.ACTOR, actor.id, {"id": actor.id, "name": actor.name, "role": actor.role.value})
        for actor in sorted(directory.actors.values(), key=lambda a: a.id)
    ]
    keys = sorted(directory.keys.values(), key=lambda k: (k.valid_from, k.key_id))
    for key in keys:
        data = {
            "actor": key.actor_id,
            "key_id": key.key_id,
            "public_key": b64encode(key.public_key),
            "valid_from": format_time(key.valid_from),
        }
        attested.append((IdentityType.KEY_ADD, key.actor_id, data))
    for key in keys:
        if key.revoked_at is not None:
            data = {"actor": key.actor_id, "key_id": key.key_id, "revoked_at": format_time(key.revoked_at)}
            attested.append((IdentityType.KEY_REVOKE, key.actor_id, data))
    return attested
