"""The auditor's side: verify a whole ledger (server, database or bundle), spot-check a batch, export a bundle,
and monitor a log for rewrites. Everything cryptographic is checked here with `ledger/`; the server's word is
taken for nothing it can be checked on."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import platformdirs

from cli.client import CliError, ServerClient
from ledger.bundle import BundleHeader, open_bundle, write_bundle
from ledger.entry import parse_leaf
from ledger.errors import LedgerError
from ledger.hashing import b64decode, leaf_hash
from ledger.history import ShipmentFold
from ledger.identities import Registry
from ledger.note import Checkpoint, NoteVerifier, open_checkpoint, parse_note
from ledger.rules import BatchState
from ledger.verify import (
    BatchReport,
    LedgerVerifier,
    LogEntry,
    Problem,
    Report,
    check_consistency,
    proven_registry,
    registration_chains,
    replay_registrations,
    verify_batch,
)


@dataclass
class Snapshot:
    """One source's view of a log: its key (as published), checkpoint, actors and entries (lazy)."""

    published_key: NoteVerifier
    checkpoint: str
    registrations: list[tuple[int, bytes]]  # the source's registration entries, read ahead (LedgerVerifier)
    size: int
    entries: Iterable[LogEntry]
    key_is_local: bool = False  # read from the log's own key file: no need to trust it on first use
    beyond_checkpoint: int = 0  # entries appended after the checkpoint (not verified: not signed by the log yet)
    # a database's derived tables (batch heads, the actor tables), checked against the verified log
    check_derived: Callable[[dict[tuple[str, str], BatchState], Registry, ShipmentFold], list[Problem]] | None = None


def checkpoint_size(note: str) -> int:
    """The tree size a checkpoint claims, read without trusting it (its signature is checked elsewhere)."""
    try:
        return Checkpoint.parse_body(parse_note(note).text).size
    except LedgerError as exc:
        raise CliError(f"the checkpoint is malformed: {exc}") from exc


def parse_key(text: str, where: str) -> NoteVerifier:
    try:
        return NoteVerifier.parse(text)
    except LedgerError as exc:
        raise CliError(f"{where}: {exc}") from exc


def from_server(client: ServerClient) -> Snapshot:
    key = parse_key(client.get_text("/v1/log/key"), "the server's log key")
    note = client.get_text("/v1/log/checkpoint")
    size = checkpoint_size(note)
    registrations = client.registrations(size)
    entries = (LogEntry(leaf, stored_index=index) for index, leaf in client.entries(0, size))
    return Snapshot(key, note, registrations, size, entries)


def from_database(url: str, key_file: Path | None, log_key: str | None, origin: str | None) -> Snapshot:
    """A database, as an auditor reads it: opened read-only (no migration, no checkpoint, no key file created),
    verified against the checkpoints the log issued. The log's key is the one given (`log_key`), else the public
    half of the operator's key file if it is there, else the one the database records; whichever it is, it must
    verify the stored checkpoint. Entries appended after the latest checkpoint are counted, not verified (the log
    has not signed them yet)."""
    from ledger.signing import load_private_key_pem
    from ledger.storage import LedgerStore, check_schema_current, create_db_engine, read_log_meta

    try:
        engine = create_db_engine(url, read_only=True)
        check_schema_current(engine)
        meta = read_log_meta(engine)
        stored_key = meta.verifier_key if meta is not None else None
        if log_key is not None:
            published, key_is_local = parse_key(log_key, "--log-key"), False
        elif stored_key is not None:
            published, key_is_local = parse_key(stored_key, "the database's log key"), False
            if key_file is not None and key_file.is_file():
                # the operator's key file, as a source of the public key only (it signs nothing here): if it is
                # this log's, the key needs no trust on first use
                from ledger.note import NoteSigner

                assert meta is not None
                local = NoteSigner(meta.origin, load_private_key_pem(key_file.read_bytes())).verifier
                key_is_local = local == published
                if not key_is_local:
                    print(f"chainproof: note: {key_file} holds another log's key; not used", file=sys.stderr)
        else:
            raise CliError("the database records no log key yet: give --log-key (the log's published verifier key)")
        store = LedgerStore(engine, None, origin or published.name)
        note = store.latest_checkpoint()
        if note is None:
            raise CliError("the database holds no checkpoint to verify against (the log has not issued one yet)")
        total = store.size()
        registrations = store.registrations(0, checkpoint_size(note))
    except LedgerError as exc:
        raise CliError(str(exc)) from exc
    except Exception as exc:  # SQLAlchemy and driver errors: one line, exit 2
        if isinstance(exc, CliError):
            raise
        raise CliError(f"cannot read the database: {str(exc).splitlines()[0]}") from exc
    size = checkpoint_size(note)

    def check_derived(
        states: dict[tuple[str, str], BatchState], registry: Registry, shipments: ShipmentFold
    ) -> list[Problem]:
        try:
            differences = store.head_differences(states, size) + store.sla_differences(shipments, size)
            rogue = store.projection_differences(registry, size)
        except Exception as exc:
            differences, rogue = [f"cannot read the derived tables: {str(exc).splitlines()[0]}"], []
        return [
            Problem(None, "derived", f"{difference} (rebuild them from the log: chainproof db rebuild)")
            for difference in differences
        ] + [
            Problem(None, "directory", f"{difference}: the log is what counts (a row written outside it is ignored)")
            for difference in rogue
        ]

    return Snapshot(
        published,
        note,
        registrations,
        size,
        store.iter_entries(end=size),
        key_is_local=key_is_local,
        beyond_checkpoint=max(0, total - size),
        check_derived=check_derived,
    )


def from_bundle(path: Path) -> Snapshot:
    try:
        header, entries = open_bundle(path)
    except FileNotFoundError as exc:
        raise CliError(f"bundle {path} not found") from exc
    except LedgerError as exc:
        raise CliError(str(exc)) from exc
    key = parse_key(header.log_key, "the bundle's log key")
    return Snapshot(key, header.checkpoint, header.registrations, header.entries, entries)


def tile_fetcher(location: str) -> Callable[[str], bytes]:
    """Reads a tiled log's resources by path: over HTTP(S) from a URL prefix, or from a directory."""
    if location.startswith(("http://", "https://")):
        import httpx

        prefix = location.rstrip("/")
        http = httpx.Client(timeout=30.0, headers={"User-Agent": "chainproof-cli"})

        def fetch_url(path: str) -> bytes:
            try:
                response = http.get(f"{prefix}/{path}")
            except httpx.TransportError as exc:
                raise CliError(f"cannot reach {prefix}: {exc.__class__.__name__}: {exc}") from exc
            if response.status_code != 200:
                raise CliError(f"{prefix}/{path}: HTTP {response.status_code}")
            return response.content

        return fetch_url
    root = Path(location)
    if not root.is_dir():
        raise CliError(f"{location} is neither an http(s) URL nor a directory of tiles")

    def fetch_file(path: str) -> bytes:
        try:
            return (root / path).read_bytes()
        except FileNotFoundError as exc:
            raise CliError(f"{root / path} not found: the published tiles are incomplete") from exc

    return fetch_file


def from_tiles(location: str, log_key: str | None, state_dir: Path | None) -> Snapshot:
    """A log as published C2SP tiles (a URL prefix or a directory): its checkpoint, and every entry from the entry
    bundles, each checked against its level-0 tile hash, every hash tile above against the tree the entries make.
    Tiles publish no key: the one to trust is --log-key, or the one remembered for the log."""
    from ledger.identities import is_registration
    from ledger.tiles import TileReader, tiles_of

    fetch = tile_fetcher(location)
    try:
        note = fetch("checkpoint").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"{location}/checkpoint is not UTF-8 text") from exc
    size = checkpoint_size(note)
    origin = parse_note(note).text.split("\n", 1)[0]
    if log_key is not None:
        key = parse_key(log_key, "--log-key")
    elif (remembered := State(state_dir, origin).log_key) is not None:
        key = parse_key(remembered, "the log key remembered for " + origin)
    else:
        raise CliError(f"the tiles at {location} carry no log key: give --log-key (the key of {origin} you trust)")
    reader = TileReader(fetch, size)
    try:
        leaves = reader.entries()
        _check_hash_tiles(reader, leaves, tiles_of(size))
    except LedgerError as exc:
        raise CliError(f"the tiles at {location} do not hold together: {exc}") from exc
    registrations = []
    for index, leaf in enumerate(leaves):
        try:
            if is_registration(parse_leaf(leaf).statement):
                registrations.append((index, leaf))
        except LedgerError:
            continue  # the verifier reports an entry it cannot read
    entries = (LogEntry(leaf, stored_index=index) for index, leaf in enumerate(leaves))
    return Snapshot(key, note, registrations, size, entries)


def _check_hash_tiles(reader: Any, leaves: list[bytes], tiles: list[Any]) -> None:
    """Every hash tile above level 0 against the subtree hashes the entries make (level 0 is checked entry by
    entry): a tile server cannot feed proof readers another tree than the one the entries make."""
    from ledger.errors import EncodingError
    from ledger.hashing import leaf_hash, node_hash
    from ledger.tiles import HEIGHT

    level_hashes = [leaf_hash(leaf) for leaf in leaves]
    height = 0
    for tile in tiles:
        if not tile.level:
            continue
        while height < HEIGHT * tile.level:
            level_hashes = [node_hash(level_hashes[i], level_hashes[i + 1]) for i in range(0, len(level_hashes) - 1, 2)]
            height += 1
        for offset in range(tile.width):
            index = tile.index * 256 + offset
            if reader.tile_hash(tile.level, index) != level_hashes[index]:
                raise EncodingError(f"{tile.path} holds another hash at position {offset} than the entries make")


def read_policy(path: Path) -> Any:
    """A C2SP tlog-policy file (ledger/cosignature.py), or one readable line saying what is wrong with it."""
    from ledger.cosignature import parse_policy

    try:
        return parse_policy(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CliError(f"policy file {path} not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read the policy file {path}: {exc}") from exc
    except LedgerError as exc:
        raise CliError(f"{path}: {exc}") from exc


def witness_check(note: str, key: NoteVerifier, policy: Any) -> tuple[list[Problem], dict[str, Any]]:
    """The checkpoint against a witness policy: signed by one of its logs, cosigned by its quorum. Returns the
    problems and, per witness that cosigned, when (POSIX seconds)."""
    from ledger.errors import SignatureError

    problems: list[Problem] = []
    if policy.logs and key not in [log.key for log in policy.logs]:
        problems.append(Problem(None, "policy", f"the log key {key} is not one of the policy's logs"))
    witnessed: dict[str, int] = {}
    for name, witness in policy.witnesses.items():
        try:
            timestamp = witness.key.timestamp_of(note)
        except (SignatureError, LedgerError) as exc:
            problems.append(Problem(None, "cosignature", f"witness {name}: {exc}"))
            continue
        if timestamp is not None:
            witnessed[name] = timestamp
    if not policy.satisfied(witnessed):
        named = ", ".join(sorted(witnessed)) or "no witness"
        problems.append(
            Problem(None, "witness-quorum", f"the checkpoint is cosigned by {named}: not the policy's quorum")
        )
    return problems, {"quorum": policy.satisfied(witnessed), "cosigned_by": witnessed}


class State:
    """What an auditor saw last of a log: its pinned key and the last checkpoint that verified."""

    def __init__(self, directory: Path | None, origin: str) -> None:
        base = directory or Path(platformdirs.user_state_dir("chainproof"))
        self.path = base / "logs" / (re.sub(r"[^A-Za-z0-9._-]", "_", origin) + ".json")
        try:
            self.data: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}
        except (OSError, ValueError) as exc:
            raise CliError(f"state file {self.path} is unreadable: {exc}") from exc

    @property
    def log_key(self) -> str | None:
        return self.data.get("log_key")

    @property
    def checkpoint(self) -> str | None:
        return self.data.get("checkpoint")

    @property
    def names_checked(self) -> int:
        """How many entries `monitor --watch-names` has checked the registrations of."""
        return int(self.data.get("names_checked", 0))

    def save(self, log_key: str, checkpoint: str, *, names_checked: int | None = None) -> None:
        self.data |= {"log_key": log_key, "checkpoint": checkpoint}
        if names_checked is not None:
            self.data["names_checked"] = names_checked
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2))
        tmp.replace(self.path)


def trusted_key(
    published: NoteVerifier, pinned_text: str | None, state: State, problems: list[Problem], *, announce: bool = True
) -> NoteVerifier:
    """The key to check checkpoints with: the one given, else the one remembered, else (trust on first use, said on
    stderr when `announce`) the one the source publishes. A source publishing another key than the trusted one is a
    problem."""
    for source, text in (("--log-key", pinned_text), (str(state.path), state.log_key)):
        if text:
            pinned = parse_key(text, source)
            if pinned != published:
                hint = (
                    f"; if the log was deliberately created anew, check the new key with its operator and pin it: "
                    f"--log-key '{published}'"
                    if source != "--log-key"
                    else ""
                )
                problems.append(
                    Problem(
                        None, "log-key-changed", f"the log publishes key {published}, not {pinned} ({source}){hint}"
                    )
                )
            return pinned
    if announce:
        print(f"chainproof: note: trusting log key {published} on first use; pin it with --log-key", file=sys.stderr)
    return published


def progress(total: int, enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled or total < 5000,
        transient=True,
    )


def run_full_verification(snapshot: Snapshot, key: NoteVerifier, older: str | None, show_progress: bool) -> Report:
    verifier = LedgerVerifier(
        key,
        snapshot.checkpoint,
        registrations=snapshot.registrations,
        older_checkpoint=older,
        expected_entries=snapshot.size,
        shipments=ShipmentFold() if snapshot.check_derived is not None else None,
    )
    with progress(snapshot.size, show_progress) as bar:
        task = bar.add_task("verify", total=snapshot.size)

        def counted(entries: Iterable[LogEntry]) -> Iterator[LogEntry]:
            for n, entry in enumerate(entries, start=1):
                if n % 2048 == 0:
                    bar.update(task, completed=n)
                yield entry

        verifier.add(counted(snapshot.entries))
    report = verifier.finish()
    if snapshot.check_derived is not None:
        assert verifier.shipments is not None
        report.problems.extend(snapshot.check_derived(verifier.batch_states(), verifier.registry, verifier.shipments))
    return report


def _verified_batch(client: ServerClient, key: NoteVerifier, sku: str, lot: str, note: str) -> tuple[BatchReport, int]:
    """The batch as served, checked against the signed checkpoint `note`; and how many entries were served."""
    size = checkpoint_size(note)
    entries: list[tuple[int, bytes]] = []
    path = f"/v1/batches/{quote(sku, safe='')}/{quote(lot, safe='')}"
    params: dict[str, str] = {}
    while True:  # a page at a time, following `next`
        batch = client.get_json(path, **params)
        page = [(int(event["index"]), b64decode(event["leaf"], what="leaf")) for event in batch["events"]]
        if entries and page and page[0][0] <= entries[-1][0]:
            raise CliError(
                f"the server's pages of {sku}/{lot} go backwards (index {page[0][0]} after {entries[-1][0]})"
            )
        entries += page
        following = batch.get("next")
        if not isinstance(following, str) or not page:
            break
        parts = urlsplit(following)
        if parts.path != path or parts.scheme or parts.netloc:
            raise CliError(f"the server's next page of {sku}/{lot} is elsewhere: {following!r}")
        params = dict(parse_qsl(parts.query))
    # one proof, of the last entry: the hash chain links every earlier entry to it
    proofs = {index: client.inclusion_proof(index, size) for index, _leaf in entries[-1:] if index < size}
    registry, problems = server_registry(client, key, note)
    report = verify_batch(sku, lot, entries, proofs, registry, key, note)
    report.problems[:0] = problems
    return report, len(entries)


def server_registry(client: ServerClient, key: NoteVerifier, note: str) -> tuple[Registry, list[Problem]]:
    """Who may sign as of a checkpoint, from the server's registrations, each actor's chain proven into the
    checkpoint by one inclusion proof of its last entry."""
    size = checkpoint_size(note)
    registrations = client.registrations(size)
    chain_ends = [chain[-1][0] for chain in registration_chains(registrations).values()]
    proofs = {index: client.inclusion_proof(index, size) for index in chain_ends}
    try:
        return proven_registry(registrations, proofs, open_checkpoint(note, key), key)
    except LedgerError as exc:  # the checkpoint does not verify
        registry, problems = replay_registrations(registrations, key)
        return registry, [Problem(None, "checkpoint-signature", f"checkpoint does not verify: {exc}"), *problems]


@dataclass(frozen=True)
class WatchedName:
    """A name to watch for look-alikes, and the actors that genuinely hold it (or one like it)."""

    name: str
    holders: frozenset[str] = frozenset()


def read_watched_names(path: Path) -> list[WatchedName]:
    """One name a line (`#` starts a comment); `NAME @ACTOR_ID` names its genuine holder, which is not alerted."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    holders: dict[str, set[str]] = {}  # a name, once however many lines give it, with all its holders
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _at, holder = line.rpartition(" @")
        known = holders.setdefault(name.strip() if name else line, set())
        if name:
            known.add(holder.strip())
    if not holders:
        raise CliError(f"{path} names nothing to watch (one name a line)")
    return [WatchedName(name, frozenset(known)) for name, known in holders.items()]


def watched_name_problems(
    client: ServerClient, key: NoteVerifier, note: str, watched: Sequence[WatchedName], start: int
) -> list[Problem]:
    """Actors registered (or renamed) at index `start` or later, before the checkpoint `note`, whose names read
    as a watched one; each such entry proven into the checkpoint, so the alert names what the log holds."""
    from ledger.merkle import verify_inclusion
    from ledger.names import resembles

    checkpoint = open_checkpoint(note, key).checkpoint
    problems: list[Problem] = []
    for index, leaf in client.registrations(checkpoint.size, start=start):
        try:
            statement = parse_leaf(leaf).statement
            name, actor_id = str(statement["data"]["name"]), str(statement["lot"])
        except (LedgerError, KeyError, TypeError):
            continue  # not an actor registration (a key's), or unreadable: a full audit reports the latter
        if statement.get("type") != "actor":
            continue
        for item in watched:
            if actor_id not in item.holders and resembles(name, item.name):
                try:
                    proof = client.inclusion_proof(index, checkpoint.size)
                    verify_inclusion(index, checkpoint.size, leaf_hash(leaf), proof, checkpoint.root_hash)
                except LedgerError as exc:
                    problems.append(Problem(index, "inclusion", f"the server's registration is not in the log: {exc}"))
                    continue
                problems.append(
                    Problem(
                        index,
                        "watched-name",
                        f"actor {actor_id} registered as {name!r}, which reads as the watched name {item.name!r} "
                        f"(signed by {statement.get('actor')})",
                    )
                )
                break  # one alert an entry, whatever else it resembles
    return problems


def batch_check(client: ServerClient, key: NoteVerifier, sku: str, lot: str) -> tuple[list[Problem], dict[str, Any]]:
    note = client.get_text("/v1/log/checkpoint")
    report, served = _verified_batch(client, key, sku, lot, note)
    state = report.state
    summary = {
        "batch": f"{sku}/{lot}",
        "entries": served,
        "tree_size": checkpoint_size(note),
        "recalled": bool(state and state.recalled_at),
        "ok": report.ok,
    }
    return report.problems, summary


def monitor_step(
    client: ServerClient,
    key: NoteVerifier,
    state: State,
    watched: Sequence[WatchedName] = (),
    policy: Any = None,
) -> tuple[list[Problem], int]:
    """Fetch the latest checkpoint and prove it extends the last one seen; with names to watch, look at the
    actors registered since the last step; with a witness policy, require its quorum on the checkpoint;
    remember the checkpoint if all holds."""
    note = client.get_text("/v1/log/checkpoint")
    try:
        new = open_checkpoint(note, key).checkpoint
    except LedgerError as exc:
        return [Problem(None, "checkpoint-signature", f"checkpoint does not verify: {exc}")], checkpoint_size(note)
    problems: list[Problem] = []
    if state.checkpoint:
        old_size = checkpoint_size(state.checkpoint)
        proof: list[bytes] = []
        if 0 < old_size < new.size:
            proof = client.consistency_proof(old_size, new.size)
        problems = check_consistency(state.checkpoint, note, proof, key)
    if not problems and watched:
        problems = watched_name_problems(client, key, note, watched, state.names_checked)
    if not problems and policy is not None:
        problems = witness_check(note, key, policy)[0]
    if not problems:
        state.save(str(key), note, names_checked=new.size if watched else None)
    return problems, new.size


def write_export(snapshot: Snapshot, out: Path) -> int:
    header = BundleHeader(
        snapshot.published_key.name,
        str(snapshot.published_key),
        snapshot.checkpoint,
        snapshot.size,
        snapshot.registrations,
    )
    try:
        return write_bundle(out, header, snapshot.entries)
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror}") from exc


def certificate_status(
    client: ServerClient,
    key: NoteVerifier,
    certificate_checkpoint: str,
    certified: list[dict[str, Any]],
    sku: str,
    lot: str,
) -> tuple[list[Problem], dict[str, Any]]:
    """Is a certificate still good on the live log? The latest checkpoint must extend the certificate's (same
    history, proven), the batch must still begin with the certified entries, and no recall may follow them."""
    note = client.get_text("/v1/log/checkpoint")
    old_size = checkpoint_size(certificate_checkpoint)
    new_size = checkpoint_size(note)
    proof = client.consistency_proof(old_size, new_size) if 0 < old_size < new_size else []
    problems = check_consistency(certificate_checkpoint, note, proof, key)
    report, _served = _verified_batch(client, key, sku, lot, note)
    problems += report.problems
    # read from the verified entries, never from the server's decoded fields
    certified_hashes = [b64decode(str(e["hash"]), what="entry hash") for e in certified]
    if [parsed.hash for parsed in report.entries][: len(certified_hashes)] != certified_hashes:
        problems.append(
            Problem(None, "history", "the log no longer shows the certified entries of this batch: history changed")
        )
    state = report.state
    revoked = bool(state and state.recalled_at)
    if state is not None and state.recalled_at is not None:
        recall = next((p for p in report.entries if p.statement.get("type") == "recall"), None)
        problems.append(
            Problem(
                None if recall is None else recall.index,
                "revoked",
                f"REVOKED: the batch was recalled on {state.recalled_at}: {state.recall_reason}",
            )
        )
    return problems, {"checked_against_tree_size": new_size, "revoked": revoked}


def label_url(client: ServerClient, key: NoteVerifier, sku: str, lot: str, shipment: str | None = None) -> str:
    """The URL a batch's printed label carries, checked before it is printed: the server's checkpoint verifies
    with the trusted log key, the batch's first entry is its origin and is proven included in that checkpoint;
    the fragment then pins that key and that entry (ledger/label.py)."""
    from ledger.label import label_fragment
    from ledger.merkle import verify_inclusion

    note = client.get_text("/v1/log/checkpoint")
    try:
        checkpoint = open_checkpoint(note, key).checkpoint
    except LedgerError as exc:
        raise CliError(f"the server's checkpoint does not verify with the log key {key}: {exc}") from exc
    batch = client.get_json(f"/v1/batches/{quote(sku, safe='')}/{quote(lot, safe='')}", limit=1)
    if not batch.get("events"):
        raise CliError(f"batch {sku}/{lot} has no entry in the checkpoint yet: print its label once it has")
    first = batch["events"][0]
    index, leaf = int(first["index"]), b64decode(first["leaf"], what="leaf")
    try:
        parsed = parse_leaf(leaf)
    except LedgerError as exc:
        raise CliError(f"the batch's first entry cannot be read: {exc}") from exc
    statement = parsed.statement
    if (statement.get("type"), statement.get("sku"), statement.get("lot"), parsed.prev) != ("origin", sku, lot, None):
        raise CliError(f"the server's first entry of {sku}/{lot} (index {index}) is not the batch's origin")
    try:
        verify_inclusion(
            index, checkpoint.size, parsed.hash, client.inclusion_proof(index, checkpoint.size), checkpoint.root_hash
        )
    except LedgerError as exc:
        raise CliError(f"the batch's origin entry is not proven in the signed log: {exc}") from exc
    url = str(batch["product_url"])
    if shipment is not None:
        if not _has_shipment(client, sku, lot, shipment):
            raise CliError(f"batch {sku}/{lot} has no shipment {shipment!r} in the signed log: check the id")
        url += "?" + urlencode({"shipment": shipment})
    return url + label_fragment(str(key), parsed.hash)


def _has_shipment(client: ServerClient, sku: str, lot: str, shipment: str) -> bool:
    """Whether the batch's events (as served, page by page) hold the shipment event of this id."""
    path = f"/v1/batches/{quote(sku, safe='')}/{quote(lot, safe='')}"
    params: dict[str, str] = {}
    while True:
        batch = client.get_json(path, **params)
        for event in batch["events"]:
            statement = event.get("statement") or {}
            if statement.get("type") == "shipment" and (statement.get("data") or {}).get("shipment_id") == shipment:
                return True
        if not batch.get("next") or not batch["events"]:
            return False
        params = {"after": str(batch["events"][-1]["index"])}
