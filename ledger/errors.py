"""The ledger's errors. The API maps them to HTTP problems and the CLI to exit codes; nothing here exits."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger core raises on purpose."""


class EncodingError(LedgerError):
    """Bytes that are not in the strict form a format requires (JSON, base64, note, checkpoint)."""


class SignatureError(LedgerError):
    """A signature that does not verify, or a key that cannot be used."""


class ProofError(LedgerError):
    """A Merkle inclusion or consistency proof that does not hold, or cannot be built."""


class RootMismatchError(ProofError):
    """A proof computed a root other than the one expected; both are kept so the message can show them."""

    def __init__(self, computed: bytes, expected: bytes) -> None:
        self.computed = computed
        self.expected = expected
        super().__init__(f"computed root {computed.hex()} does not match expected root {expected.hex()}")


class ValidationError(LedgerError):
    """An event that is well-formed bytes but not a valid event (missing field, bad GTIN, unknown type...)."""


class RuleError(LedgerError):
    """An event that is valid on its own but not allowed where it would go (role, custody, chain rules).

    `kind` lets the API choose a status: "forbidden" (role or ownership), "conflict" (chain order), "invalid".
    """

    def __init__(self, message: str, kind: str = "invalid") -> None:
        self.kind = kind
        super().__init__(message)


class NotFoundError(LedgerError):
    """A batch, actor, key or log position that does not exist."""


class ConflictError(LedgerError):
    """A write that conflicts with what is stored (duplicate id, concurrent append that lost its race)."""


class IdempotencyKeyReusedError(LedgerError):
    """An Idempotency-Key sent again with a different request."""


class DuplicateStatementError(ConflictError):
    """A signed statement that the log already holds: appending it again would replay its signer's words."""

    def __init__(self, message: str, index: int) -> None:
        self.index = index
        super().__init__(message)


class NoCheckpointYetError(LedgerError):
    """A read of a log whose issuer has not signed its first checkpoint yet: nothing can be proven until it has."""


class WrongLogKeyError(LedgerError):
    """A log key other than the one the database records as its log's."""
