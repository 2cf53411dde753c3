"""Product page benchmark: render latency (p50/p99) on a ledger of N entries in batches of ten events, and pages/s
on one worker (real uvicorn on 127.0.0.1, load from a second process). Target (issue #5): p99 < 50 ms.

    python bench/page_bench.py [--entries 100000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_bench import Load, _load_in_second_process, _serve, _setup  # noqa: E402
from bench.ledger_bench import percentile  # noqa: E402
from bench.workload import append_all, chunks  # noqa: E402
from ledger.storage import default_sqlite_url  # noqa: E402
from tests.servers import free_port  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="chainproof-pagebench-"))
    db_url = default_sqlite_url(data_dir)
    store, world, _tokens = _setup(db_url, data_dir)
    print(f"filling {args.entries} entries (not timed) ...", file=sys.stderr)
    append_all(store, chunks(world, args.entries, "PAGE", gtin="4006381333931"))
    store.engine.dispose()
    lots = args.entries // 10
    rng = random.Random(5)
    paths = [f"/01/04006381333931/10/L{rng.randrange(lots):07d}?shipment=S1" for _ in range(args.samples)]
    port = free_port()
    server = _serve(db_url, data_dir, port, 1)
    try:
        requests = [f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in paths]
        _load_in_second_process(port, Load(streams=[requests[:50]]))  # warm up
        result = _load_in_second_process(port, Load(streams=[requests]))
        lat = sorted(result["latencies"])
        print(
            f"product page at {store.size()} entries, one connection: p50 {statistics.median(lat) * 1000:.1f} ms  "
            f"p99 {percentile(lat, 0.99) * 1000:.1f} ms (target p99 < 50 ms)  statuses {result['statuses']}"
        )
        for connections in (1, 2, 4, 8):
            streams = [requests[k::connections] for k in range(connections)]
            result = _load_in_second_process(port, Load(streams=streams))
            print(
                f"product pages/s, one worker, {connections} connection(s): {len(requests) / result['seconds']:.0f}  "
                f"statuses {result['statuses']}"
            )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
