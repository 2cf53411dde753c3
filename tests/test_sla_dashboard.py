"""The SLA dashboard (/sla) over the hand-computed scenario: sign-in (bearer token or the form's cookie), the
report as tables and server-drawn SVG charts in English and Chinese, who sees what; and in headless Chromium at
360 px and 1280 px: the tables, the three charts loaded as SVG, no CSP violation, nothing wider than the screen."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest

from tests import sla_scenario
from tests.chromium import watch_csp
from tests.factory import World, make_world
from tests.servers import Server, start_server

AS_OF = sla_scenario.AS_OF


@dataclass
class Site:
    server: Server
    world: World
    tokens: dict[str, str]

    def client(self, who: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.server.url, headers=headers, follow_redirects=False)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    server = start_server(tmp_path_factory.mktemp("sla-site"))
    world = make_world(server.store)
    sla_scenario.build(world)
    server.store.issue_checkpoint()
    tokens = {
        name: server.store.issue_token(getattr(world, name).id)
        for name in ("admin", "merchant", "other_merchant", "carrier", "inspector")
    }
    yield Site(server, world, tokens)
    server.stop()


def _dashboard(site: Site, who: str, **params: str) -> httpx.Response:
    with site.client(who) as client:
        return client.get("/sla", params={"as_of": AS_OF, **params})


def _cells(html: str, row_label: str) -> list[str]:
    """The cells of the figures table's row whose first cell is `row_label`."""
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S):
        cells = [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
        if cells and cells[0] == row_label:
            return cells
    raise AssertionError(f"no row {row_label!r}")


def test_without_a_token_the_dashboard_asks_to_sign_in(site: Site) -> None:
    with site.client() as client:
        page = client.get("/sla")
        assert page.status_code == 401
        assert 'action="/sla/sign-in' in page.text
        assert client.get("/sla/charts/weekly.svg").status_code == 401


def test_the_admin_sees_every_figure_with_the_checkpoint(site: Site) -> None:
    page = _dashboard(site, "admin")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    size = site.server.store.size()
    assert f"checkpoint {size}" in page.text
    # shipments, delivered, on time, OTIF, within 24 h, within 48 h, late, overdue, at risk, cancelled
    assert _cells(page.text, "All shipments")[1:] == [
        "9",
        "4",
        "60.0%",
        "25.0%",
        "50.0%",
        "66.7%",
        "1",
        "1",
        "2",
        "1",
        "1 d / 2 d",
    ]
    weeks = _cells(page.text, "2026-W45")
    assert weeks[0:3] == ["2026-W45", "5", "3"]
    assert page.text.count('<img class="chart"') == 3
    risky = page.text[page.text.index('id="at-risk"') :]
    assert "(3)" in risky
    assert "no handoff yet" in risky


def test_grouped_by_carrier_with_names(site: Site) -> None:
    page = _dashboard(site, "admin", group_by="carrier")
    cells = _cells(page.text, "Red Sea Freight")  # the carrier's registered name, not its id
    assert cells[1:4] == ["4", "3", "50.0%"]  # S1-S4: S1, S3 on time; S2 late; S4 overdue


def test_who_sees_what(site: Site) -> None:
    mine = _dashboard(site, "other_merchant")
    assert _cells(mine.text, "All shipments")[1] == "1"
    assert 'name="merchant"' not in mine.text  # only admins and auditors choose whose figures
    assert _dashboard(site, "other_merchant", merchant=site.world.merchant.id).status_code == 403
    carried = _dashboard(site, "carrier")
    assert _cells(carried.text, "All shipments")[1] == "4"
    refused = _dashboard(site, "inspector")
    assert refused.status_code == 403
    assert "merchants, carriers, admins and auditors" in refused.text


def test_bad_filters_are_said_on_the_page(site: Site) -> None:
    page = _dashboard(site, "admin", **{"from": "last week"})
    assert page.status_code == 422
    assert "from" in page.text
    assert "must be an RFC 3339 time with an offset" in page.text
    assert "(or a date, YYYY-MM-DD)" in page.text


def test_chinese(site: Site) -> None:
    page = _dashboard(site, "admin", lang="zh")
    assert "交付承诺" in page.text
    assert "准时率" in page.text
    risky = page.text[page.text.index('id="at-risk"') :]
    assert "比该线路同期订单的通常进度慢" in risky  # S8, by its lane's progress
    assert "未在承诺时间内送达" in risky  # S4, overdue
    assert "no handoff yet" not in risky
    query = re.search(r'src="/sla/charts/weekly.svg\?([^"]+)"', page.text)
    assert query is not None
    with site.client("admin") as client:
        svg = client.get("/sla/charts/weekly.svg?" + query.group(1).replace("&amp;", "&"))
    assert svg.headers["content-type"] == "image/svg+xml"
    assert ">每周准时率</text>" in svg.text  # kept as text, set in the reader's fonts
    assert "Noto Sans CJK SC" in svg.text


def test_charts_are_svg_with_their_data(site: Site) -> None:
    pinned = urlencode({"as_of": AS_OF, "tree_size": site.server.store.size()})
    with site.client("admin") as client:
        weekly = client.get(f"/sla/charts/weekly.svg?{pinned}")
        custody = client.get(f"/sla/charts/custody.svg?{pinned}")
        lead = client.get(f"/sla/charts/lead.svg?{pinned}")
    for chart in (weekly, custody, lead):
        assert chart.status_code == 200
        assert chart.text.lstrip().startswith("<?xml")
        assert "<svg" in chart.text
        assert "script" not in chart.text.lower()
        assert chart.headers["content-security-policy"].startswith("default-src 'none'")
    assert ">W45</text>" in weekly.text
    # by hand: W44 S10 on time (100%); W45 S1, S3 on time of S1-S4 due (50%); W46 nothing due yet (a dash)
    assert re.findall(r">(100%|50%|–)</text>", weekly.text) == ["100%", "50%", "–"]
    assert ">Hamburg Last Mile</text>" in custody.text  # the slowest custodian (23 h median) is drawn
    assert ">p90</text>" in lead.text


def test_the_sign_in_form_sets_a_strict_http_only_cookie(site: Site) -> None:
    with site.client() as client:
        wrong = client.post("/sla/sign-in", data={"token": "cpt_nope"})
        assert wrong.status_code == 401
        assert "unknown or revoked" in wrong.text
        signed = client.post("/sla/sign-in", data={"token": site.tokens["admin"]})
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert "Path=/sla" in cookie
        page = client.get("/sla", params={"as_of": AS_OF})
        assert page.status_code == 200
        assert "Chainproof Ops" in page.text
        out = client.post("/sla/sign-out")
        assert out.status_code == 303
        assert client.get("/sla").status_code == 401


@pytest.mark.parametrize("width", [360, 1280])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_dashboard_in_a_real_browser(site: Site, browser: object, width: int, lang: str) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})  # type: ignore[attr-defined]
    violations = watch_csp(page)
    try:
        page.goto(f"{site.server.url}/sla?lang={lang}")
        page.fill("#token", site.tokens["admin"])
        page.click("form.sign-in button")
        page.wait_for_url(re.compile(r"/sla\?"))
        page.goto(f"{site.server.url}/sla?lang={lang}&as_of={AS_OF}")
        page.wait_for_load_state("networkidle")
        total = page.locator("table.figures tr.total td").all_inner_texts()
        assert total[1:4] == ["9", "4", "60.0%"]
        for chart in ("chart-weekly", "chart-lead", "chart-custody"):
            image = page.locator(f"#{chart}")
            assert image.evaluate("img => img.complete && img.naturalWidth > 0"), chart
            source = image.evaluate("img => fetch(img.src).then(r => r.text())")
            assert "<svg" in source
            assert "</text>" in source
        width_used = page.evaluate("document.documentElement.scrollWidth")
        assert width_used <= width, f"the page is {width_used} px wide on a {width} px screen"
        assert violations == []
    finally:
        page.close()


def test_a_chart_with_nothing_to_draw_says_so(site: Site) -> None:
    pinned = urlencode({"as_of": AS_OF, "from": "2030-01-01"})  # no shipment placed since
    with site.client("admin") as client:
        for chart in ("weekly", "lead", "custody"):
            svg = client.get(f"/sla/charts/{chart}.svg?{pinned}")
            assert svg.status_code == 200
            assert ">No data yet</text>" in svg.text


def test_charts_drawn_at_once_keep_their_text(site: Site) -> None:
    """A page's three charts are asked for together: each keeps its text as text, whatever the others do."""
    from concurrent.futures import ThreadPoolExecutor

    pinned = urlencode({"as_of": AS_OF, "tree_size": site.server.store.size(), "lang": "zh"})

    def fetch(chart: str) -> str:
        with site.client("admin") as client:
            return client.get(f"/sla/charts/{chart}.svg?{pinned}").text

    with ThreadPoolExecutor(6) as pool:
        drawn = list(pool.map(fetch, ["weekly", "lead", "custody"] * 8))
    assert all("</text>" in svg and "Noto Sans CJK SC" in svg for svg in drawn)
