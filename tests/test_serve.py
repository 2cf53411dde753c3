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


def _children(pid: int) -> list[int]:
    """The worker processes of a supervisor (multiprocessing's resource tracker is a child too, but no worker)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"resource_tracker" not in command:
                found.append(int(child))
    return found


def _wait_for(condition, seconds: float = 30) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_a_worker_that_dies_early_is_replaced_and_workers_end_with_their_supervisor(tmp_path: Path) -> None:
    """Found from outside: one worker dying in its first 10 s stopped the whole service; killing the supervisor
    left its workers serving unsupervised, and a new `serve` then failed with "address already in use"."""
    port = free_port()
    server = _serve(tmp_path, port, 2)
    try:
        assert _wait_for(lambda: listening_sockets(port) == 2, 60), server.stderr.read().decode()
        assert _wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200)
        time.sleep(2)  # both serving, within the first 10 s
        workers = _children(server.pid)
        assert len(workers) >= 2
        os.kill(workers[0], signal.SIGKILL)  # seconds after it started serving
        assert _wait_for(lambda: listening_sockets(port) == 2 and workers[0] not in _children(server.pid))
        assert server.poll() is None  # the service goes on
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
        workers = _children(server.pid)
        server.send_signal(signal.SIGKILL)  # the supervisor dies without a word to its workers
        server.wait(10)
        assert _wait_for(lambda: listening_sockets(port) == 0, 20)
        assert _wait_for(lambda: not any(_alive(worker) for worker in workers), 20)
    finally:
        if server.poll() is None:
            server.kill()
    again = _serve(tmp_path, port, 1)  # the port is free for a new serve
    try:
        assert _wait_for(lambda: listening_sockets(port) == 1, 60)
    finally:
        again.send_signal(signal.SIGTERM)
        again.wait(30)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status
