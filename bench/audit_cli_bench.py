"""The auditor's commands as a user runs them: `chainproof verify --db` and `chainproof verify --bundle` over a
ledger of N entries (default 100,000), start-up included, against this machine's single-core OpenSSL Ed25519
rate measured just before and after each run.

    python bench/audit_cli_bench.py [--entries 100000] [--rounds 5]

Prints, per run: wall time, entries/s, the ratio to the reference around it, and the CPU all processes used
(from /proc/stat: the signature workers are not the command's children, so `time` does not count them); then the
median ratio and its range. Target (issue: safe for operators): at least 1.6x, with both cores busy.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_bench import _setup  # noqa: E402
from bench.ledger_bench import raw_verify_rates  # noqa: E402
from bench.workload import append_all, chunks  # noqa: E402
from ledger.storage import default_sqlite_url  # noqa: E402

CHAINPROOF = str(Path(sys.executable).parent / "chainproof")


def busy_cpu_seconds() -> float:
    """CPU time spent by every process on the machine so far (user, nice, system), in seconds."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return (int(fields[0]) + int(fields[1]) + int(fields[2])) / 100


def run(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of all processes) of one command, which must succeed."""
    cpu, start = busy_cpu_seconds(), time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start, busy_cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="chainproof-auditbench-"))
    db_url = default_sqlite_url(data_dir)
    store, world, _tokens = _setup(db_url, data_dir)
    print(f"filling {args.entries} entries (not timed) ...", file=sys.stderr)
    append_all(store, chunks(world, args.entries, "AUDIT"))
    store.issue_checkpoint()
    log_key = str(store.signer.verifier)
    store.engine.dispose()
    bundle = data_dir / "ledger.cpb"
    subprocess.run(
        [CHAINPROOF, "export", "--db", db_url, "--log-key", log_key, "--out", str(bundle)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    commands = {
        "verify --db": [CHAINPROOF, "verify", "--db", db_url],
        "verify --bundle": [CHAINPROOF, "verify", "--bundle", str(bundle)],
    }
    ratios: dict[str, list[float]] = {name: [] for name in commands}
    reference = raw_verify_rates(2.0)[0]
    for round_number in range(args.rounds):
        for name, command in commands.items():
            state = data_dir / f"state-{round_number}-{name[-2:]}"
            wall, cpu = run([*command, "--log-key", log_key, "--state", str(state), "--format", "json"])
            after = raw_verify_rates(2.0)[0]
            around = (reference + after) / 2
            reference = after
            rate = args.entries / wall
            ratios[name].append(rate / around)
            print(
                f"{name:<16} {wall:5.2f} s  {rate:7.0f} entries/s  {rate / around:.2f}x the reference "
                f"({around:.0f}/s)  CPU of all processes {cpu:.1f} s ({cpu / wall:.2f} cores)"
            )
    for name, values in ratios.items():
        print(
            f"{name}: median {statistics.median(values):.2f}x the single-core OpenSSL rate "
            f"(range {min(values):.2f}-{max(values):.2f}, {len(values)} runs; target >= 1.6x)"
        )


if __name__ == "__main__":
    main()
