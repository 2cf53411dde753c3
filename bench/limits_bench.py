"""What rate limiting and the hostile-input checks cost (issue 10: at most 5% of batch ingest or page throughput).

    python bench/limits_bench.py [--rounds 5] [--events 5000] [--pages 1000] [--baseline REV]

Servers, each `chainproof serve` with one worker on SQLite and a ledger of its own, run side by side:
- `on`: this code, rate limits on (limits raised so that nothing is refused: every request is still counted);
- `off`: this code, rate limits off;
- `base` (with --baseline REV): the code of an older revision (a git worktree), without this issue's checks.
In each round every server takes the same load in turn, in a rotating order: batch ingest (requests of 100 new
origins over 8 connections) and product pages (GET /p/... over 4 connections). The machine's speed drifts by more
than 5% within a run, so each round compares servers measured moments apart: per round, on/off and off/base ratios
of throughput and of the server's CPU time per event or page (user + system, from /proc: less sensitive to what
else the machine does); printed as the median over rounds with their range. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_bench import Load, _batches, _load_in_second_process, _serve, _setup, _warm_up  # noqa: E402
from ledger.storage import default_sqlite_url  # noqa: E402
from tests.factory import World  # noqa: E402
from tests.servers import free_port  # noqa: E402

_COUNTED_NOT_REFUSED = {
    "CHAINPROOF_RATE_LIMITS": "on",
    "CHAINPROOF_RATE_LIMIT_WRITES": "1000000/minute",
    "CHAINPROOF_RATE_LIMIT_PAGES": "1000000/minute",
}


@dataclass
class Variant:
    name: str
    port: int
    world: World
    tokens: dict[str, str]
    server: subprocess.Popen[bytes]
    ingest: list[float] = field(default_factory=list)  # events/s per round
    pages: list[float] = field(default_factory=list)  # pages/s per round
    ingest_cpu: list[float] = field(default_factory=list)  # server CPU µs per event, per round
    pages_cpu: list[float] = field(default_factory=list)  # server CPU µs per page, per round


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start(name: str, env: dict[str, str], code: Path | None) -> Variant:
    data_dir = Path(tempfile.mkdtemp(prefix=f"chainproof-limitsbench-{name}-"))
    db_url = default_sqlite_url(data_dir)
    if code is not None:  # the older revision makes its own schema; the parties are rows both revisions share
        subprocess.run(
            [sys.executable, "-c", "from cli.main import main; main()", "db", "upgrade", "--db", db_url],
            cwd=code,
            env={"PYTHONPATH": str(code), "PATH": "/usr/bin:/bin", "CHAINPROOF_DATA_DIR": str(data_dir)},
            check=True,
            capture_output=True,
        )
    store, world, tokens = _setup(db_url, data_dir, schema_ready=code is not None)
    store.engine.dispose()
    port = free_port()
    server = _serve(db_url, data_dir, port, 1, env=env, code=code)
    _warm_up(port, world, tokens, name)  # also records the journeys whose pages are loaded below
    return Variant(name, port, world, tokens, server)


def _round(variant: Variant, number: int, events: int, pages: int) -> None:
    load = _batches(variant.world, variant.tokens, events, 8, f"R{number}-")
    cpu = _cpu_seconds(variant.server.pid)
    result = _load_in_second_process(variant.port, load)
    variant.ingest_cpu.append((_cpu_seconds(variant.server.pid) - cpu) / events * 1e6)
    if set(result["statuses"]) != {"201"}:
        raise RuntimeError(f"{variant.name}: ingest answered {result['statuses']}")
    variant.ingest.append(events / result["seconds"])
    paths = [f"/p/BENCH/W{variant.name}{n % 50:07d}" for n in range(pages)]
    requests = [f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in paths]
    cpu = _cpu_seconds(variant.server.pid)
    result = _load_in_second_process(variant.port, Load(streams=[requests[k::4] for k in range(4)]))
    variant.pages_cpu.append((_cpu_seconds(variant.server.pid) - cpu) / pages * 1e6)
    if set(result["statuses"]) != {"200"}:
        raise RuntimeError(f"{variant.name}: pages answered {result['statuses']}")
    variant.pages.append(pages / result["seconds"])


def _ratios(numerator: list[float], denominator: list[float]) -> str:
    ratios = [a / b for a, b in zip(numerator, denominator, strict=True)]
    return f"median {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f}, {len(ratios)} rounds)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", type=int, default=5000, help="events per ingest run (batches of 100)")
    parser.add_argument("--pages", type=int, default=1000, help="product pages per page run")
    parser.add_argument("--baseline", help="git revision to compare with (e.g. the commit before issue 10's work)")
    args = parser.parse_args()
    worktree: Path | None = None
    if args.baseline:
        worktree = Path(tempfile.mkdtemp(prefix="chainproof-baseline-")) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(worktree), args.baseline], check=True
        )
    variants: list[Variant] = []
    try:
        variants.append(_start("on", _COUNTED_NOT_REFUSED, None))
        variants.append(_start("off", {}, None))
        if worktree is not None:
            variants.append(_start("base", {}, worktree))
        for number in range(args.rounds):
            shift = number % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                _round(variant, number, args.events, args.pages)
        for variant in variants:
            print(
                f"{variant.name:5s} ingest {statistics.median(variant.ingest):7.0f} events/s, "
                f"{statistics.median(variant.ingest_cpu):5.0f} µs server CPU/event;  pages "
                f"{statistics.median(variant.pages):6.0f}/s, {statistics.median(variant.pages_cpu):6.0f} µs CPU/page"
                f"   (medians of {args.rounds} rounds)"
            )
        by_name = {v.name: v for v in variants}
        pairs = [("rate limits on / off", by_name["on"], by_name["off"])]
        if "base" in by_name:
            pairs += [
                (f"this code, limits off / {args.baseline}", by_name["off"], by_name["base"]),
                (f"this code, limits on / {args.baseline}", by_name["on"], by_name["base"]),
            ]
        print("throughput ratios (above 1: faster) and server CPU ratios (below 1: cheaper), per round:")
        for label, a, b in pairs:
            print(f"{label}:")
            print(
                f"   ingest throughput {_ratios(a.ingest, b.ingest)};  CPU/event {_ratios(a.ingest_cpu, b.ingest_cpu)}"
            )
            print(f"   pages  throughput {_ratios(a.pages, b.pages)};  CPU/page  {_ratios(a.pages_cpu, b.pages_cpu)}")
    finally:
        for variant in variants:
            variant.server.terminate()
            variant.server.wait()
        if worktree is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)], check=False)


if __name__ == "__main__":
    main()
