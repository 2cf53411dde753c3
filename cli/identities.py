"""Registrations signed on the caller's machine: the remote onboarding commands (`actor add --server`,
`key add|rotate|revoke`) sign what they ask the server to log with the caller's own key, as any event is
signed; the token only authorizes the request (ADR 0001 §9)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.client import CliError, ServerClient
from cli.record import load_key
from ledger.canonical import canonical_json
from ledger.hashing import b64encode
from ledger.identities import IdentityType, possession_message, registration
from ledger.signing import Ed25519PrivateKey, key_id_for, public_key_bytes, sign_raw, sign_statement


@dataclass(frozen=True)
class RegistrationSigner:
    """The caller (the token's actor) and the key it signs with."""

    actor: str
    key: Ed25519PrivateKey
    key_id: str

    def event(self, kind: IdentityType, concerned: str, data: dict[str, Any], signed_at: str) -> dict[str, Any]:
        statement = registration(kind, concerned, self.actor, self.key_id, signed_at, data)
        return {"statement": statement, "signature": b64encode(sign_statement(self.key, canonical_json(statement)))}

    def key_add(
        self, actor: str, public_key: bytes, new_key: Ed25519PrivateKey | None, signed_at: str
    ) -> dict[str, Any]:
        """A key_add; with the new key at hand, carrying its proof of possession (its signature over the
        key-possession context and the statement without the proof)."""
        data: dict[str, Any] = {"actor": actor, "key_id": key_id_for(public_key), "public_key": b64encode(public_key)}
        if new_key is not None:
            unproven = registration(IdentityType.KEY_ADD, actor, self.actor, self.key_id, signed_at, data)
            data["possession"] = b64encode(sign_raw(new_key, possession_message(unproven)))
        return self.event(IdentityType.KEY_ADD, actor, data, signed_at)


def registration_signer(client: ServerClient, key_file: Path | None) -> RegistrationSigner:
    """The caller's signer: the token's actor, and the key in `key_file`, which must be one of its keys."""
    if key_file is None:
        raise CliError(
            "this is recorded in the log, signed by you: give your private key with --key FILE (or set CHAINPROOF_KEY)"
        )
    key = load_key(key_file)
    key_id = key_id_for(public_key_bytes(key))
    me = client.get_json("/v1/me")
    keys = {str(k["key_id"]): k for k in me.get("keys", [])}
    if key_id not in keys:
        raise CliError(f"{key_file} holds key {key_id}, which is not one of {me['id']}'s keys ({', '.join(keys)})")
    if keys[key_id].get("revoked_at"):
        raise CliError(f"{key_file} holds key {key_id}, revoked at {keys[key_id]['revoked_at']}")
    return RegistrationSigner(str(me["id"]), key, key_id)


def record_registrations(client: ServerClient, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Append signed registrations, all or nothing; a retry after a lost answer returns the first result."""
    headers = {"Idempotency-Key": f"chainproof-cli-{uuid.uuid4()}"}
    recorded: list[dict[str, Any]] = client.request(
        "POST", "/v1/events/batch", json={"events": events}, headers=headers
    ).json()["recorded"]
    return recorded


def new_key_file(path: Path) -> tuple[bytes, Ed25519PrivateKey]:
    """A new key's public half and the key itself (`--new-key`: the holder is present and proves possession)."""
    key = load_key(path)
    return public_key_bytes(key), key
