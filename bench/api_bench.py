"""HTTP API benchmark: real uvicorn on 127.0.0.1, bounded load from a second process.

    python bench/api_bench.py [--events N] [--pg-url URL] [--repeat K] [--pg-only]

Prints events/s for single-event POSTs and for /v1/events/batch of 100, p50/p99 latency of
GET /v1/log/proof/inclusion at 100k entries, and, given --pg-url, batch ingestion with 1 and 2 workers on
PostgreSQL; each as a ratio to this machine's single-core Ed25519 verify rate measured in the same run. Asserts
nothing. Targets (issue #3): batch >= 0.45 x, single >= 1,000/s, 2 workers on PostgreSQL >= 0.8 x.

Load is closed-loop: N connections, each sending its next request when the answer to the last one arrives.
Single events keep one journey per connection, in order (a handoff needs its origin first); batches of new
origins are independent, so every connection takes the next one from one shared queue, as many clients of a real
service would: with a fixed share per connection, the worker that the kernel gave fewer connections ran out of
work first and the run ended on one core.

Each server gets an untimed warm-up first (its thread pools, caches and lazily loaded data start cold).

The machine is shared and its speed drifts (the reference has varied by over 1.5x within one run here): the reference
is measured before each server's first run and after every run, and each run's ratio is to the mean of the two windows
around it; the ratio to the fastest window of the whole run, the most conservative reading, is printed beside it.
The 2-worker PostgreSQL run is repeated (--repeat); its best and median ratios are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import pickle
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ledger_bench import percentile, raw_verify_rates  # noqa: E402
from bench.workload import journey  # noqa: E402
from ledger.logkey import load_or_create_log_signer  # noqa: E402
from ledger.storage import LedgerStore, Submission, create_db_engine, default_sqlite_url, migrate  # noqa: E402
from tests.factory import World, make_world, origin_data  # noqa: E402
from tests.servers import free_port, listening_sockets  # noqa: E402

LOG_NAME = "bench.chainproof/log"


def _body(sub: Submission) -> dict[str, Any]:
    return {"statement": sub.statement, "signature": base64.b64encode(sub.signature).decode()}


def _request(path: str, token: str, payload: Any) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    return status, await reader.readexactly(length)


@dataclass
class Load:
    """What the load process sends: `streams`, one connection each, in order; or `shared`, a queue that
    `connections` connections take requests from."""

    streams: list[list[bytes]] = field(default_factory=list)
    shared: list[bytes] = field(default_factory=list)
    connections: int = 0


async def _run_load(port: int, load: Load) -> dict[str, Any]:
    """Keep-alive connections, each sending one request at a time and waiting for its answer."""
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    shared = deque(load.shared)

    async def connection(requests: Iterable[bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for request in requests:
            start = time.perf_counter()
            writer.write(request)
            status, _body = await _read_response(reader)
            latencies.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    def from_shared() -> Iterator[bytes]:
        while shared:
            yield shared.popleft()

    clients = [connection(stream) for stream in load.streams]
    clients += [connection(from_shared()) for _ in range(load.connections)]
    start = time.perf_counter()
    await asyncio.gather(*clients)
    return {"seconds": time.perf_counter() - start, "statuses": statuses, "latencies": latencies}


def _load_in_second_process(port: int, load: Load) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as handle:
        pickle.dump({"port": port, "load": load}, handle)
    out = subprocess.run(
        [sys.executable, __file__, "--load-file", handle.name], capture_output=True, check=True, text=True
    )
    os.unlink(handle.name)
    return dict(json.loads(out.stdout))


def _wait_for_listeners(port: int, workers: int, deadline: float) -> None:
    if workers < 2 or not Path("/proc/net/tcp").exists():
        return
    while listening_sockets(port) < workers and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)  # listening is not yet serving: let the last one finish starting


def _serve(
    db_url: str,
    data_dir: Path,
    port: int,
    workers: int,
    env: dict[str, str] | None = None,
    code: Path | None = None,
) -> subprocess.Popen[bytes]:
    """`chainproof serve`, rate limits off unless `env` says otherwise; `code`: run the chainproof of another
    source tree (an older revision, for A/B runs) with this interpreter."""
    environment = dict(
        os.environ, CHAINPROOF_DATA_DIR=str(data_dir), CHAINPROOF_LOG_NAME=LOG_NAME, CHAINPROOF_RATE_LIMITS="off"
    )
    environment.update(env or {})
    if code is None:
        command = [str(Path(sys.executable).parent / "chainproof")]
    else:
        environment["PYTHONPATH"] = str(code)
        command = [sys.executable, "-c", "from cli.main import main; main()"]
    process = subprocess.Popen(
        [
            *command,
            "serve",
            "--db",
            db_url,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        env=environment,
        cwd=code,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if b" 200 " in sock.recv(200):
                    _wait_for_listeners(port, workers, deadline)  # the first worker answered; wait for all
                    return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not become ready")


def _setup(db_url: str, data_dir: Path, schema_ready: bool = False) -> tuple[LedgerStore, World, dict[str, str]]:
    """A store with the usual parties and their tokens (`schema_ready`: another revision's code made the schema;
    actors and tokens are rows every revision shares)."""
    engine = create_db_engine(db_url)
    if not schema_ready:
        migrate(engine)
    store = LedgerStore(engine, load_or_create_log_signer(data_dir / "log-key.pem", LOG_NAME))
    world = make_world(store)
    parties = [world.merchant, world.inspector, world.carrier, world.second_carrier, world.admin]
    tokens = {p.id: store.issue_token(p.id) for p in parties}
    return store, world, tokens


def _single_events(world: World, tokens: dict[str, str], events: int, connections: int, tag: str) -> Load:
    """Journeys of 10 events, each on one connection in order."""
    streams: list[list[bytes]] = [[] for _ in range(connections)]
    for n in range(events // 10):
        stream = streams[n % connections]
        for sub in journey(world, "BENCH", f"{tag}{n:07d}"):
            stream.append(_request("/v1/events", tokens[sub.statement["actor"]], _body(sub)))
    return Load(streams=streams)


def _batches(world: World, tokens: dict[str, str], events: int, connections: int, tag: str) -> Load:
    """Requests of 100 new origins by one merchant, on a queue shared by the connections."""
    merchant = world.merchant
    requests = []
    for n in range(events // 100):
        payload = {
            "events": [
                _body(merchant.submit("origin", "BATCH", f"{tag}{n:06d}-{k:03d}", origin_data())) for k in range(100)
            ]
        }
        requests.append(_request("/v1/events/batch", tokens[merchant.id], payload))
    return Load(shared=requests, connections=connections)


@dataclass
class Line:
    label: str
    events_per_second: float  # 0: a line without a rate
    details: str
    reference: tuple[float, float] = (0.0, 0.0)  # (OpenSSL, libsodium) rates measured around this run


@dataclass
class Report:
    """Results, printed at the end. Each ingestion run's ratio is to the reference measured just before and just
    after it (their mean: the machine's speed while it ran); the ratio to the best window of the whole run, the
    most conservative reading, is printed beside it."""

    references: list[tuple[float, float]] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)

    def measure_reference(self) -> None:
        self.references.append(raw_verify_rates(1.0))

    def around_last_run(self) -> tuple[float, float]:
        before, after = self.references[-2], self.references[-1]
        return ((before[0] + after[0]) / 2, (before[1] + after[1]) / 2)

    def print(self) -> None:
        best = max(r[0] for r in self.references)
        low = min(r[0] for r in self.references)
        sodium = max(r[1] for r in self.references)
        print(
            f"raw Ed25519 verify, one core (OpenSSL, the reference): {low:.0f}-{best:.0f}/s over "
            f"{len(self.references)} windows; libsodium (the ledger's verifier) up to {sodium:.0f}/s "
            f"({sodium / best:.2f}x)"
        )
        for line in self.lines:
            if not line.events_per_second:
                print(f"{line.label:52s} {line.details}")
                continue
            eps, (openssl_rate, sodium_rate) = line.events_per_second, line.reference
            print(
                f"{line.label:52s} {eps:8.0f} events/s  ratio {eps / openssl_rate:.2f} (reference {openssl_rate:.0f}/s"
                f" around it; {eps / best:.2f} to the best window; {eps / sodium_rate:.2f} of libsodium's)  "
                f"{line.details}"
            )


def _warm_up(port: int, world: World, tokens: dict[str, str], tag: str) -> None:
    """Untimed: a few journeys and batches, so that the timed runs see the server as it runs all day."""
    load = _single_events(world, tokens, 500, 8, f"W{tag}")
    load.shared, load.connections = _batches(world, tokens, 800, 4, f"W{tag}").shared, 4
    result = _load_in_second_process(port, load)
    if set(result["statuses"]) != {"201"}:
        raise RuntimeError(f"warm-up failed: {result['statuses']}")


def _ingest(report: Report, label: str, port: int, load: Load, per_request: int) -> float:
    """Run a load and return its ratio to the reference measured around it."""
    result = _load_in_second_process(port, load)
    report.measure_reference()
    ok = result["statuses"].get("201", 0) * per_request
    eps = ok / result["seconds"]
    lat = sorted(result["latencies"])
    details = (
        f"p50 {statistics.median(lat) * 1000:.1f} ms  p99 {percentile(lat, 0.99) * 1000:.1f} ms  "
        f"statuses {result['statuses']}"
    )
    reference = report.around_last_run()
    report.lines.append(Line(label, eps, details, reference))
    return eps / reference[0]


def _proof_latency(report: Report, port: int, size: int, samples: int = 2000) -> None:
    import random

    rng = random.Random(7)
    requests = [
        f"GET /v1/log/proof/inclusion?index={rng.randrange(size)}&tree_size={size} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        for _ in range(samples)
    ]
    result = _load_in_second_process(port, Load(streams=[requests]))
    lat = sorted(result["latencies"])
    report.lines.append(
        Line(
            f"GET /v1/log/proof/inclusion at {size}",
            0.0,
            f"p50 {statistics.median(lat) * 1000:.2f} ms  p99 {percentile(lat, 0.99) * 1000:.2f} ms  "
            f"statuses {result['statuses']}",
        )
    )


def _postgres_runs(report: Report, args: argparse.Namespace) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = "chainproof_bench_" + secrets.token_hex(4)
    admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    pg_dir = Path(tempfile.mkdtemp(prefix="chainproof-apibench-pg-"))
    pg_url = make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
    try:
        store, world, tokens = _setup(pg_url, pg_dir)
        store.engine.dispose()
        for workers in (1, 2):
            port = free_port()
            server = _serve(pg_url, pg_dir, port, workers)
            runs = []
            try:
                _warm_up(port, world, tokens, f"P{workers}")
                report.measure_reference()
                for run in range(1 if workers == 1 else args.repeat):
                    label = f"POST /v1/events/batch (100), {workers} worker(s), PG"
                    if workers > 1:
                        label += f", run {run + 1}"
                    load = _batches(world, tokens, args.events * 2, args.batch_connections, f"P{workers}-{run}-")
                    runs.append(_ingest(report, label, port, load, 100))
            finally:
                server.terminate()
                server.wait()
            if len(runs) > 1:
                report.lines.append(
                    Line(
                        f"  2 workers, PG, {len(runs)} runs",
                        0.0,
                        f"ratio best {max(runs):.2f}, median {statistics.median(runs):.2f} (target 0.8)",
                    )
                )
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="events per ingestion run")
    parser.add_argument("--connections", type=int, default=16, help="connections for single-event POSTs")
    parser.add_argument(
        "--batch-connections", type=int, default=8, help="connections for batches (2 workers need requests in flight)"
    )
    parser.add_argument("--proof-size", type=int, default=100_000)
    parser.add_argument("--pg-url", help="PostgreSQL server URL for the 2-worker run (a fresh database is made)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the 2-worker PostgreSQL ingestion")
    parser.add_argument("--pg-only", action="store_true", help="only the PostgreSQL runs (needs --pg-url)")
    parser.add_argument("--load-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_file:
        spec = pickle.loads(Path(args.load_file).read_bytes())
        result = asyncio.run(_run_load(spec["port"], spec["load"]))
        result["statuses"] = {str(k): v for k, v in result["statuses"].items()}
        print(json.dumps(result))
        return

    report = Report()  # each server measures the reference after its warm-up, and again after every run
    if not args.pg_only:
        _sqlite_runs(report, args)
    if args.pg_url:
        _postgres_runs(report, args)
    report.print()


def _sqlite_runs(report: Report, args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="chainproof-apibench-"))
    db_url = default_sqlite_url(data_dir)
    store, world, tokens = _setup(db_url, data_dir)
    port = free_port()
    server = _serve(db_url, data_dir, port, 1)
    try:
        _warm_up(port, world, tokens, "S")
        report.measure_reference()
        _ingest(
            report,
            "POST /v1/events, 1 worker, SQLite",
            port,
            _single_events(world, tokens, args.events, args.connections, "S"),
            1,
        )
        _ingest(
            report,
            "POST /v1/events/batch (100), 1 worker, SQLite",
            port,
            _batches(world, tokens, args.events * 2, args.batch_connections, "B"),
            100,
        )
        missing = args.proof_size - store.size()
        if missing > 0:  # fill directly to reach the proof-latency size
            subs = [world.merchant.submit("origin", "FILL", f"F{n:07d}", origin_data()) for n in range(missing)]
            for k in range(0, len(subs), 1000):
                store.append(subs[k : k + 1000])
        _proof_latency(report, port, store.size())
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
