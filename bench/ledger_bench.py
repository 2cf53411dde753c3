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
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.workload import append_all, chunks
from ledger.canonical import canonical_json
from ledger.logkey import load_or_create_log_signer
from ledger.note import open_checkpoint
from ledger.signing import (
    STATEMENT_CONTEXT,
    generate_private_key,
    load_public_key,
    public_key_bytes,
    sign_raw,
    verify_raw,
)
from ledger.storage import LedgerStore, create_db_engine, default_sqlite_url, migrate
from ledger.verify import verify_ledger
from tests.factory import handoff_data, make_world


def _rate(verify: Callable[[], object], seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(500):
            verify()
        count += 500
    return count / (time.perf_counter() - start)


def raw_verify_rates(seconds: float = 2.0) -> tuple[float, float]:
    """Single-core Ed25519 verifies/s of a statement-sized message: (the reference, OpenSSL through `cryptography`,
    the issue's "raw rate"; libsodium, which `ledger.signing` verifies with). Ratios are printed against both."""
    key = generate_private_key()
    message = STATEMENT_CONTEXT + canonical_json(
        {"v": 1, "type": "handoff", "data": handoff_data("act_a", "act_b", "S1")}
    )
    signature = sign_raw(key, message)
    openssl_key = key.public_key()
    sodium_key = load_public_key(public_key_bytes(key))
    assert verify_raw(sodium_key, signature, message)
    return (
        _rate(lambda: openssl_key.verify(signature, message), seconds),
        _rate(lambda: verify_raw(sodium_key, signature, message), seconds),
    )


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

    rate, sodium_rate = raw_verify_rates()
    print(f"raw Ed25519 verify, one core:       {rate:10.0f} /s  (OpenSSL, the reference: ratio 1.00)")
    print(f"  libsodium (the ledger's verifier): {sodium_rate:10.0f} /s  (ratio {sodium_rate / rate:.2f})")

    print(f"signing {total} statements (not timed) ...", file=sys.stderr)
    batches = chunks(world, total, "BENCH", size=args.batch)
    total = sum(len(chunk) for chunk in batches)
    start = time.perf_counter()
    append_all(store, batches)
    append_s = time.perf_counter() - start
    append_rate = total / append_s
    print(
        f"append (batches of {args.batch}, verified): {append_rate:10.0f} /s  "
        f"(ratio {append_rate / rate:.2f}; target 0.6; {append_rate / sodium_rate:.2f} of libsodium's rate)"
    )

    checkpoint = store.issue_checkpoint()
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

    start = time.perf_counter()
    report = verify_ledger(store.iter_entries(), store.signer.verifier, checkpoint, workers=2)
    verify_s = time.perf_counter() - start
    assert report.ok, report.problems[:3]
    verify_rate = total / verify_s
    print(
        f"full verification (2 processes):    {verify_rate:10.0f} /s  (ratio {verify_rate / rate:.2f}; target 1.6; "
        f"{verify_rate / sodium_rate:.2f} of libsodium's rate)"
    )
    print(f"ledger: {report.entries} entries, {report.batches} batches, root {report.summary()['root']}")


if __name__ == "__main__":
    main()
