"""The log's own signing key: a PEM file (mode 0600) created on first use; never stored in the database."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ledger.errors import EncodingError
from ledger.note import NoteSigner
from ledger.signing import generate_private_key, load_private_key_pem, write_private_key


def load_or_create_log_signer(path: Path, name: str) -> NoteSigner:
    """Load the log key from `path`, creating it (0600, exclusive create) if it does not exist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        write_private_key(path, generate_private_key())
    mode = path.stat().st_mode & 0o777
    if mode & 0o077 and os.name == "posix":
        raise EncodingError(f"log key {path} is readable by others (mode {mode:o}); chmod 600 it")
    return NoteSigner(name, load_private_key_pem(path.read_bytes()))
