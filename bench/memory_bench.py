"""Does `chainproof verify --bundle` stream? Builds ledgers of N entries, exports each to a bundle and verifies it
in a fresh process, printing the peak memory (max RSS) for each size: flat means streaming.

    python bench/memory_bench.py [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.workload import append_all, chunks  # noqa: E402
from cli.audit import Snapshot, write_export  # noqa: E402
from ledger.logkey import load_or_create_log_signer  # noqa: E402
from ledger.storage import LedgerStore, create_db_engine, default_sqlite_url, migrate  # noqa: E402
from tests.factory import make_world  # noqa: E402


def build(size: int, directory: Path) -> Path:
    engine = create_db_engine(default_sqlite_url(directory))
    migrate(engine)
    store = LedgerStore(engine, load_or_create_log_signer(directory / "log-key.pem", "bench.chainproof/log"))
    world = make_world(store)
    append_all(store, chunks(world, size, "MEM"))
    note = store.issue_checkpoint()
    bundle = directory / "ledger.cpb"
    snapshot = Snapshot(
        store.signer.verifier, note, store.registrations(0, store.size()), store.size(), store.iter_entries()
    )
    write_export(snapshot, bundle)
    return bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    args = parser.parse_args()
    chainproof = Path(sys.executable).parent / "chainproof"
    for size in (int(s) for s in args.sizes.split(",")):
        directory = Path(tempfile.mkdtemp(prefix="chainproof-mem-"))
        bundle = build(size, directory)
        command = [str(chainproof), "verify", "--bundle", str(bundle), "--state", str(directory / "state")]
        # GNU time reports the verifier's own peak: getrusage(RUSAGE_CHILDREN) would count the pages a forked
        # child shares with this (large) process before it execs.
        timed = ["/usr/bin/time", "-f", "%M", *command, "--format", "json"]
        start = time.perf_counter()
        result = subprocess.run(timed, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        peak_kib = int(result.stderr.strip().splitlines()[-1])
        print(
            f"verify --bundle of {size:>8} entries: exit {result.returncode}, {size / seconds:7.0f} entries/s, "
            f"peak RSS {peak_kib / 1024:.0f} MiB, bundle {bundle.stat().st_size / 2**20:.0f} MiB"
        )


if __name__ == "__main__":
    main()
