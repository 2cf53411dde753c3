"""SLA scorecards: a merchant's delivery figures as a C2SP signed note by the log's key (the key that signs
checkpoints, as certificates are), naming the signed checkpoint they were computed over. Anyone holding the log
(a bundle, or the entries a server serves) recomputes the figures from the entries and compares, figure by figure:
the signature makes a scorecard official, the log makes it checkable without trusting the issuer.

The note's text is

    chainproof sla scorecard v1
    <canonical JSON claims>

(a first line that can never parse as a checkpoint's or a certificate's). Beside the note travels the signed
checkpoint itself, so that a checker can see the log key signed that tree too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.canonical import canonical_json, parse_json
from ledger.errors import EncodingError, LedgerError
from ledger.hashing import b64encode, leaf_hash
from ledger.history import ShipmentFold
from ledger.merkle import CompactRange
from ledger.note import NoteSigner, NoteVerifier, open_checkpoint, open_note, sign_note
from ledger.sla import Filters, Parameters, parse_bound, report

SCORECARD_FORMAT = "chainproof-sla-scorecard/v1"
SCORECARD_HEADER = "chainproof sla scorecard v1"


@dataclass(frozen=True)
class Scorecard:
    note: str  # the signed claims
    checkpoint: str  # the signed checkpoint they are computed over

    def to_json(self) -> dict[str, Any]:
        return {"format": SCORECARD_FORMAT, "note": self.note, "checkpoint": self.checkpoint}

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False).encode("utf-8") + b"\n"

    @classmethod
    def from_bytes(cls, raw: bytes) -> Scorecard:
        try:
            data = parse_json(raw)
        except EncodingError as exc:
            raise EncodingError(f"not a scorecard: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != SCORECARD_FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise EncodingError(f"not a scorecard: format is {found!r}, expected {SCORECARD_FORMAT!r}")
        note, checkpoint = data.get("note"), data.get("checkpoint")
        if not isinstance(note, str) or not isinstance(checkpoint, str):
            raise EncodingError("not a scorecard: it needs the signed note and the signed checkpoint, as text")
        return cls(note, checkpoint)

    @property
    def claims(self) -> dict[str, Any]:
        """The claims as written (unchecked: `verify_scorecard` checks the signature)."""
        return _claims_of(self.note.split("\n\n", 1)[0] + "\n")


def _claims_of(text: str) -> dict[str, Any]:
    header, _, body = text.partition("\n")
    if header != SCORECARD_HEADER:
        raise EncodingError(f"the signed note is not a scorecard (its first line is {header[:60]!r})")
    claims = parse_json(body.rstrip("\n").encode("utf-8"))
    if not isinstance(claims, dict):
        raise EncodingError("the scorecard's claims are not a JSON object")
    return claims


def scorecard_claims(report_body: Mapping[str, Any], merchant: str) -> dict[str, Any]:
    """What a scorecard states: for whom, over which checkpoint, at what moment, by which thresholds, the total
    and the figures per ISO week."""
    return {
        "format": SCORECARD_FORMAT,
        "merchant": merchant,
        "checkpoint": report_body["checkpoint"],
        "as_of": report_body["as_of"],
        "from": report_body["filters"]["from"],
        "to": report_body["filters"]["to"],
        "parameters": report_body["parameters"],
        "total": report_body["total"],
        "weeks": [g for g in report_body["groups"] if g["by"] == "week"],
    }


def issue_scorecard(claims: Mapping[str, Any], checkpoint_note: str, signer: NoteSigner) -> Scorecard:
    text = SCORECARD_HEADER + "\n" + canonical_json(dict(claims)).decode("utf-8") + "\n"
    return Scorecard(sign_note(text, signer), checkpoint_note)


@dataclass
class ScorecardCheck:
    claims: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_scorecard(scorecard: Scorecard, log_key: NoteVerifier, leaves: Iterable[bytes]) -> ScorecardCheck:
    """Check the signatures, then recompute the figures from the log's first `size` leaves (those of the named
    checkpoint, whose root they must give) and name every figure that differs."""
    check = ScorecardCheck()
    try:
        check.claims = claims = _claims_of(open_note(scorecard.note, [log_key]).text)
        signed = open_checkpoint(scorecard.checkpoint, log_key).checkpoint
        size, root = int(claims["checkpoint"]["size"]), str(claims["checkpoint"]["root"])
        parameters = Parameters.from_json(claims["parameters"])
        as_of = parse_bound(str(claims["as_of"]), "as_of")
        filters = Filters(
            merchant=str(claims["merchant"]),
            placed_from=None if claims.get("from") is None else parse_bound(str(claims["from"]), "from"),
            placed_to=None if claims.get("to") is None else parse_bound(str(claims["to"]), "to"),
        )
    except (LedgerError, KeyError, TypeError, ValueError) as exc:
        check.problems.append(f"the scorecard cannot be read or its signature does not verify: {exc}")
        return check
    if (signed.size, b64encode(signed.root_hash)) != (size, root):
        check.problems.append(
            f"the scorecard names tree size {size} root {root}, but its signed checkpoint is size {signed.size} root "
            f"{b64encode(signed.root_hash)}"
        )
        return check
    tree = CompactRange()
    fold = ShipmentFold()
    batch: list[bytes] = []
    for leaf in leaves:
        if tree.size >= size:
            break
        tree.append(leaf_hash(leaf))
        batch.append(leaf)
        if len(batch) >= 5000:
            fold.add_leaves(batch)
            batch = []
    fold.add_leaves(batch)
    if tree.size < size:
        check.problems.append(f"the log given holds {tree.size} entries; the scorecard is over {size}")
        return check
    if b64encode(tree.root()) != root:
        check.problems.append(f"the log given does not have the scorecard's root at tree size {size}: another log")
        return check
    seen = [r for r in (r.seen(size, as_of * 1_000_000 + 999_999) for r in fold.records()) if r is not None]
    recomputed = report(seen, as_of=as_of, filters=filters, group_by=["week"], parameters=parameters)
    check.problems += _differences("total", claims.get("total"), recomputed["total"])
    weeks = {g["key"]: g for g in recomputed["groups"]}
    claimed_weeks = {g.get("key"): g for g in claims.get("weeks", []) if isinstance(g, dict)}
    for week in sorted(weeks.keys() | claimed_weeks.keys(), key=str):
        check.problems += _differences(f"week {week}", claimed_weeks.get(week), weeks.get(week))
    return check


def _differences(where: str, claimed: Any, recomputed: Any, path: str = "") -> list[str]:
    """Each figure that differs, named by where it is (`total: on_time_rate`), with both values."""
    if isinstance(claimed, dict) and isinstance(recomputed, dict):
        found = []
        for key in sorted(claimed.keys() | recomputed.keys()):
            found += _differences(where, claimed.get(key), recomputed.get(key), f"{path}.{key}" if path else key)
        return found
    if claimed != recomputed:  # 1 and 1.0 are one figure: canonical JSON writes a whole-number rate as 1
        name = f"{where}: {path}" if path else where
        return [f"{name} is {json.dumps(claimed)} in the scorecard; the log gives {json.dumps(recomputed)}"]
    return []
