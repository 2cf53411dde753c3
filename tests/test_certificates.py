"""Certificates of authenticity: issued for a verified batch, refused for a recalled one, checked offline against
their own evidence (every forgery and tamper caught), revoked online by a later recall, and carried in a PDF."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from typer.testing import CliRunner

from api.app import create_app
from api.pages.view import batch_view
from api.settings import Settings
from certificates.core import (
    CERTIFICATE_HEADER,
    Certificate,
    CertificateRefusedError,
    verify_certificate,
)
from certificates.pdf import ATTACHMENT_NAME, certificate_from_file, render_certificate_pdf
from cli.main import app as cli_app
from ledger.canonical import canonical_json
from ledger.errors import EncodingError
from ledger.hashing import b64decode, b64encode
from ledger.logkey import load_or_create_log_signer
from ledger.note import NoteSigner, NoteVerifier, parse_note, sign_note
from ledger.signing import generate_private_key
from ledger.storage import LedgerStore
from tests.factory import World, add_party, make_world, origin_data, shipment_data
from tests.servers import start_server, until_checkpointed
from tests.test_note import _go_notecheck

BASE = "https://trace.example"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FORGER_KEY = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"  # RFC 8032 test 2's public key


def _issue(store: LedgerStore, sku: str, lot: str, signer: NoteSigner | None = None) -> Certificate:
    return batch_view(store, sku, lot).certificate(
        signer or store.signer,
        page_url=f"{BASE}/p/{sku}/{lot}",
        issued_at=NOW,
        platform="Trace Example Market",
        verify_url=f"{BASE}/verify",
    )


@pytest.fixture
def certified(world: World) -> tuple[World, Certificate]:
    world.store.append(world.journey("OIL", "1", shipments=2))
    world.store.append(world.journey("OIL", "2"))  # another batch in the same log
    return world, _issue(world.store, "OIL", "1")


def _problems(certificate: Certificate, world: World) -> set[str]:
    report = verify_certificate(certificate, world.store.signer.verifier)
    assert not report.ok
    return {p.code for p in report.problems}


def _resign(certificate: Certificate, signer: NoteSigner, **claim_changes: object) -> Certificate:
    claims = {**certificate.claims(), **claim_changes}
    text = f"{CERTIFICATE_HEADER}\n{canonical_json(claims).decode()}\n"
    return replace(certificate, note=sign_note(text, signer))


def test_a_certificate_says_what_the_batch_says_and_verifies(certified) -> None:
    world, certificate = certified
    report = verify_certificate(certificate, world.store.signer.verifier)
    assert report.ok, report.problems
    claims = report.claims
    assert claims is not None
    assert claims["batch"] == {"sku": "OIL", "lot": "1", "gtin": None}
    assert claims["origin"]["producer"] == {"id": world.merchant.id, "name": "Sidama Coffee Co"}
    assert [i["inspector"]["id"] for i in claims["inspections"]] == [world.inspector.id]
    batch_entries = world.store.batch_entries("OIL", "1")
    assert [e["index"] for e in claims["entries"]] == [e.stored_index for e in batch_entries]
    assert claims["checkpoint"]["size"] == world.store.size()
    # Who may sign travels as registration entries, only of the batch's signers (not the other merchant, admin
    # or auditor): each signer's chain, its last entry proven; the log key registered them all here.
    registered = {
        json.loads(base64.b64decode(r["leaf"]).split(b'"statement":', 1)[1][:-1])["lot"]
        for r in certificate.registrations or []
    }
    assert registered == {world.merchant.id, world.inspector.id, world.carrier.id, world.second_carrier.id}
    assert sum("proof" in r for r in certificate.registrations or []) == len(registered)
    assert certificate.to_json()["format"] == "chainproof-certificate/v2"
    # The serial is the note's: anyone recomputes it, and a round trip through the file keeps everything.
    again = Certificate.from_bytes(certificate.to_bytes())
    assert again == certificate
    assert again.serial == certificate.serial
    assert verify_certificate(again, world.store.signer.verifier).ok


def test_a_recalled_or_failing_batch_gets_no_certificate(world: World) -> None:
    store = world.store
    store.append(world.journey("OIL", "1"))
    store.append([world.merchant.submit("recall", "OIL", "1", {"reason": "Seal failure"})])
    with pytest.raises(CertificateRefusedError, match=r"recalled.*Seal failure"):
        _issue(store, "OIL", "1")


def test_edited_claims_break_the_signature(certified) -> None:
    world, certificate = certified
    note = certificate.note.replace("Sidama Coffee Co", "Sidama Coffee Cc")
    assert note != certificate.note
    assert _problems(replace(certificate, note=note), world) == {"certificate-signature"}


def test_a_certificate_signed_by_another_key_is_refused(certified) -> None:
    world, certificate = certified
    impostor = NoteSigner(world.store.signer.name, generate_private_key())
    assert _problems(_resign(certificate, impostor), world) == {"certificate-signature"}


def test_claims_the_evidence_does_not_bear_out_are_caught_even_when_signed(certified) -> None:
    """A (mistaken or compromised) issuer signing claims its own evidence contradicts: the check still fails."""
    world, certificate = certified
    claims = certificate.claims()
    lying_origin = {**claims["origin"], "country": "CO"}
    assert _problems(_resign(certificate, world.store.signer, origin=lying_origin), world) == {"claims"}
    fewer = claims["entries"][:-1]
    assert _problems(_resign(certificate, world.store.signer, entries=fewer), world) == {"claims"}
    other_root = {**claims["checkpoint"], "root": b64encode(bytes(32))}
    assert _problems(_resign(certificate, world.store.signer, checkpoint=other_root), world) == {"checkpoint"}


def test_tampered_evidence_is_caught(certified) -> None:
    world, certificate = certified
    # A leaf edited (a handoff place): its signature and inclusion proof both fail, the claims no longer match.
    entries = [dict(e) for e in certificate.entries]
    leaf = b64decode(entries[3]["leaf"], what="leaf")
    entries[3]["leaf"] = b64encode(leaf.replace(b"Djibouti", b"Djibouty"))
    assert {"bad-signature", "inclusion", "claims"} <= _problems(replace(certificate, entries=entries), world)
    # An entry dropped from the evidence: the chain breaks and the claims name an entry not shown.
    dropped = certificate.entries[:2] + certificate.entries[3:]
    assert {"chain", "claims"} <= _problems(replace(certificate, entries=dropped), world)
    # One proof, of the last entry, vouches for the chain: every other entry is linked to it by hash.
    assert ["proof" in e for e in certificate.entries] == [False] * (len(certificate.entries) - 1) + [True]
    # A proof hash flipped.
    entries = [dict(e) for e in certificate.entries]
    entries[-1]["proof"] = [b64encode(bytes(32)), *entries[-1]["proof"][1:]]
    assert "inclusion" in _problems(replace(certificate, entries=entries), world)
    # The last proof left out: nothing is shown to be in the log.
    entries = [dict(e) for e in certificate.entries]
    del entries[-1]["proof"]
    assert "inclusion" in _problems(replace(certificate, entries=entries), world)
    # A signer's key swapped for the forger's own in its registration: the registration is not the log's (its
    # proof and signature fail), and no statement of that signer verifies with a key the log binds.
    registrations = [dict(r) for r in certificate.registrations or []]
    merchant_key = b64encode(world.merchant.key.public_key).encode()
    for item in registrations:
        leaf = base64.b64decode(item["leaf"])
        if merchant_key in leaf:
            item["leaf"] = b64encode(leaf.replace(merchant_key, b64encode(bytes.fromhex(FORGER_KEY)).encode()))
    assert {"inclusion", "bad-signature", "rule"} <= _problems(replace(certificate, registrations=registrations), world)
    # Registrations withheld: the signers' keys are bound by nothing shown.
    assert "rule" in _problems(replace(certificate, registrations=[]), world)


def test_a_certificate_issued_before_v2_still_verifies(certified) -> None:
    """v1 certificates carried the signers' directory (as the log then published it) instead of registrations;
    the claims the log signed are the same, so one issued then still verifies, and tampering with its
    directory is still caught."""
    from ledger.bundle import directory_to_json

    world, certificate = certified
    directory = world.store.directory()
    signers = {world.merchant.id, world.inspector.id, world.carrier.id, world.second_carrier.id}
    involved = type(directory)(
        {k: v for k, v in directory.actors.items() if k in signers},
        {k: v for k, v in directory.keys.items() if v.actor_id in signers},
    )
    v1 = replace(certificate, registrations=None, actors=directory_to_json(involved))
    again = Certificate.from_bytes(v1.to_bytes())
    assert again.to_json()["format"] == "chainproof-certificate/v1"
    assert verify_certificate(again, world.store.signer.verifier).ok
    actors = json.loads(json.dumps(v1.actors))
    actors[0]["keys"][0]["public_key"] = b64encode(bytes.fromhex(FORGER_KEY))
    assert "rule" in _problems(replace(v1, actors=actors), world)


def test_a_checkpoint_or_other_note_is_not_a_certificate(certified) -> None:
    world, certificate = certified
    # The log key signs checkpoints too; a checkpoint passed off as a certificate is refused by its header.
    assert _problems(replace(certificate, note=certificate.checkpoint), world) == {"certificate-signature"}
    with pytest.raises(EncodingError, match="not a certificate file"):
        Certificate.from_bytes(b'{"format": "something-else"}')
    with pytest.raises(EncodingError, match="not valid JSON"):
        Certificate.from_bytes(b"\x00\x01")


def test_certificate_note_verifies_with_the_go_reference(certified, tmp_path_factory) -> None:
    world, certificate = certified
    notecheck = _go_notecheck(tmp_path_factory)
    verifier = str(world.store.signer.verifier)
    result = subprocess.run([notecheck, verifier], input=certificate.note.encode(), capture_output=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == parse_note(certificate.note).text
    forged = certificate.note.replace('"lot":"1"', '"lot":"2"')
    assert subprocess.run([notecheck, verifier], input=forged.encode(), capture_output=True).returncode == 1


def test_pdf_carries_the_certificate_the_journey_and_both_qr_codes(certified, tmp_path: Path) -> None:
    world, certificate = certified
    statuses = {"SHP-0": "on time", "SHP-1": "late"}
    pdf = render_certificate_pdf(certificate, sla_status=statuses, sla_as_of="2026-11-25T12:00:00Z")
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
    assert certificate.serial in text
    assert "Sidama Coffee Co" in text
    assert "ISO 22000" in text
    # the issuing platform by its configured name, not the log's origin line alone
    assert f"by Trace Example Market (ledger {world.store.signer.name})" in text
    # the journey: every handoff with its parties, place, time and temperature
    assert text.count("Sidama Coffee Co to Red Sea Freight") == 2
    assert text.count("Red Sea Freight to Hamburg Last Mile") == 2
    assert text.count("Djibouti port") == 4
    assert "2026-11-04 12:00" in text
    assert "4.5 °C" in text
    # the delivery record of each order, with its SLA status drawn as the platform's reading, not a claim
    assert "SHP-0 DE-HH 2026-11-03 09:00 2026-11-10 18:00 2026-11-08 15:00" in text
    assert "2026-11-08 15:00 on time SHP-1" in text
    assert text.count("2026-11-08 15:00 late") == 1
    assert "It is not part of the signed certificate" in text
    # how to check: in the browser, at the verify page, with nothing to install
    assert f"{BASE}/verify" in text
    assert "Nothing to install" in text
    assert reader.attachments[ATTACHMENT_NAME] == [certificate.to_bytes()]
    assert certificate_from_file(pdf) == certificate
    with pytest.raises(EncodingError, match="not a Chainproof certificate"):
        certificate_from_file(_pdf_without_attachment(pdf))
    if shutil.which("zbarimg") is None:
        pytest.skip("zbarimg (Debian zbar-tools) is not installed")
    decoded = set()
    for number, picture in enumerate(reader.pages[0].images):
        image = tmp_path / f"qr{number}.png"
        image.write_bytes(picture.data)
        said = subprocess.run(["zbarimg", "--quiet", "--raw", str(image)], capture_output=True, text=True, check=True)
        decoded.add(said.stdout.strip())
    assert decoded == {f"{BASE}/p/OIL/1", f"{BASE}/verify"}


def test_claims_v2_state_the_journey_and_deliveries_and_are_checked(certified) -> None:
    world, certificate = certified
    claims = certificate.claims()
    assert claims["v"] == 2
    assert claims["platform"] == "Trace Example Market"
    assert claims["verify_url"] == f"{BASE}/verify"
    handoffs = [step for step in claims["journey"] if step["type"] == "handoff"]
    assert [(h["from"]["name"], h["to"]["name"], h["place"], h["temperature_c"]) for h in handoffs] == [
        ("Sidama Coffee Co", "Red Sea Freight", "Djibouti port", 4.5),
        ("Red Sea Freight", "Hamburg Last Mile", "Djibouti port", 4.5),
    ] * 2
    assert [step["type"] for step in claims["journey"]] == ["shipment", "handoff", "handoff", "delivery"] * 2
    assert claims["shipments"][0] == {
        "id": "SHP-0",
        "destination": "DE-HH",
        "placed_at": "2026-11-03T09:00:00Z",
        "promised_by": "2026-11-10T18:00:00Z",
        "quantity": None,
        "unit": None,
        "delivered_at": "2026-11-08T15:00:00Z",
        "delivered_quantity": None,
        "cancelled_at": None,
    }
    # a signed journey the evidence does not bear out (a handoff moved to another port) fails the check
    moved = json.loads(json.dumps(claims["journey"]))
    moved[1]["place"] = "Aden port"
    assert _problems(_resign(certificate, world.store.signer, journey=moved), world) == {"claims"}
    delivered_late = json.loads(json.dumps(claims["shipments"]))
    delivered_late[0]["delivered_at"] = "2026-11-12T15:00:00Z"
    assert _problems(_resign(certificate, world.store.signer, shipments=delivered_late), world) == {"claims"}


def test_a_certificate_issued_with_v1_claims_still_verifies() -> None:
    """A certificate the previous version issued (claims v1: no journey), kept as a file: it still verifies, in
    the CLI's checker; its PDF still yields it."""
    here = Path(__file__).parent / "vectors" / "certificates"
    log_key = NoteVerifier.parse((here / "log-key.txt").read_text())
    certificate = Certificate.from_bytes((here / "certificate-claims-v1.json").read_bytes())
    assert certificate.claims()["v"] == 1
    assert "journey" not in certificate.claims()
    report = verify_certificate(certificate, log_key)
    assert report.ok, report.problems
    assert certificate_from_file((here / "certificate-claims-v1.pdf").read_bytes()) == certificate
    # and it draws as it did, without a journey section
    text = " ".join(PdfReader(io.BytesIO(render_certificate_pdf(certificate))).pages[0].extract_text().split())
    assert "Journey" not in text
    assert certificate.serial in text


def _pdf_without_attachment(pdf: bytes) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, World]]:
    app = create_app(
        Settings(
            checkpoint_interval_s=0.05,
            data_dir=tmp_path,
            public_url=BASE,
            log_name="trace.example/log",
            platform_name="Trace Market",
        )
    )
    world = make_world(app.state.store)
    world.store.append(world.journey("OIL", "1"))
    open_order = {**shipment_data("SHP-OPEN"), "promised_by": "2036-01-01T00:00:00Z"}
    world.store.append([world.merchant.submit("shipment", "OIL", "1", open_order)])
    world.store.append(world.journey("OIL", "9"))
    world.store.append([world.merchant.submit("recall", "OIL", "9", {"reason": "Seal failure"})])
    with TestClient(app) as client:
        yield client, world


def test_api_serves_certificates_and_refuses_with_problems(site) -> None:
    client, world = site
    as_json = client.get("/v1/batches/OIL/1/certificate.json")
    assert as_json.status_code == 200
    certificate = Certificate.from_bytes(as_json.content)
    assert f"certificate-{certificate.serial}.json" in as_json.headers["content-disposition"]
    assert verify_certificate(certificate, world.store.signer.verifier).ok
    as_pdf = client.get("/v1/batches/OIL/1/certificate.pdf")
    assert as_pdf.status_code == 200
    assert as_pdf.headers["content-type"] == "application/pdf"
    from_pdf = certificate_from_file(as_pdf.content)
    assert verify_certificate(from_pdf, world.store.signer.verifier).ok
    assert from_pdf.claims()["page_url"] == f"{BASE}/p/OIL/1"
    assert from_pdf.claims()["platform"] == "Trace Market"
    # each order's status by the SLA rules at the moment of issue, drawn beside its delivery record
    drawn = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(as_pdf.content)).pages)
    assert "Issued" in drawn
    assert "by Trace Market" in drawn
    assert "SHP-0 DE-HH 2026-11-03 09:00 2026-11-10 18:00 2026-11-08 15:00 on time" in drawn
    assert "SHP-OPEN DE-HH 2026-11-03 09:00 2036-01-01 00:00 not yet in transit" in drawn
    for suffix in ("json", "pdf"):
        recalled = client.get(f"/v1/batches/OIL/9/certificate.{suffix}")
        assert recalled.status_code == 409
        assert recalled.headers["content-type"] == "application/problem+json"
        assert "recalled" in recalled.json()["detail"]
        assert "Seal failure" in recalled.json()["detail"]
        unknown = client.get(f"/v1/batches/NO/SUCH/certificate.{suffix}")
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == "application/problem+json"


def test_product_page_links_the_certificate_or_says_it_is_revoked(site) -> None:
    client, _world = site
    page = client.get("/p/OIL/1").text
    assert 'id="certificate-link" href="/v1/batches/OIL/1/certificate.pdf"' in page
    recalled = client.get("/p/OIL/9").text
    assert 'id="certificate-revoked"' in recalled
    assert "certificate-link" not in recalled
    assert "证书" in client.get("/p/OIL/1", headers={"Accept-Language": "zh-CN"}).text


runner = CliRunner()


def cli(*args: str | Path, code: int = 0) -> str:
    result = runner.invoke(cli_app, [str(a) for a in args])
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}: {result.output}"
    return result.output


def test_cli_gets_verifies_and_sees_a_later_recall_revoke(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server")
    try:
        world = make_world(server.store)
        world.store.append(world.journey("OIL", "1"))
        until_checkpointed(server.store)
        log_key = str(server.store.signer.verifier)
        state = tmp_path / "state"
        pdf, as_json = tmp_path / "cert.pdf", tmp_path / "cert.json"
        cli("certificate", "get", "--sku", "OIL", "--lot", "1", "--out", pdf, "--server", server.url)
        cli("certificate", "get", "--sku", "OIL", "--lot", "1", "--out", as_json, "--server", server.url)
        offline = cli("certificate", "verify", pdf, "--log-key", log_key, "--state", state)
        assert "verified: all holds" in offline
        assert "not checked (offline" in offline
        assert "verified: all holds" in cli("certificate", "verify", as_json, "--log-key", log_key, "--state", state)
        online = json.loads(
            cli("certificate", "verify", pdf, "--server", server.url, "--log-key", log_key, "--format", "json")
        )
        assert online["ok"]
        assert online["revocation"].startswith("not revoked")
        # what a buyer reads: the batch, product and the check against the live log, in plain words
        said = cli("certificate", "verify", pdf, "--server", server.url, "--log-key", log_key)
        assert f"recall check: not revoked: no recall of OIL/1 in the log up to tree size {server.store.size()}" in said
        assert "revocation not revoked at" not in said

        world.store.append(world.journey("OIL", "2"))  # the log grows: the certificate stays good
        until_checkpointed(server.store)
        assert "verified: all holds" in cli("certificate", "verify", pdf, "--server", server.url, "--log-key", log_key)

        world.store.append([world.merchant.submit("recall", "OIL", "1", {"reason": "Seal failure"})])
        until_checkpointed(server.store)
        revoked = cli("certificate", "verify", pdf, "--server", server.url, "--log-key", log_key, code=1)
        assert "REVOKED" in revoked
        assert "Seal failure" in revoked
        # Offline, a certificate cannot know of a later recall, and says it did not check.
        assert "not checked (offline" in cli("certificate", "verify", pdf, "--log-key", log_key)
        refused = cli("certificate", "get", "--sku", "OIL", "--lot", "1", "--out", pdf, "--server", server.url, code=2)
        assert "409" in refused
        assert "recalled" in refused

        # Wrong key, no key, not a certificate, bad --out: one line each.
        other = str(load_or_create_log_signer(tmp_path / "other.key", server.store.signer.name).verifier)
        wrong_key = cli("certificate", "verify", as_json, "--log-key", other, code=1)
        assert "FAILED" in wrong_key
        assert "None" not in wrong_key  # nothing unverified is shown as if it were known
        assert "the certificate's signature does not verify with the log key given" in wrong_key
        assert (
            json.loads(cli("certificate", "verify", as_json, "--log-key", other, "--format", "json", code=1))["batch"]
            is None
        )
        no_key = cli("certificate", "verify", as_json, "--state", tmp_path / "empty-state", code=2)
        assert "no trusted log key" in no_key
        assert len(no_key.strip().splitlines()) == 1
        junk = tmp_path / "junk.pdf"
        junk.write_bytes(b"%PDF-1.4 nothing here")
        assert "cannot read the PDF" in cli("certificate", "verify", junk, "--log-key", log_key, code=2)
        bad_out = cli("certificate", "get", "--sku", "OIL", "--lot", "1", "--out", tmp_path / "c.doc", code=2)
        assert "must end in" in bad_out
    finally:
        server.stop()


def test_the_demo_certificate_that_serve_prints_exists(tmp_path: Path) -> None:
    from cli.demo import DEMO_CERTIFICATE, seed_demo

    app = create_app(
        Settings(checkpoint_interval_s=0.05, data_dir=tmp_path, public_url=BASE, log_name="trace.example/log")
    )
    seed_demo(app.state.store, tmp_path / "keys")
    with TestClient(app) as client:
        response = client.get(DEMO_CERTIFICATE)
    assert response.status_code == 200
    certificate = certificate_from_file(response.content)
    assert verify_certificate(certificate, app.state.store.signer.verifier).ok
    assert certificate.claims()["page_url"] == f"{BASE}/01/04006381333931/10/L2611-A"


def test_pdf_draws_chinese_names_too(world: World) -> None:
    """Names outside Latin script (a Chinese producer and product) are drawn with the CJK font, not dropped."""
    producer = add_party(world.store, "云南咖啡合作社", "merchant")
    world.store.append([producer.submit("origin", "CAF", "Y1", origin_data(product="普洱咖啡豆"))])
    certificate = _issue(world.store, "CAF", "Y1")
    claims = certificate.claims()
    assert claims["origin"]["product"] == "普洱咖啡豆"
    assert claims["origin"]["producer"]["name"] == "云南咖啡合作社"
    pdf = render_certificate_pdf(certificate)
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    base_fonts = {str(font.get_object()["/BaseFont"]) for font in page["/Resources"]["/Font"].values()}
    assert any("STSong-Light" in name for name in base_fonts), base_fonts
    assert any("Vera" in name for name in base_fonts), base_fonts
    assert verify_certificate(certificate_from_file(pdf), world.store.signer.verifier).ok


def test_batch_evidence_is_what_the_browser_checks(site) -> None:
    """The JSON the certificate page reads to learn whether a recall followed a certificate: the batch's newest
    events as a chain whose last entry is proven into the signed checkpoint, and the signers' registrations."""
    client, world = site
    evidence = client.get("/v1/batches/OIL/9/evidence")
    assert evidence.status_code == 200
    body = evidence.json()
    assert body["log_key"] == str(world.store.signer.verifier)
    assert body["batch"]["sku"] == "OIL"
    assert body["batch"]["events"] == len(body["entries"]) == 7
    stored = [e.stored_index for e in world.store.batch_entries("OIL", "9")]
    assert [e["index"] for e in body["entries"]] == stored
    assert body["batch"]["window"] == [stored[0], stored[-1]]
    assert ["proof" in e for e in body["entries"]] == [False] * 6 + [True]  # the chain vouches for the rest
    last = base64.b64decode(body["entries"][-1]["leaf"])
    assert b'"type":"recall"' in last
    assert body["registrations"]
    unknown = client.get("/v1/batches/NO/SUCH/evidence")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
