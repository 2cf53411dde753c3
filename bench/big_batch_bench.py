"""Big batches in a big log: product page latency and weight for batches of 10, 1,000 and 10,000 events in a log
of N entries (default 1,000,000), served by `chainproof serve` (one worker, load from a second process); and the
first append to the 10,000-event batch after a restart, in a fresh process, against the same append when its head
must be replayed (what every restart cost before per-batch heads).

    python bench/big_batch_bench.py [--entries 1000000] [--db URL] [--samples 300]

Targets (issue: safe for operators and big batches): page p99 < 50 ms and < 200 KB at 10,000 events in 1M.
The batches' events are spread evenly through the log (the worst case for proofs: no two share a subtree).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_bench import LOG_NAME, Load, _load_in_second_process, _serve, _setup  # noqa: E402
from bench.ledger_bench import percentile  # noqa: E402
from bench.workload import EVENTS_PER_BATCH, journey  # noqa: E402
from ledger.storage import LedgerStore, Submission, default_sqlite_url  # noqa: E402
from ledger.storage.store import AppendOutcome  # noqa: E402
from tests.factory import World, handoff_data, inspection_data, origin_data, shipment_data  # noqa: E402
from tests.servers import free_port  # noqa: E402

SIZES = (10, 1_000, 10_000)


def big_batch(world: World, lot: str, events: int) -> list[Submission]:
    """`events` events of one batch: origin, inspection, then shipments each placed, handed on and delivered."""
    m, c1 = world.merchant, world.carrier
    subs = [
        m.submit("origin", "BIG", lot, origin_data()),
        world.inspector.submit("inspection", "BIG", lot, inspection_data()),
    ]
    n = 0
    while len(subs) < events:
        sid = f"S{n}"
        subs += [
            m.submit("shipment", "BIG", lot, shipment_data(sid)),
            m.submit("handoff", "BIG", lot, handoff_data(m.id, c1.id, sid)),
            c1.submit("delivery", "BIG", lot, {"shipment_id": sid, "delivered_at": "2026-11-08T15:00:00Z"}),
        ]
        n += 1
    return subs[:events]


def workload(world: World, entries: int, chunk: int = 1000) -> Iterator[list[Submission]]:
    """Chunks of about `chunk` events: background journeys, with the big batches' events spread evenly."""
    big = {size: big_batch(world, f"E{size}", size) for size in SIZES}
    total_big = sum(SIZES)
    background = max(0, entries - total_big) // EVENTS_PER_BATCH
    chunks = max(1, (background * EVENTS_PER_BATCH + total_big) // chunk)
    taken = dict.fromkeys(SIZES, 0)
    lot = 0
    for k in range(chunks):
        out: list[Submission] = []
        for size, events in big.items():  # this chunk's share of each big batch, in order
            until = len(events) * (k + 1) // chunks
            out += events[taken[size] : until]
            taken[size] = until
        while len(out) < chunk and lot < background:
            out += journey(world, "BG", f"L{lot:07d}")
            lot += 1
        yield out
    while lot < background:
        yield journey(world, "BG", f"L{lot:07d}")
        lot += 1


def fill(store: LedgerStore, world: World, entries: int) -> None:
    """Chunks queued in order from this thread (a big batch's events span chunks, so their order matters), each
    checked here while the store's sequencer commits the ones before it."""
    pending: list[Future[AppendOutcome]] = []
    for n, chunk in enumerate(workload(world, entries)):
        pending.append(store.submit_queued(chunk))
        if len(pending) > 4:
            pending.pop(0).result().unwrap()
        if n % 100 == 0:
            print(f"  {n * 1000:>9} ...", file=sys.stderr, end="\r")
    for future in pending:
        future.result().unwrap()


_FIRST_APPEND = """
import json, sys, time
from pathlib import Path
started = time.perf_counter()
from ledger.logkey import load_or_create_log_signer
from ledger.storage import LedgerStore, create_db_engine
from tests.factory import Party, shipment_data
from ledger.signing import load_private_key_pem, public_key_bytes
from ledger.rules import Actor, ActorKey
from ledger.events import Role
from datetime import UTC, datetime
args = json.loads(sys.argv[1])
engine = create_db_engine(args["db"])
store = LedgerStore(engine, load_or_create_log_signer(Path(args["key"]), args["log_name"]))
private_key = load_private_key_pem(args["merchant_pem"].encode())
# only the ids sign: who may sign is the store's to read from the log's registrations, in the append measured
merchant = Party(
    Actor(args["merchant"], "", Role.MERCHANT),
    ActorKey(args["merchant_key"], args["merchant"], public_key_bytes(private_key), datetime.now(UTC)),
    private_key,
)
sub = merchant.submit("shipment", "BIG", "E10000", shipment_data(args["shipment"]))
ready = time.perf_counter()
store.append([sub])
done = time.perf_counter()
print(json.dumps({"append_ms": (done - ready) * 1000, "process_ms": (done - started) * 1000}))
"""


def first_append_after_restart(db_url: str, data_dir: Path, world: World, shipment: str) -> dict[str, float]:
    from ledger.signing import private_key_pem

    merchant = world.merchant
    args = {
        "db": db_url,
        "key": str(data_dir / "log-key.pem"),
        "log_name": LOG_NAME,
        "merchant": merchant.id,
        "merchant_key": merchant.key.key_id,
        "merchant_pem": private_key_pem(merchant.private_key).decode(),
        "shipment": shipment,
    }
    out = subprocess.run(
        [sys.executable, "-c", _FIRST_APPEND, json.dumps(args)], capture_output=True, text=True, check=False, cwd=ROOT
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return dict(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="chainproof-bigbatch-"))
    db_url = args.db or default_sqlite_url(data_dir)
    store, world, _tokens = _setup(db_url, data_dir)
    started = time.perf_counter()
    print(f"filling {args.entries} entries (not timed) ...", file=sys.stderr)
    fill(store, world, args.entries)
    print(f"filled {store.size()} entries in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    store.issue_checkpoint()
    store.engine.dispose()

    port = free_port()
    server = _serve(db_url, data_dir, port, 1)
    try:
        for size in SIZES:
            request = f"GET /p/BIG/E{size} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            cold = _load_in_second_process(port, Load(streams=[[request]]))
            result = _load_in_second_process(port, Load(streams=[[request] * args.samples]))
            lat = sorted(result["latencies"])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/p/BIG/E{size}", timeout=30) as response:
                weight = len(response.read())
            print(
                f"product page, {size:>6} events in {store.size()}: first view {cold['latencies'][0] * 1000:.0f} ms, "
                f"then p50 {statistics.median(lat) * 1000:.1f} ms  p99 {percentile(lat, 0.99) * 1000:.1f} ms  "
                f"{weight / 1000:.0f} KB  statuses {result['statuses']}"
            )
    finally:
        server.terminate()
        server.wait()

    with_head = [first_append_after_restart(db_url, data_dir, world, f"R{n}") for n in range(3)]
    from sqlalchemy import text

    from ledger.storage import create_db_engine

    replayed = []
    for n in range(3):
        engine = create_db_engine(db_url)
        with engine.begin() as conn:  # as before per-batch heads: the batch's state must come from its chain
            conn.execute(text("DELETE FROM batch_heads WHERE sku = 'BIG' AND lot = 'E10000'"))
        engine.dispose()
        replayed.append(first_append_after_restart(db_url, data_dir, world, f"P{n}"))
    for label, runs in (("reading its head", with_head), ("replaying its chain", replayed)):
        appends = sorted(r["append_ms"] for r in runs)
        processes = sorted(r["process_ms"] for r in runs)
        print(
            f"first append to the 10,000-event batch after a restart, {label}: append {appends[1]:.1f} ms "
            f"(of {', '.join(f'{a:.1f}' for a in appends)}), whole process {processes[1]:.0f} ms"
        )


if __name__ == "__main__":
    main()
