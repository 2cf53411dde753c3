"""The in-browser verifier (api/static/verify.js) under Node: the shared RFC 9162, signed-note and Wycheproof
vectors, and batches built here by the Python side, genuine and tampered, with the same verdicts."""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from api.pages.view import batch_view
from ledger.storage import LedgerStore
from tests.factory import World

HERE = Path(__file__).parent
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed: the JS verifier tests skip")


def _flip(leaf_b64: str, old: bytes, new: bytes) -> str:
    leaf = base64.b64decode(leaf_b64)
    assert old in leaf
    return base64.b64encode(leaf.replace(old, new)).decode()


def test_js_verifier(world: World, tmp_path: Path) -> None:
    store: LedgerStore = world.store
    store.append(world.journey("JS", "1", shipments=2))
    store.append(world.journey("JS", "2"))
    view = batch_view(store, "JS", "1")
    assert view.report.ok
    genuine = view.browser_data(str(store.signer.verifier))
    indices = [e["index"] for e in genuine["entries"]]

    edited = copy.deepcopy(genuine)  # a handoff's place changed: its signature and inclusion fail
    edited["entries"][3]["leaf"] = _flip(edited["entries"][3]["leaf"], b"Djibouti", b"Djibouty")
    withheld = copy.deepcopy(genuine)  # an entry left out: the next one no longer links
    del withheld["entries"][2]
    wrong_proof = copy.deepcopy(genuine)
    wrong_proof["entries"][0]["proof"] = wrong_proof["entries"][1]["proof"]
    other_key = copy.deepcopy(genuine)  # the checkpoint is not signed by the pinned key
    other_key["log_key"] = str(world.store.signer.verifier).replace(world.store.signer.name, "other.example/log")

    cases = {
        "batches": {"genuine": genuine, "edited": edited, "withheld": withheld, "wrong_proof": wrong_proof},
        "expect": {
            "genuine": [],
            "edited": [indices[3], indices[3], indices[4]],  # and the next entry no longer links to it
            "withheld": [indices[3]],
            "wrong_proof": [indices[0]],
        },
    }
    path = tmp_path / "batches.json"
    path.write_text(json.dumps(cases))
    env = dict(os.environ, CHAINPROOF_JS_BATCH=str(path))
    result = subprocess.run([NODE, "--test", str(HERE / "js")], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
    # a log key whose hash does not match its name is refused before anything else
    check = subprocess.run(
        [
            NODE,
            "--input-type=module",
            "-e",
            f"import {{verifyBatch}} from '{HERE.parent / 'api/static/verify.js'}';"
            f"verifyBatch({json.dumps(other_key)}).then(() => process.exit(0), () => process.exit(3));",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 3, check.stderr
