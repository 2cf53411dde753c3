"""The /verify page in a real browser (headless Chromium): a buyer drops a certificate PDF or JSON, the browser
checks it with WebCrypto against the ledger's key and asks the ledger whether a recall revoked it since."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from certificates.core import verify_certificate
from certificates.pdf import certificate_from_file
from ledger.entry import parse_leaf
from ledger.errors import LedgerError
from ledger.hashing import b64decode
from tests.chromium import CHROMIUM, watch_csp
from tests.factory import World, make_world
from tests.servers import Server, start_server, until_checkpointed

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Chromium is not installed (Debian chromium; make test-deps installs it)"
)
VECTORS = Path(__file__).parent / "vectors" / "certificates"


class Site:
    def __init__(self, server: Server, world: World, files: dict[str, bytes]) -> None:
        self.server, self.world, self.files = server, world, files


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    server = start_server(tmp_path_factory.mktemp("verify-page"), platform_name="Trace Market")
    world = make_world(server.store)
    world.store.append(world.journey("OIL", "1", shipments=2))
    world.store.append(world.journey("OIL", "9"))
    until_checkpointed(server.store)
    files: dict[str, bytes] = {}
    with httpx.Client(base_url=server.url) as client:
        for name, path in [
            ("genuine.pdf", "/v1/batches/OIL/1/certificate.pdf"),
            ("genuine.json", "/v1/batches/OIL/1/certificate.json"),
            ("later-recalled.pdf", "/v1/batches/OIL/9/certificate.pdf"),
        ]:
            response = client.get(path)
            assert response.status_code == 200, response.text
            files[name] = response.content
    # after its certificate was issued, OIL/9 is recalled and the log grows
    world.store.append([world.merchant.submit("recall", "OIL", "9", {"reason": "Seal failure on lot 9"})])
    world.store.append(world.journey("OIL", "2"))
    until_checkpointed(server.store)
    yield Site(server, world, files)
    server.stop()


def _one_byte_changed_in_the_attachment(pdf: bytes) -> bytes:
    """The PDF with one byte of the attached certificate changed: a base64 digit of its first event, chosen so the
    event still reads as an entry (only its signature can tell)."""
    attached = json.loads(certificate_from_file(pdf).to_bytes())
    leaf = attached["entries"][0]["leaf"]
    start = pdf.index(leaf.encode())
    for offset in range(len(leaf) // 2, len(leaf) - 4):
        if not leaf[offset].isalpha():
            continue
        edited = leaf[:offset] + leaf[offset].swapcase() + leaf[offset + 1 :]
        try:
            parse_leaf(b64decode(edited, what="leaf"))
        except LedgerError:
            continue
        changed = bytearray(pdf)
        changed[start + offset] = ord(edited[offset])
        return bytes(changed)
    raise AssertionError("no base64 digit of the first event changes it into another readable entry")


def _check(site: Site, browser, tmp_path: Path, name: str, content: bytes, lang: str = "en") -> dict[str, object]:
    page = browser.new_page(viewport={"width": 390, "height": 900})
    requests: list[tuple[str, str]] = []
    page.on("request", lambda request: requests.append((request.method, request.url)))
    violations = watch_csp(page)
    response = page.goto(f"{site.server.url}/verify?lang={lang}")
    assert response is not None
    assert response.status == 200
    page.wait_for_selector("#certificate-check[data-state=waiting]", timeout=15000)
    file = tmp_path / name
    file.write_bytes(content)
    page.set_input_files("#certificate-file", str(file))
    page.wait_for_selector("#certificate-check:not([data-state=waiting]):not([data-state=checking])", timeout=20000)
    if page.get_attribute("#certificate-check", "data-state") == "ok":
        page.wait_for_selector("#recall-check:not([data-state=waiting]):not([data-state=checking])", timeout=20000)
    seen = {
        "state": page.get_attribute("#certificate-check", "data-state"),
        "box_class": page.get_attribute("#certificate-check", "class"),
        "check": page.inner_text("#certificate-check"),
        "recall_state": page.get_attribute("#recall-check", "data-state"),
        "recall": page.inner_text("#recall-check") if page.is_visible("#recall-check") else "",
        "facts": page.inner_text("#certificate-facts") if page.is_visible("#certificate-facts") else "",
        "body": page.inner_text("body"),
        "width": page.evaluate("document.documentElement.scrollWidth"),
    }
    # nothing is uploaded: the page only reads this server's evidence and proofs
    assert all(method == "GET" for method, _url in requests), requests
    assert all(url.startswith(site.server.url) for _method, url in requests), requests
    assert violations == [], violations
    page.close()
    return seen


def test_a_genuine_certificate_pdf_verifies_in_the_browser(site: Site, browser, tmp_path: Path) -> None:
    pdf = site.files["genuine.pdf"]
    serial = certificate_from_file(pdf).serial
    seen = _check(site, browser, tmp_path, "certificate.pdf", pdf)
    assert seen["state"] == "ok", seen["check"]
    assert f"Genuine: certificate {serial} is signed by this ledger" in str(seen["check"])
    assert seen["recall_state"] == "ok", seen["recall"]
    size = site.server.store.size()
    assert f"Not revoked: no recall of this batch in the ledger up to tree size {size}" in str(seen["recall"])
    facts = str(seen["facts"])
    # what it vouches for, read from the verified events: product, producer, the journey with places and parties
    assert "Yirgacheffe green coffee" in facts
    assert "Sidama Coffee Co" in facts
    assert "Ethiopia (ET)" in facts
    assert facts.count("Red Sea Freight → Hamburg Last Mile · Djibouti port · 4.5 °C") == 2
    assert "SHP-1 → DE-HH · promised by 2026-11-10 18:00 · Delivered 2026-11-08 15:00" in facts
    assert "Trace Market" in facts
    assert seen["width"] <= 390  # readable on a phone


def test_the_certificate_json_verifies_too(site: Site, browser, tmp_path: Path) -> None:
    seen = _check(site, browser, tmp_path, "certificate.json", site.files["genuine.json"])
    assert seen["state"] == "ok", seen["check"]
    assert seen["recall_state"] == "ok", seen["recall"]


def test_one_changed_byte_in_the_attachment_fails(site: Site, browser, tmp_path: Path) -> None:
    changed = _one_byte_changed_in_the_attachment(site.files["genuine.pdf"])
    # the CLI's checker agrees that this certificate does not hold
    assert not verify_certificate(certificate_from_file(changed), site.server.store.signer.verifier).ok
    seen = _check(site, browser, tmp_path, "certificate.pdf", changed)
    assert seen["state"] == "failed"
    assert "does NOT check out" in str(seen["check"])
    assert "signature does not verify" in str(seen["check"])
    assert seen["recall"] == ""  # no verdict about a batch the certificate does not prove
    assert seen["facts"] == ""


def test_a_certificate_of_a_batch_recalled_since_shows_revoked(site: Site, browser, tmp_path: Path) -> None:
    seen = _check(site, browser, tmp_path, "certificate.pdf", site.files["later-recalled.pdf"])
    assert seen["state"] == "ok"  # genuine when issued...
    assert "recall-stands" in str(seen["box_class"])  # ...but never shown as an all-clear
    assert seen["recall_state"] == "revoked", seen["recall"]
    assert "REVOKED: the batch was recalled on" in str(seen["recall"])
    assert "Seal failure on lot 9" in str(seen["recall"])


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(64), "not valid JSON"),
        (
            "other.pdf",
            b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n",
            "it is not a Chainproof certificate",
        ),
        ("empty.json", b"{}", "format is not chainproof-certificate/v2"),
    ],
)
def test_a_file_that_is_not_a_certificate_is_said_so(
    site: Site, browser, tmp_path: Path, name: str, content: bytes, words: str
) -> None:
    seen = _check(site, browser, tmp_path, name, content)
    assert seen["state"] == "failed"
    assert "This file cannot be checked:" in str(seen["check"])
    assert words in str(seen["check"])


def test_a_certificate_of_another_ledger_is_refused(site: Site, browser, tmp_path: Path) -> None:
    seen = _check(site, browser, tmp_path, "old.pdf", (VECTORS / "certificate-claims-v1.pdf").read_bytes())
    assert seen["state"] == "failed"
    assert "issued by another ledger" in str(seen["check"])


def test_the_page_in_chinese(site: Site, browser, tmp_path: Path) -> None:
    seen = _check(site, browser, tmp_path, "certificate.pdf", site.files["genuine.pdf"], lang="zh")
    assert seen["state"] == "ok"
    assert "查验真品证书" in str(seen["body"])
    assert "真实：证书" in str(seen["check"])
    assert "未失效" in str(seen["recall"])
    assert "埃塞俄比亚 (ET)" in str(seen["facts"])  # the country's name from the browser's CLDR data
    for english in ("Check a certificate", "Genuine", "Not revoked", "Producer", "Journey", "Country"):
        assert english not in str(seen["body"]), english


def test_the_attachment_is_found_in_a_deflated_stream(site: Site, browser, tmp_path: Path) -> None:
    """A PDF whose attached certificate is Flate-compressed (as tools that rewrite PDFs store it) still verifies."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(site.files["genuine.pdf"])))
    compressed = 0
    for number in range(1, len(writer._objects) + 1):
        stream = writer.get_object(number)
        if hasattr(stream, "get") and stream.get("/Type") == "/EmbeddedFile":
            encoded = stream.flate_encode()
            writer._objects[number - 1] = encoded
            compressed += 1
    assert compressed == 1
    out = io.BytesIO()
    writer.write(out)
    rewritten = out.getvalue()
    assert b"/FlateDecode" in rewritten
    attached = certificate_from_file(rewritten).to_bytes()
    assert attached.split(b'"leaf": "')[1][:40] not in rewritten  # the JSON is no longer stored as plain text
    seen = _check(site, browser, tmp_path, "rewritten.pdf", rewritten)
    assert seen["state"] == "ok", seen["check"]
