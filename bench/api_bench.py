"""HTTP API benchmark: real uvicorn on 127.0.0.1, bounded load from a second process.

    python bench/api_bench.py [--events N] [--pg-url URL]

Prints events/s for single-event POSTs and for /v1/events/batch of 100, p50/p99 latency of
GET /v1/log/proof/inclusion at 100k entries, and, given --pg-url, batch ingestion with 2 workers on PostgreSQL;
each as a ratio to this machine's single-core Ed25519 verify rate measured in the same run. Asserts nothing.
Targets (issue #3): batch >= 0.45 x, single >= 1,000/s, 2 workers on PostgreSQL >= 0.8 x.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ledger_bench import percentile, raw_verify_rates  # noqa: E402
from bench.workload import journey  # noqa: E402
from ledger.logkey import load_or_create_log_signer  # noqa: E402
from ledger.storage import LedgerStore, Submission, create_db_engine, default_sqlite_url, migrate  # noqa: E402
from tests.factory import World, make_world, origin_data  # noqa: E402
from tests.servers import listening_sockets  # noqa: E402

LOG_NAME = "bench.chainproof/log"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


async def _run_load(port: int, streams: list[list[bytes]]) -> dict[str, Any]:
    """One keep-alive connection per stream; each sends its requests in order, waiting for each answer."""
    statuses: dict[int, int] = {}
    latencies: list[float] = []

    async def worker(requests: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for request in requests:
            start = time.perf_counter()
            writer.write(request)
            status, _body = await _read_response(reader)
            latencies.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(s) for s in streams))
    return {"seconds": time.perf_counter() - start, "statuses": statuses, "latencies": latencies}


def _load_in_second_process(port: int, streams: list[list[bytes]]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as handle:
        pickle.dump({"port": port, "streams": streams}, handle)
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


def _serve(db_url: str, data_dir: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, CHAINPROOF_DATA_DIR=str(data_dir), CHAINPROOF_LOG_NAME=LOG_NAME)
    chainproof = Path(sys.executable).parent / "chainproof"
    process = subprocess.Popen(
        [
            str(chainproof),
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
        env=env,
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


def _setup(db_url: str, data_dir: Path) -> tuple[LedgerStore, World, dict[str, str]]:
    engine = create_db_engine(db_url)
    migrate(engine)
    store = LedgerStore(engine, load_or_create_log_signer(data_dir / "log-key.pem", LOG_NAME))
    world = make_world(store)
    parties = [world.merchant, world.inspector, world.carrier, world.second_carrier, world.admin]
    tokens = {p.id: store.issue_token(p.id) for p in parties}
    return store, world, tokens


def _single_streams(world: World, tokens: dict[str, str], events: int, connections: int, tag: str) -> list[list[bytes]]:
    streams: list[list[bytes]] = [[] for _ in range(connections)]
    for n in range(events // 10):
        stream = streams[n % connections]
        for sub in journey(world, "BENCH", f"{tag}{n:07d}"):
            stream.append(_request("/v1/events", tokens[sub.statement["actor"]], _body(sub)))
    return streams


def _batch_streams(world: World, tokens: dict[str, str], events: int, connections: int, tag: str) -> list[list[bytes]]:
    """Batches of 100 sent with the admin's token... no: each batch is one actor's 100 events (10 origins x 10)."""
    streams: list[list[bytes]] = [[] for _ in range(connections)]
    merchant = world.merchant
    for n in range(events // 100):
        payload = {
            "events": [
                _body(merchant.submit("origin", "BATCH", f"{tag}{n:06d}-{k:03d}", origin_data())) for k in range(100)
            ]
        }
        streams[n % connections].append(_request("/v1/events/batch", tokens[merchant.id], payload))
    return streams


def _ingest(label: str, port: int, streams: list[list[bytes]], per_request: int, rates: tuple[float, float]) -> float:
    result = _load_in_second_process(port, streams)
    ok = result["statuses"].get("201", 0) * per_request
    eps = ok / result["seconds"]
    lat = sorted(result["latencies"])
    print(
        f"{label:44s} {eps:8.0f} events/s  (ratio {eps / rates[0]:.2f}; {eps / rates[1]:.2f} of libsodium's)  "
        f"p50 {statistics.median(lat) * 1000:.1f} ms  "
        f"p99 {percentile(lat, 0.99) * 1000:.1f} ms  statuses {result['statuses']}"
    )
    return eps


def _proof_latency(port: int, size: int, samples: int = 2000) -> None:
    import random

    rng = random.Random(7)
    requests = [
        f"GET /v1/log/proof/inclusion?index={rng.randrange(size)}&tree_size={size} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        for _ in range(samples)
    ]
    result = _load_in_second_process(port, [requests])
    lat = sorted(result["latencies"])
    print(
        f"GET /v1/log/proof/inclusion at {size:>7}:       p50 {statistics.median(lat) * 1000:.2f} ms  "
        f"p99 {percentile(lat, 0.99) * 1000:.2f} ms  statuses {result['statuses']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="events per ingestion run")
    parser.add_argument("--connections", type=int, default=16, help="connections for single-event POSTs")
    parser.add_argument(
        "--batch-connections", type=int, default=8, help="connections for batches (2 workers need requests in flight)"
    )
    parser.add_argument("--proof-size", type=int, default=100_000)
    parser.add_argument("--pg-url", help="PostgreSQL server URL for the 2-worker run (a fresh database is made)")
    parser.add_argument("--load-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_file:
        spec = pickle.loads(Path(args.load_file).read_bytes())
        result = asyncio.run(_run_load(spec["port"], spec["streams"]))
        result["statuses"] = {str(k): v for k, v in result["statuses"].items()}
        print(json.dumps(result))
        return

    rate = raw_verify_rates()
    print(f"raw Ed25519 verify, one core:                 {rate[0]:8.0f} /s   (OpenSSL, the reference: ratio 1.00)")
    print(f"  libsodium (the ledger's verifier):          {rate[1]:8.0f} /s   (ratio {rate[1] / rate[0]:.2f})")
    data_dir = Path(tempfile.mkdtemp(prefix="chainproof-apibench-"))
    db_url = default_sqlite_url(data_dir)
    store, world, tokens = _setup(db_url, data_dir)
    port = _free_port()
    server = _serve(db_url, data_dir, port, 1)
    try:
        _ingest(
            "POST /v1/events, 1 worker, SQLite",
            port,
            _single_streams(world, tokens, args.events, args.connections, "S"),
            1,
            rate,
        )
        _ingest(
            "POST /v1/events/batch (100), 1 worker, SQLite",
            port,
            _batch_streams(world, tokens, args.events * 2, args.batch_connections, "B"),
            100,
            rate,
        )
        missing = args.proof_size - store.size()
        if missing > 0:  # fill directly to reach the proof-latency size
            subs = [world.merchant.submit("origin", "FILL", f"F{n:07d}", origin_data()) for n in range(missing)]
            for k in range(0, len(subs), 1000):
                store.append(subs[k : k + 1000])
        _proof_latency(port, store.size())
    finally:
        server.terminate()
        server.wait()

    if args.pg_url:
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
                port = _free_port()
                server = _serve(pg_url, pg_dir, port, workers)
                try:
                    _ingest(
                        f"POST /v1/events/batch (100), {workers} worker(s), PG",
                        port,
                        _batch_streams(world, tokens, args.events * 2, args.batch_connections, f"P{workers}"),
                        100,
                        rate,
                    )
                finally:
                    server.terminate()
                    server.wait()
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
