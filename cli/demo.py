"""A realistic demo ledger: merchants, inspectors and carriers; batches with origin, inspections and journeys;
one recalled batch; shipments delivered on time, delivered late and at risk of missing their promise."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ledger.canonical import canonical_json
from ledger.events import Role, format_time, new_statement
from ledger.hashing import sha256_hex
from ledger.signing import Ed25519PrivateKey, generate_private_key, public_key_bytes, sign_statement, write_private_key
from ledger.storage import LedgerStore, Submission

DEMO_PAGE = "/01/04006381333931/10/L2611-A?shipment=SO-L2611-A"
DEMO_CERTIFICATE = "/v1/batches/COF-YIRG-250/L2611-A/certificate.pdf"
"""The demo's showcase: a verified coffee lot, opened from its (on-time) shipment."""


class _Signer:
    def __init__(
        self, store: LedgerStore, name: str, role: Role, key_dir: Path, registered: datetime, signed_at: datetime
    ) -> None:
        self.signed_at = signed_at  # the demo signs when it records, as a client does; events keep their own times
        self.private_key: Ed25519PrivateKey = generate_private_key()
        self.actor, self.key = store.add_actor(name, role, public_key_bytes(self.private_key), now=registered)
        key_dir.mkdir(parents=True, exist_ok=True)
        write_private_key(key_dir / f"{self.actor.id}.pem", self.private_key)
        # and a token, so that a newcomer can go on recording as this actor (mode 0600, like the key)
        fd = os.open(key_dir / f"{self.actor.id}.token", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(store.issue_token(self.actor.id, now=registered) + "\n")

    @property
    def id(self) -> str:
        return self.actor.id

    def sign(self, kind: str, sku: str, lot: str, data: dict[str, Any]) -> Submission:
        statement = new_statement(kind, sku, lot, self.actor.id, self.key.key_id, format_time(self.signed_at), data)
        return Submission(statement, sign_statement(self.private_key, canonical_json(statement)))


def _t(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def seed_demo(store: LedgerStore, key_dir: Path, now: datetime | None = None) -> dict[str, str]:
    """Fill the store with the demo; returns product page paths worth showing, by what they show."""
    now = now or datetime.now(UTC)
    day = timedelta(days=1)
    registered = now - 60 * day
    coffee = _Signer(store, "Sidama Highlands Coffee", Role.MERCHANT, key_dir, registered, now)
    olive = _Signer(store, "Kalamata Groves", Role.MERCHANT, key_dir, registered, now)
    inspector = _Signer(store, "Bureau Veritas Agri", Role.INSPECTOR, key_dir, registered, now)
    lab = _Signer(store, "Eurofins Food Lab", Role.INSPECTOR, key_dir, registered, now)
    sea = _Signer(store, "Red Sea Freight", Role.CARRIER, key_dir, registered, now)
    road = _Signer(store, "Hamburg Last Mile", Role.CARRIER, key_dir, registered, now)
    cold = _Signer(store, "Alpine Cold Chain", Role.CARRIER, key_dir, registered, now)
    _Signer(store, "Chainproof Operations", Role.ADMIN, key_dir, registered, now)
    _Signer(store, "Audit Partners LLP", Role.AUDITOR, key_dir, registered, now)

    def journey(
        merchant: _Signer,
        sku: str,
        lot: str,
        product: str,
        country: str,
        gtin: str,
        start: datetime,
        legs: list[tuple[_Signer, str, float]],
        promise_days: float,
        delivered_after: float | None,
        inspectors: list[_Signer],
    ) -> list[Submission]:
        subs = [
            merchant.sign(
                "origin",
                sku,
                lot,
                {
                    "product": product,
                    "country": country,
                    "region": "Highlands",
                    "facility": "Station 4",
                    "produced_at": _t(start),
                    "quantity": 1200,
                    "unit": "kg",
                    "gtin": gtin,
                },
            ),
        ]
        for n, who in enumerate(inspectors):
            at = start + day * (1 + n * 0.5)
            report = f"{who.actor.name} report {sku} {lot} {n}".encode()
            subs.append(
                who.sign(
                    "inspection",
                    sku,
                    lot,
                    {
                        "standard": "ISO 22000" if n == 0 else "EU 2023/915 contaminants",
                        "result": "pass",
                        "inspected_at": _t(at),
                        "report": {"sha256": sha256_hex(report), "media_type": "application/pdf", "size": 48211},
                    },
                )
            )
        placed = start + 2 * day
        subs.append(
            merchant.sign(
                "shipment",
                sku,
                lot,
                {
                    "shipment_id": f"SO-{lot}",
                    "destination": "DE-HH",
                    "placed_at": _t(placed),
                    "promised_by": _t(placed + promise_days * day),
                },
            )
        )
        holder, at = merchant, placed
        for carrier, place, temperature in legs:
            at += day
            subs.append(
                holder.sign(
                    "handoff",
                    sku,
                    lot,
                    {
                        "from": holder.id,
                        "to": carrier.id,
                        "place": place,
                        "at": _t(at),
                        "shipment_id": f"SO-{lot}",
                        "condition": {"temperature_c": temperature},
                    },
                )
            )
            holder = carrier
        if delivered_after is not None:
            done = placed + delivered_after * day
            subs.append(
                holder.sign(
                    "delivery",
                    sku,
                    lot,
                    {
                        "shipment_id": f"SO-{lot}",
                        "delivered_at": _t(done),
                        "place": "Hamburg, DE",
                    },
                )
            )
        return subs

    legs = [(sea, "Djibouti port, DJ", 18.5), (road, "Hamburg port, DE", 7.0)]
    cold_legs = [(cold, "Piraeus, GR", 4.0), (road, "Munich, DE", 5.5)]
    events: list[Submission] = []
    events += journey(
        coffee,
        "COF-YIRG-250",
        "L2611-A",
        "Yirgacheffe green coffee",
        "ET",
        "4006381333931",
        now - 20 * day,
        legs,
        8,
        6,
        [inspector, lab],
    )  # on time
    events += journey(
        coffee,
        "COF-YIRG-250",
        "L2611-B",
        "Yirgacheffe green coffee",
        "ET",
        "4006381333931",
        now - 18 * day,
        legs,
        5,
        7.5,
        [inspector],
    )  # late
    events += journey(
        olive,
        "OIL-KAL-500",
        "K-0917",
        "Kalamata extra virgin olive oil",
        "GR",
        "5012345678900",
        now - 6 * day,
        cold_legs,
        4.5,
        None,
        [lab],
    )  # at risk: promised soon, not delivered
    recalled = journey(
        olive,
        "OIL-KAL-500",
        "K-0903",
        "Kalamata extra virgin olive oil",
        "GR",
        "5012345678900",
        now - 15 * day,
        cold_legs,
        6,
        5,
        [lab],
    )
    events += recalled
    events.append(
        olive.sign(
            "recall",
            "OIL-KAL-500",
            "K-0903",
            {
                "reason": "Mineral oil hydrocarbons above the EU limit in a retained sample",
            },
        )
    )
    store.append(events, now=now)
    return {
        "verified": DEMO_PAGE,
        "late delivery": "/01/04006381333931/10/L2611-B?shipment=SO-L2611-B",
        "at risk": "/01/05012345678900/10/K-0917?shipment=SO-K-0917",
        "recalled": "/01/05012345678900/10/K-0903",
    }
