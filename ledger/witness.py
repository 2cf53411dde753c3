"""A C2SP tlog-witness: cosigns a log's checkpoint only if it is consistent with the last one it cosigned for that
log, and remembers that one durably, so no crash or restart ever makes it cosign a fork.

`Witness.add_checkpoint` answers the protocol's `POST <prefix>/add-checkpoint` exactly as the spec gives the
status codes and bodies: 400 a malformed request or an old size above the checkpoint's, 403 no valid signature by
a trusted key for the origin, 404 an unknown origin, 409 (`text/x.tlog.size`: the size it holds) an old size that
is not the one it last cosigned, 422 a consistency proof that does not verify (or a non-empty proof from size 0,
or a size-0 checkpoint whose root is not the empty tree's, or the same size with another root), 200 the
cosignature line.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ledger import merkle
from ledger.cosignature import Cosigner
from ledger.errors import EncodingError, LedgerError, SignatureError
from ledger.files import write_atomically
from ledger.hashing import EMPTY_ROOT, b64decode, b64encode
from ledger.note import Checkpoint, NoteVerifier, open_note, parse_note

MOST_PROOF_LINES = 63
MOST_REQUEST_BYTES = 64 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


class WitnessState:
    """The latest cosigned (size, root) of each log, one file per origin, each replaced atomically and synced
    before a cosignature leaves; a lock (in the process and on the directory) makes check-and-update atomic."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._thread_lock = threading.Lock()
        self._lock_file = directory / ".lock"

    def _path(self, origin: str) -> Path:
        return self.directory / (hashlib.sha256(origin.encode("utf-8")).hexdigest()[:32] + ".json")

    def latest(self, origin: str) -> tuple[int, bytes] | None:
        path = self._path(origin)
        if not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("origin") != origin:
            raise EncodingError(f"witness state {path} belongs to another origin")
        return int(data["size"]), b64decode(str(data["root"]), what="stored root", size=32)

    def save(self, origin: str, size: int, root: bytes) -> None:
        state = {"origin": origin, "size": size, "root": b64encode(root)}
        # the rename itself must survive a crash: a witness that forgot a size could cosign a fork
        write_atomically(self._path(origin), json.dumps(state).encode("utf-8"), sync_directory=True)

    def locked(self) -> _Locked:
        return _Locked(self)


class _Locked:
    def __init__(self, state: WitnessState) -> None:
        self.state = state
        self._file: int | None = None

    def __enter__(self) -> WitnessState:
        self.state._thread_lock.acquire()
        self._file = os.open(self.state._lock_file, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._file, fcntl.LOCK_EX)
        return self.state

    def __exit__(self, *_exc: object) -> None:
        assert self._file is not None
        fcntl.flock(self._file, fcntl.LOCK_UN)
        os.close(self._file)
        self.state._thread_lock.release()


def parse_request(body: bytes) -> tuple[int, list[bytes], str]:
    """(old size, consistency proof, checkpoint note) of an add-checkpoint request; EncodingError if malformed."""
    if len(body) > MOST_REQUEST_BYTES:
        raise EncodingError(f"request is over {MOST_REQUEST_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EncodingError("request is not UTF-8") from exc
    head, separator, note = text.partition("\n\n")
    if not separator:
        raise EncodingError("request has no empty line before the checkpoint")
    lines = head.split("\n")
    old_line, proof_lines = lines[0], lines[1:]
    if (
        not old_line.startswith("old ")
        or not (digits := old_line[4:]).isdigit()
        or (digits != "0" and digits[0] == "0")
    ):
        raise EncodingError("the first line must be 'old <size>' in decimal with no leading zeroes")
    if len(proof_lines) > MOST_PROOF_LINES:
        raise EncodingError(f"more than {MOST_PROOF_LINES} consistency proof lines")
    proof = [b64decode(line, what="consistency proof hash", size=32) for line in proof_lines]
    return int(digits), proof, note


class Witness:
    """Cosigns checkpoints of the logs it knows (origin -> the log's keys) with `cosigner`."""

    def __init__(
        self,
        cosigner: Cosigner,
        logs: Mapping[str, Sequence[NoteVerifier]],
        state: WitnessState,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cosigner, self.logs, self.state, self.clock = cosigner, logs, state, clock

    def add_checkpoint(self, body: bytes) -> Answer:
        try:
            old, proof, note = parse_request(body)
            parsed = parse_note(note)
            checkpoint = Checkpoint.parse_body(parsed.text)
        except (EncodingError, ValueError) as exc:
            return Answer(400, f"malformed add-checkpoint request: {exc}\n".encode())
        keys = self.logs.get(checkpoint.origin)
        if not keys:
            return Answer(404, f"this witness does not witness the log {checkpoint.origin}\n".encode())
        try:
            open_note(note, list(keys))
        except (SignatureError, EncodingError) as exc:
            return Answer(403, f"the checkpoint is not validly signed by the log: {exc}\n".encode())
        if old > checkpoint.size:
            return Answer(400, f"old size {old} is above the checkpoint's size {checkpoint.size}\n".encode())
        with self.state.locked() as state:
            latest = state.latest(checkpoint.origin)
            held_size, held_root = latest if latest is not None else (0, EMPTY_ROOT)
            if old != held_size:
                return Answer(409, f"{held_size}\n".encode(), "text/x.tlog.size")
            if checkpoint.size == 0 and checkpoint.root_hash != EMPTY_ROOT:
                return Answer(422, b"a checkpoint of size 0 must have the empty tree's root\n")
            if old == 0 and proof:
                return Answer(422, b"from size 0 the consistency proof must be empty\n")
            if old == checkpoint.size and checkpoint.root_hash != held_root:
                return Answer(422, b"same size as the checkpoint cosigned before, another root: a fork\n")
            if 0 < old < checkpoint.size:
                try:
                    merkle.verify_consistency(old, checkpoint.size, held_root, checkpoint.root_hash, proof)
                except LedgerError as exc:
                    return Answer(422, f"the consistency proof does not verify: {exc}\n".encode())
            state.save(checkpoint.origin, checkpoint.size, checkpoint.root_hash)  # before the cosignature leaves
        return Answer(200, self.cosigner.cosign(parsed.text, int(self.clock())).encode())


__all__ = ["MOST_PROOF_LINES", "Answer", "Witness", "WitnessState", "parse_request"]
