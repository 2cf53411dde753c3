"""Rate limits: per token on writes, per client address on failed authentication and on pages and QR codes; 429
problem+json with Retry-After and the IETF RateLimit fields; shared by two workers (Redis, or each worker's share
in memory); a client's own X-Forwarded-For changes nothing."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.factory import World, make_world, origin_data
from tests.servers import free_port, listening_sockets

REDIS_URL = os.environ.get("CHAINPROOF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CHAINPROOF = str(Path(sys.executable).parent / "chainproof")


def _redis_reachable() -> bool:
    host, port = REDIS_URL.removeprefix("redis://").split("/")[0].split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[TestClient, World]]:
    settings = Settings(
        checkpoint_interval_s=0.05,
        data_dir=tmp_path,
        rate_limit_writes="3/minute",
        rate_limit_failed_auth="3/minute",
        rate_limit_pages="2/minute",
    )
    app = create_app(settings)
    with TestClient(app) as client:
        yield client, make_world(app.state.store)


def _body(submission) -> dict:
    import base64

    return {"statement": submission.statement, "signature": base64.b64encode(submission.signature).decode()}


def _assert_limited(response: httpx.Response, name: str, quota: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/rate-limited")
    retry = int(response.headers["retry-after"])
    assert 1 <= retry <= 60
    assert response.headers["ratelimit-policy"] == f'"{name}";q={quota};w=60'
    assert re.fullmatch(rf'"{name}";r=0;t=\d+', response.headers["ratelimit"])


def test_writes_are_limited_per_token(limited: tuple[TestClient, World]) -> None:
    client, world = limited
    token = world.store.issue_token(world.merchant.id)
    other = world.store.issue_token(world.other_merchant.id)
    remaining = []
    for lot in range(3):
        response = client.post(
            "/v1/events",
            json=_body(world.merchant.submit("origin", "RL", str(lot), origin_data())),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201, response.text
        assert response.headers["ratelimit-policy"] == '"writes";q=3;w=60'
        remaining.append(int(re.fullmatch(r'"writes";r=(\d+);t=\d+', response.headers["ratelimit"]).group(1)))
    assert remaining == [2, 1, 0]
    refused = client.post(
        "/v1/events",
        json=_body(world.merchant.submit("origin", "RL", "9", origin_data())),
        headers={"Authorization": f"Bearer {token}"},
    )
    _assert_limited(refused, "writes", 3)
    assert world.store.size() == world.at(3)  # the refused request wrote nothing
    # another token has its own allowance
    response = client.post(
        "/v1/events",
        json=_body(world.other_merchant.submit("origin", "RL2", "1", origin_data())),
        headers={"Authorization": f"Bearer {other}"},
    )
    assert response.status_code == 201


def test_failed_authentication_is_limited_per_address(limited: tuple[TestClient, World]) -> None:
    client, world = limited
    valid = world.store.issue_token(world.admin.id)
    for _ in range(3):
        guess = client.get("/v1/me", headers={"Authorization": f"Bearer cpt_{secrets.token_urlsafe(32)}"})
        assert guess.status_code == 401
    # the address spent its failures: no more tries with any token until the window ends, not even a valid one
    _assert_limited(
        client.get("/v1/me", headers={"Authorization": f"Bearer cpt_{secrets.token_urlsafe(32)}"}), "failed-auth", 3
    )
    _assert_limited(client.get("/v1/me", headers={"Authorization": f"Bearer {valid}"}), "failed-auth", 3)
    # requests without credentials (public reads) go on
    assert client.get("/healthz").status_code == 200


def test_pages_and_qr_codes_are_limited_per_address(limited: tuple[TestClient, World]) -> None:
    client, _world = limited
    assert client.get("/p/NOPE/1").status_code == 404  # a page, found or not, counts
    assert client.get("/v1/batches/NOPE/1/qr.png").status_code == 404
    _assert_limited(client.get("/01/04006381333931/10/L1"), "pages", 2)
    assert client.get("/v1/log/checkpoint").status_code == 200  # the API's reads are not page scans


def test_limits_can_be_switched_off(tmp_path: Path) -> None:
    app = create_app(
        Settings(checkpoint_interval_s=0.05, data_dir=tmp_path, rate_limits=False, rate_limit_pages="1/minute")
    )
    with TestClient(app) as client:
        for _ in range(3):
            response = client.get("/p/NOPE/1")
            assert response.status_code == 404
            assert "ratelimit" not in response.headers


def test_limit_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINPROOF_RATE_LIMITS", "off")
    monkeypatch.setenv("CHAINPROOF_RATE_LIMIT_PAGES", "7/second")
    monkeypatch.setenv("CHAINPROOF_WORKERS", "2")
    settings = Settings.from_env()
    assert (settings.rate_limits, settings.rate_limit_pages, settings.workers) == (False, "7/second", 2)
    monkeypatch.setenv("CHAINPROOF_RATE_LIMITS", "maybe")
    with pytest.raises(ValueError, match="CHAINPROOF_RATE_LIMITS"):
        Settings.from_env()


def _serve(tmp_path: Path, port: int, workers: int, *extra: str, **env: str) -> subprocess.Popen[bytes]:
    environment = dict(
        os.environ,
        CHAINPROOF_DATA_DIR=str(tmp_path),
        CHAINPROOF_LOG_NAME=f"ratelimit-{secrets.token_hex(4)}.test/log",  # its own Redis keys
        CHAINPROOF_RATE_LIMIT_PAGES="10/minute",
        **env,
    )
    if "CHAINPROOF_REDIS_URL" not in env:
        environment.pop("CHAINPROOF_REDIS_URL", None)
    return subprocess.Popen(
        [CHAINPROOF, "serve", "--port", str(port), "--workers", str(workers), "--log-level", "warning", *extra],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    started: list[subprocess.Popen[bytes]] = []

    def start(workers: int, *extra: str, **env: str) -> str:
        port = free_port()
        server = _serve(tmp_path / str(len(started)), port, workers, *extra, **env)
        started.append(server)
        deadline = time.time() + 60
        while listening_sockets(port) < workers and time.time() < deadline and server.poll() is None:
            time.sleep(0.2)
        assert listening_sockets(port) == workers, server.stderr.read().decode() if server.poll() is not None else ""
        return f"http://127.0.0.1:{port}"

    yield start
    for server in started:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def _scan_pages(url: str, count: int, **headers: str) -> list[int]:
    """`count` page loads, each on a new connection (so the kernel spreads them over the workers)."""
    statuses = []
    for n in range(count):
        with httpx.Client(base_url=url, timeout=10) as client:
            statuses.append(client.get(f"/p/NOPE/{n}", headers=headers).status_code)
    return statuses


@pytest.mark.slow
@pytest.mark.skipif(not _redis_reachable(), reason=f"Redis is not reachable at {REDIS_URL}")
def test_two_workers_share_their_counters_in_redis(serve) -> None:
    url = serve(2, CHAINPROOF_REDIS_URL=REDIS_URL)
    statuses = _scan_pages(url, 30)
    assert statuses.count(404) == 10, statuses  # exactly the limit, across both workers
    assert statuses.count(429) == 20


@pytest.mark.slow
def test_two_workers_in_memory_each_count_their_share(serve) -> None:
    url = serve(2)
    statuses = _scan_pages(url, 30)
    assert set(statuses) == {404, 429}, statuses
    assert statuses.count(404) <= 10, statuses  # two shares of 5: never twice the limit


@pytest.mark.slow
def test_a_clients_own_forwarded_for_changes_nothing(serve) -> None:
    url = serve(1)
    statuses = [_scan_pages(url, 1, **{"X-Forwarded-For": f"198.51.100.{n}"})[0] for n in range(15)]
    assert statuses.count(404) == 10, statuses  # every request counted against the real peer address
    # behind a proxy the operator names, the proxy's word is taken: each forwarded address has its own count
    proxied = serve(1, "--forwarded-allow-ips", "127.0.0.1")
    statuses = [_scan_pages(proxied, 1, **{"X-Forwarded-For": f"198.51.100.{n}"})[0] for n in range(15)]
    assert statuses.count(404) == 15, statuses
