"""`chainproof serve --workers N`: one SO_REUSEPORT socket per worker (so the kernel spreads connections), a clean
stop on SIGTERM, and a plain error when the port is taken."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cli.serve import reuse_port_supported
from tests.servers import free_port, listening_sockets

pytestmark = pytest.mark.skipif(not reuse_port_supported(), reason="SO_REUSEPORT load balancing is Linux-only")

CHAINPROOF = str(Path(sys.executable).parent / "chainproof")


def _serve(tmp_path: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, CHAINPROOF_DATA_DIR=str(tmp_path))
    return subprocess.Popen(
        [CHAINPROOF, "serve", "--port", str(port), "--workers", str(workers), "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_each_worker_listens_on_its_own_socket_and_all_stop_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    server = _serve(tmp_path, port, 2)
    try:
        deadline = time.time() + 60
        while listening_sockets(port) < 2 and time.time() < deadline and server.poll() is None:
            time.sleep(0.2)
        assert listening_sockets(port) == 2, server.stderr.read().decode() if server.poll() is not None else ""
        for _ in range(5):
            response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
            assert response.status_code == 200
            assert "server" not in response.headers  # no banner naming the software to probe
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(30)
    assert code == 0
    assert listening_sockets(port) == 0


def test_a_taken_port_is_one_plain_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = _serve(tmp_path, port, 2)
        _out, err = server.communicate(timeout=60)
    assert server.returncode == 2
    lines = err.decode().strip().splitlines()  # (a note that SQLite serializes several workers comes first)
    assert lines[-1] == f"chainproof: cannot listen on 127.0.0.1:{port}: Address already in use"
