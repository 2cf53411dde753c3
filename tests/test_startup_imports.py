"""What a command's start imports: the CLI starts in a fraction of a second only if the heavy libraries (the HTTP
client, the database stack, numpy, cryptography, pydantic's models of the ledger) are imported by the commands
that use them, not by every start. `chainproof sla` once imported the HTTP client at start: 0.24 s on every
command. Measured in bench/startup_bench.py; asserted here by what is imported, never by time."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("httpx", "sqlalchemy", "numpy", "cryptography", "matplotlib", "ledger.events", "ledger.storage", "fastapi")


@pytest.mark.parametrize("args", [["--help"], ["record", "--help"], ["sla", "report", "--help"], ["verify", "--help"]])
def test_help_imports_none_of_the_heavy_libraries(args: list[str]) -> None:
    probe = (
        "import json, sys\n"
        f"sys.argv = ['chainproof', *{args!r}]\n"
        "from cli.main import app\n"
        "try:\n"
        "    app()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    assert loaded == [], f"chainproof {' '.join(args)} imported {loaded} at start"
