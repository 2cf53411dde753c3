"""One batch as a reader sees it: its entries, each proven into the latest checkpoint and checked by the
ledger's own verifier. Shared by the JSON batch endpoint and the product page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from certificates.core import Certificate, issue_certificate
from ledger.entry import ParsedEntry
from ledger.hashing import b64encode
from ledger.note import NoteSigner, open_checkpoint
from ledger.rules import Directory
from ledger.storage import LedgerStore
from ledger.verify import BatchReport, LogEntry, verify_batch


@dataclass
class BatchView:
    sku: str
    lot: str
    checkpoint_note: str
    checkpoint_size: int
    checkpoint_root: bytes
    entries: list[LogEntry]
    proofs: dict[int, list[bytes]]
    directory: Directory
    report: BatchReport

    @property
    def parsed(self) -> list[ParsedEntry]:
        return self.report.entries

    def certificate(self, signer: NoteSigner, *, page_url: str, issued_at: datetime) -> Certificate:
        """The batch's certificate of authenticity, signed from this view's verified evidence (refused with
        CertificateRefusedError for a recalled or failing batch)."""
        return issue_certificate(
            self.report,
            [(e.stored_index or 0, e.leaf) for e in self.entries],
            self.proofs,
            self.directory,
            self.checkpoint_note,
            signer,
            page_url=page_url,
            issued_at=issued_at,
        )

    def browser_data(self, log_key: str) -> dict[str, Any]:
        """What the page's script needs to check everything again: leaves, proofs, signers' keys, checkpoint."""
        signer_ids = {p.statement.get("key_id") for p in self.parsed}
        keys = {
            key.key_id: {"actor_id": key.actor_id, "public_key": b64encode(key.public_key)}
            for key in self.directory.keys.values()
            if key.key_id in signer_ids
        }
        return {
            "log_key": log_key,
            "checkpoint": self.checkpoint_note,
            "entries": [
                {
                    "index": e.stored_index,
                    "leaf": b64encode(e.leaf),
                    "proof": [b64encode(h) for h in self.proofs.get(e.stored_index or 0, [])],
                }
                for e in self.entries
            ],
            "keys": keys,
        }


def batch_view(store: LedgerStore, sku: str, lot: str) -> BatchView:
    """Raises NotFoundError for an unknown batch."""
    note = store.checkpoint()
    checkpoint = open_checkpoint(note, store.signer.verifier, store.origin).checkpoint
    size = checkpoint.size
    found = [e for e in store.batch_entries(sku, lot) if e.stored_index is not None and e.stored_index < size]
    pairs = [(e.stored_index or 0, e.leaf) for e in found]
    proofs = store.inclusion_proofs([index for index, _leaf in pairs], size)
    directory = store.directory()
    report = verify_batch(sku, lot, pairs, proofs, directory, store.signer.verifier, note, origin=store.origin)
    return BatchView(sku, lot, note, size, checkpoint.root_hash, found, proofs, directory, report)
