"""The pure verifier: entries, actor keys and checkpoints in, every problem out.

No IO and no clock: the caller hands over bytes and trusted keys (the CLI reads them from a server, a database or
a bundle). It does not stop at the first problem, and it never reports success on empty input: a report is `ok`
only if at least one entry was checked and a checkpoint signed by the log key covered it.
Signatures of a long run are checked in worker processes (`signature_process_pool`) while this process parses
and applies the rules in order; the first chunk is checked in-process, so a short run never starts a pool.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

from pydantic import BaseModel

from ledger.entry import MAX_LEAF_BYTES, ParsedEntry, parse_leaf
from ledger.errors import LedgerError, ProofError, RuleError
from ledger.events import Statement, parse_time, validate_statement
from ledger.hashing import b64encode, leaf_hash
from ledger.history import BatchHistory, ShipmentFold
from ledger.identities import Registry, is_registration, validate_registration
from ledger.merkle import CompactRange, verify_consistency, verify_inclusion
from ledger.note import NoteVerifier, SignedCheckpoint, open_checkpoint
from ledger.rules import CLOCK_SKEW, Actor, ActorKey, BatchState, Directory, check_times
from ledger.signing import (
    PublicKey,
    StatementCheck,
    key_id_for,
    load_public_key,
    signature_process_pool,
    start_statement_checks,
)

CHUNK = 2048
_PENDING_CHUNKS = 3  # chunks whose signatures may be in flight while the next one is parsed


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One entry as a source holds it: the leaf bytes, and what the source recorded beside them (if anything)."""

    leaf: bytes
    stored_index: int | None = None
    recorded_hash: bytes | None = None
    recorded_batch: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    index: int | None
    code: str
    message: str

    def __str__(self) -> str:
        where = "log" if self.index is None else f"index {self.index}"
        return f"{where}: {self.message} [{self.code}]"


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    entries: int = 0
    batches: int = 0
    actors: int = 0
    tree_size: int | None = None
    root: bytes | None = None
    checkpoint_verified: bool = False
    registry: Registry | None = None  # who may sign, as the entries' registrations tell it

    @property
    def ok(self) -> bool:
        return not self.problems and self.entries > 0 and self.checkpoint_verified

    def summary(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "batches": self.batches,
            "actors": self.actors,
            "tree_size": self.tree_size,
            "root": None if self.root is None else b64encode(self.root),
            "problems": [{"index": p.index, "code": p.code, "message": p.message} for p in self.problems],
        }


def _load_key(key: ActorKey) -> PublicKey:
    return load_public_key(key.public_key)


Signer = Callable[[Statement, int, datetime], tuple[Actor, PublicKey]]
"""Who signed an entry and with which public key, if they may sign it there: (statement, index, logged_at) in,
RuleError out if not."""


def directory_signer(directory: Directory, public_key: Callable[[ActorKey], PublicKey] = _load_key) -> Signer:
    """Signers as a published directory says: keys judged by the time the entry was logged."""

    def signer(statement: Statement, _index: int, logged_at: datetime) -> tuple[Actor, PublicKey]:
        actor, key = directory.check_signer(statement, logged_at)
        return actor, public_key(key)

    return signer


def _judge(
    index: int,
    parsed: ParsedEntry,
    statement: Statement,
    data: BaseModel,
    logged_at: datetime,
    batch: BatchState,
    signer: Signer,
    actors: Mapping[str, Actor],
    problems: list[Problem],
) -> StatementCheck | None:
    """Signer, times and batch rules for one entry (problems recorded, never raised), then advance its batch past
    it. Returns the signature check to run, if the signer's key is known."""
    task = None
    try:
        actor, public_key = signer(statement, index, logged_at)
        task = (index, public_key, parsed.signature, parsed.statement_bytes)
        check_times(statement, data, logged_at)
        batch.check(statement, data, actor, actors)
    except LedgerError as exc:
        problems.append(Problem(index, "rule", str(exc)))
    batch.apply(statement, data, parsed.hash, index, parsed.logged_at)
    return task


def _check_unique(pos: int, parsed: ParsedEntry, seen: dict[int, int], problems: list[Problem]) -> None:
    """A statement is logged at most once (a replay re-appends someone's signed words at a later index).
    Keyed by the statement bytes' 64-bit hash, not the bytes, to keep memory at about 100 bytes an entry;
    a false match (odds about n**2 / 2**65 in a batch of n) would be reported, never a replay missed."""
    fingerprint = hash(parsed.statement_bytes)
    first = seen.get(fingerprint)
    if first is None:
        seen[fingerprint] = pos
    else:
        problems.append(Problem(pos, "replay", f"the same signed statement is already logged at index {first}"))


class IdentityChecker:
    """Registrations checked in log order (ledger/identities.py): each actor's own chain, signer, rules; the
    registry moves past each whatever was found (problems are recorded, never raised)."""

    def __init__(self, log_key: NoteVerifier) -> None:
        self.log_key = log_key
        self.registry = Registry(key_id_for(log_key.public_key), load_public_key(log_key.public_key))
        self.chains: dict[tuple[str, str], BatchState] = {}  # each actor's registrations: a chain, like a batch

    def add(
        self,
        pos: int,
        parsed: ParsedEntry,
        statements: dict[tuple[str, str], dict[int, int]],
        problems: list[Problem],
    ) -> StatementCheck | None:
        """Check one registration; returns its signature check, if its signer's key is known."""
        try:
            statement, data = validate_registration(parsed.statement)
            logged_at = parse_time(parsed.logged_at, "logged_at")
        except LedgerError as exc:
            problems.append(Problem(pos, "invalid-statement", str(exc)))
            return None
        chain = self.chains.setdefault((statement.sku, statement.lot), BatchState(statement.sku, statement.lot))
        if parsed.prev != chain.last_hash:
            previous = f"the previous one (index {chain.last_index})"
            where = "its first registration" if chain.last_hash is None else previous
            problems.append(Problem(pos, "chain", f"registration of {statement.lot!r} does not link to {where}"))
        chain.link(parsed.hash, pos)
        _check_unique(pos, parsed, statements.setdefault((statement.sku, statement.lot), {}), problems)
        task = None
        try:
            public_key, _signer = self.registry.signer_key(statement, pos)
            task = (pos, public_key, parsed.signature, parsed.statement_bytes)
            if parse_time(statement.signed_at) > logged_at + CLOCK_SKEW:
                raise RuleError(f"signed_at {statement.signed_at} is in the future of the log's clock", "invalid")
            self.registry.check(pos, statement, data)
        except LedgerError as exc:
            problems.append(Problem(pos, "rule", str(exc)))
        self.registry.apply(pos, statement, data, logged_at)
        return task


def replay_registrations(
    registrations: Iterable[tuple[int, bytes]], log_key: NoteVerifier
) -> tuple[Registry, list[Problem]]:
    """The registry that registration entries (index, leaf), in log order, build, with every problem found in
    them, signatures included (their inclusion in a checkpoint is the caller's to prove)."""
    checker = IdentityChecker(log_key)
    problems: list[Problem] = []
    tasks = []
    for index, leaf in registrations:
        try:
            parsed = parse_leaf(leaf)
        except LedgerError as exc:
            problems.append(Problem(index, "malformed-leaf", f"entry cannot be read: {exc}"))
            continue
        if parsed.index != index:
            problems.append(Problem(index, "index", f"leaf says index {parsed.index}"))
        if not is_registration(parsed.statement):
            problems.append(Problem(index, "registrations", "listed as a registration, but it is not one"))
            continue
        task = checker.add(index, parsed, {}, problems)
        if task is not None:
            tasks.append(task)
    for index in start_statement_checks(tasks)():
        problems.append(Problem(index, "bad-signature", "registration signature does not verify with its signer's key"))
    return checker.registry, problems


def registration_chains(registrations: Iterable[tuple[int, bytes]]) -> dict[str, list[tuple[int, bytes]]]:
    """Registrations by the actor they concern, each list a hash chain in log order: one inclusion proof of a
    chain's last entry vouches for all of it (`check_anchored`)."""
    chains: dict[str, list[tuple[int, bytes]]] = {}
    for index, leaf in registrations:
        try:
            lot = str(parse_leaf(leaf).statement.get("lot"))
        except LedgerError:
            lot = ""  # unreadable: replay_registrations reports it; alone in its chain, it needs its own proof
        chains.setdefault(lot, []).append((index, leaf))
    return chains


def proven_registry(
    registrations: Sequence[tuple[int, bytes]],
    proofs: Mapping[int, Sequence[bytes]],
    checkpoint: SignedCheckpoint,
    log_key: NoteVerifier,
) -> tuple[Registry, list[Problem]]:
    """Who may sign, from registration entries proven into a checkpoint (one proof per actor's chain, of its
    last entry). What it cannot show: that no registration is missing (a later revocation or role change
    withheld); only a full audit shows that."""
    registry, problems = replay_registrations(registrations, log_key)
    for chain in registration_chains(registrations).values():
        problems.extend(check_anchored(chain, proofs, checkpoint))
    return registry, problems


def registry_signer(registry: Registry) -> Signer:
    """Signers as a whole log's registrations say: by index, or for entries logged before the migration point
    by the old directory's times."""
    migrated = directory_signer(registry.migrated_directory())

    def signer(statement: Statement, index: int, logged_at: datetime) -> tuple[Actor, PublicKey]:
        if registry.migration_point is None or index < registry.migration_point:
            return migrated(statement, index, logged_at)
        public_key, registered = registry.signer_key(statement, index)
        if registered is None:
            raise RuleError("the log key signs registrations, not batch events", "forbidden")
        return registry.rule_actors[registered.id], public_key

    return signer


class LedgerVerifier:
    """Streaming verifier: `add()` entries in log order (any number of calls), then `finish()`.

    Memory grows with the number of batches and actors, and by a fingerprint per entry (to find replays).
    """

    def __init__(
        self,
        log_key: NoteVerifier,
        checkpoint: str | bytes | None,
        *,
        registrations: Iterable[tuple[int, bytes]] | None = None,
        origin: str | None = None,
        older_checkpoint: str | bytes | None = None,
        workers: int = 2,
        expected_entries: int | None = None,
        shipments: ShipmentFold | None = None,
    ) -> None:
        """Who may sign comes from the log's own registrations (ledger/identities.py), judged by log index as the
        entries stream past. `registrations`: the source's list of every registration entry (index, leaf), read
        ahead, for a ledger migrated from an old directory: entries logged before the migration point are judged
        by the old times the migration recorded, which the stream reaches only later. Each is checked against
        the entry the stream then holds at that index (a source that shows different registrations is caught).

        `expected_entries`, if known, lets a long run start its worker processes at once, so that they are
        ready when the first chunk is (starting them took about 0.3 s, during which the first chunks waited).

        `shipments`, if given, is fed every batch event as it is checked: the shipments as the log tells them,
        which `verify --db` compares with the stored SLA projection."""
        self.shipments = shipments
        self._problems: list[Problem] = []
        self._tree = CompactRange()
        self._batches: dict[tuple[str, str], BatchState] = {}
        self._statements: dict[tuple[str, str], dict[int, int]] = {}  # per batch: statement fingerprint -> index
        self._identities = IdentityChecker(log_key)
        self._registry = self._identities.registry
        self._announced: dict[int, bytes] | None = None  # the read-ahead registrations: index -> leaf hash
        # for a migrated ledger: the migration point, and who signed the entries before it (the old times)
        self._migrated: tuple[int, Signer, Mapping[str, Actor]] | None = None
        if registrations is not None:
            self._read_ahead(registrations)
        self._workers = max(1, workers)
        self._pool: Executor | None = None  # started once more than a chunk came in: a short run never pays
        self._pending: deque[Callable[[], list[int]]] = deque()
        if expected_entries is not None and expected_entries > CHUNK:
            self._start_pool()
        self._checkpoint = self._open(checkpoint, log_key, origin, "checkpoint")
        self._older = self._open(older_checkpoint, log_key, origin, "older checkpoint") if older_checkpoint else None
        self._root_at: dict[int, bytes] = {}
        self._wanted_sizes = {c.checkpoint.size for c in (self._checkpoint, self._older) if c is not None}
        if 0 in self._wanted_sizes:
            self._root_at[0] = self._tree.root()

    def _open(
        self, note: str | bytes | None, key: NoteVerifier, origin: str | None, what: str
    ) -> SignedCheckpoint | None:
        if note is None:
            self._problem(None, "no-checkpoint", f"no {what} to verify against")
            return None
        try:
            return open_checkpoint(note, key, origin)
        except LedgerError as exc:
            self._problem(None, "checkpoint-signature", f"{what} does not verify with log key {key}: {exc}")
            return None

    def _problem(self, index: int | None, code: str, message: str) -> None:
        self._problems.append(Problem(index, code, message))

    def _read_ahead(self, registrations: Iterable[tuple[int, bytes]]) -> None:
        """A registry of the announced registrations (unchecked here: the stream checks each in its turn), for
        the migrated keys' old times."""
        announced = list(registrations)
        self._announced = {index: leaf_hash(leaf) for index, leaf in announced}
        scratch = IdentityChecker(self._identities.log_key).registry
        scratch.advance(announced)  # unreadable ones are reported by the stream at their index
        if scratch.migration_point is not None:
            migrated = scratch.migrated_directory()
            self._migrated = (scratch.migration_point, directory_signer(migrated), migrated.actors)

    @property
    def registry(self) -> Registry:
        """Actors and keys as the registrations added so far tell them."""
        return self._registry

    def add(self, entries: Iterable[LogEntry]) -> None:
        iterator = iter(entries)
        while chunk := list(islice(iterator, CHUNK)):
            self._add_chunk(chunk)

    def _add_chunk(self, chunk: list[LogEntry]) -> None:
        tasks: list[StatementCheck] = []
        for entry in chunk:
            entry_hash = leaf_hash(entry.leaf)
            task = self._check_entry(self._tree.size, entry, entry_hash)
            if task is not None:
                tasks.append(task)
            self._tree.append(entry_hash)
            if self._tree.size in self._wanted_sizes:
                self._root_at[self._tree.size] = self._tree.root()
        if self._tree.size > CHUNK:
            self._start_pool()
        # Pipelined: these signatures are checked on the pool while the next chunks are parsed here.
        self._pending.append(start_statement_checks(tasks, self._pool, self._workers))
        while len(self._pending) > _PENDING_CHUNKS:
            self._report_bad_signatures(self._pending.popleft()())

    def _start_pool(self) -> None:
        if self._pool is not None or self._workers < 2:
            return
        self._pool = signature_process_pool(self._workers)

    def _report_bad_signatures(self, positions: list[int]) -> None:
        for pos in positions:
            self._problem(pos, "bad-signature", "statement signature does not verify with the signer's key")

    def _check_entry(self, pos: int, entry: LogEntry, entry_hash: bytes) -> StatementCheck | None:
        if entry.stored_index is not None and entry.stored_index != pos:
            self._problem(pos, "position", f"stored as index {entry.stored_index} but is entry number {pos}")
        if entry.recorded_hash is not None and entry.recorded_hash != entry_hash:
            self._problem(pos, "leaf-hash", "leaf bytes do not match the leaf hash recorded for them")
        if len(entry.leaf) > MAX_LEAF_BYTES:
            self._problem(
                pos, "leaf-too-large", f"leaf is {len(entry.leaf)} bytes; the log takes at most {MAX_LEAF_BYTES}"
            )
        try:
            parsed = parse_leaf(entry.leaf, entry_hash)
        except LedgerError as exc:
            self._problem(pos, "malformed-leaf", f"leaf cannot be read: {exc}")
            return None
        if parsed.index != pos:
            self._problem(pos, "index", f"leaf says index {parsed.index}: entries were deleted, inserted or reordered")
        if is_registration(parsed.statement):
            return self._check_registration(pos, parsed)
        try:
            statement, data = validate_statement(parsed.statement)
            logged_at = parse_time(parsed.logged_at, "logged_at")
        except LedgerError as exc:
            self._problem(pos, "invalid-statement", str(exc))
            return None
        batch_id = (statement.sku, statement.lot)
        if self.shipments is not None:
            self.shipments.add(pos, parsed.logged_at, statement, data)
        if entry.recorded_batch is not None and entry.recorded_batch != batch_id:
            self._problem(
                pos,
                "batch-column",
                f"stored under batch {'/'.join(entry.recorded_batch)} but signed for {statement.sku}/{statement.lot}",
            )
        batch = self._batches.get(batch_id)
        if batch is None:
            batch = self._batches[batch_id] = BatchState(statement.sku, statement.lot)
            self._statements[batch_id] = {}
        self._check_link(pos, parsed, batch)
        _check_unique(pos, parsed, self._statements[batch_id], self._problems)
        signer: Signer = self._log_signer
        actors: Mapping[str, Actor] = self._registry.rule_actors
        if self._migrated is not None and pos < self._migrated[0]:
            _point, signer, actors = self._migrated  # logged under the old directory
        return _judge(pos, parsed, statement, data, logged_at, batch, signer, actors, self._problems)

    def _log_signer(self, statement: Statement, index: int, _logged_at: datetime) -> tuple[Actor, PublicKey]:
        """Signers as the log's registrations say: keys judged by log index."""
        public_key, registered = self._registry.signer_key(statement, index)
        if registered is None:
            raise RuleError("the log key signs registrations, not batch events", "forbidden")
        return self._registry.rule_actors[registered.id], public_key

    def _check_registration(self, pos: int, parsed: ParsedEntry) -> StatementCheck | None:
        if self._announced is not None and self._announced.pop(pos, None) != parsed.hash:
            self._problem(pos, "registrations", "this registration is not the one the source listed at this index")
        return self._identities.add(pos, parsed, self._statements, self._problems)

    def _check_link(self, pos: int, parsed: ParsedEntry, batch: BatchState) -> None:
        if parsed.prev == batch.last_hash:
            return
        if batch.last_hash is None:
            self._problem(pos, "chain", "first entry of its batch, but links to a previous entry")
        elif parsed.prev is None:
            self._problem(pos, "chain", f"links to nothing, but its batch's previous entry is index {batch.last_index}")
        else:
            self._problem(
                pos, "chain", f"prev hash does not match the batch's previous entry (index {batch.last_index})"
            )

    def batch_states(self) -> dict[tuple[str, str], BatchState]:
        """Each batch, and each actor's chain of registrations, as the entries added so far tell it (every entry
        applied, problems or not)."""
        return {**self._batches, **self._identities.chains}

    def close(self) -> None:
        """Stop the worker processes (finish() does this; call it when abandoning a verifier half way)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def finish(self) -> Report:
        while self._pending:
            self._report_bad_signatures(self._pending.popleft()())
        self.close()
        size = self._tree.size
        if size == 0:
            self._problem(None, "empty", "no entries to verify: an empty log proves nothing")
        for label, signed in (("checkpoint", self._checkpoint), ("older checkpoint", self._older)):
            if signed is None:
                continue
            cp = signed.checkpoint
            if cp.size > size:
                self._problem(size, "truncated", f"{label} covers {cp.size} entries but only {size} were found")
            elif self._root_at.get(cp.size) != cp.root_hash:
                self._problem(
                    None,
                    "root-mismatch",
                    f"root of the first {cp.size} entries is {b64encode(self._root_at.get(cp.size, b''))}, "
                    f"but the {label} says {b64encode(cp.root_hash)}",
                )
        if self._older and self._checkpoint and self._older.checkpoint.size > self._checkpoint.checkpoint.size:
            self._problem(None, "rollback", "the older checkpoint is larger than the latest one: the log shrank")
        for index in sorted(self._announced or ()):
            self._problem(index, "registrations", "the source listed a registration here, but the log holds none")
        self._problems.sort(key=lambda p: -1 if p.index is None else p.index)
        covered = self._checkpoint is not None and self._checkpoint.checkpoint.size == size
        return Report(
            problems=self._problems,
            entries=size,
            batches=len(self._batches),
            actors=len(self._registry.actors),
            tree_size=size,
            root=self._tree.root(),
            checkpoint_verified=covered,
            registry=self._registry,
        )


def verify_ledger(
    entries: Iterable[LogEntry],
    log_key: NoteVerifier,
    checkpoint: str | bytes | None,
    *,
    origin: str | None = None,
    older_checkpoint: str | bytes | None = None,
    workers: int = 2,
) -> Report:
    """Verify a whole log in one call (see LedgerVerifier), reading its registrations ahead."""
    entries = list(entries)
    verifier = LedgerVerifier(
        log_key,
        checkpoint,
        registrations=registrations_in(enumerate(e.leaf for e in entries)),
        origin=origin,
        older_checkpoint=older_checkpoint,
        workers=workers,
    )
    try:
        verifier.add(entries)
        return verifier.finish()
    finally:
        verifier.close()


_REGISTRATION_MARK = b'"sku":"_identity"'


def registrations_in(leaves: Iterable[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """The registration entries among (index, leaf) pairs, for `LedgerVerifier`'s read-ahead. A byte search
    first: canonical JSON writes the SKU exactly so, and a quote inside a string is always escaped, so no other
    entry matches; a leaf that does but does not parse is left for the stream to report."""
    found = []
    for index, leaf in leaves:
        if _REGISTRATION_MARK in leaf:
            try:
                if is_registration(parse_leaf(leaf).statement):
                    found.append((index, leaf))
            except LedgerError:
                continue
    return found


def check_consistency(
    older_note: str | bytes,
    newer_note: str | bytes,
    proof: Sequence[bytes],
    log_key: NoteVerifier,
    origin: str | None = None,
) -> list[Problem]:
    """Check that a newer checkpoint extends an older one the caller saw (a monitor's check, without leaves)."""
    problems: list[Problem] = []
    opened: list[SignedCheckpoint] = []
    for label, note in (("older checkpoint", older_note), ("checkpoint", newer_note)):
        try:
            opened.append(open_checkpoint(note, log_key, origin))
        except LedgerError as exc:
            problems.append(Problem(None, "checkpoint-signature", f"{label} does not verify: {exc}"))
    if problems:
        return problems
    old, new = opened[0].checkpoint, opened[1].checkpoint
    if new.size < old.size:
        return [Problem(old.size, "rollback", f"log shrank from {old.size} to {new.size} entries")]
    if old.size == 0:
        return []
    try:
        verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
    except ProofError as exc:
        return [
            Problem(
                None,
                "inconsistent",
                f"checkpoint of size {new.size} is not an extension of the one of size {old.size} seen before "
                f"(history rewritten or a split view): {exc}",
            )
        ]
    return []


@dataclass
class BatchReport:
    """What `verify_batch` found, and the batch as its verified entries tell it."""

    problems: list[Problem] = field(default_factory=list)
    entries: list[ParsedEntry] = field(default_factory=list)
    state: BatchState | None = None
    checkpoint: SignedCheckpoint | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.entries) and self.checkpoint is not None


class BatchChecker:
    """One batch's entries checked as they come, any number at a time: signature, index, batch, hash link and
    batch rules (inclusion is the caller's: see `check_anchored`). A page server keeps one per batch, so that a
    view checks only what was logged since the last one."""

    def __init__(self, sku: str, lot: str, history: BatchHistory | None = None) -> None:
        self.state = BatchState(sku, lot)
        self.problems: list[Problem] = []
        self.history = history  # fed every readable event, typed: what the batch says, for readers

    def add(self, entries: Sequence[tuple[int, bytes]], signers: Directory | Registry) -> list[ParsedEntry]:
        """Check these entries (the batch's next ones, in log order); returns those that could be read. Signers
        come from the log's registry (by index), or a directory (by time)."""
        state, problems = self.state, self.problems
        actors: Mapping[str, Actor]
        if isinstance(signers, Registry):
            signer, actors = registry_signer(signers), signers.rule_actors
        else:
            signer, actors = directory_signer(signers), signers.actors
        parsed_entries: list[ParsedEntry] = []
        checks: list[StatementCheck] = []
        for index, leaf in entries:
            try:
                parsed = parse_leaf(leaf)
                statement, data = validate_statement(parsed.statement)
                logged_at = parse_time(parsed.logged_at, "logged_at")
            except LedgerError as exc:
                problems.append(Problem(index, "malformed-leaf", f"entry cannot be read: {exc}"))
                continue
            parsed_entries.append(parsed)
            if parsed.index != index:
                problems.append(Problem(index, "index", f"leaf says index {parsed.index}"))
            if (statement.sku, statement.lot) != (state.sku, state.lot):
                problems.append(Problem(index, "batch", f"entry belongs to {statement.sku}/{statement.lot}"))
            if parsed.prev != state.last_hash:
                problems.append(Problem(index, "chain", "prev hash does not match the batch's previous entry"))
            task = _judge(index, parsed, statement, data, logged_at, state, signer, actors, problems)
            if task is not None:
                checks.append(task)
            if self.history is not None:
                self.history.add(index, parsed.logged_at, statement, data)
        for index in start_statement_checks(checks)():
            problems.append(
                Problem(index, "bad-signature", "statement signature does not verify with the signer's key")
            )
        return parsed_entries


def check_anchored(
    entries: Sequence[tuple[int, bytes]], proofs: Mapping[int, Sequence[bytes]], checkpoint: SignedCheckpoint
) -> list[Problem]:
    """Each entry (in log order) is in the checkpoint's tree: by its own inclusion proof, or because the next
    entry links to it by hash (`prev`) and is itself in the tree. So one proof of a batch's last entry vouches
    for its whole chain, as the product page's browser check relies on (ADR 0006); the last entry needs a proof."""
    cp = checkpoint.checkpoint
    problems: list[Problem] = []
    anchored_hash: bytes | None = None  # the hash a proven later entry says its predecessor has
    for index, leaf in reversed(entries):
        entry_hash = leaf_hash(leaf)
        proof = proofs.get(index)
        if proof is not None:
            try:
                verify_inclusion(index, cp.size, entry_hash, proof, cp.root_hash)
            except ProofError as exc:
                problems.append(Problem(index, "inclusion", f"not included in the checkpoint of size {cp.size}: {exc}"))
                anchored_hash = None
                continue
        elif anchored_hash is None or anchored_hash != entry_hash:
            problems.append(
                Problem(
                    index,
                    "inclusion",
                    f"not shown to be in the checkpoint of size {cp.size}: no inclusion proof, and the next entry "
                    "shown does not link to it",
                )
            )
            anchored_hash = None
            continue
        try:
            anchored_hash = parse_leaf(leaf, entry_hash).prev
        except LedgerError:
            anchored_hash = None
    problems.reverse()
    return problems


def verify_batch(
    sku: str,
    lot: str,
    entries: Sequence[tuple[int, bytes]],
    proofs: Mapping[int, Sequence[bytes]],
    signers: Directory | Registry,
    log_key: NoteVerifier,
    checkpoint: str | bytes,
    *,
    origin: str | None = None,
) -> BatchReport:
    """Check one batch without the rest of the log: every signature, hash link and batch rule, and that each
    entry is in a signed checkpoint's tree (by its own inclusion proof, or linked by hash to a later entry that
    has one: a proof of the last entry is enough). `entries` are (log index, leaf) in log order.

    A batch check cannot see entries withheld after the last one shown (only a full audit can); everything it
    is shown must hold.
    """
    report = BatchReport()
    problems = report.problems
    try:
        report.checkpoint = open_checkpoint(checkpoint, log_key, origin)
    except LedgerError as exc:
        problems.append(Problem(None, "checkpoint-signature", f"checkpoint does not verify with log key: {exc}"))
    if not entries:
        problems.append(Problem(None, "empty", f"batch {sku}/{lot} has no entries to verify"))
    checker = BatchChecker(sku, lot)
    report.entries = checker.add(entries, signers)
    report.state = checker.state
    problems.extend(checker.problems)
    if report.checkpoint is not None:
        problems.extend(check_anchored(entries, proofs, report.checkpoint))
    problems.sort(key=lambda p: -1 if p.index is None else p.index)
    return report
