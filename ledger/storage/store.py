"""The ledger store: actors and keys, atomic appends, entries, proofs and checkpoints.

Contract of `append`: the whole list is checked (schema, signature, key validity, batch rules) and then written in
one transaction together with its Merkle nodes; it is durable once it returns, and nothing of it is written if it
raises. Appenders are serialized (BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL), and the entries'
primary key on the index would reject a second writer at the same position even without the lock.
Hot paths use SQLAlchemy Core, never per-row ORM objects.
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import psycopg

    from ledger.epcis.query import EventQuery

from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ledger import merkle
from ledger.canonical import canonical_json
from ledger.entry import MAX_LEAF_BYTES, build_leaf, parse_leaf
from ledger.errors import (
    ConflictError,
    DuplicateStatementError,
    IdempotencyKeyReusedError,
    LedgerError,
    NoCheckpointYetError,
    NotFoundError,
    ProofError,
    RuleError,
    SignatureError,
    ValidationError,
    WrongLogKeyError,
)
from ledger.events import (
    EARLIEST_TIME,
    OriginData,
    Role,
    Statement,
    format_time,
    gtin14,
    parse_time,
    validate_statement,
)
from ledger.hashing import b64encode, leaf_hash, sha256, sha256_hex
from ledger.history import ShipmentFold
from ledger.identities import (
    IDENTITY_SKU,
    IdentityStatement,
    IdentityType,
    Registry,
    is_registration,
    validate_registration,
)
from ledger.intake import DEFAULT_SIGNED_AT_WINDOW, SignedAtWindow
from ledger.merkle import (
    CompactRange,
    NodeKey,
    build_consistency_proof,
    root_from_nodes,
    root_keys,
)
from ledger.note import Checkpoint, NoteSigner, parse_note, sign_checkpoint
from ledger.privacy import statement_problem
from ledger.rules import Actor, ActorKey, BatchState, Directory, check_times
from ledger.signing import (
    PublicKey,
    key_id_for,
    load_public_key,
    public_key_bytes,
    start_statement_checks,
    verify_statement,
)
from ledger.sla import Parameters, ShipmentRecord, Status, status_in_lane
from ledger.sla_columns import Evaluation, ShipmentColumns
from ledger.storage import epcis as epcis_store
from ledger.storage import sla as sla_store
from ledger.storage.db import WRITE_OPTION
from ledger.storage.epcis import EpcisRows
from ledger.storage.heads import (
    PG_UPSERT_HEADS,
    PG_UPSERT_SHIPMENTS,
    HeadRows,
    ShipmentKey,
    compare,
    read_heads,
    read_shipments,
    replay_batches,
    state_of_shipment,
    stored_rows,
    write_all,
)
from ledger.storage.identities import (
    Attested,
    LoggedRegistration,
    has_registrations,
    migration_registrations,
    projection_differences,
    read_registration_chains,
    read_registrations,
    signed_by_log,
    stored_directory,
    write_projection,
)
from ledger.storage.schema import (
    api_tokens,
    checkpoints,
    entries,
    gtin_batches,
    idempotency_keys,
    log_meta,
    logged_statements,
    merkle_nodes,
    token_revocations,
)
from ledger.storage.sla import PG_INSERT_BATCHES, SlaRows
from ledger.storage.sla import PG_UPSERT_SHIPMENTS as PG_UPSERT_SLA_SHIPMENTS
from ledger.tiles import HEIGHT as TILE_HEIGHT
from ledger.tiles import WIDTH as TILE_WIDTH
from ledger.tiles import Tile, entry_bundle, tile_bytes
from ledger.verify import LogEntry

_PG_APPEND_LOCK = 0x636861696E  # "chain": one advisory lock key for all appenders of this database
_BATCH_CACHE_SIZE = 10_000
logger = logging.getLogger(__name__)
_VERIFY_THREADS = 2
_ANALYZE_FIRST = 1000
# Statements run by every commit, as plain SQL for the driver: building and compiling them as expressions cost
# more than running them (a commit of one event spent a sixth of its time on the size query).
_SIZE = "SELECT coalesce(max(idx), -1) + 1 FROM entries"
_SQLITE_INSERT_ENTRIES = "INSERT INTO entries (idx, sku, lot, leaf, leaf_hash) VALUES (?, ?, ?, ?, ?)"
_SQLITE_INSERT_NODES = "INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)"
_SQLITE_INSERT_STATEMENTS = "INSERT INTO logged_statements (signed_at_us, statement_hash, idx) VALUES (?, ?, ?)"
_MICROSECOND = timedelta(microseconds=1)
# Keys looked up by one OR of equalities: SQLite refuses an expression deeper than 1,000 (a big batch's proofs need
# thousands of nodes), and no statement should grow with the batch.
_KEYS_PER_QUERY = 400
TOKEN_PREFIX = "cpt_"  # noqa: S105 (a recognisable prefix for leaked-token scanners, not a secret)


@dataclass(frozen=True, slots=True)
class Submission:
    """A statement as a client sent it (parsed JSON) and its signature."""

    statement: dict[str, Any]
    signature: bytes


@dataclass(frozen=True, slots=True)
class AppendResult:
    index: int
    entry_hash: bytes
    sku: str
    lot: str
    gtin: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "entry_hash": self.entry_hash.hex(),
            "sku": self.sku,
            "lot": self.lot,
            "gtin": self.gtin,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AppendResult:
        return cls(data["index"], bytes.fromhex(data["entry_hash"]), data["sku"], data["lot"], data.get("gtin"))


@dataclass(frozen=True, slots=True)
class Idempotency:
    """A client's Idempotency-Key, scoped to its actor, and a digest of the request it came with."""

    actor_id: str
    key: str
    request_hash: bytes


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token as anyone may see it: its id (the first 16 hex digits of its stored SHA-256), never itself."""

    id: str
    actor_id: str
    created_at: str
    revoked_at: str | None


@dataclass(frozen=True, slots=True)
class LogMeta:
    origin: str
    verifier_key: str
    created_at: str


def read_log_meta(engine: Engine) -> LogMeta | None:
    """The log a database belongs to, as recorded when its log first opened it (None: not recorded yet)."""
    with engine.connect() as conn:
        row = conn.execute(select(log_meta.c.origin, log_meta.c.verifier_key, log_meta.c.created_at)).first()
    return None if row is None else LogMeta(str(row[0]), str(row[1]), str(row[2]))


class _UnseenReplayError(Exception):
    """A statement the commit did not look up is in the log already (the primary key of logged_statements)."""


@dataclass(frozen=True, slots=True)
class _Checked:
    statement: Statement | IdentityStatement
    data: Any
    statement_bytes: bytes
    signature: bytes
    statement_hash: bytes  # SHA-256 of statement_bytes: what makes a replay a replay
    signed_at_us: int  # signed_at in µs since 1970 (UTC): the first part of logged_statements' key


def utc_now() -> datetime:
    return datetime.now(UTC)


def _where(position: int, total: int) -> str:
    return f"event {position}: " if total > 1 else ""


def _duplicate(position: int, total: int, index: int) -> DuplicateStatementError:
    return DuplicateStatementError(
        f"{_where(position, total)}this signed statement is already in the log, at index {index}: a statement is "
        "appended once (to record the same again, sign a new statement)",
        index,
    )


def _leaf_too_large(size: int, what: str) -> str:
    return (
        f"the {what} would make a log entry of {size} bytes; an entry holds at most {MAX_LEAF_BYTES} bytes "
        "(attach large content as a document: its SHA-256 and URL)"
    )


def _raise_bad_signature(prepared: PreparedAppend, failed: list[int]) -> None:
    if failed:
        position = failed[0]
        raise SignatureError(
            _where(position, len(prepared.checked)) + "signature does not verify with key "
            f"{prepared.checked[position].statement.key_id} over the statement's canonical bytes"
        )


@dataclass(frozen=True, slots=True)
class PreparedAppend:
    """A request checked as far as it can be without the lock (see `LedgerStore.prepare`)."""

    checked: list[_Checked]
    idempotency: Idempotency | None
    signature_checks: Callable[[], list[int]]
    unchecked: frozenset[int]  # positions whose key was not known when prepared: checked at commit


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    results: list[AppendResult] | None
    replayed: bool
    error: LedgerError | None

    def unwrap(self) -> tuple[list[AppendResult], bool]:
        if self.error is not None:
            raise self.error
        assert self.results is not None
        return self.results, self.replayed


@dataclass
class _GroupWork:
    """What a commit group builds up; `savepoint`/`rollback` undo one failed request in memory."""

    tree: CompactRange
    states: dict[tuple[str, str], BatchState]
    registry: Registry  # never changed in place: a request with registrations works on a copy
    registrations: list[LoggedRegistration] = field(default_factory=list)
    entry_rows: list[dict[str, Any]] = field(default_factory=list)
    node_rows: list[dict[str, Any]] = field(default_factory=list)
    idempotency_rows: list[dict[str, Any]] = field(default_factory=list)
    gtin_rows: list[dict[str, Any]] = field(default_factory=list)
    gtins: dict[tuple[str, str], str] = field(default_factory=dict)  # (gtin14, lot) -> sku, stored or added
    statements: dict[bytes, int] = field(default_factory=dict)  # statement hash -> index, of the group's statements
    statement_rows: list[tuple[int, bytes, int]] = field(default_factory=list)  # (signed_at_us, hash, index)
    shipments_touched: set[ShipmentKey] = field(default_factory=set)  # their rows are rewritten at commit
    repaired: set[tuple[str, str]] = field(default_factory=set)  # batches whose stored head was replaced
    sla: SlaRows = field(default_factory=SlaRows)  # the shipments projection's rows (ledger/storage/sla.py)

    def head_rows(self) -> HeadRows:
        """The derived rows this commit writes: the heads of the batches it appended to or repaired."""
        batches = {(r["sku"], r["lot"]) for r in self.entry_rows} | self.repaired
        shipments = set(self.shipments_touched)
        for sku, lot in self.repaired:
            shipments.update((sku, lot, shipment_id) for shipment_id in self.states[(sku, lot)].shipments)
        return HeadRows.of(self.states, batches, shipments)

    def savepoint(self, batch_ids: set[tuple[str, str]], registers: bool) -> _Savepoint:
        savepoint = _Savepoint(
            self.tree.copy(),
            {b: self.states[b].copy() for b in batch_ids},
            len(self.entry_rows),
            len(self.node_rows),
            len(self.gtin_rows),
            len(self.statement_rows),
            self.registry,
            len(self.registrations),
            self.sla.mark(),
        )
        if registers:
            self.registry = self.registry.copy()
        return savepoint

    def rollback(self, savepoint: _Savepoint) -> None:
        self.tree = savepoint.tree
        self.states.update(savepoint.states)
        del self.entry_rows[savepoint.entries :]
        del self.node_rows[savepoint.nodes :]
        for row in self.gtin_rows[savepoint.gtins :]:
            del self.gtins[(row["gtin"], row["lot"])]
        del self.gtin_rows[savepoint.gtins :]
        for _signed_at_us, statement_hash, _index in self.statement_rows[savepoint.statements :]:
            del self.statements[statement_hash]
        del self.statement_rows[savepoint.statements :]
        self.registry = savepoint.registry
        del self.registrations[savepoint.registrations :]
        self.sla.rewind(savepoint.sla)


@dataclass(frozen=True, slots=True)
class _Savepoint:
    tree: CompactRange
    states: dict[tuple[str, str], BatchState]
    entries: int
    nodes: int
    gtins: int
    statements: int
    registry: Registry
    registrations: int
    sla: int


def _shipments_named(group: Sequence[PreparedAppend]) -> set[ShipmentKey]:
    """The shipments a group's events name: the only ones of their batches a commit reads."""
    named: set[ShipmentKey] = set()
    for prepared in group:
        for item in prepared.checked:
            shipment_id = getattr(item.data, "shipment_id", None)
            if shipment_id is not None:
                named.add((item.statement.sku, item.statement.lot, shipment_id))
    return named


class Sequencer:
    """One thread that commits queued requests in groups: whatever arrived while the previous group was being
    committed goes into the next one (no added delay), up to `max_events` events."""

    def __init__(self, store: LedgerStore, max_events: int = 5000) -> None:
        self._store = store
        self._max_events = max_events
        self._queue: queue.SimpleQueue[tuple[PreparedAppend, Future[AppendOutcome]]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="chainproof-sequencer", daemon=True)
        self._thread.start()

    def enqueue(self, prepared: PreparedAppend) -> Future[AppendOutcome]:
        future: Future[AppendOutcome] = Future()
        self._queue.put((prepared, future))
        return future

    def _run(self) -> None:
        while True:
            group = [self._queue.get()]
            events = len(group[0][0].checked)
            while events < self._max_events:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                group.append(item)
                events += len(item[0].checked)
            try:
                outcomes = self._store.commit([prepared for prepared, _future in group])
            except Exception as exc:  # the transaction failed: every request in it failed
                for _prepared, future in group:
                    future.set_exception(exc)
                continue
            for (_prepared, future), outcome in zip(group, outcomes, strict=True):
                future.set_result(outcome)


class LedgerStore:
    def __init__(
        self,
        engine: Engine,
        signer: NoteSigner | None,
        origin: str | None = None,
        *,
        signed_at_window: SignedAtWindow | None = DEFAULT_SIGNED_AT_WINDOW,
    ) -> None:
        """`signer` is the log key; without it (an auditor reading a database) the store reads checkpoints the
        log issued but cannot issue new ones. `signed_at_window`: how far from the moment of its append a
        statement may say it was signed (None: any time, for importing history)."""
        self.engine = engine
        self._signed_at_window = signed_at_window
        self._bound = False  # whether bind_log_key has checked this store's key against the database's
        self._signer = signer
        if origin is None and signer is None:
            raise ValueError("a store without a log key needs the log's origin")
        self.origin = origin or (signer.name if signer else "")
        self._postgres = engine.dialect.name == "postgresql"
        # Batch states as of our last commit, each with the epoch it was known complete in: the epoch changes
        # whenever another writer has appended since our own last commit, and then states are read again from
        # their heads (`batch_heads`, written by every append), never by replaying a chain.
        self._batch_cache: OrderedDict[tuple[str, str], tuple[BatchState, int]] = OrderedDict()
        self._epoch = 0
        self._epoch_size = -1  # the log size after our last commit, while nobody else has appended
        self._batch_cache_lock = threading.Lock()
        self._key_cache: dict[str, PublicKey] = {}
        # One appender at a time per process (threads queue here rather than spin on SQLite's busy handler), and
        # the right edge of the tree as of our last commit, reused while nobody else has appended (same epoch).
        self._append_lock = threading.Lock()
        self._head: CompactRange | None = None
        self._sequencer: Sequencer | None = None
        self._sequencer_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(_VERIFY_THREADS, thread_name_prefix="chainproof-verify")
        self._analyze_at = _ANALYZE_FIRST  # log size at which to refresh PostgreSQL's statistics next
        self.statistics_refresh: threading.Thread | None = None  # the last one started
        # Who may sign, as the log's registrations up to `_registry_size` entries say (ledger/identities.py):
        # replaced, never changed in place, under `_registry_lock`; advanced from `_identity` entries when behind.
        self._registry: Registry | None = None
        self._registry_size = 0
        self._registry_lock = threading.Lock()
        self._sla_lock = threading.Lock()  # the SLA records kept in memory (sla_records)
        self._sla_through = 0  # the columns hold every projection row changed below this log size
        self._sla_columns = ShipmentColumns()  # the shipments, as columns (ledger/sla_columns.py)
        # the latest evaluation, and of what: the columns' arrays and the view
        self._sla_last: tuple[object, tuple[Any, ...], Evaluation] | None = None
        self.sla_projection = True  # bench/sla_bench.py turns it off to measure what the projection costs appends

    @property
    def signer(self) -> NoteSigner:
        if self._signer is None:
            raise LedgerError("this store has no log key: it can read checkpoints but not issue them")
        return self._signer

    # -- transactions -------------------------------------------------------------------------------------------

    def _write(self) -> Connection:
        return self.engine.connect().execution_options(**{WRITE_OPTION: True})

    def _lock_appends(self, conn: Connection) -> None:
        if self._postgres:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_APPEND_LOCK})

    # -- actors and keys ----------------------------------------------------------------------------------------

    def _log_key(self) -> bytes | None:
        """The log's raw public key: this store's own, or the one the database records (None: no log yet)."""
        if self._signer is not None:
            return public_key_bytes(self._signer.private_key)
        meta = read_log_meta(self.engine)
        if meta is None:
            return None
        from ledger.note import NoteVerifier

        return NoteVerifier.parse(meta.verifier_key).public_key

    def _registry_at(self, conn: Connection, size: int) -> Registry:
        """The registry of the first `size` entries (advanced from the log's registrations if behind)."""
        with self._registry_lock:
            registry = self._registry
            if registry is None:
                log_key = self._log_key()
                if log_key is None:
                    raise LedgerError("this database has no log yet: open it with its log key first")
                registry = Registry(key_id_for(log_key), load_public_key(log_key))
                self._registry_size = 0
            if self._registry_size < size:
                registry = registry.copy()
                registry.advance(read_registrations(conn, self._registry_size, size))
                self._registry_size = size
            self._registry = registry
            return registry

    def registry(self, covering: int | None = None) -> Registry:
        """Actors and keys as the whole log's registrations say (read, never to be changed); with `covering`, as
        they say for at least that many entries (no query when this process has seen that far)."""
        with self._registry_lock:
            if covering is not None and self._registry is not None and self._registry_size >= covering:
                return self._registry
        with self.engine.connect() as conn:
            return self._registry_at(conn, self._size(conn) if covering is None else covering)

    def directory(self) -> Directory:
        """The log's registrations as a directory of times: what pages and certificates judge a batch by."""
        return self.registry().directory()

    def registration_chains(self, actors: Iterable[str], before: int) -> dict[str, list[tuple[int, bytes]]]:
        """These actors' registrations (index, leaf) below index `before`, by actor, in log order: one query."""
        with self.engine.connect() as conn:
            return read_registration_chains(conn, sorted(set(actors)), before)

    def registrations(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """(index, leaf) of the registration entries at indices [start, end)."""
        with self.engine.connect() as conn:
            return read_registrations(conn, start, end)

    def projection_differences(self, verified: Registry | None = None, verified_size: int = 0) -> list[str]:
        """Where the actor tables disagree with the log's registrations (rows written outside the log). An auditor
        passes the registry of the entries it verified (`verified_size` of them); the rest are read here."""
        with self.engine.connect() as conn:
            size = self._size(conn)
            if verified is None:
                registry = self._registry_at(conn, size)
            else:
                registry = verified.copy()
                registry.advance(read_registrations(conn, verified_size, size))
            return projection_differences(stored_directory(conn), registry)

    def directory_awaits_migration(self) -> bool:
        """Whether this ledger's actors and keys predate identities in the log: rows in the actor tables, and no
        registration in the log (`chainproof db upgrade` appends them)."""
        with self.engine.connect() as conn:
            has_rows = conn.execute(text("SELECT 1 FROM actors LIMIT 1")).first() is not None
            return has_rows and not has_registrations(conn)

    def migrate_directory(self, *, now: datetime | None = None) -> int:
        """Append an old ledger's directory as registrations signed by the log key, with the old times (see
        ledger.identities, "Migration"); returns how many. Nothing to do (0) once the log holds registrations."""
        if not self.directory_awaits_migration():
            return 0
        with self.engine.connect() as conn:
            directory = stored_directory(conn)
        return len(self.register(migration_registrations(directory), now=now))

    def register(self, attested: Sequence[Attested], *, now: datetime | None = None) -> list[AppendResult]:
        """Append registrations signed by the log key: operator-attested (the bootstrap on the server's machine,
        and migrations)."""
        signed = signed_by_log(self.signer, attested, format_time(now or utc_now()))
        try:
            return self.append([Submission(s, signature) for s, signature in signed], now=now)
        except RuleError as exc:
            if exc.kind == "conflict":  # a key bound already, a key revoked already
                raise ConflictError(str(exc)) from exc
            raise

    def add_actor(
        self,
        name: str,
        role: Role | str,
        public_key: bytes,
        *,
        actor_id: str | None = None,
        gln: str | None = None,
        now: datetime | None = None,
    ) -> tuple[Actor, ActorKey]:
        """Register an actor and its first key, signed by the log key (operator-attested)."""
        role = Role(role)
        load_public_key(public_key)
        actor = Actor(actor_id or "act_" + secrets.token_hex(8), name, role)
        if actor.id in self.registry().actors:
            raise ConflictError(f"actor {actor.id!r} is already registered")
        key_id = key_id_for(public_key)
        key_data = {"actor": actor.id, "key_id": key_id, "public_key": b64encode(public_key)}
        self.register(
            [
                (
                    IdentityType.ACTOR,
                    actor.id,
                    {"id": actor.id, "name": name, "role": role.value, **({"gln": gln} if gln else {})},
                ),
                (IdentityType.KEY_ADD, actor.id, key_data),
            ],
            now=now,
        )
        return actor, self.registry().keys[key_id].as_actor_key()

    def add_key(self, actor_id: str, public_key: bytes, *, now: datetime | None = None) -> ActorKey:
        """Bind another key to an actor (rotation), signed by the log key: earlier keys stay valid for what they
        signed."""
        load_public_key(public_key)
        if actor_id not in self.registry().actors:
            raise NotFoundError(f"actor {actor_id!r} does not exist")
        key_id = key_id_for(public_key)
        data = {"actor": actor_id, "key_id": key_id, "public_key": b64encode(public_key)}
        self.register([(IdentityType.KEY_ADD, actor_id, data)], now=now)
        return self.registry().keys[key_id].as_actor_key()

    def revoke_key(self, key_id: str, reason: str = "", *, now: datetime | None = None) -> None:
        """No statement logged from now on may be signed with this key; earlier ones stay valid (signed by the
        log key)."""
        key = self.registry().keys.get(key_id)
        if key is None:
            raise NotFoundError(f"key {key_id} does not exist")
        data: dict[str, Any] = {"actor": key.actor_id, "key_id": key_id}
        if reason:
            data["reason"] = reason
        self.register([(IdentityType.KEY_REVOKE, key.actor_id, data)], now=now)

    # -- appending ----------------------------------------------------------------------------------------------

    @staticmethod
    def check_submission(submission: Submission) -> _Checked:
        """Schema and canonical bytes of one submission (no database needed)."""
        statement: Statement | IdentityStatement
        if is_registration(submission.statement):
            statement, data = validate_registration(submission.statement)
        else:
            statement, data = validate_statement(submission.statement)
            personal = statement_problem(submission.statement)  # intake only: the log is public (ledger/privacy.py)
            if personal is not None:
                raise ValidationError(personal)
        statement_bytes = canonical_json(submission.statement)
        if len(statement_bytes) > MAX_LEAF_BYTES:
            raise ValidationError(_leaf_too_large(len(statement_bytes), "statement"))
        signed_at_us = (parse_time(statement.signed_at) - EARLIEST_TIME) // _MICROSECOND
        return _Checked(statement, data, statement_bytes, submission.signature, sha256(statement_bytes), signed_at_us)

    def append(self, submissions: Sequence[Submission], *, now: datetime | None = None) -> list[AppendResult]:
        """Check and append signed statements, all or nothing (see the module docstring)."""
        return self.append_idempotent(submissions, None, now=now)[0]

    def append_idempotent(
        self, submissions: Sequence[Submission], idempotency: Idempotency | None, *, now: datetime | None = None
    ) -> tuple[list[AppendResult], bool]:
        """Like `append`; with an idempotency key, a retry returns the first results. Returns (results, replayed).

        The key is looked up and recorded under the append lock, in the append's own transaction, so two
        concurrent retries cannot both append.
        """
        return self.commit([self.prepare(submissions, idempotency)], now=now)[0].unwrap()

    def append_queued(
        self, submissions: Sequence[Submission], idempotency: Idempotency | None = None
    ) -> tuple[list[AppendResult], bool]:
        """Like `append_idempotent`, but committed by the store's sequencer together with whatever other threads
        submit meanwhile (group commit): one transaction, one lock and one fsync for many requests, each still
        all or nothing on its own."""
        return self.submit_queued(submissions, idempotency).result().unwrap()

    def submit_queued(
        self, submissions: Sequence[Submission], idempotency: Idempotency | None = None
    ) -> Future[AppendOutcome]:
        """`append_queued` without the wait: checks the request here (raising ValidationError or SignatureError),
        queues it for the sequencer, and returns the future of its outcome, so an event loop can await the commit
        instead of parking a thread on it."""
        prepared = self.prepare(submissions, idempotency)
        # Wait for the signatures here, in the caller's thread, so the sequencer never waits on them.
        _raise_bad_signature(prepared, prepared.signature_checks())
        with self._sequencer_lock:
            if self._sequencer is None:
                self._sequencer = Sequencer(self)
        return self._sequencer.enqueue(prepared)

    def prepare(self, submissions: Sequence[Submission], idempotency: Idempotency | None = None) -> PreparedAppend:
        """Everything that needs no lock: schema, canonical bytes, and signature checks (started on the pool;
        a key id's public key never changes, so this is safe before the lock). Raises ValidationError."""
        if not submissions:
            raise ValidationError("nothing to append")
        total = len(submissions)
        checked = []
        for position, submission in enumerate(submissions):
            try:
                checked.append(self.check_submission(submission))
            except ValidationError as exc:
                raise ValidationError(_where(position, total) + str(exc)) from exc
        public_keys = self._public_keys({c.statement.key_id for c in checked})
        signature_checks = start_statement_checks(
            [
                (pos, public_keys[c.statement.key_id], c.signature, c.statement_bytes)
                for pos, c in enumerate(checked)
                if c.statement.key_id in public_keys
            ],
            self._pool,
            _VERIFY_THREADS,
        )
        unchecked = frozenset(pos for pos, c in enumerate(checked) if c.statement.key_id not in public_keys)
        return PreparedAppend(checked, idempotency, signature_checks, unchecked)

    def commit(self, group: Sequence[PreparedAppend], *, now: datetime | None = None) -> list[AppendOutcome]:
        """Append prepared requests in one transaction; each request succeeds or fails on its own.

        A request that fails leaves no trace (the tree, batch states and rows it touched are rolled back in
        memory before the next request is checked); if the transaction itself fails, every request fails.
        """
        with self._append_lock:
            try:
                outcomes, work = self._commit_group(group, now, look_up_logged=False)
            except _UnseenReplayError:
                # a statement of the group is in the log already (rare: a replay): roll back and commit the group
                # again, this time looking its statements up, so that only the replaying request fails
                outcomes, work = self._commit_group(group, now, look_up_logged=True)
            # still under the lock: the next appender must see the tree and the batch states together
            self._head = work.tree
            self._epoch_size = work.tree.size
            self._remember_batches(work.states)  # only once committed
            with self._registry_lock:
                self._registry, self._registry_size = work.registry, work.tree.size
        if self._postgres and work.tree.size >= self._analyze_at:
            # in the background: ANALYZE of a 1M-entry log took 0.4 s, and the first append after a restart
            # waited for it
            self._analyze_at = 2 * work.tree.size
            self.statistics_refresh = threading.Thread(
                target=self._refresh_statistics, name="chainproof-analyze", daemon=True
            )
            self.statistics_refresh.start()
        return outcomes

    def _commit_group(
        self, group: Sequence[PreparedAppend], now: datetime | None, *, look_up_logged: bool
    ) -> tuple[list[AppendOutcome], _GroupWork]:
        """The transaction of `commit`, under the append lock. Statements already in the log are caught by the
        primary key of `logged_statements` (raising _UnseenReplayError) unless `look_up_logged`: then they are
        read first and refused one by one. Appends try without the lookup (it cost about 4 µs an event on
        SQLite) and come back with it only for a group that holds a replay."""
        with self._write() as conn, conn.begin():
            self._lock_appends(conn)
            moment = now or utc_now()
            logged_at = format_time(moment)
            size = self._size(conn)
            if size != self._epoch_size or self._head is None:
                # another writer appended since our last commit: what we cached may be behind
                self._epoch += 1
                tree = self._tree_at(conn, size)
            else:
                tree = self._head.copy()
            registry = self._registry_at(conn, size)
            batch_ids = {(c.statement.sku, c.statement.lot) for p in group for c in p.checked}
            repaired: set[tuple[str, str]] = set()
            states = self._load_batches(conn, batch_ids, _shipments_named(group), repaired)
            logged = self._logged(conn, group) if look_up_logged else {}
            work = _GroupWork(
                tree, states, registry, gtins=self._gtins_taken(conn, group), statements=logged, repaired=repaired
            )
            outcomes: list[AppendOutcome] = []
            seen_keys: dict[tuple[str, str], tuple[bytes, int]] = {}
            for prepared in group:
                outcomes.append(self._commit_one(conn, prepared, work, moment, logged_at, seen_keys))
            if work.entry_rows or work.repaired:
                try:
                    self._insert_entries_and_nodes(
                        conn, work.entry_rows, work.node_rows, work.statement_rows, work.head_rows(), work.sla
                    )
                    if work.registrations:
                        write_projection(conn, work.registrations)
                    if work.idempotency_rows:
                        conn.execute(insert(idempotency_keys), work.idempotency_rows)
                    if work.gtin_rows:
                        conn.execute(insert(gtin_batches), work.gtin_rows)
                except IntegrityError as exc:  # only if something bypassed the append lock
                    raise ConflictError("another writer appended at the same position; retry") from exc
        return outcomes, work

    def _refresh_statistics(self) -> None:
        """ANALYZE the growing tables each time the log doubles. Autovacuum analyzes late on a table that grows
        fast, and with stale statistics PostgreSQL looked a batch up by its SKU alone and filtered the lots: one
        append read every entry of that SKU (11 ms at 40k entries, growing), where fresh statistics give an index
        probe per lot (0.3 ms)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("ANALYZE entries, merkle_nodes"))
                conn.commit()
        except SQLAlchemyError as exc:  # statistics are an optimisation: never fail over them
            logger.warning("ANALYZE failed (appends go on; autovacuum will analyze later): %s", exc)

    def _commit_one(
        self,
        conn: Connection,
        prepared: PreparedAppend,
        work: _GroupWork,
        moment: datetime,
        logged_at: str,
        seen_keys: dict[tuple[str, str], tuple[bytes, int]],
    ) -> AppendOutcome:
        idempotency = prepared.idempotency
        try:
            if idempotency is not None:
                key = (idempotency.actor_id, idempotency.key)
                replay = self._replay(conn, idempotency)
                if replay is None and key in seen_keys:  # the same key twice in one group
                    digest, position = seen_keys[key]
                    if digest != idempotency.request_hash:
                        raise IdempotencyKeyReusedError(
                            f"Idempotency-Key {idempotency.key!r} was already used for a different request"
                        )
                    replay = [
                        AppendResult.from_json(r) for r in json.loads(work.idempotency_rows[position]["response"])
                    ]
                if replay is not None:
                    return AppendOutcome(replay, True, None)
            results = self._apply_request(prepared, work, moment, logged_at)
        except (RuleError, ValidationError) as exc:
            return AppendOutcome(None, False, self._replay_error(conn, prepared) or exc)
        except LedgerError as exc:
            return AppendOutcome(None, False, exc)
        if idempotency is not None:
            seen_keys[(idempotency.actor_id, idempotency.key)] = (idempotency.request_hash, len(work.idempotency_rows))
            work.idempotency_rows.append(
                {
                    "actor_id": idempotency.actor_id,
                    "key": idempotency.key,
                    "request_hash": idempotency.request_hash,
                    "response": json.dumps([r.to_json() for r in results]),
                    "created_at": logged_at,
                }
            )
        return AppendOutcome(results, False, None)

    def _replay_error(self, conn: Connection, prepared: PreparedAppend) -> DuplicateStatementError | None:
        """For a refused request: if it holds a statement the log already has, that is what to tell the client
        (a replayed origin also breaks the rule of one origin per batch, but "already logged at index N" is the
        truth of it). Looked up only for refused requests: appends that pass the rules meet the primary key."""
        logged = self._logged(conn, [prepared])
        total = len(prepared.checked)
        for position, item in enumerate(prepared.checked):
            if item.statement_hash in logged:
                return _duplicate(position, total, logged[item.statement_hash])
        return None

    def _apply_request(
        self, prepared: PreparedAppend, work: _GroupWork, moment: datetime, logged_at: str
    ) -> list[AppendResult]:
        checked, total = prepared.checked, len(prepared.checked)
        for position, item in enumerate(checked):
            try:
                check_times(item.statement, item.data, moment)
                if self._signed_at_window is not None:
                    self._signed_at_window.check(item.statement, moment)
            except (RuleError, ValidationError) as exc:
                raise ValidationError(_where(position, total) + str(exc)) from exc
        registers = any(isinstance(c.statement, IdentityStatement) for c in checked)
        savepoint = work.savepoint({(c.statement.sku, c.statement.lot) for c in checked}, registers)
        rule_error: LedgerError | None = None
        results: list[AppendResult] = []
        late_failures: list[int] = []  # signatures checked here: their key was not known when prepared
        for position, item in enumerate(checked):
            statement = item.statement
            state = work.states[(statement.sku, statement.lot)]
            logged = work.statements.get(item.statement_hash)
            if logged is not None:
                rule_error = _duplicate(position, total, logged)
                break
            index = work.tree.size
            gtin_row = None
            try:
                public_key = self._judge(work.registry, item, state, index)
                if not isinstance(statement, IdentityStatement):
                    gtin_row = self._claim_gtin(work, item, index)
            except RuleError as exc:
                rule_error = RuleError(_where(position, total) + str(exc), exc.kind)
                break
            late = position in prepared.unchecked
            if late and not verify_statement(public_key, item.signature, item.statement_bytes):
                late_failures.append(position)
            leaf = build_leaf(index, logged_at, state.last_hash, item.signature, item.statement_bytes)
            if len(leaf) > MAX_LEAF_BYTES:
                rule_error = ValidationError(_where(position, total) + _leaf_too_large(len(leaf), "entry"))
                break
            if gtin_row is not None:
                work.gtin_rows.append(gtin_row)
            work.statements[item.statement_hash] = index
            work.statement_rows.append((item.signed_at_us, item.statement_hash, index))
            entry_hash = leaf_hash(leaf)
            for level, node_index, node in work.tree.append(entry_hash):
                work.node_rows.append({"level": level, "idx": node_index, "hash": node})
            work.entry_rows.append(
                {"idx": index, "sku": statement.sku, "lot": statement.lot, "leaf": leaf, "leaf_hash": entry_hash}
            )
            if isinstance(statement, IdentityStatement):
                state.link(entry_hash, index)
                work.registry.apply(index, statement, item.data, parse_time(logged_at))
                work.registrations.append(LoggedRegistration(index, statement, item.data, logged_at))
            else:
                owner = state.owner
                state.apply(statement, item.data, entry_hash, index, logged_at)
                if self.sla_projection:
                    work.sla.add(index, logged_at, statement, item.data, owner)
                shipment_id = getattr(item.data, "shipment_id", None)
                if shipment_id is not None:
                    work.shipments_touched.add((statement.sku, statement.lot, shipment_id))
            results.append(AppendResult(index, entry_hash, statement.sku, statement.lot, state.gtin))
        failed = sorted(prepared.signature_checks() + late_failures)
        if failed or rule_error is not None:
            work.rollback(savepoint)
        _raise_bad_signature(prepared, failed)  # a forged statement is reported as such, whatever else is wrong
        if rule_error is not None:
            raise rule_error
        return results

    @staticmethod
    def _judge(registry: Registry, item: _Checked, state: BatchState, index: int) -> PublicKey:
        """Whether the signer may sign this statement at `index`, as the log's registrations say (RuleError if
        not); returns the public key its signature must verify with."""
        statement = item.statement
        public_key, signer = registry.signer_key(statement, index)
        if isinstance(statement, IdentityStatement):
            registry.check(index, statement, item.data)
            return public_key
        if signer is None:
            raise RuleError("the log key signs registrations, not batch events", "forbidden")
        state.check(statement, item.data, registry.rule_actors[signer.id], registry.rule_actors)
        return public_key

    def _insert_entries_and_nodes(
        self,
        conn: Connection,
        entry_rows: list[dict[str, Any]],
        node_rows: list[dict[str, Any]],
        statement_rows: list[tuple[int, bytes, int]],
        head_rows: HeadRows,
        sla_rows: SlaRows,
    ) -> None:
        """The tables in one round trip on PostgreSQL (a data-modifying CTE over binary arrays): appends hold the
        append lock meanwhile, and each round trip under it also waits for this process's GIL. The batch heads
        go last: they are derived from what the same transaction appends."""
        if not self._postgres:  # SQLite: executemany in-process, straight to the driver (no statement to compile)
            if entry_rows:
                conn.exec_driver_sql(
                    _SQLITE_INSERT_ENTRIES,
                    [(r["idx"], r["sku"], r["lot"], r["leaf"], r["leaf_hash"]) for r in entry_rows],
                )
                conn.exec_driver_sql(_SQLITE_INSERT_NODES, [(r["level"], r["idx"], r["hash"]) for r in node_rows])
            if statement_rows:
                try:
                    conn.exec_driver_sql(_SQLITE_INSERT_STATEMENTS, statement_rows)
                except IntegrityError as exc:
                    raise _UnseenReplayError from exc
            head_rows.write_sqlite(conn)
            sla_rows.write_sqlite(conn)
            return
        import psycopg

        from ledger.storage.pgarrays import ByteaArray, Int2Array, Int8Array, TextArray

        driver = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
        sla_sql = ""
        sla_parameters: tuple[str, ...] = ()
        if sla_rows:  # the shipments projection, in the same statement (one round trip under the lock)
            sla_sql = f", new_sla_batches AS ({PG_INSERT_BATCHES}), new_sla AS ({PG_UPSERT_SLA_SHIPMENTS})"
            sla_parameters = sla_rows.pg_parameters()
        try:
            with driver.cursor() as cursor:
                cursor.execute(
                    "WITH new_entries AS (INSERT INTO entries (idx, sku, lot, leaf, leaf_hash) "
                    "SELECT * FROM unnest(%b::bigint[], %b::varchar[], %b::varchar[], %b::bytea[], %b::bytea[])), "
                    "new_statements AS (INSERT INTO logged_statements (signed_at_us, statement_hash, idx) "
                    "SELECT * FROM unnest(%b::bigint[], %b::bytea[], %b::bigint[])), "
                    f"new_heads AS ({PG_UPSERT_HEADS}), new_shipments AS ({PG_UPSERT_SHIPMENTS}){sla_sql} "
                    "INSERT INTO merkle_nodes (level, idx, hash) SELECT * FROM unnest(%b::smallint[], %b::bigint[], "
                    "%b::bytea[])",
                    (
                        Int8Array.of([r["idx"] for r in entry_rows]),
                        TextArray.of([r["sku"] for r in entry_rows]),
                        TextArray.of([r["lot"] for r in entry_rows]),
                        ByteaArray.of([r["leaf"] for r in entry_rows]),
                        ByteaArray.of([r["leaf_hash"] for r in entry_rows]),
                        Int8Array.of([row[0] for row in statement_rows]),
                        ByteaArray.of([row[1] for row in statement_rows]),
                        Int8Array.of([row[2] for row in statement_rows]),
                        *head_rows.pg_parameters(),
                        *sla_parameters,
                        Int2Array.of([r["level"] for r in node_rows]),
                        Int8Array.of([r["idx"] for r in node_rows]),
                        ByteaArray.of([r["hash"] for r in node_rows]),
                    ),
                    prepare=False,
                )
        except psycopg.errors.IntegrityError as exc:  # raised by the driver itself, not wrapped by SQLAlchemy
            if exc.diag.table_name == "logged_statements":
                raise _UnseenReplayError from exc
            raise ConflictError("another writer appended at the same position; retry") from exc

    def _logged(self, conn: Connection, group: Sequence[PreparedAppend]) -> dict[bytes, int]:
        """Which of the group's statements the log already holds, and at what index: one key probe each (only for
        refused requests, and for a group that met the primary key: see `_commit_group`)."""
        keys = sorted({(c.signed_at_us, c.statement_hash) for p in group for c in p.checked})
        if self._postgres:
            from ledger.storage.pgarrays import ByteaArray, Int8Array

            rows = conn.execute(
                text(
                    "SELECT l.statement_hash, l.idx FROM unnest(CAST(:times AS bigint[]), CAST(:hashes AS bytea[])) "
                    "AS k(t, h) JOIN logged_statements l ON l.signed_at_us = k.t AND l.statement_hash = k.h"
                ),
                {"times": Int8Array.of([t for t, _h in keys]), "hashes": ByteaArray.of([h for _t, h in keys])},
            )
            return {bytes(row[0]): int(row[1]) for row in rows}
        found: dict[bytes, int] = {}
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            part = keys[start : start + _KEYS_PER_QUERY]
            where = " OR ".join(["(signed_at_us = ? AND statement_hash = ?)"] * len(part))
            query = f"SELECT statement_hash, idx FROM logged_statements WHERE {where}"
            params = tuple(value for key in part for value in key)
            found.update((bytes(row[0]), int(row[1])) for row in conn.exec_driver_sql(query, params))
        return found

    @staticmethod
    def _gtins_taken(conn: Connection, group: Sequence[PreparedAppend]) -> dict[tuple[str, str], str]:
        """Which of the group's (GTIN, lot) pairs already name a batch."""
        wanted = {
            (gtin14(c.data.gtin), c.statement.lot)
            for p in group
            for c in p.checked
            if isinstance(c.data, OriginData) and c.data.gtin
        }
        if not wanted:
            return {}
        query = select(gtin_batches.c.gtin, gtin_batches.c.lot, gtin_batches.c.sku).where(
            gtin_batches.c.gtin.in_({g for g, _ in wanted}), gtin_batches.c.lot.in_({lot for _, lot in wanted})
        )
        return {(row.gtin, row.lot): row.sku for row in conn.execute(query) if (row.gtin, row.lot) in wanted}

    @staticmethod
    def _claim_gtin(work: _GroupWork, item: _Checked, index: int) -> dict[str, Any] | None:
        """GTIN + lot identify one batch (GS1): an origin may not reuse a pair another batch holds."""
        if not isinstance(item.data, OriginData) or not item.data.gtin:
            return None
        key = (gtin14(item.data.gtin), item.statement.lot)
        holder = work.gtins.get(key)
        if holder is not None:
            raise RuleError(
                f"GTIN {item.data.gtin} with lot {item.statement.lot} already identifies batch {holder}/{key[1]}",
                "conflict",
            )
        work.gtins[key] = item.statement.sku
        return {"gtin": key[0], "lot": key[1], "sku": item.statement.sku, "idx": index}

    def batch_for_gtin(self, gtin: str, lot: str) -> tuple[str, str] | None:
        """(sku, lot) of the batch a GTIN (any length; compared as 14 digits) and lot identify."""
        query = select(gtin_batches.c.sku).where(gtin_batches.c.gtin == gtin14(gtin), gtin_batches.c.lot == lot)
        with self.engine.connect() as conn:
            sku = conn.execute(query).scalar()
        return None if sku is None else (str(sku), lot)

    def _tree_at(self, conn: Connection, size: int) -> CompactRange:
        return CompactRange.from_nodes(size, self._nodes(conn, set(root_keys(size))))

    @staticmethod
    def _replay(conn: Connection, idempotency: Idempotency) -> list[AppendResult] | None:
        row = conn.execute(
            select(idempotency_keys.c.request_hash, idempotency_keys.c.response).where(
                idempotency_keys.c.actor_id == idempotency.actor_id, idempotency_keys.c.key == idempotency.key
            )
        ).first()
        if row is None:
            return None
        if bytes(row.request_hash) != idempotency.request_hash:
            raise IdempotencyKeyReusedError(
                f"Idempotency-Key {idempotency.key!r} was already used for a different request"
            )
        return [AppendResult.from_json(item) for item in json.loads(row.response)]

    # -- tokens -------------------------------------------------------------------------------------------------

    def issue_token(self, actor_id: str, *, now: datetime | None = None) -> str:
        """A new API token for an actor: returned once, stored only as its SHA-256."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._registered(actor_id)
        with self._write() as conn, conn.begin():
            conn.execute(
                insert(api_tokens).values(
                    token_hash=sha256_hex(token.encode()), actor_id=actor_id, created_at=format_time(now or utc_now())
                )
            )
        return token

    def _registered(self, actor_id: str) -> Actor:
        actor = self.registry().rule_actors.get(actor_id)
        if actor is None:
            raise NotFoundError(f"actor {actor_id!r} does not exist")
        return actor

    def authenticate(self, token: str) -> Actor | None:
        """The actor a token belongs to (as the log registers it, name and role included), or None for an
        unknown or revoked token, or one whose actor the log does not hold."""
        query = (
            select(api_tokens.c.actor_id)
            .outerjoin(token_revocations, token_revocations.c.token_hash == api_tokens.c.token_hash)
            .where(api_tokens.c.token_hash == sha256_hex(token.encode()), token_revocations.c.token_hash.is_(None))
        )
        with self.engine.connect() as conn:
            actor_id = conn.execute(query).scalar()
            if actor_id is None:
                return None
            return self._registry_at(conn, self._size(conn)).rule_actors.get(str(actor_id))

    def revoke_token(self, token: str, *, now: datetime | None = None) -> None:
        token_hash = sha256_hex(token.encode())
        with self._write() as conn, conn.begin():
            if (
                conn.execute(select(api_tokens.c.token_hash).where(api_tokens.c.token_hash == token_hash)).first()
                is None
            ):
                raise NotFoundError("no such token")
            try:
                conn.execute(
                    insert(token_revocations).values(token_hash=token_hash, revoked_at=format_time(now or utc_now()))
                )
            except IntegrityError as exc:
                raise ConflictError("the token is already revoked") from exc

    def list_tokens(self, actor_id: str) -> list[TokenInfo]:
        """An actor's tokens by id (the first 16 hex digits of the stored hash), oldest first; never the tokens."""
        query = (
            select(api_tokens.c.token_hash, api_tokens.c.created_at, token_revocations.c.revoked_at)
            .outerjoin(token_revocations, token_revocations.c.token_hash == api_tokens.c.token_hash)
            .where(api_tokens.c.actor_id == actor_id)
            .order_by(api_tokens.c.created_at, api_tokens.c.token_hash)
        )
        self._registered(actor_id)
        with self.engine.connect() as conn:
            return [
                TokenInfo(str(r.token_hash)[:16], actor_id, r.created_at, r.revoked_at) for r in conn.execute(query)
            ]

    def token_by_id(self, token_id: str) -> TokenInfo:
        """The token whose stored hash starts with this id (NotFoundError if none)."""
        query = (
            select(
                api_tokens.c.token_hash, api_tokens.c.actor_id, api_tokens.c.created_at, token_revocations.c.revoked_at
            )
            .outerjoin(token_revocations, token_revocations.c.token_hash == api_tokens.c.token_hash)
            .where(api_tokens.c.token_hash.startswith(token_id, autoescape=True))
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if len(rows) != 1:  # two tokens sharing 64 bits of hash would be news; refuse rather than guess
            raise NotFoundError(f"no token {token_id}" if not rows else f"token id {token_id} is ambiguous")
        row = rows[0]
        return TokenInfo(str(row.token_hash)[:16], row.actor_id, row.created_at, row.revoked_at)

    def revoke_token_id(self, token_id: str, *, now: datetime | None = None) -> None:
        """Revoke a token by its id (ConflictError if it already is)."""
        found = self.token_by_id(token_id)
        if found.revoked_at is not None:
            raise ConflictError(f"token {token_id} is already revoked")
        with self._write() as conn, conn.begin():
            token_hash = conn.execute(
                select(api_tokens.c.token_hash).where(api_tokens.c.token_hash.startswith(token_id, autoescape=True))
            ).scalar_one()
            try:
                conn.execute(
                    insert(token_revocations).values(token_hash=token_hash, revoked_at=format_time(now or utc_now()))
                )
            except IntegrityError as exc:
                raise ConflictError(f"token {token_id} is already revoked") from exc

    def knows_keys(self, key_ids: Iterable[object]) -> bool:
        """Whether `prepare` has every one of these keys cached, and so needs no database for them."""
        return all(isinstance(key_id, str) and key_id in self._key_cache for key_id in key_ids)

    def _public_keys(self, key_ids: set[str]) -> dict[str, PublicKey]:
        """Public keys of the ids among `key_ids` that the log has bound, as far as this process has seen it
        (cached: a key id's public key never changes). A key bound since is checked at commit instead."""
        missing = key_ids - self._key_cache.keys()
        registry = self._registry
        if missing and registry is not None:
            for key_id in missing:
                if key_id == registry.log_key_id:
                    self._key_cache[key_id] = registry.log_public_key
                elif key_id in registry.keys:
                    self._key_cache[key_id] = load_public_key(registry.keys[key_id].public_key)
        return {key_id: self._key_cache[key_id] for key_id in key_ids if key_id in self._key_cache}

    def _load_batches(
        self,
        conn: Connection,
        batch_ids: set[tuple[str, str]],
        shipment_keys: set[ShipmentKey],
        repaired: set[tuple[str, str]],
    ) -> dict[tuple[str, str], BatchState]:
        """The batches' current states, with the shipments this commit names: cached states of this epoch as
        they are, the rest from their heads (`batch_heads`, one query for all); a batch whose head disagrees with
        its last entry is replayed from its chain and added to `repaired` (its head is rewritten).

        Called under the append lock, so no entry can appear while we read.
        """
        states: dict[tuple[str, str], BatchState] = {}
        to_read: set[tuple[str, str]] = set()
        with self._batch_cache_lock:
            for batch_id in batch_ids:
                cached = self._batch_cache.get(batch_id)
                if cached is not None and cached[1] == self._epoch:
                    states[batch_id] = cached[0].copy()
                else:
                    to_read.add(batch_id)
        for row in read_heads(conn, to_read, postgres=self._postgres) if to_read else ():
            batch_id = (row.sku, row.lot)
            state = row.state_if_current()
            if state is None and row.last_logged is None:
                state = BatchState(*batch_id)  # a new batch (a head without entries is a stale row: replaced)
                if row.state is not None:
                    repaired.add(batch_id)
            elif state is None:
                logger.warning(
                    "the head of batch %s/%s disagrees with its entries: replaying its chain (to rebuild every "
                    "head at once: chainproof rebuild)",
                    row.sku,
                    row.lot,
                )
                state = self._replay_batch(conn, batch_id)
                repaired.add(batch_id)
            states[batch_id] = state
        missing = {key for key in shipment_keys if key[:2] not in repaired and key[2] not in states[key[:2]].shipments}
        if missing:
            for (sku, lot, shipment_id), state_json in read_shipments(conn, missing, postgres=self._postgres).items():
                try:
                    states[(sku, lot)].shipments[shipment_id] = state_of_shipment(state_json)
                except LedgerError:  # an unreadable row: the batch's chain says what is true
                    states[(sku, lot)] = self._replay_batch(conn, (sku, lot))
                    repaired.add((sku, lot))
        return states

    @staticmethod
    def _replay_batch(conn: Connection, batch_id: tuple[str, str]) -> BatchState:
        query = (
            select(entries.c.leaf)
            .where(entries.c.sku == batch_id[0], entries.c.lot == batch_id[1])
            .order_by(entries.c.idx)
        )
        return replay_batches(bytes(row.leaf) for row in conn.execute(query)).get(batch_id, BatchState(*batch_id))

    def _remember_batches(self, states: dict[tuple[str, str], BatchState]) -> None:
        with self._batch_cache_lock:
            for batch_id, state in states.items():
                self._batch_cache[batch_id] = (state, self._epoch)
                self._batch_cache.move_to_end(batch_id)
            while len(self._batch_cache) > _BATCH_CACHE_SIZE:
                self._batch_cache.popitem(last=False)

    # -- reading ------------------------------------------------------------------------------------------------

    @staticmethod
    def _size(conn: Connection) -> int:
        return int(conn.exec_driver_sql(_SIZE).scalar_one())

    def size(self) -> int:
        with self.engine.connect() as conn:
            return self._size(conn)

    @staticmethod
    def _nodes(conn: Connection, keys: set[NodeKey]) -> dict[NodeKey, bytes]:
        if not keys:
            return {}
        # OR of primary-key equalities: both databases answer it with one index probe per key (a row-value IN
        # list makes SQLite scan the table). Plain SQL text: building the same as expression objects costs more
        # than the query itself.
        ordered = sorted(keys)
        found: dict[NodeKey, bytes] = {}
        for start in range(0, len(ordered), _KEYS_PER_QUERY):
            part = ordered[start : start + _KEYS_PER_QUERY]
            where = " OR ".join(f"(level = :l{n} AND idx = :i{n})" for n in range(len(part)))
            params: dict[str, int] = {}
            for n, (level, index) in enumerate(part):
                params[f"l{n}"] = level
                params[f"i{n}"] = index
            rows = conn.execute(text(f"SELECT level, idx, hash FROM merkle_nodes WHERE {where}"), params)
            found.update(((row.level, row.idx), bytes(row.hash)) for row in rows)
        return found

    def _checked_size(self, conn: Connection, size: int) -> None:
        current = self._size(conn)
        if not 0 <= size <= current:
            raise ProofError(f"tree size {size} is not between 0 and the log's size {current}")

    def root(self, size: int | None = None) -> bytes:
        with self.engine.connect() as conn:
            size = self._size(conn) if size is None else size
            self._checked_size(conn, size)
            return root_from_nodes(size, self._nodes(conn, set(root_keys(size))))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return self.inclusion_proofs([index], size)[index]

    def inclusion_proofs(self, indices: Sequence[int], size: int) -> dict[int, list[bytes]]:
        """Inclusion proofs of several entries in one tree, from one read of the stored subtrees."""
        ranges = {index: merkle.inclusion_ranges(index, size) for index in indices}
        with self.engine.connect() as conn:
            self._checked_size(conn, size)
            nodes = self._nodes(conn, merkle.node_keys_for(r for rs in ranges.values() for r in rs))
        return {index: merkle.hashes_for_ranges(rs, nodes) for index, rs in ranges.items()}

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        with self.engine.connect() as conn:
            self._checked_size(conn, second)
            return build_consistency_proof(first, second, lambda keys: self._nodes(conn, keys))

    def entries(self, start: int, end: int) -> list[LogEntry]:
        query = (
            select(entries.c.idx, entries.c.sku, entries.c.lot, entries.c.leaf, entries.c.leaf_hash)
            .where(entries.c.idx >= start, entries.c.idx < end)
            .order_by(entries.c.idx)
        )
        with self.engine.connect() as conn:
            return [self._log_entry(row) for row in conn.execute(query)]

    @staticmethod
    def _log_entry(row: Any) -> LogEntry:
        return LogEntry(bytes(row.leaf), row.idx, bytes(row.leaf_hash), (row.sku, row.lot))

    def iter_entries(self, chunk: int = 5000, end: int | None = None) -> Iterator[LogEntry]:
        """Every entry in log order (or those before `end`), read in chunks (memory stays flat)."""
        after = -1
        while True:
            query = (
                select(entries.c.idx, entries.c.sku, entries.c.lot, entries.c.leaf, entries.c.leaf_hash)
                .where(entries.c.idx > after)
                .order_by(entries.c.idx)
                .limit(chunk)
            )
            if end is not None:
                query = query.where(entries.c.idx < end)
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            for row in rows:
                yield self._log_entry(row)
            after = rows[-1].idx

    def batch_entries(self, sku: str, lot: str) -> list[LogEntry]:
        """Every entry of the batch, in log order (NotFoundError if it has none)."""
        found = self.batch_range(sku, lot)
        if not found:
            raise NotFoundError(f"batch {sku}/{lot} does not exist")
        return found

    def batch_range(
        self,
        sku: str,
        lot: str,
        *,
        after: int | None = None,
        before: int | None = None,
        first: int | None = None,
        newest: int | None = None,
    ) -> list[LogEntry]:
        """The batch's entries with after < index < before, in log order: all of them, the `first` n, or the
        `newest` n. One range scan of the (sku, lot, idx) index."""
        query = select(entries.c.idx, entries.c.sku, entries.c.lot, entries.c.leaf, entries.c.leaf_hash).where(
            entries.c.sku == sku, entries.c.lot == lot
        )
        if after is not None:
            query = query.where(entries.c.idx > after)
        if before is not None:
            query = query.where(entries.c.idx < before)
        if newest is not None:
            query = query.order_by(entries.c.idx.desc()).limit(newest)
        else:
            query = query.order_by(entries.c.idx)
            if first is not None:
                query = query.limit(first)
        with self.engine.connect() as conn:
            found = [self._log_entry(row) for row in conn.execute(query)]
        if newest is not None:
            found.reverse()
        return found

    # -- derived tables -----------------------------------------------------------------------------------------

    def rebuild_heads(self) -> int:
        """Recompute the derived tables (`batch_heads`, `batch_shipments` and the SLA projection) from the log,
        under the append lock (appends wait); returns the number of batches (actors' chains of registrations,
        which have heads too, not counted)."""
        with self._write() as conn, conn.begin():
            self._lock_appends(conn)
            leaves = [bytes(row.leaf) for row in conn.execute(select(entries.c.leaf).order_by(entries.c.idx))]
            states = replay_batches(leaves)
            fold = ShipmentFold().add_leaves(leaves)
            del leaves
            write_all(conn, states, postgres=self._postgres)
            sla_store.write_all(conn, fold.records(), fold.origins(), postgres=self._postgres)
            epcis_store.forget(conn)  # a read cache: the next query indexes the log again
        with self._sla_lock:
            self._sla_forget()
        with self._batch_cache_lock:
            self._batch_cache.clear()
        return sum(1 for sku, _lot in states if sku != IDENTITY_SKU)

    def restore_tail(self, start: int, leaves: Sequence[bytes], checkpoint_note: str) -> int:
        """Put back entries [start, start + len(leaves)) a restored database lost, exactly as the log had them (their
        leaves, from published tiles), with the checkpoint that covers them: refused (nothing written) unless the
        database holds `start` entries and the tree the leaves complete has the checkpoint's root. The entries were
        judged when first appended; the log's signed checkpoint vouches that these are they. Derived tables are
        rebuilt after. Returns the new size."""
        checkpoint = Checkpoint.parse_body(parse_note(checkpoint_note).text)
        if checkpoint.size != start + len(leaves):
            raise ValidationError(f"the checkpoint covers {checkpoint.size} entries, not {start} + {len(leaves)}")
        with self._write() as conn, conn.begin():
            self._lock_appends(conn)
            size = self._size(conn)
            if size != start:
                raise ConflictError(f"the database holds {size} entries, not the {start} the tail continues from")
            tree = self._tree_at(conn, start)
            entry_rows, node_rows, statement_rows, gtin_rows = [], [], [], []
            registrations: list[LoggedRegistration] = []
            for offset, leaf in enumerate(leaves):
                index = start + offset
                parsed = parse_leaf(leaf)
                if parsed.index != index:
                    raise ValidationError(f"entry {index} says it is entry {parsed.index}")
                entry_hash = leaf_hash(leaf)
                raw = parsed.statement
                entry_rows.append(
                    {
                        "idx": index,
                        "sku": str(raw["sku"]),
                        "lot": str(raw["lot"]),
                        "leaf": leaf,
                        "leaf_hash": entry_hash,
                    }
                )
                node_rows += [{"level": lv, "idx": i, "hash": h} for lv, i, h in tree.append(entry_hash)]
                if is_registration(raw):
                    registration, data = validate_registration(raw)
                    registrations.append(LoggedRegistration(index, registration, data, parsed.logged_at))
                    signed_at = registration.signed_at
                else:
                    statement, data = validate_statement(raw)
                    signed_at = statement.signed_at
                    if isinstance(data, OriginData) and data.gtin:
                        gtin_rows.append({"gtin": gtin14(data.gtin), "lot": statement.lot, "sku": statement.sku,
                                          "idx": index})  # fmt: skip
                signed_at_us = (parse_time(signed_at) - EARLIEST_TIME) // _MICROSECOND
                statement_rows.append(
                    {"signed_at_us": signed_at_us, "statement_hash": sha256(parsed.statement_bytes), "idx": index}
                )
            if tree.root() != checkpoint.root_hash:
                raise ValidationError(
                    "the restored tree's root is not the checkpoint's: these are not the log's entries"
                )
            if entry_rows:
                conn.execute(insert(entries), entry_rows)
                conn.execute(insert(merkle_nodes), node_rows)
                conn.execute(insert(logged_statements), statement_rows)
            if gtin_rows:
                conn.execute(insert(gtin_batches), gtin_rows)
            write_projection(conn, registrations)
            stored = conn.execute(select(checkpoints.c.note).where(checkpoints.c.tree_size == checkpoint.size)).scalar()
            if stored is None:
                conn.execute(
                    insert(checkpoints).values(
                        tree_size=checkpoint.size, note=checkpoint_note, created_at=format_time(utc_now())
                    )
                )
        self._head, self._epoch_size = None, -1  # another process's appends, as far as our caches know
        self.rebuild_heads()
        return checkpoint.size

    def head_differences(self, states: dict[tuple[str, str], BatchState], after: int) -> list[str]:
        """How the derived tables differ from `states` (the batches as the log's first `after` entries tell
        them), once the entries from `after` on are applied too; empty if they agree."""
        with self.engine.connect() as conn:
            newer = conn.execute(select(entries.c.leaf).where(entries.c.idx >= after).order_by(entries.c.idx))
            replay_batches((bytes(row.leaf) for row in newer), states)
            heads, shipments = stored_rows(conn)
        return compare(states, heads, shipments)

    def sla_differences(self, fold: ShipmentFold, after: int) -> list[str]:
        """How the SLA projection differs from `fold` (the shipments as the log's first `after` entries tell
        them), once the entries from `after` on are folded in too; empty if they agree."""
        with self.engine.connect() as conn:
            newer = conn.execute(select(entries.c.leaf).where(entries.c.idx >= after).order_by(entries.c.idx))
            fold.add_leaves(bytes(row.leaf) for row in newer)
            stored = sla_store.stored_records(conn)
        return sla_store.compare(fold.records(), stored)

    def _sla_refresh(self) -> None:
        """Bring the in-memory SLA records and columns up to the projection (under `_sla_lock`): only the rows
        that changed since, each row knowing the index of its latest event."""
        with self.engine.connect() as conn:
            current = self._size(conn)
            if current == self._sla_through:
                return
            if current < self._sla_through:  # a rebuilt or replaced database: read it all again
                self._sla_forget()
            if not len(self._sla_columns):  # the first read: every row, in bulk, records built when asked for
                self._sla_columns.load_rows(sla_store.all_rows(conn), sla_store.record_of_row)
            else:
                self._sla_columns.update(sla_store.changed_records(conn, self._sla_through))
        self._sla_through = current

    def _sla_forget(self) -> None:
        self._sla_columns = ShipmentColumns()
        self._sla_through = 0

    def sla_warm_up(self) -> None:
        """Read the SLA projection into memory now (a server calls this at start, in the background). Never
        fails: a report reads it again if this could not."""
        try:
            with self._sla_lock:
                self._sla_refresh()
        except Exception as exc:  # a warm-up is an optimisation: the first report reads the projection itself
            logger.warning("could not read the SLA projection ahead of the first report: %s", exc)

    def sla_records(self, *, size: int, as_of_us: int) -> list[ShipmentRecord]:
        """The shipments a report over `size` entries at `as_of` sees, from the SLA projection (kept in memory
        and refreshed by the rows changed since, so a report reads only what is new)."""
        with self._sla_lock:
            self._sla_refresh()
            columns = self._sla_columns
            records = [columns.record(row) for row in range(len(columns))]
        return [seen for record in records if (seen := record.seen(size, as_of_us)) is not None]

    def sla_shipment_status(
        self, sku: str, lot: str, shipment_id: str, *, size: int, as_of: int, parameters: Parameters
    ) -> tuple[ShipmentRecord, Status] | None:
        """One shipment as a view over `size` entries at `as_of` sees it, and its status (the lane rule read from
        its lane's rows alone): what a product page shows. None if the view does not hold it."""
        with self.engine.connect() as conn:
            record, lane = sla_store.shipment_and_lane(conn, sku, lot, shipment_id)
        as_of_us = as_of * 1_000_000 + 999_999
        seen = None if record is None else record.seen(size, as_of_us)
        if seen is None:
            return None
        lane_seen = [r for r in (r.seen(size, as_of_us) for r in lane) if r is not None]
        return seen, status_in_lane(seen, lane_seen, as_of, parameters)

    def sla_evaluation(self, *, size: int, as_of_us: int, as_of: int, parameters: Parameters) -> Evaluation:
        """Every shipment as a view over `size` entries at `as_of` sees it, with its status (ledger/sla_columns.py):
        what reports, at-risk lists and the dashboard read."""
        with self._sla_lock:
            self._sla_refresh()
            columns = self._sla_columns
            # the pages of one list pin the same checkpoint and as_of: the second page needs no new evaluation
            arrays = columns.arrays()  # a new object whenever the columns change
            key = (size, as_of_us, as_of, parameters)
            cached = self._sla_last
            if cached is not None and cached[0] is arrays and cached[1] == key:
                return cached[2]
            evaluated = columns.evaluate(size, as_of_us, as_of, parameters)
            self._sla_last = (arrays, key, evaluated)
            return evaluated

    # -- the log this database belongs to -----------------------------------------------------------------------

    def bind_log_key(self, *, now: datetime | None = None) -> LogMeta:
        """Record this store's log key as the database's on first use; afterwards refuse any other key, naming
        both. Every process that opens a database to sign (the API, `demo`, `serve`) binds first, through
        `ledger.storage.opening.open_log_store`, and `checkpoint` checks again before it signs."""
        verifier = str(self.signer.verifier)
        meta = read_log_meta(self.engine)
        if meta is None:
            with self._write() as conn, conn.begin():
                if conn.execute(select(log_meta.c.origin)).first() is None:
                    conn.execute(
                        insert(log_meta).values(
                            origin=self.origin, verifier_key=verifier, created_at=format_time(now or utc_now())
                        )
                    )
            meta = read_log_meta(self.engine)
            assert meta is not None
        if meta.verifier_key != verifier:
            raise WrongLogKeyError(
                f"this database is the log {meta.origin} with key {meta.verifier_key}; the key in use is {verifier}: "
                "refusing to sign it (set CHAINPROOF_LOG_KEY_FILE, or CHAINPROOF_DATA_DIR, to the log's own key)"
            )
        self._bound = True
        return meta

    # -- checkpoints --------------------------------------------------------------------------------------------

    def checkpoint(self) -> str:
        """The latest checkpoint the log has issued. A read never signs one: only the issuer does
        (`issue_checkpoint`, ledger/witnessing.py), on its cadence, so that every checkpoint anyone is shown is
        one the log's witnesses were asked to cosign. NoCheckpointYetError before the first one."""
        latest = self.latest_checkpoint()
        if latest is None:
            raise NoCheckpointYetError(
                f"the log {self.origin} has issued no checkpoint yet: its issuer signs one within seconds of starting"
            )
        return latest

    def issue_checkpoint(self, *, now: datetime | None = None) -> str:
        """Sign (and record) the checkpoint of the current tree if it has none; return it."""
        with self.engine.connect() as conn:
            size = self._size(conn)
            existing = conn.execute(select(checkpoints.c.note).where(checkpoints.c.tree_size == size)).scalar()
            if existing is not None:
                return str(existing)
            root = root_from_nodes(size, self._nodes(conn, set(root_keys(size))))
        if not self._bound:
            self.bind_log_key(now=now)  # a database is never signed by a key that is not its log's
        note = sign_checkpoint(Checkpoint(self.origin, size, root), self.signer)
        with self._write() as conn, conn.begin():
            stored = conn.execute(select(checkpoints.c.note).where(checkpoints.c.tree_size == size)).scalar()
            if stored is not None:  # another worker issued it first; Ed25519 is deterministic, so it is the same
                return str(stored)
            conn.execute(
                insert(checkpoints).values(tree_size=size, note=note, created_at=format_time(now or utc_now()))
            )
        return note

    def epcis_page(self, query: EventQuery) -> EpcisRows:
        """A page of the EPCIS events a query selects, over the latest checkpoint (or the one its page token
        pinned), from the EPCIS index (ledger/storage/epcis.py), brought up to that checkpoint first."""
        latest = Checkpoint.parse_body(parse_note(self.checkpoint()).text).size
        size = latest if query.tree_size is None else query.tree_size
        if size > latest:
            raise ValidationError("nextPageToken is not one this server gave: start again without it")
        with self._write() as conn, conn.begin():
            epcis_store.catch_up(conn, size, postgres=self._postgres)
        with self.engine.connect() as conn:
            rows = list(epcis_store.page(conn, query, size, query.per_page + 1))
            more = len(rows) > query.per_page
            rows = rows[: query.per_page]
            leaves = epcis_store.leaves_at(conn, [int(row.idx) for row in rows])
            entries_shown = [(int(row.idx), leaves[int(row.idx)]) for row in rows]
            orders = set()
            for _index, leaf in entries_shown:
                statement = parse_leaf(leaf).statement
                shipment_id = (statement.get("data") or {}).get("shipment_id")
                if statement.get("type") == "delivery" and isinstance(shipment_id, str):
                    orders.add((str(statement["sku"]), str(statement["lot"]), shipment_id))
            gtins, units = epcis_store.context_of(conn, {(str(r.sku), str(r.lot)) for r in rows}, orders)
        last = (int(rows[-1].event_time_us), int(rows[-1].idx)) if more and rows else None
        return EpcisRows(size, entries_shown, gtins, units, last)

    def tile(self, tile: Tile) -> bytes:
        """A C2SP tlog-tiles resource (ledger/tiles.py) of the log as it stands: the hashes of a tile, read from the
        stored perfect subtrees, or an entry bundle. NotFoundError for a tile the log does not hold (yet)."""
        first = tile.index * TILE_WIDTH
        with self.engine.connect() as conn:
            if tile.level is None:
                rows = conn.execute(
                    select(entries.c.idx, entries.c.leaf)
                    .where(entries.c.idx >= first, entries.c.idx < first + tile.width)
                    .order_by(entries.c.idx)
                ).all()
            else:
                rows = conn.execute(
                    text(
                        "SELECT idx, hash FROM merkle_nodes WHERE level = :level AND idx >= :first AND idx < :end "
                        "ORDER BY idx"
                    ),
                    {"level": TILE_HEIGHT * tile.level, "first": first, "end": first + tile.width},
                ).all()
        if len(rows) != tile.width:
            raise NotFoundError(f"the log holds no {tile.path} (it has {len(rows)} of its {tile.width} items)")
        if tile.level is None:
            return entry_bundle([bytes(row[1]) for row in rows], first)
        return tile_bytes([bytes(row[1]) for row in rows])

    def add_cosignatures(self, size: int, cosignatures: Sequence[tuple[str, int, str]]) -> None:
        """Record witnesses' cosignatures of the checkpoint at `size`: (witness vkey, timestamp, signature line)."""
        if not cosignatures:
            return
        with self._write() as conn, conn.begin():
            for witness, timestamp, line in cosignatures:
                exists = conn.execute(
                    text("SELECT 1 FROM cosignatures WHERE tree_size = :s AND witness = :w AND cosigned_at = :t"),
                    {"s": size, "w": witness, "t": timestamp},
                ).first()
                if exists is None:
                    conn.execute(
                        text(
                            "INSERT INTO cosignatures (tree_size, witness, cosigned_at, line) VALUES (:s, :w, :t, :l)"
                        ),
                        {"s": size, "w": witness, "t": timestamp, "l": line},
                    )

    def cosigned(self, note: str) -> str:
        """A checkpoint with the newest cosignature of each witness that cosigned it appended."""
        size = Checkpoint.parse_body(parse_note(note).text).size
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT witness, cosigned_at, line FROM cosignatures WHERE tree_size = :s"), {"s": size}
            ).all()
        newest: dict[str, tuple[int, str]] = {}
        for witness, timestamp, line in rows:
            if witness not in newest or int(timestamp) > newest[witness][0]:
                newest[str(witness)] = (int(timestamp), str(line))
        lines = [line if line.endswith("\n") else line + "\n" for _t, line in (newest[w] for w in sorted(newest))]
        return note + "".join(lines)

    def checkpointed_size(self) -> int | None:
        """The tree size of the latest issued checkpoint (None before the first): what readers are shown."""
        with self.engine.connect() as conn:
            size = conn.execute(select(func.max(checkpoints.c.tree_size))).scalar()
        return None if size is None else int(size)

    def latest_checkpoint(self) -> str | None:
        """The largest checkpoint the log has issued, as stored (no key needed)."""
        with self.engine.connect() as conn:
            note = conn.execute(select(checkpoints.c.note).order_by(checkpoints.c.tree_size.desc()).limit(1)).scalar()
        return None if note is None else str(note)

    def checkpoint_at(self, size: int) -> str:
        with self.engine.connect() as conn:
            note = conn.execute(select(checkpoints.c.note).where(checkpoints.c.tree_size == size)).scalar()
        if note is None:
            raise NotFoundError(f"no checkpoint was issued at tree size {size}")
        return str(note)
