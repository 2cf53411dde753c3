"""Product pages and QR codes: URLs and GS1 Digital Link parsing, verdicts, languages, SLA, weight, QR round trip."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.pages.i18n import choose_language
from api.settings import Settings
from api.urls import product_path
from cli.demo import seed_demo

BASE = "https://trace.example"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(
        Settings(checkpoint_interval_s=0.05, data_dir=tmp_path, public_url=BASE, log_name="trace.example/log")
    )
    seed_demo(app.state.store, tmp_path / "keys")
    with TestClient(app) as client:
        yield client


def verdict(html: str) -> str:
    match = re.search(r'data-verdict="([a-z]+)"', html)
    assert match, html[:500]
    return match.group(1)


def test_product_paths() -> None:
    assert product_path("COF", "L1", "4006381333931") == "/01/04006381333931/10/L1"
    assert product_path("COF", "L1", "96385074") == "/01/00000096385074/10/L1"
    assert product_path("COF", "L1") == "/p/COF/L1"


@pytest.mark.parametrize(
    ("path", "status", "expected"),
    [
        ("/01/04006381333931/10/L2611-A", 200, "verified"),
        ("/01/4006381333931/10/L2611-A", 200, "verified"),  # GTIN-13 form of the same GTIN
        ("/01/04006381333931/10/L2611-A/21/SN-0001", 200, "verified"),  # a serialised item of the batch
        ("/p/COF-YIRG-250/L2611-A", 200, "verified"),
        ("/01/05012345678900/10/K-0903", 200, "recalled"),
        ("/01/04006381333932/10/L2611-A", 404, "unknown"),  # bad check digit
        ("/01/04006381333931/21/SN/10/L2611-A", 404, "unknown"),  # AIs out of order
        ("/01/04006381333931", 404, "unknown"),
        ("/01/04006381333931/10/", 404, "unknown"),
        ("/01/ABC/10/L1", 404, "unknown"),
        ("/01/04006381333931/10/NO-SUCH-LOT", 404, "unknown"),
        ("/p/NOPE/NOPE", 404, "unknown"),
    ],
)
def test_digital_link_routes(site: TestClient, path: str, status: int, expected: str) -> None:
    response = site.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert verdict(response.text) == expected


def test_unknown_and_bad_links_say_so_plainly(site: TestClient) -> None:
    assert "not a valid product link" in site.get("/01/123/10/x").text
    page = site.get("/p/NOPE/NOPE").text
    assert "Unknown product" in page
    assert "may not be genuine" in page


def test_page_content_and_weight(site: TestClient) -> None:
    response = site.get("/01/04006381333931/10/L2611-A")
    html = response.text
    for expected in (
        "Yirgacheffe green coffee",
        "Sidama Highlands Coffee",
        "Ethiopia (ET)",
        "ISO 22000",
        "Bureau Veritas Agri",
        "Djibouti port, DJ",
        "18.5 °C",
        "chainproof verify --server " + BASE,
    ):
        assert expected in html, expected
    assert 'id="ledger-data"' in html
    # nothing is fetched from anywhere else: no external scripts, styles, fonts or images
    assert not re.search(r'(src|href)="(https?:)?//', html.replace(f'href="{BASE}', ""))
    assert re.findall(r"<link[^>]*>", html) == ['<link rel="stylesheet" href="/static/chainproof.css">']
    script, style = site.get("/static/verify.js"), site.get("/static/chainproof.css")
    assert script.status_code == style.status_code == 200
    assert len(response.content) + len(script.content) + len(style.content) < 100_000


def test_language_choice(site: TestClient) -> None:
    assert "已验证" in site.get("/p/COF-YIRG-250/L2611-A", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).text
    assert "Verified" in site.get("/p/COF-YIRG-250/L2611-A", headers={"Accept-Language": "fr, en;q=0.5"}).text
    page = site.get("/p/COF-YIRG-250/L2611-A?lang=zh", headers={"Accept-Language": "en"})
    assert "已验证" in page.text
    assert page.headers["content-language"] == "zh"
    assert choose_language(None, "de-DE, zh-Hans;q=0.8, en;q=0.7") == "zh"
    assert choose_language(None, "en;q=0.2, zh;q=0.9") == "zh"
    assert choose_language("xx", None) == "en"


def test_sla_status_from_a_shipment(site: TestClient) -> None:
    assert 'class="sla on_time"' in site.get("/p/COF-YIRG-250/L2611-A?shipment=SO-L2611-A").text
    assert 'class="sla late"' in site.get("/p/COF-YIRG-250/L2611-B?shipment=SO-L2611-B").text
    # the demo placed this order 4 days ago with a 4.5-day promise: 88% of its window has passed
    at_risk = site.get("/p/OIL-KAL-500/K-0917?shipment=SO-K-0917").text
    assert 'class="sla at_risk"' in at_risk
    assert re.search(r'id="sla-reason">8\d% of the delivery window has passed', at_risk)
    chinese = site.get("/p/OIL-KAL-500/K-0917?shipment=SO-K-0917&lang=zh").text
    assert "承诺送达时限已过去大半" in chinese


def test_tampered_batch_fails_on_the_server_too(site: TestClient) -> None:
    store = site.app.state.store  # type: ignore[attr-defined]
    target = next(e for e in store.batch_entries("COF-YIRG-250", "L2611-A") if b"Djibouti" in e.leaf)
    index, leaf = target.stored_index, target.leaf.replace(b"Djibouti", b"Dschibuti")
    with store.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER entries_no_update"))
        conn.execute(text("UPDATE entries SET leaf = :leaf WHERE idx = :i"), {"leaf": leaf, "i": index})
    html = site.get("/p/COF-YIRG-250/L2611-A").text
    assert verdict(html) == "failed"
    assert f"#{index}:" in html


def test_qr_codes_carry_the_page_url(site: TestClient, tmp_path: Path) -> None:
    png = site.get("/v1/batches/COF-YIRG-250/L2611-A/qr.png")
    assert png.headers["content-type"] == "image/png"
    svg = site.get("/v1/batches/COF-YIRG-250/L2611-A/qr.svg")
    assert svg.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in svg.content
    assert site.get("/v1/batches/NOPE/1/qr.png").status_code == 404
    if shutil.which("zbarimg") is None:
        pytest.skip("zbarimg (Debian zbar-tools) is not installed; make test-deps installs it")
    path = tmp_path / "qr.png"
    path.write_bytes(png.content)
    decoded = subprocess.run(["zbarimg", "--quiet", "--raw", str(path)], capture_output=True, text=True, check=True)
    # the page, and the label fragment pinning the log key and the origin entry (ledger/label.py)
    from ledger.hashing import leaf_hash
    from ledger.label import label_fragment

    store = site.app.state.store  # type: ignore[attr-defined]
    origin = store.batch_range("COF-YIRG-250", "L2611-A", first=1)[0]
    fragment = label_fragment(str(store.signer.verifier), leaf_hash(origin.leaf))
    assert decoded.stdout.strip() == f"{BASE}/01/04006381333931/10/L2611-A{fragment}"
    assert site.get("/v1/batches/COF-YIRG-250/L2611-A").json()["label_url"] == decoded.stdout.strip()


def test_page_is_safe_from_what_actors_write(site: TestClient) -> None:
    """Recorded text is data: escaped in HTML, never a script or a javascript: link; query strings stay encoded."""
    from ledger.errors import ValidationError
    from tests.factory import add_party, inspection_data, origin_data
    from tests.servers import until_checkpointed

    store = site.app.state.store  # type: ignore[attr-defined]
    merchant = add_party(store, "<script>alert(1)</script> Foods", "merchant")
    inspector = add_party(store, "Inspector", "inspector")
    store.append([merchant.submit("origin", "XSS", "1", origin_data(product="</script><img src=x onerror=alert(1)>"))])
    bad = inspection_data()
    bad["report"]["url"] = "javascript:alert(1)"
    with pytest.raises(ValidationError, match="url"):
        store.append([inspector.submit("inspection", "XSS", "1", bad)])
    until_checkpointed(store)
    html = site.get("/p/XSS/1?shipment=a%26b%3Dc").text
    assert "<script>alert(1)</script>" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Foods" in html
    data = html.split('id="ledger-data">')[1].split("</script>")[0]
    assert "</" not in data  # the embedded JSON cannot close its own element
    assert "shipment=a%26b%3Dc&amp;lang=zh" in html


def test_an_unknown_shipment_in_the_link_is_said_not_ignored(site: TestClient) -> None:
    html = site.get("/01/04006381333931/10/L2611-A?shipment=NOPE-1").text
    assert 'id="shipment-unknown"' in html
    assert "There is no shipment <bdi>NOPE-1</bdi> in this batch" in html
    zh = site.get("/01/04006381333931/10/L2611-A?shipment=NOPE-1&lang=zh").text
    assert "本批次中没有订单 <bdi>NOPE-1</bdi>" in zh
    assert 'id="shipment-unknown"' not in site.get("/01/04006381333931/10/L2611-A?shipment=SO-L2611-A").text
    hostile = site.get("/01/04006381333931/10/L2611-A?shipment=%3Cscript%3E").text
    assert "<bdi>&lt;script&gt;</bdi>" in hostile


def test_the_chinese_page_has_no_english_labels_and_names_countries_in_chinese(site: TestClient) -> None:
    import re

    from api.pages.i18n import TEXT

    html = site.get("/01/04006381333931/10/L2611-A?shipment=SO-L2611-A&lang=zh").text
    shown = re.sub(r"<script.*?</script>|<bdi>.*?</bdi>|<code>.*?</code>|<pre.*?</pre>", "", html, flags=re.S)
    assert "埃塞俄比亚" in shown  # Ethiopia, from CLDR
    for english in ("Ethiopia", "SKU / lot", "SLA", "Inspections", "Journey", "Shipment", "Product", "Producer"):
        assert english not in shown, english
    for key in ("sku_lot", "sla", "gtin"):
        assert TEXT["zh"][key] in shown
    english_page = site.get("/01/04006381333931/10/L2611-A?shipment=SO-L2611-A&lang=en").text
    assert "Ethiopia" in english_page


def test_the_page_says_which_signers_the_operator_registered(tmp_path: Path) -> None:
    """The log key registers on the server's machine only (the bootstrap, a migrated directory): a producer
    registered so is marked on the page; one an admin registered, with a signed registration, is not."""
    from cli.identities import RegistrationSigner
    from ledger.identities import IdentityType
    from ledger.signing import generate_private_key, public_key_bytes
    from ledger.storage import Submission
    from tests.factory import Party, make_world, origin_data, signed_now

    app = create_app(
        Settings(checkpoint_interval_s=0.05, data_dir=tmp_path, public_url=BASE, log_name="trace.example/log")
    )
    site_world = make_world(app.state.store)
    store = site_world.store
    admin = RegistrationSigner(site_world.admin.id, site_world.admin.private_key, site_world.admin.key.key_id)
    shop_key, signed_at = generate_private_key(), signed_now()
    events = [
        admin.event(
            IdentityType.ACTOR,
            "act_admins_shop",
            {"id": "act_admins_shop", "name": "Admins Shop", "role": "merchant"},
            signed_at,
        ),
        admin.key_add("act_admins_shop", public_key_bytes(shop_key), shop_key, signed_at),
    ]
    store.append([Submission(e["statement"], base64.b64decode(e["signature"])) for e in events])
    registry = store.registry()
    shop = Party(
        registry.rule_actors["act_admins_shop"],
        registry.directory().keys[events[1]["statement"]["data"]["key_id"]],
        shop_key,
    )
    store.append([site_world.merchant.submit("origin", "ATT", "1", origin_data())])
    store.append([shop.submit("origin", "ATT", "2", origin_data())])
    with TestClient(app) as client:
        attested = client.get("/p/ATT/1").text
        signed = client.get("/p/ATT/2").text
        chinese = client.get("/p/ATT/1?lang=zh").text
    assert "(registered by the platform operator)" in attested
    assert "(registered by the platform operator)" not in signed
    assert "（由平台运营方登记）" in chinese
