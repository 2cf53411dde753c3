"""`chainproof epcis import` against running servers: the round trip (export, import into an empty ledger with the
same actors, export again: the same events and hashes), resuming without duplicates, a dry run, GS1's own
examples, and invalid documents refused whole, naming the event and field, with nothing written."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from cli.main import app as cli_app
from ledger.signing import generate_private_key, private_key_pem, public_key_bytes
from tests.factory import World, make_world
from tests.servers import Server, start_server, until_checkpointed
from tests.test_epcis_export import _full_batch

BASE = "https://trace.example"
EXAMPLES = Path(__file__).parent / "vectors" / "epcis" / "examples"
runner = CliRunner()


@dataclass
class Importer:
    key: Path
    token: Path
    actor_id: str


@dataclass
class Pair:
    source: Server
    target: Server
    world: World
    admin: Importer
    tmp: Path


def _importer(server: Server, tmp: Path, name: str, role: str) -> Importer:
    private_key = generate_private_key()
    actor, _key = server.store.add_actor(name, role, public_key_bytes(private_key))
    key, token = tmp / f"{name}.pem", tmp / f"{name}.token"
    key.write_bytes(private_key_pem(private_key))
    token.write_text(server.store.issue_token(actor.id) + "\n")
    return Importer(key, token, actor.id)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    """A ledger with batches, and an empty one where the same actors are registered (same ids, names, keys)."""
    source = start_server(tmp_path / "source", public_url=BASE)
    target = start_server(tmp_path / "target", public_url=BASE)
    try:
        world = make_world(source.store)
        _full_batch(world)
        world.store.append(world.journey("COF", "7", shipments=2))
        for party in (world.merchant, world.other_merchant, world.inspector, world.carrier, world.second_carrier):
            actor = party.actor
            target.store.add_actor(actor.name, actor.role, party.key.public_key, actor_id=actor.id)
        yield Pair(source, target, world, _importer(target, tmp_path, "ops", "admin"), tmp_path)
    finally:
        source.stop()
        target.stop()


def _export(server: Server, sku: str, lot: str) -> dict[str, Any]:
    until_checkpointed(server.store)  # what the test appended through the store
    answer = httpx.get(f"{server.url}/v1/batches/{sku}/{lot}/epcis")
    assert answer.status_code == 200, answer.text
    return answer.json()


def _import(pair: Pair, path: Path, *extra: str, importer: Importer | None = None) -> Any:
    who = importer or pair.admin
    until_checkpointed(pair.target.store)  # the actors the test registered through the store
    return runner.invoke(
        cli_app,
        ["epcis", "import", str(path), "--key", str(who.key), "--token-file", str(who.token),
         "--server", pair.target.url, *extra],
    )  # fmt: skip


def _content(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The events as content: recordTime says when a log received them, not what happened; and by eventID, as an
    import appends in event-time order (an order placed earlier but logged later comes earlier in the new log)."""
    events = [{k: v for k, v in e.items() if k != "recordTime"} for e in document["epcisBody"]["eventList"]]
    return sorted(events, key=lambda e: e["eventID"])


def test_round_trip_gives_the_same_events_and_hashes(pair: Pair) -> None:
    for sku, lot in (("OIL", "L1"), ("COF", "7")):
        exported = _export(pair.source, sku, lot)
        path = pair.tmp / f"{sku}-{lot}.jsonld"
        path.write_text(json.dumps(exported))
        said = _import(pair, path)
        assert said.exit_code == 0, said.output
        events = len(exported["epcisBody"]["eventList"])
        assert f"imported {events} events (0 by an earlier run, 0 already in the log), 0 skipped" in said.output
        again = _export(pair.target, sku, lot)
        assert _content(again) == _content(exported)
        # the provenance is the new ledger's: its own log indices and entries, signed by the importer
        signers = {p["signer"] for p in again["chainproof:provenance"].values()}
        assert signers == {pair.admin.actor_id}
        assert sorted(again["chainproof:provenance"]) == sorted(exported["chainproof:provenance"])
    # the imported batches verify like any other
    audit = runner.invoke(cli_app, ["verify", "--server", pair.target.url, "--log-key",
                                    str(pair.target.store.signer.verifier)])  # fmt: skip
    assert audit.exit_code == 0, audit.output


def test_a_rerun_and_a_dry_run_send_nothing_twice(pair: Pair) -> None:
    exported = _export(pair.source, "COF", "7")
    path = pair.tmp / "cof.jsonld"
    path.write_text(json.dumps(exported))
    events = len(exported["epcisBody"]["eventList"])
    dry = _import(pair, path, "--dry-run", "--format", "json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output) | {"skipped": []} == {
        "events": events, "would_record": events, "already_in_log": 0, "dry_run": True, "skipped": []
    }  # fmt: skip
    size = pair.target.store.size()
    assert pair.target.store.size() == size  # nothing written by the dry run
    first = _import(pair, path)
    assert first.exit_code == 0, first.output
    grown = pair.target.store.size()
    assert grown == size + events
    rerun = _import(pair, path)  # the journal: the same signed requests, answered as before
    assert rerun.exit_code == 0, rerun.output
    assert f"imported 0 events ({events} by an earlier run" in rerun.output
    # without the journal, the content already in the log is recognised and skipped
    for journal in pair.tmp.glob("cof.jsonld.chainproof*"):
        for item in sorted(journal.rglob("*"), reverse=True):
            item.unlink() if item.is_file() else item.rmdir()
        journal.rmdir()
    fresh = _import(pair, path)
    assert fresh.exit_code == 0, fresh.output
    assert f"imported 0 events (0 by an earlier run, {events} already in the log)" in fresh.output
    assert pair.target.store.size() == grown


def test_what_an_actor_may_not_record_is_skipped_with_the_reason(pair: Pair) -> None:
    exported = _export(pair.source, "COF", "7")
    path = pair.tmp / "cof.jsonld"
    path.write_text(json.dumps(exported))
    lab = _importer(pair.target, pair.tmp, "lab", "inspector")
    said = _import(pair, path, "--dry-run", importer=lab)
    assert said.exit_code == 0, said.output
    assert "skipped event 1 (ni:///sha-256;" in said.output
    assert "the importing actor's role may not record a origin" in said.output
    # its inspection maps, but the batch is neither in the ledger nor started by an origin this import records
    assert "batch https://trace.example/p/COF/7: neither this document's commissioning nor the ledger holds it" in (
        said.output
    )
    assert "dry run: 0 events would be recorded, 0 are already in the log, 10 skipped" in said.output


def _invalid(document: dict[str, Any], change: Any, keep_ids: bool = False) -> dict[str, Any]:
    """The document with one thing changed in its events (and, unless kept, no eventIDs: a changed event no longer
    matches its stated hash, which would be named first)."""
    changed = copy.deepcopy(document)
    if not keep_ids:
        for event in changed["epcisBody"]["eventList"]:
            event.pop("eventID")
    change(changed["epcisBody"]["eventList"])
    return changed


@pytest.mark.parametrize(
    ("change", "keep_ids", "words"),
    [
        (lambda events: events[1].pop("eventTime"), False, 'event 2: "eventTime" is a required property'),
        (lambda events: events[2].update(eventTimeZoneOffset="+25:00"), False, "event 3: eventTimeZoneOffset:"),
        (lambda events: events[0].update(bizStep="inspect"), False,
         "event 1: bizStep: 'inspect' is neither a CBV 2.0 term nor a URI"),
        (lambda events: events[3]["quantityList"][0].update(epcClass="https://id.gs1.org/01/04006381333932/10/L1"),
         False, "event 4: quantityList.epcClass: https://id.gs1.org/01/04006381333932/10/L1: GTIN check digit"),
        (lambda events: events[4].update(eventTime="2026-11-04T13:00:00Z"), True,
         "eventID: states the CBV 2.0 hash"),
        (lambda events: events[4].update(eventID=events[5]["eventID"]), True, "event 5 (ni:///sha-256;"),
        (lambda events: events[0]["ilmd"].update({"cbvmda:countryOfOrigin": "XX"}), False,
         "event 1: as a Chainproof origin:"),
    ],
)  # fmt: skip
def test_an_invalid_document_is_refused_whole_naming_the_event(
    pair: Pair, change: Any, keep_ids: bool, words: str
) -> None:
    exported = _export(pair.source, "OIL", "L1")
    path = pair.tmp / "bad.jsonld"
    path.write_text(json.dumps(_invalid(exported, change, keep_ids)))
    size = pair.target.store.size()
    said = _import(pair, path)
    assert said.exit_code == 2, said.output
    assert words in said.output
    assert "nothing was sent" in said.output
    assert len(said.output.strip().splitlines()) == 1
    assert pair.target.store.size() == size


def test_a_document_over_the_size_limit_is_refused_unread(pair: Pair) -> None:
    path = pair.tmp / "big.jsonld"
    with path.open("wb") as handle:
        handle.truncate(32 * 1024 * 1024 + 1)
    said = _import(pair, path)
    assert said.exit_code == 2
    assert "an import reads at most 33,554,432" in said.output


def test_gs1_examples_import_what_fits_and_say_why_the_rest_does_not(pair: Pair) -> None:
    """GS1's example documents are about serialised items (EPCs) and locations of other companies: valid EPCIS,
    and each event is skipped with its reason; nothing is written, nothing fails. Their `ni:` eventIDs are not the
    CBV 2.0 hash of their content as the reference generator computes it (which reproduces its own 43 examples):
    kept, they are refused by name; without them, the documents import."""
    size = pair.target.store.size()
    for path in sorted(EXAMPLES.glob("*.jsonld")):
        document = json.loads(path.read_text())
        document.pop("id", None)
        copy_path = pair.tmp / path.name
        copy_path.write_text(json.dumps(document))
        stated = [e.get("eventID", "") for e in document["epcisBody"]["eventList"]]
        if any(str(i).startswith("ni:///") for i in stated):
            refused = _import(pair, copy_path)
            assert refused.exit_code == 2, refused.output
            assert "eventID: states the CBV 2.0 hash" in refused.output
            for event in document["epcisBody"]["eventList"]:
                event.pop("eventID", None)
            copy_path.write_text(json.dumps(document))
        said = _import(pair, copy_path, "--format", "json")
        assert said.exit_code == 0, (path.name, said.output)
        summary = json.loads(said.output)
        assert len(summary["skipped"]) == len(document["epcisBody"]["eventList"]), path.name
        assert all(s["reason"] for s in summary["skipped"])
    assert pair.target.store.size() == size


def test_a_foreign_document_that_fits_imports_as_the_events_it_means(pair: Pair) -> None:
    """Another system's EPCIS (EPC class URIs, no Chainproof extensions): the commissioning of a lot becomes an
    origin (the batch's SKU is its GTIN; the product, which EPCIS leaves to master data, is named by it), and a
    recall holds it; a receiving event naming no order is skipped with the reason."""
    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-20T00:00:00Z",
        "epcisBody": {
            "eventList": [
                {"type": "ObjectEvent", "eventTime": "2026-11-10T08:00:00.000+01:00", "eventTimeZoneOffset": "+01:00",
                 "quantityList": [{"epcClass": "urn:epc:class:lgtin:4012345.012345.LOT9", "quantity": 600,
                                   "uom": "KGM"}],
                 "action": "ADD", "bizStep": "commissioning", "disposition": "active",
                 "bizLocation": {"id": "urn:epc:id:sgln:4012345.00001.0"},
                 "ilmd": {"cbvmda:countryOfOrigin": "DE"}},
                {"type": "ObjectEvent", "eventTime": "2026-11-12T08:00:00Z", "eventTimeZoneOffset": "+00:00",
                 "quantityList": [{"epcClass": "https://id.gs1.org/01/04012345123456/10/LOT9"}],
                 "action": "OBSERVE", "bizStep": "receiving"},
                {"type": "ObjectEvent", "eventTime": "2026-11-13T08:00:00Z", "eventTimeZoneOffset": "+00:00",
                 "quantityList": [{"epcClass": "https://example.com/01/4012345123456/10/LOT9"}],
                 "action": "OBSERVE", "bizStep": "holding", "disposition": "recalled"},
            ]
        },
    }  # fmt: skip
    path = pair.tmp / "foreign.jsonld"
    path.write_text(json.dumps(document))
    said = _import(pair, path)
    assert said.exit_code == 0, said.output
    assert "skipped event 2: names no order (a bizTransaction of type po, or chainproof:shipmentId)" in said.output
    assert "imported 2 events" in said.output
    batch = httpx.get(f"{pair.target.url}/v1/batches/04012345123456/LOT9").json()
    assert batch["recalled"] is True
    assert batch["gtin"] == "04012345123456"
    origin = batch["events"][0]["statement"]["data"]
    assert origin["product"] == "GTIN 04012345123456"
    assert origin["facility"] == "4012345000016"  # the GLN of the business location
    assert origin["produced_at"] == "2026-11-10T08:00:00.000+01:00"


def test_parties_with_a_gln_are_named_by_it_and_map_back(pair: Pair) -> None:
    """An actor registered with its GS1 party GLN is named by it in EPCIS (https://id.gs1.org/417/...), and an
    import maps that GLN to the actor registered with it in the importing ledger."""
    world, gln = pair.world, "4012345000009"
    key = generate_private_key()
    depot, _k = pair.source.store.add_actor("Hamburg Depot", "carrier", public_key_bytes(key), gln=gln)
    pair.target.store.add_actor("Hamburg Depot", "carrier", public_key_bytes(key), actor_id=depot.id, gln=gln)
    world.store.append(
        [
            world.merchant.submit(
                "origin",
                "GLN",
                "1",
                {"product": "Tea", "country": "IN", "produced_at": "2026-11-01T00:00:00Z", "quantity": 5, "unit": "kg"},
            )
        ]
    )
    world.store.append([world.merchant.submit("handoff", "GLN", "1", {
        "from": world.merchant.id, "to": depot.id, "place": "Hamburg", "at": "2026-11-02T00:00:00Z"})])  # fmt: skip
    exported = _export(pair.source, "GLN", "1")
    handoff = exported["epcisBody"]["eventList"][1]
    assert handoff["destinationList"] == [{"type": "possessing_party", "destination": f"https://id.gs1.org/417/{gln}"}]
    listed = httpx.get(f"{pair.source.url}/v1/actors/{depot.id}").json()
    assert listed["gln"] == gln
    # a document naming the party only by its GLN (no Chainproof extensions for it) still maps to the actor
    del handoff["chainproof:to"]
    handoff.pop("eventID")
    path = pair.tmp / "gln.jsonld"
    path.write_text(json.dumps(exported))
    said = _import(pair, path)
    assert said.exit_code == 0, said.output
    assert "imported 2 events" in said.output
    imported = httpx.get(f"{pair.target.url}/v1/batches/GLN/1").json()
    assert imported["events"][1]["statement"]["data"]["to"] == depot.id
    # an unknown GLN is a party that maps to no actor: skipped, with the reason
    handoff["destinationList"][0]["destination"] = "https://id.gs1.org/417/4000001000005"
    path.write_text(json.dumps(exported))
    said = _import(pair, path, "--dry-run")
    assert "party GLN 4000001000005 (https://id.gs1.org/417/4000001000005) is no registered actor's" in said.output


def test_an_actor_gln_with_a_wrong_check_digit_is_refused(pair: Pair) -> None:
    (pair.tmp / "bad.pem").write_bytes(private_key_pem(generate_private_key()))
    said = runner.invoke(cli_app, [
        "actor", "add", "--name", "Bad GLN", "--role", "carrier", "--new-key", str(pair.tmp / "bad.pem"),
        "--gln", "4012345000008", "--key", str(pair.admin.key), "--token-file", str(pair.admin.token),
        "--server", pair.target.url])  # fmt: skip
    assert said.exit_code == 2, said.output
    assert "GLN check digit is 8, expected 9" in said.output
