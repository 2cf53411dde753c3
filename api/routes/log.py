"""Reading the log: checkpoints, the log key, entries and proofs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from api.deps import SettingsDep, StoreDep
from api.problems import ProblemError
from api.schemas import ConsistencyProofOut, EntriesPage, InclusionProofOut, LogEntryOut, RegistrationsOut
from ledger.entry import parse_leaf
from ledger.errors import LedgerError
from ledger.hashing import b64encode, leaf_hash
from ledger.verify import LogEntry

router = APIRouter(prefix="/v1/log", tags=["log"])


def entry_out(entry: LogEntry) -> LogEntryOut:
    """An entry as stored: its position and exact leaf always; the decoded fields when the leaf can be read
    (a damaged leaf is still served, so that verifiers can see and report it)."""
    position = entry.stored_index if entry.stored_index is not None else -1
    try:
        parsed = parse_leaf(entry.leaf)
    except LedgerError:
        return LogEntryOut(
            index=position, leaf=b64encode(entry.leaf), entry_hash=leaf_hash(entry.leaf).hex(),
            logged_at=None, prev=None, signature=None, statement=None,
        )  # fmt: skip
    return LogEntryOut(
        index=position,
        leaf=b64encode(entry.leaf),
        entry_hash=parsed.hash.hex(),
        logged_at=parsed.logged_at,
        prev=None if parsed.prev is None else b64encode(parsed.prev),
        signature=b64encode(parsed.signature),
        statement=parsed.statement,
    )


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    summary="The latest signed checkpoint (C2SP tlog-checkpoint in a signed note), with its witnesses' cosignatures",
)
def checkpoint(store: StoreDep) -> PlainTextResponse:
    """The log's signature, then the newest cosignature (C2SP tlog-cosignature v1) of each witness that cosigned
    this checkpoint, if the log is witnessed."""
    return PlainTextResponse(store.cosigned(store.checkpoint()), media_type="text/plain; charset=utf-8")


@router.get(
    "/key",
    response_class=PlainTextResponse,
    summary="The log's note verifier key: <name>+<hex key id>+<base64(0x01 || Ed25519 public key)>",
)
def log_key(store: StoreDep) -> PlainTextResponse:
    return PlainTextResponse(str(store.signer.verifier) + "\n", media_type="text/plain; charset=utf-8")


@router.get("/entries", response_model=EntriesPage, summary="Entries start..end-1, with their exact leaf bytes")
def entries(
    store: StoreDep,
    settings: SettingsDep,
    start: Annotated[int, Query(ge=0, description="first index")] = 0,
    end: Annotated[int | None, Query(ge=0, description="one past the last index (default: start + page size)")] = None,
) -> EntriesPage:
    size = store.size()
    stop = start + settings.max_entries_page if end is None else end
    if stop < start:
        raise ProblemError(400, f"end ({stop}) is before start ({start})", "bad-range")
    stop = min(stop, size)
    page_end = min(stop, start + settings.max_entries_page)
    found = store.entries(start, page_end) if start < page_end else []
    return EntriesPage(
        entries=[entry_out(e) for e in found],
        next=page_end if page_end < stop else None,
        tree_size=size,
    )


@router.get(
    "/registrations",
    response_model=RegistrationsOut,
    summary="Every registration entry (who may sign: actors, keys, revocations), in log order",
)
def registrations(
    store: StoreDep,
    start: Annotated[int, Query(ge=0, description="first index")] = 0,
    end: Annotated[int | None, Query(ge=0, description="one past the last index (default: the log's size)")] = None,
) -> RegistrationsOut:
    """Verifiers read these ahead of the entries (a migrated ledger's early entries are judged by them); each is
    also an ordinary entry of the log, so a verifier checks every one against the entry at its index."""
    size = store.size()
    stop = size if end is None else min(end, size)
    found = store.registrations(start, stop) if start < stop else []
    return RegistrationsOut(
        registrations=[entry_out(LogEntry(leaf, stored_index=index)) for index, leaf in found], tree_size=size
    )


@router.get("/proof/inclusion", response_model=InclusionProofOut, summary="RFC 9162 inclusion proof")
def inclusion_proof(
    store: StoreDep,
    index: Annotated[int, Query(ge=0, description="leaf index")],
    tree_size: Annotated[int, Query(ge=1, description="tree size of a checkpoint")],
) -> InclusionProofOut:
    try:
        hashes = store.inclusion_proof(index, tree_size)
    except LedgerError as exc:
        raise ProblemError(400, str(exc), "bad-proof-request") from exc
    return InclusionProofOut(index=index, tree_size=tree_size, hashes=[b64encode(h) for h in hashes])


@router.get("/proof/consistency", response_model=ConsistencyProofOut, summary="RFC 9162 consistency proof")
def consistency_proof(
    store: StoreDep,
    first: Annotated[int, Query(ge=1, description="older tree size")],
    second: Annotated[int, Query(ge=1, description="newer tree size")],
) -> ConsistencyProofOut:
    try:
        hashes = store.consistency_proof(first, second)
    except LedgerError as exc:
        raise ProblemError(400, str(exc), "bad-proof-request") from exc
    return ConsistencyProofOut(first=first, second=second, hashes=[b64encode(h) for h in hashes])
