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


def test_record_imports_only_what_it_sends_with() -> None:
    """`record` needs the HTTP client, signing and the event models, not httpx's own command line (rich, click,
    pygments: a fifth of a start) nor the country list before an origin names a country; and the event models
    build their validators when first used, not all at import."""
    probe = (
        "import json, sys\n"
        "import cli.client, cli.record, ledger.events\n"
        "built = [m.__name__ for m in (ledger.events.ShipmentData, ledger.events.RecallData)"
        " if m.__pydantic_complete__]\n"
        "ledger.events.validate_statement({'v': 1, 'type': 'recall', 'sku': 'A', 'lot': 'B', 'actor': 'act_1',"
        " 'key_id': '0' * 16, 'signed_at': '2026-11-30T00:00:00Z', 'data': {'reason': 'x'}})\n"
        "print(json.dumps({'loaded': [m for m in ('rich', 'pygments', 'click', 'pycountry') if m in sys.modules],"
        " 'built_at_import': built, 'recall_built': ledger.events.RecallData.__pydantic_complete__}),"
        " file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    seen = json.loads(done.stderr.strip().splitlines()[-1])
    assert seen == {"loaded": [], "built_at_import": [], "recall_built": True}, done.stderr[-2000:]
