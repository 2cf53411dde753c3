"""Prints the score of the last `mutmut run` (make mutate): killed mutants over all that were tested, and the
survivors by name (`mutmut show NAME` prints one)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    mutmut = str(Path(sys.executable).parent / "mutmut")
    subprocess.run([mutmut, "export-cicd-stats"], cwd=ROOT, check=False, capture_output=True)
    stats_file = ROOT / "mutants" / "mutmut-cicd-stats.json"
    if not stats_file.exists():
        print("no mutation results: run `make mutate` (mutmut run) first")
        sys.exit(2)
    stats = json.loads(stats_file.read_text())
    killed, survived = stats.get("killed", 0), stats.get("survived", 0)
    timeouts, suspicious = stats.get("timeout", 0), stats.get("suspicious", 0)
    tested = killed + survived + timeouts + suspicious
    results = subprocess.run([mutmut, "results"], cwd=ROOT, capture_output=True, text=True, check=False).stdout
    survivors = [line.split(":")[0].strip() for line in results.splitlines() if "survived" in line]
    for name in survivors:
        print(f"survived: {name}")
    score = (killed + timeouts) / tested if tested else 0.0
    print(
        f"mutation score: {score:.1%} ({killed} killed, {timeouts} timed out, {survived} survived, "
        f"{suspicious} suspicious, of {tested}; {stats.get('no_tests', 0)} not covered by the selected tests)"
    )


if __name__ == "__main__":
    main()
