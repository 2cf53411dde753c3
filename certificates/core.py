"""Certificates of authenticity: what one says, how the log signs it, and how anyone checks it offline.

A certificate is a C2SP signed note by the log's own key (the key that signs checkpoints), whose text is

    chainproof certificate v1
    <canonical JSON claims>

The claims name the batch, its product, origin and inspections, every entry of the batch by log index, type and
entry hash, and the checkpoint (tree size and root hash) they are included in. Beside the note travels the
evidence: the signed checkpoint, each entry's leaf and inclusion proof, and the registration entries the signers'
keys come from (each signer's chain, back to the log key, its last entry proven into the checkpoint). Checking a
certificate re-derives the claims from the evidence with the ledger's own batch verifier (`verify_batch`) and
compares, so the signature makes it official and the evidence makes it checkable without trusting the issuer.

A recall revokes a certificate: none is issued for a recalled batch, and an online check (`chainproof certificate
verify --server`) looks for a recall logged after the certificate's checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.bundle import directory_from_json
from ledger.canonical import canonical_json, parse_json
from ledger.errors import EncodingError, LedgerError, RuleError
from ledger.events import DeliveryData, HandoffData, ShipmentCancelData, ShipmentData, format_time
from ledger.hashing import b64decode, b64encode, sha256_hex
from ledger.history import BatchHistory, Recorded, batch_events
from ledger.identities import Registry
from ledger.note import NoteSigner, NoteVerifier, open_checkpoint, open_note, parse_note, sign_note
from ledger.rules import Actor, Directory
from ledger.sla import ShipmentRecord, format_seconds
from ledger.verify import BatchReport, Problem, proven_registry, replay_registrations, verify_batch

CERTIFICATE_FORMAT = "chainproof-certificate/v2"
"""v2: the evidence carries the registration entries its signers' keys come from (each actor's chain, its last
entry proven into the checkpoint), not a directory. v1 certificates (a directory as evidence) still verify."""
_V1_FORMAT = "chainproof-certificate/v1"
CERTIFICATE_HEADER = "chainproof certificate v1"
"""First line of the signed note text: it can never parse as a checkpoint (whose second line is a tree size),
so a certificate signature is never mistaken for a checkpoint signature, nor the other way round."""


class CertificateRefusedError(RuleError):
    """The batch cannot be certified (recalled, or it does not verify): a conflict with its state."""


CLAIMS_VERSION = 2
"""v2 adds the batch's journey and its shipments' delivery record, the platform's name and the verify page's
address; v1 claims (batch, origin, inspections, entries) are still checked as they were signed."""


def certified_facts(report: BatchReport, actors: Mapping[str, Actor], version: int = CLAIMS_VERSION) -> dict[str, Any]:
    """The claims a certificate makes about a batch, read from its verified entries through the batch's typed
    history (issuer and checker alike), as claims of `version` state them."""

    def who(actor_id: str) -> dict[str, str]:
        actor = actors.get(actor_id)
        return {"id": actor_id, "name": actor.name if actor else actor_id}

    state = report.state
    history = BatchHistory(state.sku if state else "", state.lot if state else "")
    for parsed, statement, data in batch_events(report.entries):
        history.add(parsed.index, parsed.logged_at, statement, data)
    origin: dict[str, Any] | None = None
    if history.origin is not None:
        made = history.origin.data
        origin = {
            "product": made.product,
            "producer": who(history.owner or history.origin.actor),
            "country": made.country,
            "region": made.region,
            "facility": made.facility,
            "produced_at": made.produced_at,
            "quantity": made.quantity,
            "unit": made.unit,
        }
    inspections = [
        {
            "inspector": who(recorded.actor),
            "standard": recorded.data.standard,
            "result": recorded.data.result,
            "inspected_at": recorded.data.inspected_at,
            "report_sha256": recorded.data.report.sha256,
        }
        for recorded in history.inspections
    ]
    entries = [
        {"index": parsed.index, "type": parsed.statement.get("type"), "hash": b64encode(parsed.hash)}
        for parsed in report.entries
    ]
    facts: dict[str, Any] = {
        "batch": {
            "sku": state.sku if state else None,
            "lot": state.lot if state else None,
            "gtin": state.gtin if state else None,
        },
        "origin": origin,
        "inspections": inspections,
        "entries": entries,
    }
    if version >= 2:
        facts["journey"] = [_step(recorded, who) for recorded in history.journey]
        facts["shipments"] = [_delivery_record(record) for record in history.shipments.values()]
    return facts


def _step(recorded: Recorded[Any], who: Callable[[str], dict[str, str]]) -> dict[str, Any]:
    """One movement of the batch as a certificate states it: when, where, between whom, in what condition."""
    data = recorded.data
    step: dict[str, Any] = {"index": recorded.index}
    if isinstance(data, ShipmentData):
        return step | {
            "type": "shipment",
            "at": data.placed_at,
            "shipment": data.shipment_id,
            "destination": data.destination,
            "promised_by": data.promised_by,
        }
    if isinstance(data, HandoffData):
        condition = data.condition
        return step | {
            "type": "handoff",
            "at": data.at,
            "shipment": data.shipment_id,
            "from": who(data.from_actor),
            "to": who(data.to),
            "place": data.place,
            "temperature_c": condition.temperature_c if condition else None,
            "humidity_pct": condition.humidity_pct if condition else None,
        }
    if isinstance(data, DeliveryData):
        return step | {
            "type": "delivery",
            "at": data.delivered_at,
            "shipment": data.shipment_id,
            "by": who(recorded.actor),
            "place": data.place,
            "quantity": data.quantity,
        }
    if isinstance(data, ShipmentCancelData):
        return step | {"type": "shipment_cancel", "at": data.cancelled_at, "shipment": data.shipment_id}
    raise TypeError(f"not a movement of the batch: {type(data).__name__}")


def _delivery_record(record: ShipmentRecord) -> dict[str, Any]:
    """A shipment's promise against what happened to it (its SLA status is not claimed: it depends on the lane's
    other shipments and on the moment it is judged)."""
    return {
        "id": record.shipment_id,
        "destination": record.destination,
        "placed_at": format_seconds(record.placed_at),
        "promised_by": format_seconds(record.promised_by),
        "quantity": record.quantity,
        "unit": record.unit,
        "delivered_at": format_seconds(record.delivery.at) if record.delivery else None,
        "delivered_quantity": record.delivery.quantity if record.delivery else None,
        "cancelled_at": format_seconds(record.cancel.at) if record.cancel else None,
    }


@dataclass
class Certificate:
    """A certificate with its evidence: what `certificate.json` holds and a certificate PDF carries inside."""

    note: str
    checkpoint: str
    log_key: str
    entries: list[dict[str, Any]]
    registrations: list[dict[str, Any]] | None = None  # v2: [{index, leaf, proof?}] of the signers' chains
    actors: list[dict[str, Any]] | None = None  # v1: the directory, as certificates issued before v2 carry it

    def to_json(self) -> dict[str, Any]:
        evidence = {"actors": self.actors} if self.registrations is None else {"registrations": self.registrations}
        return {
            "format": _V1_FORMAT if self.registrations is None else CERTIFICATE_FORMAT,
            "certificate": self.note,
            "checkpoint": self.checkpoint,
            "log_key": self.log_key,
            "entries": self.entries,
            **evidence,
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), indent=1, ensure_ascii=False).encode("utf-8") + b"\n"

    def claims(self) -> dict[str, Any]:
        """The signed claims, read without checking the signature (for display; `verify_certificate` checks)."""
        return _claims_of(parse_note(self.note).text)

    @property
    def serial(self) -> str:
        """The certificate number: derived from the signed note, so anyone can recompute it."""
        return certificate_serial(self.note)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Certificate:
        try:
            data = parse_json(raw)
        except EncodingError as exc:
            raise EncodingError(f"not a certificate file ({exc})") from exc
        if not isinstance(data, dict) or data.get("format") not in (CERTIFICATE_FORMAT, _V1_FORMAT):
            raise EncodingError(f"not a certificate file (format is not {CERTIFICATE_FORMAT} or {_V1_FORMAT})")
        v1 = data["format"] == _V1_FORMAT
        try:
            certificate = cls(
                note=str(data["certificate"]),
                checkpoint=str(data["checkpoint"]),
                log_key=str(data["log_key"]),
                entries=list(data["entries"]),
                registrations=None if v1 else list(data["registrations"]),
                actors=list(data["actors"]) if v1 else None,
            )
        except (KeyError, TypeError) as exc:
            raise EncodingError(f"certificate file is missing {exc}") from exc
        return certificate


def certificate_serial(note: str) -> str:
    digest = sha256_hex(note.encode("utf-8"))[:16].upper()
    return "-".join(digest[i : i + 4] for i in range(0, 16, 4))


def _listed(index: int, leaf: bytes, proofs: Mapping[int, Sequence[bytes]]) -> dict[str, Any]:
    # a proof where the next entry does not vouch for this one by its hash link (a chain's last, at least)
    proof = proofs.get(index)
    return {"index": index, "leaf": b64encode(leaf), **({"proof": [b64encode(h) for h in proof]} if proof else {})}


def issue_certificate(
    report: BatchReport,
    entries: Sequence[tuple[int, bytes]],
    proofs: Mapping[int, Sequence[bytes]],
    actors: Mapping[str, Actor],
    registrations: Sequence[tuple[int, bytes]],
    checkpoint_note: str,
    signer: NoteSigner,
    *,
    page_url: str,
    issued_at: datetime,
    platform: str,
    verify_url: str,
) -> Certificate:
    """Sign a certificate for a batch `verify_batch` has just checked, with the registrations its signers' keys
    come from as evidence (`proofs` covers the entries and each registration chain's last entry). Refuses a
    recalled or failing batch."""
    state = report.state
    if not report.ok or state is None or report.checkpoint is None:
        reasons = "; ".join(str(p) for p in report.problems[:3]) or "no verified entries"
        raise CertificateRefusedError(f"the batch does not verify, so it cannot be certified: {reasons}", "conflict")
    if state.recalled_at is not None:
        raise CertificateRefusedError(
            f"batch {state.sku}/{state.lot} was recalled on {state.recalled_at} ({state.recall_reason}): "
            "its certificates are revoked and no new one is issued",
            "conflict",
        )
    checkpoint = report.checkpoint.checkpoint
    claims = {
        "v": CLAIMS_VERSION,
        "issuer": signer.name,
        "platform": platform,
        "issued_at": format_time(issued_at),
        "page_url": page_url,
        "verify_url": verify_url,
        **certified_facts(report, actors),
        "checkpoint": {"size": checkpoint.size, "root": b64encode(checkpoint.root_hash)},
    }
    text = f"{CERTIFICATE_HEADER}\n{canonical_json(claims).decode('utf-8')}\n"
    return Certificate(
        note=sign_note(text, signer),
        checkpoint=checkpoint_note,
        log_key=str(signer.verifier),
        entries=[_listed(index, leaf, proofs) for index, leaf in entries],
        registrations=[_listed(index, leaf, proofs) for index, leaf in registrations],
    )


@dataclass
class CertificateReport:
    """What checking a certificate found. `claims` is set once the signature verified."""

    problems: list[Problem] = field(default_factory=list)
    claims: dict[str, Any] | None = None
    serial: str | None = None
    batch: BatchReport | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and self.claims is not None


def _claims_of(note_text: str) -> dict[str, Any]:
    header, _, rest = note_text.partition("\n")
    if header != CERTIFICATE_HEADER:
        raise EncodingError(f"signed note is not a certificate (first line {header[:60]!r})")
    body = rest.removesuffix("\n")
    if "\n" in body:
        raise EncodingError("certificate text has extra lines")
    claims = parse_json(body.encode("utf-8"))
    if not isinstance(claims, dict) or claims.get("v") not in (1, CLAIMS_VERSION):
        raise EncodingError(f"certificate claims are not a version 1 or {CLAIMS_VERSION} object")
    if canonical_json(claims).decode("utf-8") != body:
        raise EncodingError("certificate claims are not in canonical form")
    return claims


def verify_certificate(certificate: Certificate, log_key: NoteVerifier) -> CertificateReport:
    """Check a certificate offline against a trusted log key: the signature, then every claim against the
    evidence. Reports every problem found; `ok` only if there are none."""
    report = CertificateReport(serial=certificate.serial)
    problems = report.problems
    try:
        claims = report.claims = _claims_of(open_note(certificate.note, [log_key]).text)
    except LedgerError as exc:
        problems.append(Problem(None, "certificate-signature", f"certificate does not verify with log key: {exc}"))
        return report
    try:
        batch = claims["batch"]
        sku, lot = str(batch["sku"]), str(batch["lot"])
        entries, proofs = _evidence(certificate.entries)
        registrations, registration_proofs = _evidence(certificate.registrations or [])
        directory = directory_from_json(certificate.actors) if certificate.registrations is None else None
    except (LedgerError, KeyError, TypeError, ValueError) as exc:
        problems.append(Problem(None, "malformed", f"certificate evidence cannot be read: {exc!r}"))
        return report
    signers: Directory | Registry
    if directory is not None:  # v1: the directory the log vouched for when it signed the certificate
        signers, actors = directory, directory.actors
    else:  # v2: who may sign, from registration entries proven into the certificate's checkpoint
        try:
            signed = open_checkpoint(certificate.checkpoint, log_key)
        except LedgerError:  # verify_batch reports it
            registry = replay_registrations(registrations, log_key)[0]
        else:
            registry, found = proven_registry(registrations, registration_proofs, signed, log_key)
            problems.extend(found)
        signers, actors = registry, registry.rule_actors
    checked = report.batch = verify_batch(sku, lot, entries, proofs, signers, log_key, certificate.checkpoint)
    problems.extend(checked.problems)
    if checked.checkpoint is not None:
        cp = checked.checkpoint.checkpoint
        if claims.get("checkpoint") != {"size": cp.size, "root": b64encode(cp.root_hash)}:
            problems.append(Problem(None, "checkpoint", "the certificate names another checkpoint than its evidence"))
    facts = certified_facts(checked, actors, version=int(claims["v"]))
    for name, value in facts.items():
        if claims.get(name) != value:
            problems.append(Problem(None, "claims", f"the certificate's {name} does not match its verified entries"))
    if checked.state is not None and checked.state.recalled_at is not None:
        problems.append(Problem(None, "recalled", f"the batch was recalled on {checked.state.recalled_at}"))
    return report


def _evidence(listed: list[dict[str, Any]]) -> tuple[list[tuple[int, bytes]], dict[int, list[bytes]]]:
    """(index, leaf) pairs and their proofs, from the certificate's JSON."""
    pairs = [(int(e["index"]), b64decode(e["leaf"], what="leaf")) for e in listed]
    proofs = {
        int(e["index"]): [b64decode(h, what="proof hash", size=32) for h in e["proof"]] for e in listed if "proof" in e
    }
    return pairs, proofs


__all__ = [
    "CERTIFICATE_FORMAT",
    "CLAIMS_VERSION",
    "Certificate",
    "CertificateRefusedError",
    "CertificateReport",
    "certificate_serial",
    "certified_facts",
    "issue_certificate",
    "verify_certificate",
]
