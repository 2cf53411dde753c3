"""Wire formats for taking a ledger elsewhere: the actor directory as JSON, and the offline bundle.

Bundle (chainproof-bundle/v2): gzip-compressed JSON Lines. Line 1 is a header object
    {"format", "origin", "log_key", "checkpoint", "entries", "registrations"}
(`log_key` the note verifier key string, `checkpoint` the signed note exactly as signed, `entries` the number of
entry lines, `registrations` a copy of the registration entries, `[{"index", "leaf"}]`, so a reader knows who may
sign before it reaches them: the verifier checks each against the entry line at its index); then one line per
entry in log order,
    {"index": i, "leaf": "<standard base64 of the leaf bytes>"}.
Written and read as a stream, so a bundle of a million entries never has to fit in memory. Who may sign is in the
entries themselves (registrations): v1 bundles, which carried an actor directory from outside the log, are
refused.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ledger.canonical import parse_json
from ledger.errors import EncodingError
from ledger.events import Role, format_time, parse_time
from ledger.hashing import b64decode, b64encode
from ledger.rules import Actor, ActorKey, Directory
from ledger.verify import LogEntry

BUNDLE_FORMAT = "chainproof-bundle/v2"
_OLD_FORMATS = ("chainproof-bundle/v1",)


def key_to_json(key: ActorKey) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "actor_id": key.actor_id,
        "public_key": b64encode(key.public_key),
        "valid_from": format_time(key.valid_from),
        "revoked_at": None if key.revoked_at is None else format_time(key.revoked_at),
    }


def directory_to_json(directory: Directory) -> list[dict[str, Any]]:
    """[{id, name, role, keys: [{key_id, actor_id, public_key, valid_from, revoked_at}]}], as GET /v1/actors."""
    keys_by_actor: dict[str, list[ActorKey]] = {}
    for key in directory.keys.values():
        keys_by_actor.setdefault(key.actor_id, []).append(key)
    return [
        {
            "id": actor.id,
            "name": actor.name,
            "role": actor.role.value,
            "keys": [key_to_json(k) for k in sorted(keys_by_actor.get(actor.id, []), key=lambda k: k.valid_from)],
        }
        for actor in sorted(directory.actors.values(), key=lambda a: a.id)
    ]


def directory_from_json(data: Any) -> Directory:
    """Parse the JSON of `directory_to_json` strictly. Raises EncodingError naming what is wrong."""
    if not isinstance(data, list):
        raise EncodingError("actor directory must be a list")
    actors: dict[str, Actor] = {}
    keys: dict[str, ActorKey] = {}
    try:
        for item in data:
            actor = Actor(str(item["id"]), str(item["name"]), Role(item["role"]))
            actors[actor.id] = actor
            for key in item["keys"]:
                if key["actor_id"] != actor.id:
                    raise EncodingError(f"key {key['key_id']} is listed under {actor.id} but names {key['actor_id']}")
                keys[key["key_id"]] = ActorKey(
                    str(key["key_id"]),
                    actor.id,
                    b64decode(key["public_key"], what=f"public key {key['key_id']}", size=32),
                    parse_time(key["valid_from"], "valid_from"),
                    None if key["revoked_at"] is None else parse_time(key["revoked_at"], "revoked_at"),
                )
    except (KeyError, TypeError, ValueError) as exc:
        raise EncodingError(f"malformed actor directory: {exc!r}") from exc
    return Directory(actors, keys)


@dataclass(frozen=True)
class BundleHeader:
    origin: str
    log_key: str
    checkpoint: str
    entries: int
    registrations: list[tuple[int, bytes]]


def write_bundle(path: Path, header: BundleHeader, entries: Iterable[LogEntry]) -> int:
    """Write a bundle; returns the number of entries written (which must match the header's)."""
    written = 0
    with gzip.open(path, "wt", encoding="utf-8") as out:
        head = {
            "format": BUNDLE_FORMAT,
            "origin": header.origin,
            "log_key": header.log_key,
            "checkpoint": header.checkpoint,
            "entries": header.entries,
            "registrations": [{"index": i, "leaf": b64encode(leaf)} for i, leaf in header.registrations],
        }
        out.write(json.dumps(head, separators=(",", ":")) + "\n")
        for entry in entries:
            out.write(json.dumps({"index": written, "leaf": b64encode(entry.leaf)}, separators=(",", ":")) + "\n")
            written += 1
    if written != header.entries:
        raise EncodingError(f"bundle header says {header.entries} entries but {written} were written")
    return written


MAX_HEADER_CHARS = 64 * 1024 * 1024
"""A bundle's first line (the checkpoint and the actor directory) is refused beyond this: about 100k actors."""
MAX_ENTRY_LINE_CHARS = 128 * 1024
"""An entry line is refused beyond this: it holds one leaf of at most 65,535 bytes, in base64."""


def _bounded_line(handle: IO[str], limit: int, what: str) -> str:
    """The next line ('' at the end), read no further than `limit` characters: a crafted bundle of a few MB can
    inflate to one line of gigabytes."""
    line = handle.readline(limit + 1)
    if len(line) > limit:
        raise EncodingError(f"{what} is longer than {limit} characters")
    return line


def open_bundle(path: Path) -> tuple[BundleHeader, Iterator[LogEntry]]:
    """Read a bundle's header, and an iterator over its entries (reading lazily, in order)."""
    handle: IO[str] = gzip.open(path, "rt", encoding="utf-8")  # noqa: SIM115 (the entries iterator closes it)
    try:
        head = parse_json(_bounded_line(handle, MAX_HEADER_CHARS, "header line"))
        found = head.get("format") if isinstance(head, dict) else None
        if found in _OLD_FORMATS:
            raise EncodingError(
                f"it is a {found} bundle, whose actors are a directory from outside the log, which this version no "
                f"longer trusts; export the log again ({BUNDLE_FORMAT}, where who may sign is in the log itself)"
            )
        if not isinstance(head, dict) or found != BUNDLE_FORMAT:
            raise EncodingError(f"its first line is not a {BUNDLE_FORMAT} header")
        registrations = [
            (int(item["index"]), b64decode(item["leaf"], what="registration leaf")) for item in head["registrations"]
        ]
        header = BundleHeader(
            str(head["origin"]), str(head["log_key"]), str(head["checkpoint"]), int(head["entries"]), registrations
        )
    except (OSError, EOFError, zlib.error, EncodingError, KeyError, TypeError, ValueError) as exc:
        handle.close()
        raise EncodingError(f"{path} is not a readable bundle: {exc}") from exc

    def entries() -> Iterator[LogEntry]:
        with handle:
            number = 1
            try:
                while line := _bounded_line(handle, MAX_ENTRY_LINE_CHARS, f"line {number + 1}"):
                    number += 1
                    item = parse_json(line)
                    yield LogEntry(b64decode(item["leaf"], what="leaf"), stored_index=int(item["index"]))
            except (
                OSError,
                EOFError,
                zlib.error,
                KeyError,
                TypeError,
                ValueError,
                EncodingError,
            ) as exc:
                raise EncodingError(f"bundle line {number} cannot be read: {exc}") from exc

    return header, entries()
