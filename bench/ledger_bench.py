"""Ledger core benchmark: append, proofs and full verification, each against this machine's raw Ed25519 rate.

    python bench/ledger_bench.py [--entries N | --million] [--db URL]

Prints numbers and ratios; asserts nothing (machines are noisy). Targets (issue #2): append >= 0.6 x the
single-core verify rate, full verification >= 1.6 x (both cores), proofs at 1M entries p99 < 2 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.canonical import canonical_json
from ledger.logkey import load_or_create_log_signer
from ledger.note import open_checkpoint
from ledger.signing import generate_private_key, sign_statement, verify_statement
from ledger.storage import LedgerStore, Submission, create_db_engine, default_sqlite_url, migrate
from ledger.verify import verify_ledger
from tests.factory import handoff_data, inspection_data, make_world, origin_data, shipment_data


def raw_verify_rate(seconds: float = 2.0) -> float:
    key = generate_private_key()
    public = key.public_key()
    message = canonical_json({"v": 1, "type": "handoff", "data": handoff_data("act_a", "act_b", "S1")})
    signature = sign_statement(key, message)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(500):
            verify_statement(public, signature, message)
        count += 500
    return count / (time.perf_counter() - start)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--million", action="store_true", help="1,000,000 entries")
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--batch", type=int, default=1000, help="events per append call")
    args = parser.parse_args()
    total = 1_000_000 if args.million else args.entries

    tmp = Path(tempfile.mkdtemp(prefix="chainproof-bench-"))
    engine = create_db_engine(args.db or default_sqlite_url(tmp))
    migrate(engine)
    store = LedgerStore(engine, load_or_create_log_signer(tmp / "log.key", "bench.chainproof/log"))
    world = make_world(store)

    rate = raw_verify_rate()
    print(f"raw Ed25519 verify, one core:       {rate:10.0f} /s  (ratio 1.00)")

    print(f"signing {total} statements (not timed) ...", file=sys.stderr)
    m, i, c1, c2 = world.merchant, world.inspector, world.carrier, world.second_carrier
    submissions: list[Submission] = []
    lot = 0
    while len(submissions) < total:
        sku, name = "BENCH", f"L{lot:07d}"
        sid = "S1"
        # Sensor readings as loggers report them (one decimal). An integral float such as 5.0 takes rfc8785's
        # slower pure-Python path; a client's canonical JSON would carry it as the integer 5 anyway.
        journey = [
            m.submit("origin", sku, name, origin_data()),
            i.submit("inspection", sku, name, inspection_data()),
            m.submit("shipment", sku, name, shipment_data(sid)),
            m.submit("handoff", sku, name, handoff_data(m.id, c1.id, sid)),
            c1.submit("handoff", sku, name, handoff_data(c1.id, c2.id, sid, temperature=5.2)),
            c2.submit("handoff", sku, name, handoff_data(c2.id, c1.id, sid, temperature=6.1)),
            c1.submit("handoff", sku, name, handoff_data(c1.id, c2.id, sid, temperature=4.3)),
            c2.submit("handoff", sku, name, handoff_data(c2.id, c1.id, sid, temperature=3.9)),
            c1.submit("handoff", sku, name, handoff_data(c1.id, c2.id, sid, temperature=3.4)),
            c2.submit("delivery", sku, name, {"shipment_id": sid, "delivered_at": "2026-11-08T15:00:00Z"}),
        ]
        submissions.extend(journey)
        lot += 1
    submissions = submissions[:total]

    # Two submitting threads, as API workers' request threads would be: one batch's parsing and signature checks
    # overlap with the other's commit (the store's sequencer commits them in order of arrival).
    chunks = [submissions[n : n + args.batch] for n in range(0, total, args.batch)]
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(store.append_queued, chunks))
    append_s = time.perf_counter() - start
    append_rate = total / append_s
    print(
        f"append (batches of {args.batch}, verified): {append_rate:10.0f} /s  "
        f"(ratio {append_rate / rate:.2f}; target 0.6)"
    )

    checkpoint = store.checkpoint()
    cp = open_checkpoint(checkpoint, store.signer.verifier).checkpoint
    rng = random.Random(1)
    inclusion_ms, consistency_ms = [], []
    for _ in range(2000):
        index = rng.randrange(cp.size)
        t = time.perf_counter()
        store.inclusion_proof(index, cp.size)
        inclusion_ms.append((time.perf_counter() - t) * 1000)
        first = rng.randrange(1, cp.size)
        t = time.perf_counter()
        store.consistency_proof(first, cp.size)
        consistency_ms.append((time.perf_counter() - t) * 1000)
    print(
        f"inclusion proof at {cp.size}:  p50 {statistics.median(inclusion_ms):.3f} ms  "
        f"p99 {percentile(inclusion_ms, 0.99):.3f} ms"
    )
    print(
        f"consistency proof at {cp.size}: p50 {statistics.median(consistency_ms):.3f} ms  "
        f"p99 {percentile(consistency_ms, 0.99):.3f} ms"
    )

    directory = store.directory()
    start = time.perf_counter()
    report = verify_ledger(store.iter_entries(), directory, store.signer.verifier, checkpoint, workers=2)
    verify_s = time.perf_counter() - start
    assert report.ok, report.problems[:3]
    verify_rate = total / verify_s
    print(f"full verification (2 threads):      {verify_rate:10.0f} /s  (ratio {verify_rate / rate:.2f}; target 1.6)")
    print(f"ledger: {report.entries} entries, {report.batches} batches, root {report.summary()['root']}")


if __name__ == "__main__":
    main()
