"""What the server asks of a statement when it receives it, beyond the rules the verifier also runs.

These checks are about the moment of intake, which a later audit cannot see, so they are not part of
`ledger.rules`: a ledger recorded before they existed still verifies. See ADR 0005.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ledger.errors import ValidationError

if TYPE_CHECKING:  # the statement models load pydantic; the settings the CLI reads need only the window
    from ledger.events import Signed


@dataclass(frozen=True, slots=True)
class SignedAtWindow:
    """How far a statement's `signed_at` may lie from the moment the server receives it.

    The default looks back 14 days, for carriers that sign offline and upload when back in coverage, and 5 minutes
    ahead, for clocks that run fast. A statement signed long ago is refused even if never logged: its signer
    signs again to record it now (replays of logged statements are refused whatever their age)."""

    before: timedelta = timedelta(days=14)
    after: timedelta = timedelta(minutes=5)

    def check(self, statement: Signed, received_at: datetime) -> None:
        from ledger.events import parse_time

        signed_at = parse_time(statement.signed_at, "signed_at")
        if signed_at < received_at - self.before:
            raise ValidationError(
                f"signed_at {statement.signed_at} is {_span(received_at - signed_at)} before the server received "
                f"it; statements must be signed at most {_span(self.before)} before they are sent: sign it again"
            )
        if signed_at > received_at + self.after:
            raise ValidationError(
                f"signed_at {statement.signed_at} is {_span(signed_at - received_at)} after the server's clock; at "
                f"most {_span(self.after)} ahead is accepted: check the signing machine's clock"
            )


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 2 * 3600:
        return f"{seconds // 3600} hours"
    if seconds >= 120:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"


DEFAULT_SIGNED_AT_WINDOW = SignedAtWindow()
