"""Tiles and witnesses (issue: beyond one server), measured.

    python bench/tiles_bench.py [--entries 20000] [--rounds 5] [--simulate 1000000] [--proofs 10000]

1. On a real log of `--entries` signed entries (SQLite):
   - `tiles publish` as a user runs it (the CLI, start-up included), into an empty directory: entries/s;
   - `chainproof verify --tiles DIR` (every entry and tile level checked, then the full verification): entries/s,
     as a ratio to this machine's single-core Ed25519 reference measured around each run, over `--rounds` runs;
   - one witness round per checkpoint (the issuer's tick: sign, ask, record), with 1 and 3 witnesses, in process
     and over HTTP to local `chainproof witness serve` processes: ms.
2. A simulation at scale: tiles for `--simulate` entries (leaves copied from the real log, so bundles have real
   sizes) written with the same tile code as `tiles publish`, then `--proofs` random inclusion proofs served from
   the files alone, each to a reader with an empty cache behind one shared CDN cache that keeps the immutable
   tiles (the checkpoint it keeps for seconds). Prints proofs/s, tile requests/s, bytes per proof, what it stores,
   and the CDN's hit ratio.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_bench import _setup  # noqa: E402
from bench.audit_cli_bench import CHAINPROOF, run  # noqa: E402
from bench.ledger_bench import raw_verify_rates  # noqa: E402
from bench.workload import append_all, chunks  # noqa: E402
from ledger.cosignature import Cosigner, parse_policy  # noqa: E402
from ledger.files import write_atomically  # noqa: E402
from ledger.hashing import leaf_hash  # noqa: E402
from ledger.merkle import root_of, verify_inclusion  # noqa: E402
from ledger.note import Checkpoint, NoteSigner, parse_note, sign_checkpoint  # noqa: E402
from ledger.signing import generate_private_key  # noqa: E402
from ledger.storage import LedgerStore, default_sqlite_url  # noqa: E402
from ledger.tiles import WIDTH, Tile, TileReader, entry_bundle, parse_path, tile_bytes  # noqa: E402
from ledger.witness import Witness, WitnessState  # noqa: E402
from ledger.witnessing import LogWitnessing  # noqa: E402
from tests.servers import free_port, until_listening  # noqa: E402

SIM_LOG = "bench.example/simulated"


def _real_log(entries: int, data_dir: Path) -> tuple[LedgerStore, str]:
    db_url = default_sqlite_url(data_dir)
    store, world, _tokens = _setup(db_url, data_dir)
    print(f"filling {entries} entries (not timed) ...", file=sys.stderr)
    append_all(store, chunks(world, entries, "TILES"))
    store.issue_checkpoint()
    with store.engine.connect() as conn:  # everything into the database file, none left in its write-ahead log
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    stored = sum(path.stat().st_size for path in data_dir.glob("chainproof.db*"))
    print(f"the SQLite database: {stored / store.size():,.0f} bytes per entry (all tables, indexes)")
    return store, db_url


def publish_and_verify(store: LedgerStore, db_url: str, data_dir: Path, rounds: int) -> None:
    size = store.size()
    log_key = str(store.signer.verifier)
    reference = raw_verify_rates(2.0)[0]
    publish_rates, verify_ratios = [], []
    for round_number in range(rounds):
        out = data_dir / f"tiles-{round_number}"
        wall, cpu = run([CHAINPROOF, "tiles", "publish", "--db", db_url, "--out", str(out)])
        publish_rates.append(size / wall)
        print(f"tiles publish: {size} entries in {wall:.2f} s ({size / wall:,.0f} entries/s, {cpu:.2f} CPU-s)")
        state = data_dir / f"state-{round_number}"
        wall, cpu = run(
            [CHAINPROOF, "verify", "--tiles", str(out), "--log-key", log_key, "--state", str(state), "--format", "json"]
        )
        after = raw_verify_rates(2.0)[0]
        around = (reference + after) / 2
        reference = after
        verify_ratios.append(size / wall / around)
        print(
            f"verify --tiles: {wall:.2f} s, {size / wall:,.0f} entries/s = {size / wall / around:.3f} x the "
            f"reference ({around:,.0f} verifies/s); {cpu:.2f} CPU-s"
        )
        shutil.rmtree(out)
    print(
        f"tiles publish: median {statistics.median(publish_rates):,.0f} entries/s "
        f"(range {min(publish_rates):,.0f}-{max(publish_rates):,.0f})"
    )
    print(
        f"verify --tiles: median {statistics.median(verify_ratios):.3f} x the Ed25519 reference "
        f"(range {min(verify_ratios):.3f}-{max(verify_ratios):.3f}, {rounds} runs)"
    )


def witness_rounds(store: LedgerStore, data_dir: Path, rounds: int = 50) -> None:
    """The issuer's tick when the log grew by one entry: the checkpoint signed and stored, each witness asked
    with a consistency proof, the cosignatures checked and recorded."""
    import httpx

    from bench.workload import journey
    from tests.factory import make_world

    world = make_world(store)

    lots = iter(range(1_000_000))

    def measure(witnessing: LogWitnessing, label: str) -> None:
        witnessing.tick()  # the witnesses learn the log first
        times = []
        for _round in range(rounds):
            store.append(journey(world, "WIT", f"R{next(lots)}")[:1])
            started = time.perf_counter()
            witnessing.tick()
            times.append((time.perf_counter() - started) * 1000)
        print(
            f"witness round, {label}: median {statistics.median(times):.2f} ms "
            f"(p90 {sorted(times)[int(0.9 * len(times))]:.2f} ms, {rounds} rounds)"
        )

    for count in (1, 3):
        witnesses = []
        for n in range(count):
            cosigner = Cosigner(f"bench.example/w{n}", generate_private_key())
            state = WitnessState(data_dir / f"inproc-{count}-{n}")
            witnesses.append((cosigner, Witness(cosigner, {store.origin: [store.signer.verifier]}, state)))
        policy = parse_policy(
            f"log {store.signer.verifier}\n"
            + "".join(f"witness W{n} {c.verifier} http://w{n}.invalid/\n" for n, (c, _w) in enumerate(witnesses))
            + "quorum none\n"
        )
        by_url = {f"http://w{n}.invalid/add-checkpoint": w for n, (_c, w) in enumerate(witnesses)}

        def post(url: str, body: bytes, by_url: dict[str, Witness] = by_url) -> tuple[int, bytes]:
            answer = by_url[url].add_checkpoint(body)
            return answer.status, answer.body

        measure(LogWitnessing(store, policy, post=post), f"{count} witness(es) in process")

    processes, lines = [], []
    (data_dir / "witness.policy").write_text(f"log {store.signer.verifier}\nquorum none\n")
    try:
        for n in range(3):
            key = data_dir / f"w{n}.pem"
            made = subprocess.run(
                [CHAINPROOF, "witness", "keygen", "--name", f"bench.example/http{n}", "--out", str(key)],
                check=True,
                capture_output=True,
                text=True,
            )
            port = free_port()
            command = [CHAINPROOF, "witness", "serve", "--key", str(key), "--port", str(port)]
            command += ["--policy", str(data_dir / "witness.policy"), "--state", str(data_dir / f"http-state-{n}")]
            processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            lines.append(f"witness H{n} {made.stdout.strip()} http://127.0.0.1:{port}\n")
            until_listening(f"http://127.0.0.1:{port}/")
        with httpx.Client() as client:

            def over_http(url: str, body: bytes) -> tuple[int, bytes]:
                response = client.post(url, content=body)
                return response.status_code, response.content

            for count in (1, 3):
                policy = parse_policy(f"log {store.signer.verifier}\n" + "".join(lines[:count]) + "quorum none\n")
                measure(LogWitnessing(store, policy, post=over_http), f"{count} witness(es) over HTTP")
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


class Cdn:
    """A shared cache in front of the tile files: immutable tiles are kept forever once fetched. Counts hits and
    misses, bytes sent, and the time spent serving (reading files, looking up the cache), apart from the
    readers' own work (parsing tiles, hashing proofs)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[str, bytes] = {}
        self.hits = {"hashes": 0, "entries": 0}
        self.misses = {"hashes": 0, "entries": 0}
        self.sent = {"hashes": 0, "entries": 0}
        self.serving_s = 0.0

    def fetch(self, path: str) -> bytes:
        started = time.perf_counter()
        kind = "entries" if path.startswith("tile/entries/") else "hashes"
        data = self.cache.get(path)
        if data is None:
            self.misses[kind] += 1
            data = (self.root / path).read_bytes()
            self.cache[path] = data
        else:
            self.hits[kind] += 1
        self.sent[kind] += len(data)
        self.serving_s += time.perf_counter() - started
        return data


def simulate(sample: list[bytes], entries: int, proofs: int, out: Path) -> None:
    print(f"simulation: tiles for {entries:,} entries ...", file=sys.stderr)
    started = time.perf_counter()
    level_hashes: list[bytes] = []
    files = stored = 0
    leaves_total = 0
    for first in range(0, entries, WIDTH):
        width = min(WIDTH, entries - first)
        leaves = [sample[(first + i) % len(sample)] for i in range(width)]
        hashes = [leaf_hash(leaf) for leaf in leaves]
        for data, tile in (
            (entry_bundle(leaves, first), Tile(None, first // WIDTH, width)),
            (tile_bytes(hashes), Tile(0, first // WIDTH, width)),
        ):
            write_atomically(out / tile.path, data)
            files, stored = files + 1, stored + len(data)
        leaves_total += sum(len(leaf) for leaf in leaves)
        if width == WIDTH:
            level_hashes.append(root_of(hashes))
    current, level = level_hashes, 1  # the hashes of level `level`: perfect subtrees of height 8*level
    while current:
        for first in range(0, len(current), WIDTH):
            chunk = current[first : first + WIDTH]
            write_atomically(out / Tile(level, first // WIDTH, len(chunk)).path, tile_bytes(chunk))
            files, stored = files + 1, stored + 32 * len(chunk)
        current = [root_of(current[i : i + WIDTH]) for i in range(0, len(current) - WIDTH + 1, WIDTH)]
        level += 1
    written_s = time.perf_counter() - started
    reader = TileReader(lambda path: (out / path).read_bytes(), entries)
    root = reader.root()
    note = sign_checkpoint(Checkpoint(SIM_LOG, entries, root), NoteSigner(SIM_LOG, generate_private_key()))
    (out / "checkpoint").write_text(note)
    print(
        f"simulation: {entries:,} entries, {files:,} files, {stored / 1e9:.2f} GB "
        f"({stored / entries:.0f} bytes per entry, of which entries {leaves_total / entries:.0f}), "
        f"written in {written_s:.1f} s ({entries / written_s:,.0f} entries/s)"
    )
    cdn = Cdn(out)
    rng = random.Random(1)
    checked = Checkpoint.parse_body(parse_note((out / "checkpoint").read_text()).text)
    started = time.perf_counter()
    proof_bytes, bundle_bytes = [], []
    for _ in range(proofs):
        index = rng.randrange(entries)
        before = dict(cdn.sent)
        shopper = TileReader(cdn.fetch, checked.size)  # a browser with an empty cache
        proof = shopper.inclusion_proof(index)
        leaf = shopper.entries(index, index + 1)[0]
        verify_inclusion(index, checked.size, leaf_hash(leaf), proof, checked.root_hash)
        proof_bytes.append(cdn.sent["hashes"] - before["hashes"])
        bundle_bytes.append(cdn.sent["entries"] - before["entries"])
    readers_s = time.perf_counter() - started
    requests = {kind: cdn.hits[kind] + cdn.misses[kind] for kind in cdn.hits}
    total = sum(requests.values())
    print(
        f"simulation: {proofs:,} random inclusion proofs, each with its entry, from the tile files alone: "
        f"{total / proofs:.1f} requests per proof ({requests['hashes'] / proofs:.1f} hash tiles, 1 entry bundle)"
    )
    print(
        f"simulation: serving {total / cdn.serving_s:,.0f} tile requests/s on one core (file reads and cache); "
        f"the readers built and checked {proofs / readers_s:,.0f} proofs/s on one core (Python)"
    )
    print(
        f"simulation: bytes per proof to a reader with no cache: median {statistics.median(proof_bytes) / 1024:.1f} "
        f"KiB of hash tiles, plus {statistics.median(bundle_bytes) / 1024:.1f} KiB for the entry's bundle"
    )
    for kind in ("hashes", "entries"):
        print(
            f"simulation: CDN hit ratio, {'hash tiles' if kind == 'hashes' else 'entry bundles'}: "
            f"{cdn.hits[kind] / requests[kind]:.3f} ({cdn.misses[kind]:,} of {requests[kind]:,} reached the files)"
        )
    print(f"simulation: CDN hit ratio, all requests: {sum(cdn.hits.values()) / total:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--simulate", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=10_000)
    parser.add_argument("--skip-real", action="store_true", help="only the simulation")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="chainproof-tilesbench-"))
    try:
        store, db_url = _real_log(args.entries, data_dir)
        if not args.skip_real:
            if args.rounds:
                publish_and_verify(store, db_url, data_dir, args.rounds)
            witness_rounds(store, data_dir)
        sample = TileReader(lambda path: store.tile(parse_path(path)), store.size()).entries(0, min(store.size(), 4096))
        simulate(sample, args.simulate, args.proofs, data_dir / "simulated")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
