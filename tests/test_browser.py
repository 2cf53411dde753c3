"""A real browser (headless Chromium) opens product pages served on 127.0.0.1 and checks them itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from cli.demo import seed_demo
from tests.chromium import CHROMIUM
from tests.chromium import watch_csp as _watch_csp
from tests.factory import make_world
from tests.servers import Server, start_server, until_checkpointed

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Chromium is not installed (Debian chromium; make test-deps installs it)"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("site"))
    seed_demo(server.store, server.settings.data_dir / "keys")
    # a third coffee lot whose stored handoff an attacker edits in the database
    store = server.store
    target = next(e for e in store.batch_entries("COF-YIRG-250", "L2611-B") if b"Djibouti" in e.leaf)
    with store.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER entries_no_update"))
        conn.execute(
            text("UPDATE entries SET leaf = :leaf WHERE idx = :i"),
            {"leaf": target.leaf.replace(b"Djibouti port", b"Djibouti pier"), "i": target.stored_index},
        )
    # a batch longer than a page: 302 events
    world = make_world(store)
    store.append(world.journey("LONG", "1", shipments=75))
    until_checkpointed(store)
    yield server
    server.stop()


@pytest.mark.parametrize("width", [360, 1280])
@pytest.mark.parametrize(
    ("path", "verdict", "browser_state", "words"),
    [
        ("/01/04006381333931/10/L2611-A", "verified", "ok", "Verified in your browser"),
        ("/01/05012345678900/10/K-0903", "recalled", "ok", "Recalled"),
        ("/01/04006381333931/10/L2611-B", "failed", "failed", "Your browser found a problem"),
        ("/01/04006381333931/10/L2611-A?lang=zh", "verified", "ok", "已在您的浏览器中验证"),
        ("/p/LONG/1", "verified", "ok", "Showing 50 of this batch's 302 events"),
    ],
)
def test_page_in_a_real_browser(
    site: Server, browser, width: int, path: str, verdict: str, browser_state: str, words: str
) -> None:
    page = browser.new_page(viewport={"width": width, "height": 800})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    violations = _watch_csp(page)
    response = page.goto(site.url + path)
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector("#browser-check:not([data-state=checking])", timeout=15000)
    assert page.get_attribute("#verdict", "data-verdict") == verdict
    assert page.get_attribute("#browser-check", "data-state") == browser_state
    assert words in page.inner_text("body")
    if browser_state == "failed":
        assert "signature does not verify" in page.inner_text("#browser-check")
    # a recalled batch whose records check out: the box confirms the recall, in red, never an all-clear
    box_class = page.get_attribute("#browser-check", "class") or ""
    assert ("recall-stands" in box_class) == (verdict == "recalled")
    assert ("ok" in box_class.split()) == (verdict == "verified" and browser_state == "ok")
    # readable on a phone: nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert all(url.startswith(site.url) for url in requests), requests
    assert violations == [], violations  # the verifier works under the page's strict policy
    page.close()


@pytest.mark.parametrize(("path", "ready"), [("/docs", ".opblock"), ("/redoc", "[data-section-id]")])
def test_api_docs_work_offline_under_their_policy(site: Server, browser, path: str, ready: str) -> None:
    """Swagger UI and ReDoc come from this server (packaged assets), not from a CDN: they render with every other
    address unreachable, and break no rule of their Content-Security-Policy."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    elsewhere: list[str] = []

    def only_this_server(route) -> None:
        if route.request.url.startswith(site.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    violations = _watch_csp(page)
    page.goto(site.url + path)
    page.wait_for_selector(ready, timeout=20000)
    assert "/v1/events" in page.inner_text("body")
    assert elsewhere == []
    # ReDoc's sidebar credit points an <img> at its CDN (no option turns it off): the policy blocks it before any
    # request is made, which is the policy doing its job. Nothing else may be blocked.
    unexpected = [v for v in violations if "https://cdn.redoc.ly/redoc/logo-mini.svg" not in v]
    assert unexpected == [], violations
    page.close()


def test_browser_without_ed25519_shows_the_servers_verdict(site: Server, browser) -> None:
    page = browser.new_page(viewport={"width": 360, "height": 800})
    # a browser whose WebCrypto lacks Ed25519
    page.add_init_script(
        """
        const original = crypto.subtle.importKey.bind(crypto.subtle);
        crypto.subtle.importKey = (format, data, algorithm, ...rest) =>
          (algorithm && (algorithm === "Ed25519" || algorithm.name === "Ed25519"))
            ? Promise.reject(new DOMException("Unrecognized name", "NotSupportedError"))
            : original(format, data, algorithm, ...rest);
        """
    )
    page.goto(site.url + "/01/05012345678900/10/K-0903")
    page.wait_for_selector("#browser-check:not([data-state=checking])", timeout=15000)
    assert page.get_attribute("#browser-check", "data-state") == "unsupported"
    text = page.inner_text("#browser-check")
    assert "cannot check Ed25519" in text
    assert "Recalled" in text
    page.close()


def test_certificate_link_on_a_phone(site: Server, browser) -> None:
    """The certificate is one tap away on a genuine batch's page, and a recalled batch's page says it is revoked."""
    page = browser.new_page(viewport={"width": 360, "height": 800})
    page.goto(site.url + "/01/04006381333931/10/L2611-A")
    link = page.locator("#certificate-link")
    assert link.is_visible()
    response = page.request.get(site.url + str(link.get_attribute("href")))
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.body().startswith(b"%PDF-")
    page.goto(site.url + "/01/05012345678900/10/K-0903")
    assert page.locator("#certificate-revoked").is_visible()
    assert page.locator("#certificate-link").count() == 0
    page.close()


def test_older_events_of_a_long_batch_are_checked_in_the_browser(site: Server, browser) -> None:
    """Each page of a long batch is a chain the browser checks, down to the origin."""
    page = browser.new_page(viewport={"width": 360, "height": 800})
    page.goto(site.url + "/p/LONG/1")
    pages = 1
    while True:
        page.wait_for_selector("#browser-check:not([data-state=checking])", timeout=15000)
        assert page.get_attribute("#browser-check", "data-state") == "ok", page.inner_text("#browser-check")
        older = page.query_selector("#older-events")
        if older is None:
            break
        older.click()
        page.wait_for_load_state()
        pages += 1
    assert pages == 7  # 302 events, 50 a page
    assert "Origin recorded" in (page.text_content("details") or "")  # the first page lists the origin
    page.close()


def test_the_label_fragment_holds_the_server_to_the_package(site: Server, browser) -> None:
    """The QR code's fragment (never sent to the server) names the log key and the origin entry: a genuine label
    verifies and says so; a server that swaps in another log key, or shows another origin entry, than the label
    is shown up; without a fragment the page says its check rests on the server's key."""
    from ledger.hashing import leaf_hash
    from ledger.label import label_fragment
    from ledger.note import NoteSigner
    from ledger.signing import generate_private_key

    store = site.store
    path = "/01/04006381333931/10/L2611-A"
    log_key = str(store.signer.verifier)
    origin = leaf_hash(store.batch_range("COF-YIRG-250", "L2611-A", first=1)[0].leaf)
    genuine = label_fragment(log_key, origin)
    another_key = label_fragment(str(NoteSigner(store.signer.name, generate_private_key()).verifier), origin)
    another_origin = label_fragment(log_key, leaf_hash(store.batch_range("LONG", "1", first=1)[0].leaf))
    cases = [
        (genuine, "ok", "match the ones printed on this label"),
        ("", "ok", "rests on the log key the server gave"),
        (another_key, "failed", "the label names another log key"),
        (another_origin, "failed", "the label names another origin entry"),
    ]
    for fragment, state, words in cases:
        page = browser.new_page(viewport={"width": 360, "height": 800})
        requests: list[str] = []
        page.on("request", lambda request, seen=requests: seen.append(request.url))
        page.goto(site.url + path + fragment)
        page.wait_for_selector("#browser-check:not([data-state=checking])", timeout=15000)
        assert page.get_attribute("#browser-check", "data-state") == state, (
            fragment,
            page.inner_text("#browser-check"),
        )
        assert words in page.inner_text("#browser-check")
        assert all("#" not in url and "k=" not in url for url in requests)  # the fragment never reaches the server
        page.close()
