"""The checkpoint issuer, and the log's side of witnessing (C2SP tlog-witness).

One process (the holder of the issuer lock, among every worker on every machine) signs the log's checkpoints, on a
cadence: when the log has grown, or when the last one was witnessed half a freshness bound ago. Nothing else
signs one: a read serves the latest issued checkpoint. In a witnessed log the issuer then asks every witness of
its policy to cosign it, with a consistency proof from the size that witness holds, and records the cosignatures
that verify. A witness that is down or refuses is logged and skipped: the checkpoint is stored (and served) before
the witnesses are asked, so appends never wait for witnesses.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text

from ledger.cosignature import Policy, PolicyWitness
from ledger.errors import LedgerError
from ledger.hashing import b64encode
from ledger.note import Checkpoint, parse_note

if TYPE_CHECKING:
    from ledger.storage import LedgerStore

log = logging.getLogger("chainproof.witnessing")
Post = Callable[[str, bytes], tuple[int, bytes]]
RETRY_PAUSE_S = 30.0
MIN_GAP_S = 0.25  # the issuer signs at most this often, however often appends wake it
TAKEOVER_PAUSE_S = 2.0  # how often a worker that is not the issuer checks whether the issuer's process is gone
_PG_ISSUER_LOCK = 0x6973737565  # "issue": the advisory lock key of the one checkpoint issuer of this database


class WitnessRefusedError(LedgerError):
    """A witness answered with something other than a cosignature that verifies."""


def _http_post(url: str, body: bytes) -> tuple[int, bytes]:
    import httpx

    response = httpx.post(url, content=body, timeout=10.0, headers={"Content-Type": "text/plain"})
    return response.status_code, response.content


class LogWitnessing:
    def __init__(
        self,
        store: LedgerStore,
        policy: Policy,
        *,
        freshness_s: float = 3600.0,
        post: Post = _http_post,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.policy, self.freshness_s, self.post, self.clock = store, policy, freshness_s, post, clock
        self.sizes: dict[str, int] = {}  # the size each witness holds, as far as we know
        self.retry_at: dict[str, float] = {}  # when to ask again a witness that did not cosign
        self.last_witnessed: float | None = None
        self.last_size: int | None = None

    def tick(self) -> int | None:
        """Issue and witness a checkpoint if one is due (the log grew, a witness has not cosigned the latest yet,
        or half the freshness bound has passed); returns its size (None: nothing was due)."""
        size = self.store.size()
        stale = self.last_witnessed is None or self.clock() - self.last_witnessed >= self.freshness_s / 2
        reachable = [w for w in self.policy.witnesses.values() if w.url is not None]
        now = self.clock()
        # down or refusing last time: asked again once the log grows, or after a pause (not at every tick)
        behind = [w for w in reachable if self.sizes.get(w.name) != size and now >= self.retry_at.get(w.name, 0.0)]
        if size == self.last_size and not stale and not behind:
            return None
        note = self.store.issue_checkpoint()
        checkpoint = Checkpoint.parse_body(parse_note(note).text)
        cosignatures = []
        asked = reachable if stale or size != self.last_size else behind
        for witness in asked:
            try:
                cosignatures.append(self._ask(witness, note, checkpoint))
            except Exception as exc:  # a witness down or refusing never stops the log
                self.retry_at[witness.name] = now + RETRY_PAUSE_S
                log.warning("witness %s did not cosign tree size %d: %s", witness.name, checkpoint.size, exc)
        self.store.add_cosignatures(checkpoint.size, cosignatures)
        if stale or size != self.last_size:
            self.last_witnessed = self.clock()
        self.last_size = checkpoint.size
        return checkpoint.size

    def _ask(self, witness: PolicyWitness, note: str, checkpoint: Checkpoint) -> tuple[str, int, str]:
        assert witness.url is not None
        old = self.sizes.get(witness.name, 0)
        for _attempt in range(2):  # a 409 tells the size the witness holds: ask once more from there
            proof = self.store.consistency_proof(old, checkpoint.size) if 0 < old < checkpoint.size else []
            body = f"old {old}\n" + "".join(b64encode(h) + "\n" for h in proof) + "\n" + note
            status, answer = self.post(witness.url.rstrip("/") + "/add-checkpoint", body.encode())
            if status == 409:
                old = int(answer.decode("ascii", "replace").strip() or "0")
                continue
            if status != 200:
                raise WitnessRefusedError(f"HTTP {status}: {answer[:200].decode('utf-8', 'replace').strip()}")
            for line in answer.decode("utf-8").splitlines():
                timestamp = witness.key.timestamp_of(note + line + "\n")
                if timestamp is not None:
                    self.sizes[witness.name] = checkpoint.size
                    return str(witness.key), timestamp, line + "\n"
            raise WitnessRefusedError("its answer holds no cosignature by its key")
        raise WitnessRefusedError(f"it holds tree size {old}, which this log cannot extend to {checkpoint.size}")


@contextmanager
def issuer_lock(engine: Engine, lock_path: Path) -> Iterator[bool]:
    """Whether this process holds the issuer lock (yields False at once when another does). PostgreSQL: a session
    advisory lock on a connection kept for the purpose, so that workers on several machines agree, and released by
    the database when the process dies; SQLite (one machine): a lock on `lock_path`."""
    if engine.dialect.name == "postgresql":
        conn = engine.connect()
        try:
            held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": _PG_ISSUER_LOCK}).scalar())
            conn.commit()  # idle, not idle in a transaction: the lock belongs to the session
            yield held
            if held:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_ISSUER_LOCK})
                conn.commit()
        finally:
            conn.close()
        return
    handle = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)


def run_issuer(
    witnessing: LogWitnessing,
    interval_s: float,
    stop: threading.Event,
    lock_path: Path,
    wake: threading.Event | None = None,
) -> None:
    """Tick every `interval_s` until `stop`, in the one process that holds the issuer lock. Every worker starts
    this; the others try again now and then, so that one of them takes over when the issuer's process ends.
    `wake`, set by an append in this process, brings the next tick forward, to no sooner than `min_gap` after the
    last: a lone append waits a moment, not a whole cadence, and a busy log still gets few checkpoints."""
    min_gap = min(MIN_GAP_S, interval_s)
    while not stop.is_set():
        try:
            with issuer_lock(witnessing.store.engine, lock_path) as held:
                while held and not stop.is_set():
                    ticked_at = time.monotonic()
                    try:
                        witnessing.tick()
                    except Exception:
                        log.exception("issuing or witnessing a checkpoint failed; trying again in %.1f s", interval_s)
                    if wake is None:
                        stop.wait(interval_s)
                        continue
                    wake.wait(max(0.0, ticked_at + interval_s - time.monotonic()))
                    stop.wait(max(0.0, ticked_at + min_gap - time.monotonic()))
                    wake.clear()  # before the tick: an append after it wakes the one after
        except Exception:  # the database cannot be reached: try again later
            log.exception("cannot take the checkpoint issuer's lock; trying again in %.1f s", TAKEOVER_PAUSE_S)
        stop.wait(TAKEOVER_PAUSE_S)


__all__ = ["LogWitnessing", "WitnessRefusedError", "issuer_lock", "run_issuer"]
