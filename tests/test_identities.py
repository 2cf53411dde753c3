"""Registrations as log entries (issue: identities in the log): the pure registry.

Who may register actors and bind or revoke keys, and from which log index a key may sign, decided from the
registrations alone: the operator's bootstrap signed by the log key, admins, and an actor's own key rotation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from ledger.canonical import canonical_json
from ledger.errors import RuleError, ValidationError
from ledger.events import parse_time
from ledger.hashing import b64encode
from ledger.identities import (
    LOG_ACTOR,
    IdentityType,
    Registry,
    possession_message,
    registration,
    validate_registration,
)
from ledger.signing import (
    generate_private_key,
    key_id_for,
    load_public_key,
    public_key_bytes,
    sign_raw,
    sign_statement,
    verify_statement,
)

SIGNED_AT = "2026-11-29T10:00:00Z"


@dataclass
class Signer:
    actor: str
    key: Any

    @property
    def key_id(self) -> str:
        return key_id_for(public_key_bytes(self.key))


class Log:
    """Registrations applied in order, each checked as a server (or the verifier) would: rules and signature."""

    def __init__(self) -> None:
        self.log_key = generate_private_key()
        raw = public_key_bytes(self.log_key)
        self.operator = Signer(LOG_ACTOR, self.log_key)
        self.registry = Registry(key_id_for(raw), load_public_key(raw))
        self.index = 0

    def record(self, signer: Signer, kind: IdentityType, concerned: str, data: dict[str, Any]) -> int:
        statement = registration(kind, concerned, signer.actor, signer.key_id, SIGNED_AT, data)
        signature = sign_statement(signer.key, canonical_json(statement))
        return self.record_signed(statement, signature)

    def record_signed(self, statement: dict[str, Any], signature: bytes) -> int:
        parsed, data = validate_registration(statement)
        index = self.index
        public_key, _actor = self.registry.signer_key(parsed, index)
        if not verify_statement(public_key, signature, canonical_json(statement)):
            raise RuleError("signature does not verify", "unauthorized")
        self.registry.check(index, parsed, data)
        self.registry.apply(index, parsed, data, parse_time(SIGNED_AT))
        self.index += 1
        return index

    def actor(self, signer: Signer, actor_id: str, role: str, name: str | None = None) -> int:
        return self.record(
            signer, IdentityType.ACTOR, actor_id, {"id": actor_id, "name": name or actor_id, "role": role}
        )

    def bind(self, signer: Signer, actor_id: str, key: Any, *, possession: bool | str = False) -> int:
        raw = public_key_bytes(key)
        data: dict[str, Any] = {"actor": actor_id, "key_id": key_id_for(raw), "public_key": b64encode(raw)}
        statement = registration(IdentityType.KEY_ADD, actor_id, signer.actor, signer.key_id, SIGNED_AT, data)
        if possession is True:
            data["possession"] = b64encode(sign_raw(key, possession_message(statement)))
        elif isinstance(possession, str):
            data["possession"] = possession
        return self.record_signed(statement, sign_statement(signer.key, canonical_json(statement)))

    def revoke(self, signer: Signer, actor_id: str, key_id: str, reason: str = "lost") -> int:
        data = {"actor": actor_id, "key_id": key_id, "reason": reason}
        return self.record(signer, IdentityType.KEY_REVOKE, actor_id, data)

    def member(self, actor_id: str, role: str) -> Signer:
        """An actor and a key of its own, bound by the operator."""
        key = generate_private_key()
        self.actor(self.operator, actor_id, role)
        self.bind(self.operator, actor_id, key)
        return Signer(actor_id, key)


@pytest.fixture
def log() -> Log:
    return Log()


def test_the_operator_bootstraps_and_says_so(log: Log) -> None:
    admin = log.member("act_admin", "admin")
    assert log.registry.actors["act_admin"].operator_attested
    key = log.registry.keys[admin.key_id]
    assert (key.actor_id, key.added_at, key.operator_attested, key.possession) == ("act_admin", 1, True, False)
    # the admin's own registrations are not operator-attested
    log.actor(admin, "act_lab", "inspector", "SGS Test Lab")
    assert not log.registry.actors["act_lab"].operator_attested


def test_a_bound_key_is_loaded_once_for_every_statement_it_signs(log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a key checks its point (45 µs): done per statement, it made a full audit 40% slower and sat on the
    append path. The registry loads each key once, and its copies share what it loaded."""
    import ledger.identities as identities_module

    admin = log.member("act_admin", "admin")
    loads: list[bytes] = []
    real_load = identities_module.load_public_key
    monkeypatch.setattr(identities_module, "load_public_key", lambda raw: loads.append(raw) or real_load(raw))
    statement = {"actor": "act_admin", "key_id": admin.key_id}
    first, _ = log.registry.signer_key(statement, 10)
    copy = log.registry.copy()
    for index in range(11, 1000):
        assert copy.signer_key(statement, index)[0] is first
    assert len(loads) == 1


def test_a_key_signs_only_after_the_entry_that_bound_it_and_before_its_revocation(log: Log) -> None:
    admin = log.member("act_admin", "admin")
    carrier_key = generate_private_key()
    log.actor(admin, "act_ship", "carrier")
    bound_at = log.bind(admin, "act_ship", carrier_key)
    carrier = Signer("act_ship", carrier_key)
    statement = {"actor": "act_ship", "key_id": carrier.key_id}
    for index in (0, bound_at):  # not before, nor at, the entry that binds it
        with pytest.raises(RuleError, match="not bound in the log before index"):
            log.registry.signer_key(statement, index)
    log.registry.signer_key(statement, bound_at + 1)
    log.actor(admin, "act_other", "merchant")  # another entry between the binding and the revocation
    revoked_at = log.revoke(admin, "act_ship", carrier.key_id)
    assert log.registry.signer_key(statement, revoked_at - 1)[1] == log.registry.actors["act_ship"]
    for index in (revoked_at, revoked_at + 5):
        with pytest.raises(RuleError, match=f"revoked at index {revoked_at}"):
            log.registry.signer_key(statement, index)
    with pytest.raises(RuleError, match="already revoked"):
        log.revoke(admin, "act_ship", carrier.key_id)


def test_only_admins_register_actors_and_bind_keys_for_others(log: Log) -> None:
    admin = log.member("act_admin", "admin")
    carrier = log.member("act_ship", "carrier")
    with pytest.raises(RuleError, match="only an admin"):  # a carrier registering a lab of its own
        log.actor(carrier, "act_fake_lab", "inspector", "SGS Test Lab")
    with pytest.raises(RuleError, match="only an admin"):  # nor making itself an admin
        log.actor(carrier, "act_ship", "admin")
    log.actor(admin, "act_other", "merchant")
    with pytest.raises(RuleError, match="only an admin"):  # nor binding a key to another actor
        log.bind(carrier, "act_other", generate_private_key())
    with pytest.raises(RuleError, match="only an admin"):  # nor revoking another's key
        log.revoke(carrier, "act_admin", admin.key_id)
    # its own rotation is its to do: a new key, then the old one revoked with the new
    new_key = generate_private_key()
    log.bind(carrier, "act_ship", new_key, possession=True)
    assert log.registry.keys[key_id_for(public_key_bytes(new_key))].possession
    log.revoke(Signer("act_ship", new_key), "act_ship", carrier.key_id, "rotated")
    # an admin may change a role, and the change is in the log
    log.actor(admin, "act_ship", "merchant", "Red Sea Freight")
    assert log.registry.actors["act_ship"].role == "merchant"
    assert log.registry.actors["act_ship"].registered_at < log.registry.actors["act_ship"].changed_at


def test_a_key_is_bound_once_to_one_actor_and_must_prove_what_it_claims(log: Log) -> None:
    admin = log.member("act_admin", "admin")
    log.actor(admin, "act_a", "merchant")
    log.actor(admin, "act_b", "merchant")
    key = generate_private_key()
    log.bind(admin, "act_a", key)
    for actor_id in ("act_b", "act_a"):
        with pytest.raises(RuleError, match="already bound to 'act_a'"):
            log.bind(admin, actor_id, key)
    forged = b64encode(sign_raw(generate_private_key(), b"anything"))  # a signature, but not the new key's
    with pytest.raises(RuleError, match=r"proof of possession .* does not verify"):
        log.bind(admin, "act_b", generate_private_key(), possession=forged)
    with pytest.raises(RuleError, match="not registered"):
        log.bind(admin, "act_nobody", generate_private_key())
    with pytest.raises(RuleError, match="log key cannot be bound"):
        log.bind(admin, "act_b", log.log_key)
    raw = public_key_bytes(generate_private_key())
    data = {"actor": "act_b", "key_id": "0" * 16, "public_key": b64encode(raw)}
    with pytest.raises(RuleError, match="does not match its public key"):
        log.record(admin, IdentityType.KEY_ADD, "act_b", data)


def test_registrations_are_well_formed(log: Log) -> None:
    admin = log.member("act_admin", "admin")
    with pytest.raises(ValidationError, match="lot"):  # the lot names the actor concerned
        log.record(admin, IdentityType.ACTOR, "act_x", {"id": "act_y", "name": "Y", "role": "merchant"})
    with pytest.raises(ValidationError, match="public key"):
        log.record(
            admin, IdentityType.KEY_ADD, "act_admin", {"actor": "act_admin", "key_id": "0" * 16, "public_key": "AAAA"}
        )
    with pytest.raises(ValidationError, match="role"):
        log.record(admin, IdentityType.ACTOR, "act_x", {"id": "act_x", "name": "X", "role": "owner"})
    statement = registration(
        IdentityType.ACTOR,
        "act_x",
        admin.actor,
        admin.key_id,
        SIGNED_AT,
        {"id": "act_x", "name": "X", "role": "merchant"},
    )
    with pytest.raises(ValidationError, match="sku"):
        validate_registration({**statement, "sku": "COF-1"})


def test_the_log_key_and_nothing_else_speaks_for_the_operator(log: Log) -> None:
    impostor = Signer(LOG_ACTOR, generate_private_key())  # claims to be the log
    with pytest.raises(RuleError, match="is not the log key"):
        log.actor(impostor, "act_admin", "admin")
    # the log key's id with another key's signature: the signature fails
    statement = registration(
        IdentityType.ACTOR,
        "act_x",
        LOG_ACTOR,
        log.operator.key_id,
        SIGNED_AT,
        {"id": "act_x", "name": "X", "role": "admin"},
    )
    with pytest.raises(RuleError, match="signature does not verify"):
        log.record_signed(statement, sign_statement(impostor.key, canonical_json(statement)))
    assert log.registry.actors == {}


# -- the verifier derives the directory from the log -----------------------------------------------------------

LOGGED_AT = "2026-11-29T10:00:01.000000Z"


class LedgerLog:
    """A log written entry by entry as a server would (chains per batch, leaves, checkpoint), for the verifier."""

    def __init__(self) -> None:
        from ledger.note import NoteSigner

        self.log_key = generate_private_key()
        self.note_signer = NoteSigner("chainproof.test/log", self.log_key)
        self.operator = Signer(LOG_ACTOR, self.log_key)
        self.leaves: list[bytes] = []
        self.heads: dict[tuple[str, str], bytes] = {}

    def append(self, signer: Signer, statement: dict[str, Any]) -> int:
        from ledger.entry import build_leaf
        from ledger.hashing import leaf_hash

        statement_bytes = canonical_json(statement)
        batch = (statement["sku"], statement["lot"])
        index = len(self.leaves)
        leaf = build_leaf(
            index, LOGGED_AT, self.heads.get(batch), sign_statement(signer.key, statement_bytes), statement_bytes
        )
        self.leaves.append(leaf)
        self.heads[batch] = leaf_hash(leaf)
        return index

    def register(self, signer: Signer, kind: IdentityType, concerned: str, data: dict[str, Any]) -> int:
        return self.append(signer, registration(kind, concerned, signer.actor, signer.key_id, SIGNED_AT, data))

    def member(self, by: Signer, actor_id: str, role: str, name: str | None = None) -> Signer:
        key = generate_private_key()
        raw = public_key_bytes(key)
        self.register(by, IdentityType.ACTOR, actor_id, {"id": actor_id, "name": name or actor_id, "role": role})
        self.register(
            by,
            IdentityType.KEY_ADD,
            actor_id,
            {"actor": actor_id, "key_id": key_id_for(raw), "public_key": b64encode(raw)},
        )
        return Signer(actor_id, key)

    def event(self, signer: Signer, kind: str, sku: str, lot: str, data: dict[str, Any]) -> int:
        from ledger.events import new_statement

        return self.append(signer, new_statement(kind, sku, lot, signer.actor, signer.key_id, SIGNED_AT, data))

    def verify(self) -> Any:
        from ledger import merkle
        from ledger.hashing import leaf_hash
        from ledger.note import Checkpoint, sign_checkpoint
        from ledger.verify import LogEntry, verify_ledger

        root = merkle.root_of([leaf_hash(leaf) for leaf in self.leaves])
        note = sign_checkpoint(Checkpoint(self.note_signer.name, len(self.leaves), root), self.note_signer)
        return verify_ledger(
            [LogEntry(leaf) for leaf in self.leaves],
            self.note_signer.verifier,
            note,
        )


def test_the_verifier_needs_no_directory_when_the_log_holds_the_registrations() -> None:
    from tests.factory import inspection_data, origin_data, shipment_data

    log = LedgerLog()
    admin = log.member(log.operator, "act_admin", "admin")
    merchant = log.member(admin, "act_shop", "merchant")
    lab = log.member(admin, "act_lab", "inspector", "SGS Test Lab")
    log.event(merchant, "origin", "COF", "1", origin_data())
    log.event(lab, "inspection", "COF", "1", inspection_data())
    log.event(merchant, "shipment", "COF", "1", shipment_data("S1"))
    report = log.verify()  # no directory: everything comes from the log
    assert report.ok, report.problems


def test_a_directory_row_outside_the_log_is_caught() -> None:
    """The finding: a key written straight into the database signed a forged inspection that the full audit
    accepted. The verifier now takes who may sign from the log, and names the entry signed with a key it never
    bound, however genuine the directory it was handed looks."""
    from tests.factory import inspection_data, origin_data

    log = LedgerLog()
    admin = log.member(log.operator, "act_admin", "admin")
    merchant = log.member(admin, "act_shop", "merchant")
    log.event(merchant, "origin", "COF", "1", origin_data())
    rogue = Signer("act_lab", generate_private_key())  # "SGS Test Lab", registered only in the database
    forged = log.event(rogue, "inspection", "COF", "1", inspection_data())
    report = log.verify()
    assert [(p.index, p.code) for p in report.problems] == [(forged, "rule")]
    assert "'act_lab' is not registered in the log" in report.problems[0].message
    assert not report.ok


def test_a_key_cannot_sign_before_the_log_binds_it_and_registrations_follow_the_rules() -> None:
    from tests.factory import origin_data

    log = LedgerLog()
    admin = log.member(log.operator, "act_admin", "admin")
    early_key = generate_private_key()
    early = Signer("act_shop", early_key)
    log.register(admin, IdentityType.ACTOR, "act_shop", {"id": "act_shop", "name": "Shop", "role": "merchant"})
    too_early = log.event(early, "origin", "COF", "1", origin_data())  # its key is bound only afterwards
    raw = public_key_bytes(early_key)
    log.register(
        admin,
        IdentityType.KEY_ADD,
        "act_shop",
        {"actor": "act_shop", "key_id": early.key_id, "public_key": b64encode(raw)},
    )
    later = log.event(early, "origin", "COF", "2", origin_data())  # fine: after the binding
    # a merchant registering a lab of its own: refused by the rules, reported by the verifier
    fake = log.register(
        early, IdentityType.ACTOR, "act_fake", {"id": "act_fake", "name": "SGS Test Lab", "role": "inspector"}
    )
    report = log.verify()
    found = {(p.index, p.code) for p in report.problems}
    assert (too_early, "rule") in found
    assert any(f"is not bound in the log before index {too_early}" in p.message for p in report.problems)
    assert (fake, "rule") in found
    assert not any(p.index == later for p in report.problems)
