"""GS1 EPCIS 2.0 speed (issue: EPCIS): export events/s, the CBV 2.0 event-hash rate, and import events/s (the
plan alone, and the whole `chainproof epcis import` against a running server, start-up included), each also as a
ratio to this run's single-core Ed25519 verify rate (the machine's reference).

    python bench/epcis_bench.py [--events 5000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.pages.view import batch_view
from bench.ledger_bench import raw_verify_rates
from bench.workload import chunks
from ledger.epcis.event_hash import Prefixes, event_hash
from ledger.epcis.export import CONTEXT, Places, batch_document, epcis_document
from ledger.epcis.importer import Ledger, plan_import
from ledger.epcis.schema_check import schema_problems
from ledger.events import EventType
from ledger.signing import private_key_pem, public_key_bytes
from tests.factory import make_world
from tests.servers import start_server

CHAINPROOF = str(Path(sys.executable).parent / "chainproof")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000, help="events to export and import (10 per batch)")
    args = parser.parse_args()
    reference, _sodium = raw_verify_rates()
    print(f"reference: {reference:,.0f} Ed25519 verifies/s (single core); rates below also as events per verify")

    def report(what: str, count: int, seconds: float) -> None:
        rate = count / seconds
        print(f"{what:<44} {rate:>10,.0f} events/s  ({rate / reference:.3f} x reference; {seconds:.2f} s)")

    with tempfile.TemporaryDirectory() as scratch:
        base = "https://trace.example"
        source = start_server(Path(scratch) / "source", public_url=base)
        target = start_server(Path(scratch) / "target", public_url=base)
        try:
            world = make_world(source.store)
            for chunk in chunks(world, args.events, "BENCH", gtin="04006381333931"):
                source.store.append(chunk)
            lots = [f"L{n:07d}" for n in range(args.events // 10)]

            start = time.perf_counter()
            documents = [
                batch_document(batch_view(source.store, "BENCH", lot).report, Places(base), datetime.now(UTC))
                for lot in lots
            ]
            report("export (verified batch -> EPCISDocument)", args.events, time.perf_counter() - start)

            events = [e for d in documents for e in d["epcisBody"]["eventList"]]
            contents = [{k: v for k, v in e.items() if k != "eventID"} for e in events]
            prefixes = Prefixes(CONTEXT)
            start = time.perf_counter()
            for content in contents:
                event_hash(content, prefixes)
            report("CBV 2.0 event hash", len(contents), time.perf_counter() - start)

            document = epcis_document(events, {}, datetime.now(UTC))
            start = time.perf_counter()
            problems = schema_problems(document)
            report("GS1 JSON schema check", len(events), time.perf_counter() - start)
            assert problems == [], problems[:3]
            actors = {p.id for p in (world.merchant, world.inspector, world.carrier, world.second_carrier)}
            ledger = Ledger(base, "act_admin", frozenset(actors), {}, frozenset(EventType), lambda gtin, lot: None,
                            lambda sku, lot: False)  # fmt: skip
            start = time.perf_counter()
            plan = plan_import(document, ledger, lambda kind, data: None)
            report("import plan (check, map)", len(plan.mapped), time.perf_counter() - start)
            assert not plan.skipped, plan.skipped[:3]

            for party in (world.merchant, world.other_merchant, world.inspector, world.carrier, world.second_carrier):
                target.store.add_actor(party.actor.name, party.actor.role, party.key.public_key, actor_id=party.id)
            admin_key = world.admin.private_key
            admin, _k = target.store.add_actor("Ops", "admin", public_key_bytes(admin_key))
            key_file, token_file, doc_file = (Path(scratch) / name for name in ("ops.pem", "ops.token", "doc.jsonld"))
            key_file.write_bytes(private_key_pem(admin_key))
            token_file.write_text(target.store.issue_token(admin.id) + "\n")
            doc_file.write_text(json.dumps(document))
            start = time.perf_counter()
            subprocess.run(
                [CHAINPROOF, "epcis", "import", str(doc_file), "--key", str(key_file), "--token-file", str(token_file),
                 "--server", target.url, "--format", "json"],
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            report("chainproof epcis import (CLI, sign, append)", len(events), time.perf_counter() - start)
            assert target.store.size() >= len(events)
        finally:
            source.stop()
            target.stop()


if __name__ == "__main__":
    main()
