"""Every kind of response carries the protective headers, and HTML pages a policy that allows no inline script or
style (the browser test checks the pages still work under it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.security import PAGE_CSP
from api.settings import Settings
from cli.demo import seed_demo


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    directory = tmp_path_factory.mktemp("headers")
    app = create_app(Settings(checkpoint_interval_s=0.05, data_dir=directory))
    seed_demo(app.state.store, directory / "keys")
    with TestClient(app) as client:
        yield client


PATHS = {
    "/01/04006381333931/10/L2611-A": "text/html",
    "/p/NOPE/1": "text/html",
    "/v1/batches/COF-YIRG-250/L2611-A": "application/json",
    "/v1/batches/NOPE/1": "application/problem+json",
    "/v1/batches/COF-YIRG-250/L2611-A/qr.png": "image/png",
    "/v1/batches/COF-YIRG-250/L2611-A/qr.svg": "image/svg+xml",
    "/v1/batches/COF-YIRG-250/L2611-A/certificate.pdf": "application/pdf",
    "/v1/log/checkpoint": "text/plain",
    "/static/verify.js": "text/javascript",
    "/static/chainproof.css": "text/css",
    "/docs": "text/html",
    "/redoc": "text/html",
    "/openapi.json": "application/json",
}


@pytest.mark.parametrize(("path", "media_type"), PATHS.items())
def test_protective_headers_on_every_response(client: TestClient, path: str, media_type: str) -> None:
    response = client.get(path)
    assert response.headers["content-type"].startswith(media_type), response.headers["content-type"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-eval" not in policy
    if media_type == "text/html" and path not in ("/docs", "/redoc"):
        assert policy == PAGE_CSP
        assert "unsafe-inline" not in policy
        assert "<style" not in response.text
        assert " style=" not in response.text
        assert "<script>" not in response.text  # only external scripts and JSON data blocks
    elif media_type != "text/html":
        assert policy.startswith("default-src 'none'")
        assert "script-src" not in policy


def test_ledger_text_is_isolated_on_the_page(client: TestClient) -> None:
    html = client.get("/01/04006381333931/10/L2611-A").text
    assert "<bdi>Yirgacheffe green coffee</bdi>" in html
    assert "<bdi>Sidama Highlands Coffee</bdi>" in html
