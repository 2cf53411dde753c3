"""CLI start-up: wall time of `chainproof --help` and of `chainproof record --help`, median of 10 runs after a
warm-up (issue: everyday use; target under 0.3 s). `python -X importtime -c "import cli.main"` shows what a start
imports.

    python bench/startup_bench.py [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHAINPROOF = str(Path(sys.executable).parent / "chainproof")


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    for command in ([CHAINPROOF, "--help"], [CHAINPROOF, "record", "--help"], [CHAINPROOF, "verify", "--help"]):
        wall(command)  # warm-up: the page cache, compiled bytecode
        times = sorted(wall(command) for _ in range(args.runs))
        print(
            f"{' '.join(['chainproof', *command[1:]]):<26} median {statistics.median(times) * 1000:.0f} ms "
            f"(range {times[0] * 1000:.0f}-{times[-1] * 1000:.0f}, {args.runs} runs; target < 300 ms)"
        )


if __name__ == "__main__":
    main()
