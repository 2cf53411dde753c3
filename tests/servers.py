"""A real uvicorn server on 127.0.0.1 in a thread, for tests that need HTTP end to end (CLI, browser)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from api.app import create_app
from api.settings import Settings

LOG = "chainproof.test/log"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_sockets(port: int) -> int:
    """LISTEN sockets on 127.0.0.1:port (one per worker with SO_REUSEPORT), from Linux's /proc/net/tcp (state 0A);
    0 where that cannot be read."""
    wanted = f"0100007F:{port:04X}"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return 0
    return sum(1 for line in lines if line.split()[1] == wanted and line.split()[3] == "0A")


def until_listening(url: str, timeout_s: float = 20.0) -> None:
    """Until something answers HTTP at `url` (a process started beside the test, such as `witness serve`)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(url)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing answered at {url} within {timeout_s} s") from None
            time.sleep(0.05)


def until_checkpointed(store: Any, timeout_s: float = 10.0) -> None:
    """Until the server's checkpoint issuer has covered everything appended so far (a test that appends through
    the store, not the API, whose answer would have waited for it)."""
    size = store.size()
    deadline = time.monotonic() + timeout_s
    while (store.checkpointed_size() or 0) < size:
        if time.monotonic() > deadline:
            raise AssertionError(f"no checkpoint covered tree size {size} within {timeout_s} s: is the issuer running?")
        time.sleep(0.01)


@dataclass
class Server:
    url: str
    settings: Settings
    thread: threading.Thread
    server: uvicorn.Server

    @property
    def store(self) -> Any:
        return self.server.config.app.state.store

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


def start_server(data_dir: Path, key_file: Path | None = None, **overrides: Any) -> Server:
    port = free_port()
    values: dict[str, Any] = {
        "public_url": f"http://127.0.0.1:{port}",
        "log_name": LOG,
        "log_key_file": key_file,
        "checkpoint_interval_s": 0.05,  # tests append and read back at once: the issuer ticks often
    }
    settings = Settings(data_dir=data_dir, **(values | overrides))
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", server_header=False, proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise RuntimeError("test server did not start")
    return Server(f"http://127.0.0.1:{port}", settings, thread, server)
