"""The auditor's commands of two versions, interleaved: `chainproof verify --db` and `--bundle` of this checkout
and of an earlier revision, each over a ledger of N entries that its own version built, start-up included; each
run's rate divided by this machine's single-core OpenSSL Ed25519 rate measured around it.

    python bench/versions_bench.py --before 36dc418 [--entries 100000] [--rounds 5]

The earlier revision is checked out in a git worktree with a virtualenv of its own (`make .venv/.installed`).
Prints every run, then per command each version's median ratio and the per-round ratio after/before with its
range. Used for the identities issue: verification with who may sign derived from the log within 5% of the
version that took a directory (measured: verify --db 0.98, range 0.91-1.06; --bundle 0.99, 0.98-1.06).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.audit_cli_bench import run  # noqa: E402
from bench.ledger_bench import raw_verify_rates  # noqa: E402

# Run by each version's own interpreter in its own checkout: builds a ledger and a bundle, prints where they are.
_BUILD = """
import json, subprocess, sys, tempfile
from pathlib import Path
sys.path.insert(0, ".")
from bench.api_bench import _setup
from bench.workload import append_all, chunks
from ledger.storage import default_sqlite_url
data_dir = Path(tempfile.mkdtemp(prefix="chainproof-versions-"))
db_url = default_sqlite_url(data_dir)
store, world, _tokens = _setup(db_url, data_dir)
append_all(store, chunks(world, int(sys.argv[1]), "AUDIT"))
store.issue_checkpoint()
key = str(store.signer.verifier)
store.engine.dispose()
chainproof = str(Path(sys.executable).parent / "chainproof")
bundle = data_dir / "ledger.cpb"
subprocess.run([chainproof, "export", "--db", db_url, "--log-key", key, "--out", str(bundle)], check=True,
               stdout=subprocess.DEVNULL)
print(json.dumps({"chainproof": chainproof, "db": db_url, "bundle": str(bundle), "key": key, "dir": str(data_dir)}))
"""


def build(checkout: Path, entries: int) -> dict[str, str]:
    print(f"building {entries} entries with {checkout} (not timed) ...", file=sys.stderr)
    python = str(checkout / ".venv" / "bin" / "python")
    out = subprocess.run([python, "-c", _BUILD, str(entries)], cwd=checkout, check=True, capture_output=True, text=True)
    built: dict[str, str] = json.loads(out.stdout.strip().splitlines()[-1])
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the earlier revision (any git revision)")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    earlier = Path(tempfile.mkdtemp(prefix="chainproof-before-")) / "checkout"
    subprocess.run(["git", "worktree", "add", "--detach", str(earlier), args.before], cwd=ROOT, check=True)
    try:
        subprocess.run(["make", ".venv/.installed"], cwd=earlier, check=True, stdout=subprocess.DEVNULL)
        sides = {"before": build(earlier, args.entries), "after": build(ROOT, args.entries)}
        ratios: dict[tuple[str, str], list[float]] = {}
        reference = raw_verify_rates(2.0)[0]
        for round_number in range(args.rounds):
            for source in ("db", "bundle"):
                for name, side in sides.items():
                    where = ["--db", side["db"]] if source == "db" else ["--bundle", side["bundle"]]
                    state = f"{side['dir']}/state-{round_number}-{source}"
                    command = [side["chainproof"], "verify", *where, "--log-key", side["key"], "--state", state]
                    wall, _cpu = run([*command, "--format", "json"])
                    after = raw_verify_rates(2.0)[0]
                    ratio = args.entries / wall / ((reference + after) / 2)
                    reference = after
                    ratios.setdefault((source, name), []).append(ratio)
                    print(f"verify --{source:<7} {name:<6} {wall:6.2f} s  {ratio:.2f}x the reference", flush=True)
        for source in ("db", "bundle"):
            before, after_ratios = ratios[(source, "before")], ratios[(source, "after")]
            per_round = [a / b for a, b in zip(after_ratios, before, strict=True)]
            print(
                f"verify --{source}: before {statistics.median(before):.2f}x, after "
                f"{statistics.median(after_ratios):.2f}x; after/before median {statistics.median(per_round):.3f} "
                f"(range {min(per_round):.3f}-{max(per_round):.3f}, {len(per_round)} rounds)"
            )
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(earlier)], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
