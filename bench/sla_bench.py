"""SLA tracker benchmark (issue: "Fulfilment-SLA tracker").

    python bench/sla_bench.py [--shipments 100000] [--db URL] [--runs 5] [--append-events 20000]

1. A ledger of about 1M events holding 100k shipments (20k batches: origin, inspection, five shipments each handed
   on seven times and delivered, some open, late, short or cancelled, over 30 lanes, 4 merchants, 6 carriers),
   built once and kept (SQLite: under /tmp, reused by later runs with the same parameters).
2. The full report (grouped by merchant, carrier, lane and week) and the at-risk list: in this process with the
   projection's records already in memory (a server answering its second request), from a fresh store (the
   first request after a start: the projection read from the database), and as a user runs them (the CLI, in a
   new process, start-up included). Targets: report < 1 s, at-risk < 200 ms.
3. What the projection costs appends: the same shipping workload appended with the projection on and off,
   interleaved, `--runs` times each; the median ratio (on/off) of CPU seconds per event, with its spread.
   Target: no more than 5% slower.

Every time is also printed as a ratio to this run's single-core Ed25519 verify rate (the machine's reference).
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ledger_bench import raw_verify_rates
from ledger.events import Role, format_time
from ledger.logkey import load_or_create_log_signer
from ledger.sla import DEFAULT_PARAMETERS, Filters, format_seconds, report, shipment_view
from ledger.sla_columns import Evaluation
from ledger.storage import LedgerStore, Submission, create_db_engine, default_sqlite_url, migrate
from tests.factory import Party, add_party, inspection_data, origin_data

LOG = "chainproof.bench/log"
ORIGINS = [("ET", "Gedeo"), ("CO", "Huila"), ("VN", "Dak Lak"), ("CN", "Yunnan"), ("KE", None)]
DESTINATIONS = ["DE-HH", "FR-75", "NL-AMS", "US-NY", "CN-31", "GB-LND"]
SHIPMENTS_PER_BATCH = 5
HANDOFFS = 7


class Parties:
    def __init__(self, store: LedgerStore) -> None:
        self.merchants = [add_party(store, f"Merchant {n}", Role.MERCHANT) for n in range(4)]
        self.inspector = add_party(store, "Inspector", Role.INSPECTOR)
        self.carriers = [add_party(store, f"Carrier {n}", Role.CARRIER) for n in range(6)]


def _submit(party: Party, kind: str, sku: str, lot: str, data: dict[str, object], signed_at: str) -> Submission:
    from ledger.events import new_statement

    return party.sign(new_statement(kind, sku, lot, party.id, party.key.key_id, signed_at, data))


def batch_events(parties: Parties, number: int, now: datetime, rng: random.Random) -> list[Submission]:
    """One batch: origin, inspection and five shipments over the eight weeks before `now`."""
    signed_at = format_time(now)
    merchant = parties.merchants[number % len(parties.merchants)]
    country, region = ORIGINS[number % len(ORIGINS)]
    sku, lot = "SKU", f"B{number:06d}"
    origin = origin_data(country=country, produced_at=format_time(now - timedelta(days=60)))
    if region is None:
        origin.pop("region")
    else:
        origin["region"] = region
    events = [
        _submit(merchant, "origin", sku, lot, origin, signed_at),
        _submit(parties.inspector, "inspection", sku, lot, inspection_data(), signed_at),
    ]
    for n in range(SHIPMENTS_PER_BATCH):
        sid = f"S{n}"
        placed = now - timedelta(seconds=rng.randrange(56 * 86400))
        window = timedelta(hours=rng.choice((24, 36, 48, 72)))
        data: dict[str, object] = {
            "shipment_id": sid,
            "destination": DESTINATIONS[rng.randrange(len(DESTINATIONS))],
            "placed_at": format_time(placed),
            "promised_by": format_time(placed + window),
        }
        if rng.random() < 0.7:
            data.update(quantity=rng.randrange(1, 50), unit="pcs")
        events.append(_submit(merchant, "shipment", sku, lot, data, signed_at))
        if rng.random() < 0.02:
            cancel = {"shipment_id": sid, "cancelled_at": format_time(placed + timedelta(hours=1))}
            events.append(_submit(merchant, "shipment_cancel", sku, lot, cancel, signed_at))
            continue
        total = window * rng.uniform(0.5, 1.4)  # how long this one takes: some late
        step = total / (HANDOFFS + 1)
        holder: Party = merchant
        moment = placed
        for k in range(HANDOFFS):
            moment += step
            if moment > now:
                break
            to = parties.carriers[(number + n + k) % len(parties.carriers)]
            if to is holder:
                to = parties.carriers[(number + n + k + 1) % len(parties.carriers)]
            handoff = {"from": holder.id, "to": to.id, "place": "Hub", "at": format_time(moment), "shipment_id": sid}
            events.append(_submit(holder, "handoff", sku, lot, handoff, signed_at))
            holder = to
        moment += step
        if moment <= now and holder is not merchant:
            delivery: dict[str, object] = {"shipment_id": sid, "delivered_at": format_time(moment)}
            if "quantity" in data:
                delivery["quantity"] = data["quantity"] if rng.random() < 0.9 else int(data["quantity"]) - 1  # type: ignore[call-overload]
            events.append(_submit(holder, "delivery", sku, lot, delivery, signed_at))
    return events


def build(url: str, key_file: Path, shipments: int, now: datetime) -> LedgerStore:
    engine = create_db_engine(url)
    migrate(engine)
    # signed at the workload's fixed `now` (a moment in the past: reruns build the same ledger), not when appended
    store = LedgerStore(engine, load_or_create_log_signer(key_file, LOG), signed_at_window=None)
    if store.size():
        return store
    parties = Parties(store)
    rng = random.Random(7)
    batches = shipments // SHIPMENTS_PER_BATCH
    started = time.perf_counter()
    chunk: list[Submission] = []
    pending = []
    with ThreadPoolExecutor(2) as pool:
        for number in range(batches):
            chunk += batch_events(parties, number, now, rng)
            if len(chunk) >= 2000:
                pending.append(pool.submit(store.append_queued, chunk))
                chunk = []
                if len(pending) > 4:
                    pending.pop(0).result()
            if number % 2000 == 0:
                print(f"  built {number}/{batches} batches, {store.size()} entries", file=sys.stderr)
        if chunk:
            pending.append(pool.submit(store.append_queued, chunk))
        for future in pending:
            future.result()
    store.issue_checkpoint()
    print(f"built {store.size()} entries in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return store


def timed(run: object, repeat: int = 5) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shipments", type=int, default=100_000)
    parser.add_argument("--db", help="database URL (default: a SQLite file kept under the temp dir)")
    parser.add_argument("--runs", type=int, default=5, help="interleaved on/off append runs")
    parser.add_argument("--append-events", type=int, default=20_000, help="events per append run")
    parser.add_argument("--skip-append", action="store_true")
    parser.add_argument(
        "--append-pg", help="also measure the append cost on PostgreSQL: a server URL where databases may be created"
    )
    args = parser.parse_args()

    from api.app import tune_garbage_collector

    tune_garbage_collector()  # as a serving process is tuned (api/app.py)
    reference, _sodium = raw_verify_rates()
    print(f"reference: {reference:,.0f} Ed25519 verifies/s (single core); times below also as x reference-verify")

    def ratio(seconds: float) -> str:
        return f"{seconds * 1000:.0f} ms ({seconds * reference:,.0f} verifies)"

    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    tag = hashlib.sha256(f"{args.shipments}-{now.isoformat()}-v2".encode()).hexdigest()[:10]
    keep = Path(tempfile.gettempdir()) / f"chainproof-sla-bench-{tag}"
    keep.mkdir(exist_ok=True)
    url = args.db or default_sqlite_url(keep)
    store = build(url, keep / "log.key", args.shipments, now)
    size = store.size()
    # as of now: a report counts the entries logged by its as_of, and these were logged when the ledger was built
    as_of = int(time.time())
    print(f"ledger: {size:,} entries, {args.shipments:,} shipments ({url.split('://')[0]})")

    group_by = ["merchant", "carrier", "lane", "week"]

    moments = iter(range(as_of, as_of + 10_000))

    def evaluated(target: LedgerStore) -> Evaluation:
        # a second later each time: a new moment is a new evaluation (the store keeps only its latest, for paging)
        moment = next(moments)
        return target.sla_evaluation(
            size=size, as_of_us=moment * 1_000_000, as_of=moment, parameters=DEFAULT_PARAMETERS
        )

    def full_report(target: LedgerStore) -> dict[str, object]:
        view = evaluated(target)
        return report(view, as_of=view.as_of, group_by=group_by)

    def at_risk(target: LedgerStore) -> list[object]:
        view = evaluated(target)
        rows = view.listed(Filters(), {"at_risk", "overdue"})
        return [shipment_view(view.seen_record(row), view.status_of(row)) for row in rows]

    def fresh() -> LedgerStore:
        return LedgerStore(create_db_engine(url), load_or_create_log_signer(keep / "log.key", LOG))

    cold_report = timed(lambda: full_report(fresh()), 3)
    cold_risk = timed(lambda: at_risk(fresh()), 3)
    full_report(store)
    import gc

    gc.freeze()  # what a server does once it has read the projection at start (api.app._warm_up)
    warm_report = timed(lambda: full_report(store))
    warm_risk = timed(lambda: at_risk(store))
    listed = at_risk(store)
    total = full_report(store)["total"]
    print(f"report: {total['shipments']:,} shipments counted, {len(listed):,} at risk or overdue")  # type: ignore[index]
    print(f"full report, records in memory:      median {ratio(statistics.median(warm_report))}")
    print(f"full report, first after a start:    median {ratio(statistics.median(cold_report))}")
    print(f"at-risk list, records in memory:     median {ratio(statistics.median(warm_risk))}")
    print(f"at-risk list, first after a start:   median {ratio(statistics.median(cold_risk))}")

    cli = [str(Path(sys.executable).with_name("chainproof"))]
    log_key = str(store.signer.verifier)
    commands = {
        "sla report --db (CLI, start-up included)": ["sla", "report", "--group-by", ",".join(group_by)],
        "sla at-risk --db (CLI, start-up included)": ["sla", "at-risk"],
    }
    moment = format_seconds(as_of)
    for name, command in commands.items():
        times = []
        for _ in range(3):
            start = time.perf_counter()
            done = subprocess.run(
                [*cli, *command, "--format", "json", "--db", url, "--log-key", log_key, "--as-of", moment],
                capture_output=True,
                check=False,
            )
            times.append(time.perf_counter() - start)
            if done.returncode not in (0, 1):
                print(done.stderr.decode(), file=sys.stderr)
        print(f"{name}: median {ratio(statistics.median(times))}")

    if args.skip_append:
        return
    append_overhead(args.runs, args.append_events, now, reference)
    if args.append_pg:
        append_overhead(args.runs, args.append_events, now, reference, pg_admin=args.append_pg)


def _fresh_database(tmp: Path, pg_admin: str | None) -> tuple[str, object]:
    """A fresh database URL (SQLite in `tmp`, or a new PostgreSQL database) and how to drop it."""
    if pg_admin is None:
        return default_sqlite_url(tmp), lambda: None
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"chainproof_sla_bench_{tmp.name[-8:].lower().replace('-', '_')}"
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(pg_admin).set(database=name).render_as_string(hide_password=False), drop


def append_overhead(runs: int, events: int, now: datetime, reference: float, pg_admin: str | None = None) -> None:
    """Append the shipping workload into fresh databases (SQLite, or PostgreSQL with `pg_admin`), projection on
    and off, interleaved."""
    per_event: dict[bool, list[float]] = {True: [], False: []}
    wall: dict[bool, list[float]] = {True: [], False: []}
    for run in range(runs):
        for on in (run % 2 == 0, run % 2 != 0):  # alternate which goes first
            with tempfile.TemporaryDirectory() as tmp:
                url, drop = _fresh_database(Path(tmp), pg_admin)
                engine = create_db_engine(url)
                migrate(engine)
                signer = load_or_create_log_signer(Path(tmp) / "log.key", LOG)
                store = LedgerStore(engine, signer, signed_at_window=None)
                store.sla_projection = on
                parties = Parties(store)
                rng = random.Random(run)
                chunks: list[list[Submission]] = []
                chunk: list[Submission] = []
                number = 0
                while sum(map(len, chunks)) + len(chunk) < events:
                    chunk += batch_events(parties, number, now, rng)
                    number += 1
                    if len(chunk) >= 500:
                        chunks.append(chunk)
                        chunk = []
                chunks.append(chunk)
                count = sum(map(len, chunks))
                start, started = time.process_time(), time.perf_counter()
                for part in chunks:
                    store.append(part)
                per_event[on].append((time.process_time() - start) / count)
                wall[on].append((time.perf_counter() - started) / count)
                engine.dispose()
                drop()  # type: ignore[operator]
    ratios = [a / b for a, b in zip(per_event[True], per_event[False], strict=True)]
    wall_ratios = [a / b for a, b in zip(wall[True], wall[False], strict=True)]
    on_median, off_median = statistics.median(per_event[True]), statistics.median(per_event[False])
    where = "PostgreSQL" if pg_admin else "SQLite"
    print(
        f"append on {where}, projection on vs off ({runs} interleaved runs each, {events:,} events): CPU "
        f"{on_median * 1e6:.1f} vs "
        f"{off_median * 1e6:.1f} us/event; on/off median {statistics.median(ratios):.3f} "
        f"(range {min(ratios):.3f}-{max(ratios):.3f}); {reference * on_median:.2f} verifies per event with it on"
    )
    print(
        f"  wall time (the database server's work included): {statistics.median(wall[True]) * 1e6:.1f} vs "
        f"{statistics.median(wall[False]) * 1e6:.1f} us/event; on/off median {statistics.median(wall_ratios):.3f} "
        f"(range {min(wall_ratios):.3f}-{max(wall_ratios):.3f})"
    )


if __name__ == "__main__":
    main()
