"""An append is answered once a checkpoint covers it.

Only the issuer signs checkpoints (ledger/witnessing.py), on its cadence, and readers are shown the log up to the
latest one: an append answered at once would be invisible to its own recorder for up to a cadence. So the API
answers an append when the latest checkpoint covers it (and wakes the issuer, if it runs in this process, so that
a lone append waits a moment rather than a cadence), or after `append_wait_s` if none does by then (the issuer
is down: the append is recorded all the same, and readers see it with the next checkpoint). The issuer may be in
another worker or on another machine, so the latest checkpoint's size is read from the database, once per
`poll_s` for all the appends then waiting in this process.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from starlette.concurrency import run_in_threadpool

from api.problems import ThrottledWarning
from ledger.storage import LedgerStore

logger = logging.getLogger("chainproof.api")


class CheckpointWaiter:
    def __init__(
        self, store: LedgerStore, wait_s: float, wake: threading.Event | None = None, poll_s: float = 0.02
    ) -> None:
        self._store, self._wait_s, self._poll_s = store, wait_s, poll_s
        self._wake = wake
        self._size = 0  # the largest checkpointed tree size seen; it only grows
        self._read_at = -1.0
        self._reading: asyncio.Future[None] | None = None
        self._lock = threading.Lock()  # for the routes that wait on a worker thread
        self._late = ThrottledWarning(logger, "an append was answered before a checkpoint covered it")

    def _read(self) -> None:
        size = self._store.checkpointed_size() or 0
        self._size = max(self._size, size)
        self._read_at = time.monotonic()

    def _begin(self, size: int) -> float:
        """Wake the issuer if this process runs it; the deadline of a wait for `size` entries."""
        if self._wake is not None and self._size < size:
            self._wake.set()
        return time.monotonic() + self._wait_s

    def _given_up(self, deadline: float) -> bool:
        if time.monotonic() < deadline:
            return False
        self._late.note(TimeoutError(f"none in {self._wait_s:g} s: is the checkpoint issuer running?"))
        return True

    async def wait(self, size: int) -> bool:
        """Until the latest checkpoint covers `size` entries (True), or `append_wait_s` has passed (False)."""
        deadline = self._begin(size)
        while self._size < size:
            if self._given_up(deadline):
                return False
            if time.monotonic() - self._read_at >= self._poll_s:
                if self._reading is None or self._reading.done():  # one read serves every append then waiting
                    self._reading = asyncio.ensure_future(run_in_threadpool(self._read))
                await asyncio.shield(self._reading)
            else:
                await asyncio.sleep(self._poll_s)
        return True

    def wait_blocking(self, size: int) -> bool:
        """`wait`, for a route that runs on a worker thread."""
        deadline = self._begin(size)
        while self._size < size:
            if self._given_up(deadline):
                return False
            with self._lock:
                if time.monotonic() - self._read_at >= self._poll_s:
                    self._read()
            if self._size < size:
                time.sleep(self._poll_s)
        return True
