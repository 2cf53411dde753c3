"""A PostgreSQL server of the test's own (initdb on a free port) is stopped under a running API: every endpoint that
needs it answers 503 problem+json with Retry-After on a connection that stays usable, and everything works again
once the database is back, by itself."""

from __future__ import annotations

import base64
import contextlib
import glob
import http.client
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.factory import make_world, origin_data
from tests.servers import free_port, start_server

_BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


@dataclass
class OwnPostgres:
    directory: Path
    port: int
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.directory / "data"),
            "-o",
            options,
            "-w",
            "-l",
            str(self.directory / "log"),
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop")


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    if not _BINARIES:
        pytest.skip("PostgreSQL server binaries are not installed (Debian postgresql)")
    directory = Path(tempfile.mkdtemp(prefix="chainproof-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    database = OwnPostgres(directory, free_port(), Path(_BINARIES[-1]))
    database._run("initdb", "-D", str(directory / "data"), "-A", "trust", "-U", "postgres")
    database.start()
    try:
        yield database
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            database.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.slow
def test_database_down_then_back(own_postgres: OwnPostgres, tmp_path: Path) -> None:
    server = start_server(tmp_path, db_url=own_postgres.url)
    try:
        world = make_world(server.store)
        token = server.store.issue_token(world.merchant.id)
        connection = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=30)

        def request(method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()

        def event(lot: str) -> bytes:
            submission = world.merchant.submit("origin", "DOWN", lot, origin_data())
            signature = base64.b64encode(submission.signature).decode()
            return json.dumps({"statement": submission.statement, "signature": signature}).encode()

        assert request("POST", "/v1/events", event("1"))[0] == 201
        own_postgres.stop()
        for method, path, body in [
            ("POST", "/v1/events", event("2")),
            ("GET", "/v1/batches/DOWN/1", None),
            ("GET", "/v1/log/checkpoint", None),
            ("GET", "/v1/log/entries?start=0", None),
            ("GET", "/p/DOWN/1", None),
            ("GET", "/readyz", None),
        ]:
            status, headers, payload = request(method, path, body)
            assert status == 503, (path, status, payload)
            assert headers["content-type"].startswith("application/problem+json")
            assert headers["retry-after"] == "5"
            assert headers.get("connection") != "close"
        assert request("GET", "/healthz")[0] == 200  # the process is up, on the same connection
        own_postgres.start()
        assert request("GET", "/readyz")[0] == 200
        assert request("POST", "/v1/events", event("2"))[0] == 201  # back to normal by itself
        status, _headers, payload = request("GET", "/v1/batches/DOWN/2")
        assert status == 200, payload
        connection.close()
    finally:
        server.stop()
