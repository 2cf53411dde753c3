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

from api.pages.view import RECENT_EVENTS, summaries
from ledger.hashing import leaf_hash
from ledger.label import label_fragment, log_key_digest, parse_label_fragment
from ledger.note import NoteSigner
from ledger.signing import generate_private_key
from ledger.storage import LedgerStore
from tests.factory import World, handoff_data, origin_data, shipment_data

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
    page = summaries(store).page("JS", "1")
    assert page.ok
    genuine = page.browser_data(str(store.signer.verifier))
    assert genuine["batch"]["events"] == len(genuine["entries"]) == 10
    assert [("proof" in e) for e in genuine["entries"]] == [False] * 9 + [True]  # the chain vouches for the rest
    indices = [e["index"] for e in genuine["entries"]]

    edited = copy.deepcopy(genuine)  # a handoff's place changed: its signature and inclusion fail
    edited["entries"][3]["leaf"] = _flip(edited["entries"][3]["leaf"], b"Djibouti", b"Djibouty")
    withheld = copy.deepcopy(genuine)  # an entry left out: the next one no longer links, nor vouches for the one before
    del withheld["entries"][2]
    wrong_proof = copy.deepcopy(genuine)  # a proof of another entry
    wrong_proof["entries"][0]["proof"] = genuine["entries"][-1]["proof"]
    other_key = copy.deepcopy(genuine)  # the checkpoint is not signed by the pinned key
    other_key["log_key"] = str(world.store.signer.verifier).replace(world.store.signer.name, "other.example/log")
    head_unproven = copy.deepcopy(genuine)  # without the last entry's proof nothing is shown to be in the log
    del head_unproven["entries"][-1]["proof"]
    other_batch = copy.deepcopy(genuine)  # a genuine entry of another batch, with its own genuine proof
    other = summaries(store).page("JS", "2")
    stranger = other.browser_data(str(store.signer.verifier))["entries"][-1]
    other_batch["entries"].append(stranger)
    merged = {
        r["index"]: r
        for r in [*genuine["registrations"], *other.browser_data(str(store.signer.verifier))["registrations"]]
    }
    other_batch["registrations"] = [merged[i] for i in sorted(merged)]
    other_batch["batch"]["window"][1] = stranger["index"]

    # who may sign comes from registrations the browser proves, not from a key list the server hands it
    def lot_of(item: dict) -> str:
        return json.loads(base64.b64decode(item["leaf"]).split(b'"statement":', 1)[1][:-1])["lot"]

    lab = [r for r in genuine["registrations"] if lot_of(r) == world.inspector.id]
    assert len(lab) == 2  # the actor entry, then its key: the key's proof vouches for both
    assert ["proof" in r for r in lab] == [False, True]
    withheld_lab = copy.deepcopy(genuine)  # the inspector's registrations left out: its inspection is unbound
    withheld_lab["registrations"] = [r for r in genuine["registrations"] if r not in lab]
    swapped_lab = copy.deepcopy(genuine)  # the inspector's key swapped for another in its registration
    for item in swapped_lab["registrations"]:
        if item["index"] == lab[-1]["index"]:
            real = base64.b64encode(world.inspector.key.public_key)
            other_public = base64.b64encode(generate_private_key().public_key().public_bytes_raw())
            item["leaf"] = _flip(item["leaf"], real, other_public)

    # a batch longer than a page: the origin, the inspections and the newest events, the older ones left out
    store.append(world.journey("JSBIG", "1", shipments=20))
    big = summaries(store).page("JSBIG", "1").browser_data(str(store.signer.verifier))
    assert big["batch"]["events"] == 82
    assert len(big["entries"]) == 2 + RECENT_EVENTS
    big_indices = [e["index"] for e in big["entries"]]
    big_withheld = copy.deepcopy(big)  # within the listed window, nothing can be left out
    del big_withheld["entries"][30]
    big_unanchored = copy.deepcopy(big)  # entries outside the window need a proof (or a link to one)
    del big_unanchored["entries"][1]["proof"]

    # the SLA's events: a shipment with a quantity, its cancellation, a delivery with a quantity
    m, c = world.merchant, world.carrier
    order = {**shipment_data("Q1"), "quantity": 12, "unit": "pcs"}
    store.append(
        [
            m.submit("origin", "JSSLA", "1", origin_data()),
            m.submit("shipment", "JSSLA", "1", order),
            m.submit("shipment_cancel", "JSSLA", "1", {"shipment_id": "Q1", "cancelled_at": "2026-11-03T10:00:00Z"}),
            m.submit("shipment", "JSSLA", "1", {**order, "shipment_id": "Q2"}),
            m.submit("handoff", "JSSLA", "1", handoff_data(m.id, c.id, "Q2")),
            c.submit(
                "delivery", "JSSLA", "1", {"shipment_id": "Q2", "delivered_at": "2026-11-05T10:00:00Z", "quantity": 11}
            ),
        ]
    )
    sla_events = summaries(store).page("JSSLA", "1").browser_data(str(store.signer.verifier))

    # the label a merchant printed: the log key and the origin entry, by hash (ledger/label.py)
    log_key = str(store.signer.verifier)
    origin_hash = leaf_hash(base64.b64decode(genuine["entries"][0]["leaf"]))
    label = dict(zip("ko", parse_label_fragment(label_fragment(log_key, origin_hash)) or ("", ""), strict=True))
    another_log = str(NoteSigner(store.signer.name, generate_private_key()).verifier)
    other_origin = leaf_hash(base64.b64decode(stranger["leaf"]))

    cases = {
        "labels": {
            "labelled": label,
            "label_of_another_log": {**label, "k": log_key_digest(another_log)},
            "label_of_another_origin": {**label, "o": parse_label_fragment(label_fragment(log_key, other_origin))[1]},  # type: ignore[index]
        },
        "batches": {
            "labelled": genuine,
            "label_of_another_log": genuine,
            "label_of_another_origin": genuine,
            "genuine": genuine,
            "edited": edited,
            "withheld": withheld,
            "wrong_proof": wrong_proof,
            "head_unproven": head_unproven,
            "other_batch": other_batch,
            "big": big,
            "big_withheld": big_withheld,
            "big_unanchored": big_unanchored,
            "withheld_lab": withheld_lab,
            "swapped_lab": swapped_lab,
            "sla_events": sla_events,
        },
        "expect": {
            "labelled": [],
            "label_of_another_log": [None],  # the server's log key is not the label's
            "label_of_another_origin": [indices[0]],  # the origin shown is not the label's
            "genuine": [],
            # the edited entry's signature fails and the next one no longer links to it, so the chain from the
            # proven last entry stops there: neither it nor any before it is shown to be in the log
            "edited": [*indices[:3], indices[3], indices[3], indices[4]],
            "withheld": [indices[0], indices[1], indices[3]],
            "wrong_proof": [indices[0]],
            "head_unproven": indices,
            "other_batch": [stranger["index"], stranger["index"]],  # another batch's, and not linked
            "big": [],
            "big_withheld": [*big_indices[2:30], big_indices[31]],
            "big_unanchored": big_indices[:2],  # the origin was vouched for by the inspection after it
            "withheld_lab": [indices[1]],  # the inspection: signed with a key the log (as shown) does not bind
            # the edited registration is not in the log (so neither is the actor entry it vouched for) and its
            # signature fails; the inspection's key is bound by nothing that holds
            "swapped_lab": [lab[0]["index"], lab[1]["index"], lab[1]["index"], indices[1]],
            "sla_events": [],
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
