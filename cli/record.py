"""Keys and recording: `chainproof keygen` and `chainproof record`."""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cli.client import CliError, ServerClient
from ledger.canonical import canonical_json, parse_json
from ledger.errors import EncodingError, LedgerError
from ledger.events import EventType, content_identity, new_statement, parse_time, validate_statement
from ledger.hashing import b64encode
from ledger.privacy import statement_problem
from ledger.signing import (
    Ed25519PrivateKey,
    generate_private_key,
    key_id_for,
    load_private_key_pem,
    public_key_bytes,
    public_key_pem,
    sign_statement,
    write_private_key,
)


def keygen(out: Path) -> tuple[Path, Path, str]:
    """Write a new Ed25519 key: `out` (private PEM, 0600, never overwritten) and `out.pub` (public PEM)."""
    public_path = out.with_name(out.name + ".pub")
    if out.exists() or public_path.exists():
        raise CliError(f"{out if out.exists() else public_path} already exists; refusing to overwrite a key")
    key = generate_private_key()
    try:
        write_private_key(out, key)
    except FileExistsError as exc:
        raise CliError(f"{out} already exists; refusing to overwrite a key") from exc
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror}") from exc
    public_path.write_bytes(public_key_pem(key))
    return out, public_path, key_id_for(public_key_bytes(key))


def load_key(path: Path | None) -> Ed25519PrivateKey:
    if path is None:
        raise CliError("no signing key: pass --key FILE or set CHAINPROOF_KEY")
    try:
        return load_private_key_pem(path.read_bytes())
    except FileNotFoundError as exc:
        raise CliError(f"key file {path} not found") from exc
    except OSError as exc:
        raise CliError(f"cannot read key file {path}: {exc.strerror}") from exc
    except LedgerError as exc:
        raise CliError(f"{path}: {exc}") from exc


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_time(value: str | None, option: str) -> str:
    """The given RFC 3339 time (checked), or now."""
    if value is None:
        return now_rfc3339()
    try:
        parse_time(value, option)
    except LedgerError as exc:
        raise CliError(f"{option}: {exc}") from exc
    return value


def number(value: float) -> int | float:
    """JSON numbers as a person typed them: 1200, not 1200.0."""
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def document(path: Path, url: str | None = None) -> dict[str, Any]:
    """A document's record: SHA-256 (computed here; the file is never uploaded), media type, size, name."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise CliError(f"document {path} not found") from exc
    except OSError as exc:
        raise CliError(f"cannot read document {path}: {exc.strerror}") from exc
    record: dict[str, Any] = {"sha256": digest.hexdigest(), "size": size, "name": path.name}
    media_type = mimetypes.guess_type(path.name)[0]
    if media_type:
        record["media_type"] = media_type
    if url:
        record["url"] = url
    return record


def require(options: dict[str, Any], kind: str, *names: str) -> None:
    missing = [f"--{n.replace('_', '-')}" for n in names if options.get(n) in (None, [], "")]
    if missing:
        raise CliError(f"record {kind} needs {', '.join(missing)}")


def event_data(kind: EventType, o: dict[str, Any]) -> dict[str, Any]:
    """The statement's data for one event type, from the command's options."""
    data: dict[str, Any]
    if kind is EventType.ORIGIN:
        require(o, kind, "product", "country", "quantity", "unit")
        data = {
            "product": o["product"],
            "country": o["country"],
            "produced_at": check_time(o.get("produced_at"), "--produced-at"),
            "quantity": number(o["quantity"]),
            "unit": o["unit"],
        }
        for name in ("region", "facility", "gtin"):
            if o.get(name):
                data[name] = o[name]
        if o.get("document"):
            data["documents"] = [document(p) for p in o["document"]]
    elif kind is EventType.INSPECTION:
        require(o, kind, "standard", "result", "report")
        data = {
            "standard": o["standard"],
            "result": o["result"],
            "inspected_at": check_time(o.get("inspected_at"), "--inspected-at"),
            "report": document(o["report"], o.get("report_url")),
        }
    elif kind is EventType.SHIPMENT:
        require(o, kind, "shipment", "destination", "promised_by")
        data = {
            "shipment_id": o["shipment"],
            "destination": o["destination"],
            "placed_at": check_time(o.get("placed_at"), "--placed-at"),
            "promised_by": check_time(o["promised_by"], "--promised-by"),
        }
        if o.get("quantity") is not None:
            require(o, kind, "unit")
            data.update(quantity=number(o["quantity"]), unit=o["unit"])
    elif kind is EventType.HANDOFF:
        require(o, kind, "to", "place")
        data = {"from": o["actor_id"], "to": o["to"], "place": o["place"], "at": check_time(o.get("at"), "--at")}
        if o.get("shipment"):
            data["shipment_id"] = o["shipment"]
        if o.get("temperature") is not None:
            data["condition"] = {"temperature_c": number(o["temperature"])}
    elif kind is EventType.DELIVERY:
        require(o, kind, "shipment")
        data = {"shipment_id": o["shipment"], "delivered_at": check_time(o.get("delivered_at"), "--delivered-at")}
        if o.get("place"):
            data["place"] = o["place"]
        if o.get("quantity") is not None:
            data["quantity"] = number(o["quantity"])
    elif kind is EventType.SHIPMENT_CANCEL:
        require(o, kind, "shipment")
        data = {"shipment_id": o["shipment"], "cancelled_at": check_time(o.get("cancelled_at"), "--cancelled-at")}
        if o.get("reason"):
            data["reason"] = o["reason"]
    else:
        require(o, kind, "reason")
        data = {"reason": o["reason"]}
    return data


def signed_event(
    key: Ed25519PrivateKey, actor_id: str, kind: str, sku: str, lot: str, data: dict[str, Any], signed_at: str
) -> dict[str, Any]:
    statement = new_statement(kind, sku, lot, actor_id, key_id_for(public_key_bytes(key)), signed_at, data)
    return {"statement": statement, "signature": b64encode(sign_statement(key, canonical_json(statement)))}


def event_identity(actor_id: str, event: dict[str, Any]) -> bytes:
    """The content identity (ledger.events.content_identity) of an events-file line as this actor signs it."""
    return content_identity(new_statement(event["type"], event["sku"], event["lot"], actor_id, "", "", event["data"]))


def logged_identities(client: ServerClient, batches: set[tuple[str, str]]) -> set[bytes]:
    """Content identities of every statement the log holds for these batches."""
    found: set[bytes] = set()
    for sku, lot in sorted(batches):
        batch = client.get_json_if_found(f"/v1/batches/{quote(sku, safe='')}/{quote(lot, safe='')}")
        for entry in (batch or {}).get("events", []):
            if isinstance(entry.get("statement"), dict):
                found.add(content_identity(entry["statement"]))
    return found


def not_yet_logged(
    client: ServerClient, actor_id: str, events: list[tuple[int, dict[str, Any]]], seen: set[bytes]
) -> list[tuple[int, dict[str, Any]]]:
    """The numbered events whose content the log does not hold yet, nor `seen` (what this run sent, or an earlier
    line said); `seen` learns the log's and theirs."""
    seen |= logged_identities(client, {(event["sku"], event["lot"]) for _number, event in events})
    fresh = []
    for number, event in events:
        identity = event_identity(actor_id, event)
        if identity not in seen:
            seen.add(identity)
            fresh.append((number, event))
    return fresh


def whoami(client: ServerClient) -> str:
    me = client.get_json("/v1/me")
    return str(me["id"])


def record_one(
    client: ServerClient, key: Ed25519PrivateKey, kind: EventType, sku: str, lot: str, options: dict[str, Any]
) -> Any:
    actor_id = whoami(client)
    data = event_data(kind, {**options, "actor_id": actor_id})
    personal = statement_problem({"type": kind.value, "data": data})
    if personal is not None:  # told before anything is signed or sent
        raise CliError(personal.replace("statement.data.", "--", 1))
    body = signed_event(key, actor_id, kind.value, sku, lot, data, now_rfc3339())
    # one key for this command: a retry after a lost answer returns the first result, never a duplicate
    headers = {"Idempotency-Key": f"chainproof-cli-{uuid.uuid4()}"}
    return client.request("POST", "/v1/events", json=body, headers=headers).json()


class Journal:
    """What `record --from-file` has sent, next to the input file, so a rerun resends the very same signed
    requests (with the same idempotency keys) and never appends twice."""

    def __init__(self, source: Path) -> None:
        self.dir = source.with_name(source.name + ".chainproof")
        self.source_hash = hashlib.sha256(source.read_bytes()).hexdigest()
        self.set_aside: Path | None = None  # an earlier version's journal, if the file changed since

    def start(self) -> str:
        """The run's signing time: the first run's, when resuming the same file."""
        self.dir.mkdir(exist_ok=True)
        run = self.dir / "run.json"
        if run.exists():
            state = json.loads(run.read_text())
            if state.get("source_sha256") == self.source_hash:
                return str(state["signed_at"])
            # The file was edited since: set that run's journal aside and start anew. Nothing is sent twice: what
            # the log already holds is recognised by content (see `logged_identities`), whatever the journal says.
            aside = self.dir.with_name(f"{self.dir.name}.{str(state.get('source_sha256', 'old'))[:12]}")
            self.dir.rename(aside)
            self.dir.mkdir()
            self.set_aside = aside
        signed_at = now_rfc3339()
        self._write(run, json.dumps({"source_sha256": self.source_hash, "signed_at": signed_at}).encode())
        return signed_at

    def key(self, chunk: int) -> str:
        return f"chainproof-file-{self.source_hash[:40]}-{chunk}"

    def body(self, chunk: int) -> bytes | None:
        path = self.dir / f"chunk-{chunk:06d}.json"
        return path.read_bytes() if path.exists() else None

    def save_body(self, chunk: int, body: bytes) -> None:
        self._write(self.dir / f"chunk-{chunk:06d}.json", body)

    def done(self, chunk: int) -> Any:
        path = self.dir / f"chunk-{chunk:06d}.done"
        return json.loads(path.read_text()) if path.exists() else None

    def mark_done(self, chunk: int, result: Any) -> None:
        self._write(self.dir / f"chunk-{chunk:06d}.done", json.dumps(result).encode())

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)


MAX_EVENT_LINE_CHARS = 256 * 1024
"""A line of an events file is refused beyond this (an entry holds at most 65,535 bytes)."""


def read_event_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """The events of a JSON Lines file with their line numbers, each checked for its shape; errors name the file
    and the line."""
    events = []
    try:
        with path.open(encoding="utf-8") as handle:
            number = 0
            while line := handle.readline(MAX_EVENT_LINE_CHARS + 1):
                number += 1
                if len(line) > MAX_EVENT_LINE_CHARS:
                    raise CliError(f"{path}:{number}: line is longer than {MAX_EVENT_LINE_CHARS} characters")
                if line.strip():
                    events.append((number, _event_line(path, number, line)))
    except FileNotFoundError as exc:
        raise CliError(f"{path} not found") from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start} of a chunk)") from exc
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not events:
        raise CliError(f"{path} holds no events")
    return events


def _event_line(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        item = parse_json(line)
    except EncodingError as exc:
        raise CliError(f"{path}:{number}: {exc}") from exc
    if not isinstance(item, dict) or not {"type", "sku", "lot", "data"} <= set(item):
        raise CliError(f"{path}:{number}: each line needs type, sku, lot and data")
    if item["type"] not in {t.value for t in EventType}:
        raise CliError(f"{path}:{number}: unknown event type {item['type']!r}")
    if not isinstance(item["data"], dict):
        raise CliError(f"{path}:{number}: data must be an object")
    for name in ("sku", "lot", "signed_at"):
        if name in item and not isinstance(item[name], str):
            raise CliError(f"{path}:{number}: {name} must be a string")
    return dict(item)


def check_event_lines(
    path: Path, events: list[tuple[int, dict[str, Any]]], actor_id: str, key_id: str, signed_at: str
) -> None:
    """Every line as the statement it will be signed into, checked against the schema before anything is sent:
    the first error names its file and line (and how many other lines have one)."""
    problems: list[str] = []
    for number, event in events:
        statement = new_statement(
            event["type"],
            event["sku"],
            event["lot"],
            actor_id,
            key_id,
            event.get("signed_at", signed_at),
            event["data"],
        )
        try:
            validate_statement(statement)
        except LedgerError as exc:
            problems.append(f"{path}:{number}: {exc}")
            continue
        personal = statement_problem(statement)
        if personal is not None:
            problems.append(f"{path}:{number}: {personal}")
    if problems:
        more = f" (and {len(problems) - 1} more lines with errors; nothing was sent)" if len(problems) > 1 else ""
        raise CliError(problems[0] + (more or " (nothing was sent)"))


def line_of_server_error(message: str, path: Path, lines: list[int]) -> str:
    """A server's refusal of a batch names "event N" of the request: name the file's line instead."""
    match = re.search(r"event (\d+): ", message)
    if match is None or int(match.group(1)) >= len(lines):
        return message
    return f"{path}:{lines[int(match.group(1))]}: " + message.replace(match.group(0), "", 1)
