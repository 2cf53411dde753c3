"""A batch as readers see it, checked by the ledger's own verifier, at any size (ADR 0006).

Two views:
- `batch_view`: every entry of the batch, checked, with one inclusion proof (of the last entry: the hash chain
  vouches for the rest). Certificates are signed from it; it costs time in proportion to the batch.
- `BatchSummaries`: what the product page and the batch JSON show, kept per batch and advanced by the entries
  logged since the last view, so that a view of a 10,000-event batch reads only what is new. What it hands the
  browser is bounded: the newest events (a hash chain down from the batch's last entry, which carries an
  inclusion proof), and the origin, the latest inspections and the recall, each with its own proof.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from certificates.core import Certificate, issue_certificate
from ledger.entry import ParsedEntry, parse_leaf
from ledger.errors import LedgerError, NotFoundError
from ledger.events import InspectionData, OriginData, RecallData
from ledger.hashing import b64encode
from ledger.history import BatchHistory, Recorded
from ledger.identities import LOG_ACTOR, Registry
from ledger.note import NoteSigner, SignedCheckpoint, open_checkpoint
from ledger.rules import BatchState
from ledger.sla import ShipmentRecord
from ledger.storage import LedgerStore
from ledger.verify import BatchChecker, BatchReport, LogEntry, Problem, check_anchored, verify_batch

RECENT_EVENTS = 50
"""Events a page shows (and the browser checks) at a time: the newest, or a page of older ones."""
SHOWN_INSPECTIONS = 10
_SUMMARIES_PER_STORE = 256


@dataclass
class BatchView:
    """Every entry of a batch, checked against the latest checkpoint."""

    sku: str
    lot: str
    checkpoint_note: str
    checkpoint_size: int
    checkpoint_root: bytes
    entries: list[LogEntry]
    proofs: dict[int, list[bytes]]  # of the last entry, and of each registration chain's last entry
    registry: Registry
    registrations: list[tuple[int, bytes]]  # the signers' registration chains, back to the log key
    report: BatchReport

    @property
    def parsed(self) -> list[ParsedEntry]:
        return self.report.entries

    def certificate(
        self, signer: NoteSigner, *, page_url: str, issued_at: datetime, platform: str, verify_url: str
    ) -> Certificate:
        """The batch's certificate of authenticity, signed from this view's verified evidence (refused with
        CertificateRefusedError for a recalled or failing batch)."""
        return issue_certificate(
            self.report,
            [(e.stored_index or 0, e.leaf) for e in self.entries],
            self.proofs,
            self.registry.rule_actors,
            self.registrations,
            self.checkpoint_note,
            signer,
            page_url=page_url,
            issued_at=issued_at,
            platform=platform,
            verify_url=verify_url,
        )


def batch_view(store: LedgerStore, sku: str, lot: str) -> BatchView:
    """Every entry of the batch up to the latest checkpoint, checked; the last one proven included (the chain
    links each entry to the next). Raises NotFoundError for an unknown batch."""
    note = store.cosigned(store.checkpoint())  # with its witnesses' cosignatures, if any
    checkpoint = open_checkpoint(note, store.signer.verifier, store.origin).checkpoint
    size = checkpoint.size
    found = store.batch_range(sku, lot, before=size)
    if not found:
        raise NotFoundError(f"batch {sku}/{lot} does not exist")
    pairs = [(e.stored_index or 0, e.leaf) for e in found]
    registry = store.registry(covering=size)
    registrations, chain_ends = signer_registrations(store, _signers(pairs), size, {})
    proofs = store.inclusion_proofs([pairs[-1][0], *chain_ends], size)
    report = verify_batch(sku, lot, pairs, proofs, registry, store.signer.verifier, note, origin=store.origin)
    return BatchView(sku, lot, note, size, checkpoint.root_hash, found, proofs, registry, registrations, report)


# -- the bounded view ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shown:
    """An entry a page shows: its index, exact leaf and parsed fields."""

    index: int
    leaf: bytes
    parsed: ParsedEntry

    @property
    def statement(self) -> dict[str, Any]:
        return self.parsed.statement


class BatchSummary:
    """A batch as its checked entries tell it, advanced entry by entry; guarded by its own lock. What the batch
    says is its typed history (ledger/history.py); beside it, the entries the browser is handed (the newest, and
    the origin, latest inspections and recall the history names), with their leaves."""

    def __init__(self, sku: str, lot: str) -> None:
        self.lock = threading.Lock()
        self.history = BatchHistory(sku, lot, max_inspections=SHOWN_INSPECTIONS)
        self.checker = BatchChecker(sku, lot, self.history)
        self.through = 0  # every entry of the batch below this log size has been added
        self.last_index: int | None = None
        self.length = 0
        self.origin: Shown | None = None
        self.inspections: deque[Shown] = deque(maxlen=SHOWN_INSPECTIONS)
        self.recall: Shown | None = None
        self.recent: deque[Shown] = deque(maxlen=RECENT_EVENTS)
        self.proofs: tuple[int, dict[int, list[bytes]]] = (-1, {})  # (tree size, index -> proof) of the last view

    @property
    def state(self) -> BatchState:
        return self.checker.state

    def add(self, found: list[LogEntry], registry: Registry) -> None:
        leaves = {e.stored_index: e.leaf for e in found}
        history = self.history
        added = [
            Shown(parsed.index, leaves.get(parsed.index, parsed.leaf), parsed)
            for parsed in self.checker.add([(e.stored_index or 0, e.leaf) for e in found], registry)
        ]
        inspections = {recorded.index for recorded in history.inspections}
        for shown in added:
            self.recent.append(shown)
            if history.origin is not None and shown.index == history.origin.index:
                self.origin = shown
            elif shown.index in inspections:
                self.inspections.append(shown)
            elif history.recall is not None and shown.index == history.recall.index:
                self.recall = shown
        if found:
            self.last_index = found[-1].stored_index
            self.length += len(found)


@dataclass(frozen=True)
class BatchPage:
    """What one view shows, fixed at one checkpoint: safe to render while the summary moves on."""

    sku: str
    lot: str
    checkpoint_note: str
    checkpoint_size: int
    registry: Registry  # who may sign, as the log registers it: the names the page shows, operator-attested or not
    length: int
    state: BatchState
    problems: list[Problem]
    origin: Shown | None
    inspections: list[Shown]
    inspection_count: int
    recall: Shown | None
    events: list[Shown]  # the events this page lists, oldest first: the newest, or an older page
    older: int | None  # the `before` of the next older page, if there is one
    newer: int | None  # the `before` of the next newer page (0: the newest), if this is an older page
    proofs: dict[int, list[bytes]]
    # what the batch says, typed (ledger/history.py): the origin, the latest inspections (oldest first), the recall
    origin_event: Recorded[OriginData] | None = None
    inspection_events: list[Recorded[InspectionData]] = field(default_factory=list)
    recall_event: Recorded[RecallData] | None = None
    shipment: ShipmentRecord | None = None  # the one asked for, as its events tell it
    checked: list[Shown] = field(default_factory=list)  # what the browser is handed, in log order
    # the registrations of everyone who signed what is shown, and of who registered them, up to the log key: each
    # actor's whole chain, with a proof of its last entry (the browser derives the signers' keys from them)
    registrations: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.length > 0

    def browser_data(self, log_key: str) -> dict[str, Any]:
        """What the page's script checks again (ADRs 0002 and 0006): each entry shown, in log order, with an
        inclusion proof where the next entry shown does not link to it by hash; the registrations its signers'
        keys are derived from (no key list); the checkpoint."""

        def listed(index: int, leaf: bytes) -> dict[str, Any]:
            proof = self.proofs.get(index)
            return {
                "index": index,
                "leaf": b64encode(leaf),
                **({"proof": [b64encode(h) for h in proof]} if proof else {}),
            }

        return {
            "log_key": log_key,
            "checkpoint": self.checkpoint_note,
            "batch": {
                "sku": self.sku,
                "lot": self.lot,
                "events": self.length,
                "window": [self.events[0].index, self.events[-1].index] if self.events else [0, -1],
            },
            "entries": [listed(s.index, s.leaf) for s in self.checked],
            "registrations": [listed(index, leaf) for index, leaf in self.registrations],
        }


class BatchSummaries:
    """The summaries of one store's batches (most recently viewed first kept)."""

    def __init__(self, store: LedgerStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._summaries: OrderedDict[tuple[str, str], BatchSummary] = OrderedDict()
        self._chains: tuple[int, dict[str, list[tuple[int, bytes]]]] = (-1, {})  # tree size, actor -> its chain

    def _summary(self, sku: str, lot: str) -> BatchSummary:
        with self._lock:
            summary = self._summaries.get((sku, lot))
            if summary is None:
                summary = self._summaries[(sku, lot)] = BatchSummary(sku, lot)
            self._summaries.move_to_end((sku, lot))
            while len(self._summaries) > _SUMMARIES_PER_STORE:
                self._summaries.popitem(last=False)
            return summary

    def page(self, sku: str, lot: str, *, before: int | None = None, shipment_id: str | None = None) -> BatchPage:
        """The batch at the latest checkpoint: the newest events, or (`before`) the page of events logged before
        that index. Raises NotFoundError for an unknown batch."""
        store = self._store
        signed = self._latest_checkpoint()
        summary = self._summary(sku, lot)
        with summary.lock:
            if summary.through > signed.checkpoint.size:  # another view got here first with a newer checkpoint
                signed = self._latest_checkpoint()
            size = signed.checkpoint.size
            registry = store.registry(covering=size)
            if summary.through < size:
                summary.add(store.batch_range(sku, lot, after=summary.last_index, before=size), registry)
                summary.through = size
            if not summary.length:
                self._forget(sku, lot, summary)  # lookups of batches that do not exist must not evict real ones
                raise NotFoundError(f"batch {sku}/{lot} does not exist")
            return self._page(summary, signed, registry, before, shipment_id)

    def _latest_checkpoint(self) -> SignedCheckpoint:
        store = self._store
        # with the witnesses' cosignatures (a witnessed log): the page's script and certificates carry them
        return open_checkpoint(store.cosigned(store.checkpoint()), store.signer.verifier, store.origin)

    def _forget(self, sku: str, lot: str, summary: BatchSummary) -> None:
        with self._lock:
            if self._summaries.get((sku, lot)) is summary:
                del self._summaries[(sku, lot)]

    def __len__(self) -> int:
        return len(self._summaries)

    def _page(
        self,
        summary: BatchSummary,
        signed: SignedCheckpoint,
        registry: Registry,
        before: int | None,
        shipment_id: str | None,
    ) -> BatchPage:
        store = self._store
        note, size = signed.note, signed.checkpoint.size
        state = summary.state
        if before is None or (summary.last_index is not None and before > summary.last_index):
            events = list(summary.recent)
            newer = None
        else:
            older_found = store.batch_range(state.sku, state.lot, before=before, newest=RECENT_EVENTS)
            events = _shown(older_found)
            newer = 0
        older = events[0].index if events and summary.origin and events[0].index > summary.origin.index else None
        highlights = [s for s in (summary.origin, *summary.inspections, summary.recall) if s is not None]
        checked = sorted({s.index: s for s in (*highlights, *events)}.values(), key=lambda s: s.index)
        # a proof for each entry the next one shown does not link to (always the last)
        proven = [a.index for a, b in itertools.pairwise(checked) if b.parsed.prev != a.parsed.hash]
        proven += [checked[-1].index] if checked else []
        registrations, chain_ends = self._signer_chains({str(s.statement.get("actor")) for s in checked}, size)
        proven += chain_ends
        cached_size, cached = summary.proofs
        if cached_size != size:
            cached = {}
            summary.proofs = (size, cached)
        missing = [index for index in proven if index not in cached]
        if missing:
            cached.update(store.inclusion_proofs(missing, size))
        proofs = {index: cached[index] for index in proven}
        # what the browser will check of inclusion, checked here first (the rest the summary has checked)
        inclusion = check_anchored([(s.index, s.leaf) for s in checked], proofs, signed)
        return BatchPage(
            sku=state.sku,
            lot=state.lot,
            checkpoint_note=note,
            checkpoint_size=size,
            registry=registry,
            length=summary.length,
            state=state.copy(),
            problems=sorted([*summary.checker.problems, *inclusion], key=lambda p: -1 if p.index is None else p.index),
            origin=summary.origin,
            inspections=list(summary.inspections),
            inspection_count=summary.history.inspection_count,
            recall=summary.recall,
            events=events,
            older=older,
            newer=newer,
            proofs=proofs,
            origin_event=summary.history.origin,
            inspection_events=list(summary.history.inspections),
            recall_event=summary.history.recall,
            shipment=summary.history.shipments.get(shipment_id) if shipment_id else None,
            checked=checked,
            registrations=registrations,
        )

    def _signer_chains(self, signers: set[str], size: int) -> tuple[list[tuple[int, bytes]], list[int]]:
        """`signer_registrations`, with the chains read once per actor and tree size."""
        with self._lock:
            if self._chains[0] != size:
                self._chains = (size, {})
            chains = self._chains[1]
        return signer_registrations(self._store, signers, size, chains)


def _signers(entries: list[tuple[int, bytes]]) -> set[str]:
    signers = set()
    for _index, leaf in entries:
        try:
            signers.add(str(parse_leaf(leaf).statement.get("actor")))
        except LedgerError:
            continue  # verify_batch reports it
    return signers


def signer_registrations(
    store: LedgerStore, signers: set[str], size: int, chains: dict[str, list[tuple[int, bytes]]]
) -> tuple[list[tuple[int, bytes]], list[int]]:
    """The registrations of these actors and of everyone who registered them, back to the log key, as of a tree
    size: (index, leaf) in log order, and the index of each actor's last registration (its chain's proof vouches
    for the rest). `chains` caches each actor's chain at that size."""
    found: dict[int, bytes] = {}
    ends: list[int] = []
    seen: set[str] = {LOG_ACTOR}
    wanted = set(signers) - seen
    while wanted:  # the signers, then who registered them, and so on: one query a step, for those not cached
        missing = wanted - chains.keys()
        if missing:
            chains.update(store.registration_chains(missing, size))
        seen |= wanted
        registrants: set[str] = set()
        for actor in wanted:
            chain = chains[actor]
            for index, leaf in chain:
                found[index] = leaf
                try:
                    registrants.add(str(parse_leaf(leaf).statement.get("actor")))
                except LedgerError:
                    continue  # the browser reports it
            if chain:
                ends.append(chain[-1][0])
        wanted = registrants - seen
    return sorted(found.items()), ends


def _shown(found: list[LogEntry]) -> list[Shown]:
    shown = []
    for entry in found:
        try:
            shown.append(Shown(entry.stored_index or 0, entry.leaf, parse_leaf(entry.leaf)))
        except LedgerError:
            continue  # reported by the summary's check
    return shown


_BY_STORE: weakref.WeakKeyDictionary[LedgerStore, BatchSummaries] = weakref.WeakKeyDictionary()
_BY_STORE_LOCK = threading.Lock()


def summaries(store: LedgerStore) -> BatchSummaries:
    """The batch summaries of this store (one set per store, for the life of the store)."""
    with _BY_STORE_LOCK:
        found = _BY_STORE.get(store)
        if found is None:
            found = _BY_STORE[store] = BatchSummaries(store)
        return found
