"""Opening a database as its log: the one way the server and the operator's commands get a store that signs."""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine

from ledger.errors import LedgerError, WrongLogKeyError
from ledger.logkey import load_or_create_log_signer
from ledger.storage.store import LedgerStore, read_log_meta


def default_log_name(public_url: str | None) -> str:
    """The log's name (its checkpoints' origin) when none is configured: the public URL's host, which names the
    log the way auditors reach it; for a loopback or missing host, a random one, so that two installs on one
    machine (or `make clean && make run`) never share a name that auditors pin a key to."""
    host = urlsplit(public_url).hostname if public_url else None
    if host and host != "localhost" and not _is_loopback(host):
        return f"{host}/log"
    return f"chainproof-{secrets.token_hex(4)}.local/log"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_log_store(
    engine: Engine,
    key_file: Path,
    log_name: str | None,
    public_url: str | None,
    *,
    migrating: bool = False,
    **store_options: Any,
) -> LedgerStore:
    """The store of the log this database belongs to, signing with `key_file` (created for a new log).

    The database records its log's name and key the first time; afterwards a configured name or a key file that
    differ are refused (WrongLogKeyError, naming both), and no key file is created for an existing log."""
    meta = read_log_meta(engine)
    if meta is not None and not key_file.exists():
        raise WrongLogKeyError(
            f"this database is the log {meta.origin} with key {meta.verifier_key}, but there is no key file at "
            f"{key_file}: set CHAINPROOF_LOG_KEY_FILE (or CHAINPROOF_DATA_DIR) to where the log's key is"
        )
    name = log_name or (meta.origin if meta is not None else default_log_name(public_url))
    store = LedgerStore(engine, load_or_create_log_signer(key_file, name), **store_options)
    store.bind_log_key()
    if not migrating and store.directory_awaits_migration():
        raise LedgerError(
            "this ledger's actors and keys predate identities in the log (they are rows, not registrations): run "
            "chainproof db upgrade, which appends them to the log signed by the log key"
        )
    return store
