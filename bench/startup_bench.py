"""CLI start-up (issue: everyday use; target under 0.3 s), median of 10 runs after a warm-up:

- wall time of `chainproof --help`, `chainproof record --help` and `chainproof verify --help`;
- `chainproof record origin ...` from the process's start to its request reaching the server: a listener here
  notes when the connection arrives (the server's own time is not start-up), for an http:// and an https://
  server URL (https also loads the CA bundle before it connects).

`python -X importtime -c "import cli.main"` shows what a start imports.

    python bench/startup_bench.py [--runs 10]
"""

from __future__ import annotations

import argparse
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

CHAINPROOF = str(Path(sys.executable).parent / "chainproof")


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _listen() -> tuple[int, queue.Queue[float]]:
    """A TCP listener on a free port that notes when each connection arrives and closes it."""
    arrivals: queue.Queue[float] = queue.Queue()
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            connection, _address = server.accept()
            arrivals.put(time.perf_counter())
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1], arrivals


def to_first_request(command: list[str], arrivals: queue.Queue[float]) -> float:
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    arrived = arrivals.get(timeout=30)
    process.kill()
    process.wait()
    while not arrivals.empty():  # a retry that raced the kill
        arrivals.get()
    return arrived - start


def report(name: str, times: list[float]) -> None:
    times = sorted(times)
    print(
        f"{name:<40} median {statistics.median(times) * 1000:.0f} ms "
        f"(range {times[0] * 1000:.0f}-{times[-1] * 1000:.0f}, {len(times)} runs; target < 300 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    for command in ([CHAINPROOF, "--help"], [CHAINPROOF, "record", "--help"], [CHAINPROOF, "verify", "--help"]):
        wall(command)  # warm-up: the page cache, compiled bytecode
        report(" ".join(["chainproof", *command[1:]]), [wall(command) for _ in range(args.runs)])

    port, arrivals = _listen()
    with tempfile.TemporaryDirectory() as scratch:
        key, token = Path(scratch) / "key.pem", Path(scratch) / "token"
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        key.write_bytes(pem)
        token.write_text("cpt_" + "a" * 43 + "\n")
        for scheme in ("http", "https"):
            command = [
                CHAINPROOF, "record", "origin", "--sku", "BENCH", "--lot", "L1", "--product", "Olive oil",
                "--country", "GR", "--quantity", "10", "--unit", "kg", "--key", str(key), "--token-file", str(token),
                "--server", f"{scheme}://127.0.0.1:{port}",
            ]  # fmt: skip
            to_first_request(command, arrivals)  # warm-up
            times = [to_first_request(command, arrivals) for _ in range(args.runs)]
            report(f"chainproof record origin ({scheme})", times)


if __name__ == "__main__":
    main()
