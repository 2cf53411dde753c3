"""Running several API workers, each on its own SO_REUSEPORT socket.

uvicorn's own `--workers` shares one listening socket among the workers: whichever wakes first accepts every
pending connection, so a few busy keep-alive clients (an ingestion pipeline, a load balancer's pool) can all land
on one worker while the other idles (measured here: 8 connections, one worker at 92% CPU, the other at 0%). With
a socket per worker bound with SO_REUSEPORT, the Linux kernel spreads connections across workers by their
address hash. Where SO_REUSEPORT is missing, uvicorn's shared socket is used.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event as EventType
from types import FrameType
from typing import Any

APP = "api.app:app_from_env"
_BACKLOG = 2048
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_EARLY_DEATHS = 3


def reuse_port_supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def check_port_free(host: str, port: int) -> None:
    """Fail early and plainly if something else listens there (SO_REUSEPORT would not say so)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def proxy_options(forwarded_allow_ips: str | None) -> dict[str, Any]:
    """uvicorn's proxy-header options: believe X-Forwarded-For only from these addresses. uvicorn's own default
    trusts 127.0.0.1, so that any local client could claim another address; here the default trusts nobody."""
    if not forwarded_allow_ips:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": forwarded_allow_ips}


def _exit_with_parent(parent: int) -> None:
    """End this worker when its supervisor dies (even by SIGKILL), so that no worker serves unsupervised and a new
    `serve` can take the port. Linux tells us at once (PR_SET_PDEATHSIG); elsewhere, and as a backstop, a thread
    notices that our parent changed."""
    import ctypes
    import threading

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn shuts down gracefully on SIGTERM

    threading.Thread(target=watch, name="chainproof-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the supervisor died before we could ask to be told
        os.kill(os.getpid(), signal.SIGTERM)


def _worker(
    host: str, port: int, log_level: str, forwarded_allow_ips: str | None, parent: int, ready: EventType
) -> None:
    import threading

    import uvicorn

    _exit_with_parent(parent)
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(_BACKLOG)
    config = uvicorn.Config(
        APP,
        factory=True,
        loop="uvloop",
        http="httptools",
        log_level=log_level,
        server_header=False,
        **proxy_options(forwarded_allow_ips),
    )
    server = uvicorn.Server(config)

    def report_ready() -> None:  # uvicorn sets `started` once the app is built and the socket served
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            ready.set()

    threading.Thread(target=report_ready, name="chainproof-ready", daemon=True).start()
    server.run(sockets=[sock])


def run_workers(host: str, port: int, workers: int, log_level: str, forwarded_allow_ips: str | None = None) -> None:
    """Start `workers` processes and keep them running until SIGINT or SIGTERM. A worker that dies is replaced if
    it was serving, or if another worker serves (so starting works); when none has ever served, or workers die
    before serving several times in a row, the cause would repeat (a bad database URL, a foreign log key):
    everything stops and this raises. Workers end by themselves if this supervisor dies."""
    check_port_free(host, port)
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> tuple[SpawnProcess, EventType]:
        ready = context.Event()
        process = context.Process(
            target=_worker,
            args=(host, port, log_level, forwarded_allow_ips, os.getpid(), ready),
            name="chainproof-worker",
        )
        process.start()
        return process, ready

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = [start() for _ in range(workers)]
    processes = [process for process, _ready in started]
    readiness = [ready for _process, ready in started]
    early_deaths = 0  # in a row: a worker that dies before serving while others serve may have been killed
    try:
        while not stopping:
            time.sleep(0.5)
            for n, process in enumerate(processes):
                if not process.is_alive() and not stopping:
                    if not readiness[n].is_set():
                        early_deaths += 1
                        if early_deaths >= _EARLY_DEATHS or not any(ready.is_set() for ready in readiness):
                            raise RuntimeError(f"a worker exited with {process.exitcode} before serving (see above)")
                    else:
                        early_deaths = 0
                    print(
                        f"chainproof: worker {process.pid} exited with {process.exitcode}; starting another",
                        file=sys.stderr,
                    )
                    processes[n], readiness[n] = start()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # uvicorn shuts down gracefully on SIGTERM
        deadline = time.monotonic() + 30
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
