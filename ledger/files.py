"""Files written whole or not at all, for the published tiles and the witness's state."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes, *, sync_directory: bool = False) -> None:
    """Write `path` from a temporary file beside it, synced, then renamed over it, so a reader sees the old file
    or the new one, never part of one. `sync_directory` also syncs the rename itself, for a file whose loss after
    a crash would be unsafe (the witness's latest cosigned size), not merely redone (a tile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".writing-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if sync_directory:
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
