"""Nothing personal goes into the log: it is public, and anyone may copy and keep it forever.

A shipment's destination is a region or a facility code, and a place is a site (a port, a warehouse, a city),
never a person's address, e-mail address or phone number. At intake (the API, and `chainproof record` before it
signs) the text fields that name places are checked for what looks like those three, and refused with a message
that says what was seen and what to write instead. A heuristic: it errs towards refusing what looks personal, and
a GLN or a warehouse code (digits without separators, or a code with a few) is not taken for a phone number.
Not part of the ledger's rules: an entry logged before this check existed still verifies (ADR 0005).
"""

from __future__ import annotations

import re
from typing import Any

_EMAIL = re.compile(r"[^\s@<>()\[\],;:]+@[^\s@<>()\[\],;:]+\.[A-Za-z]{2,}")
# a phone number: + and 8 or more digits, or 9 or more digits in groups split by spaces, dots, dashes or
# parentheses; or a Chinese mobile number (11 digits from 13-19) on its own
_PHONE_INTERNATIONAL = re.compile(r"\+\s?\d(?:[\s().-]?\d){7,}")
_PHONE_GROUPED = re.compile(r"(?<![\w-])\(?\d{2,5}\)?(?:[\s.-]\(?\d{2,5}\)?){1,4}(?![\w-])")
_PHONE_CN_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_STREET_WORDS = (
    "street|st|road|rd|avenue|ave|lane|ln|boulevard|blvd|drive|dr|way|court|ct|terrace|crescent|close|"
    "straße|strasse|str|weg|allee|platz|gasse|rue|avenida|calle|via|viale|piazza|straat|laan|gata|gatan|vej"
)
_STREET_NUMBER_FIRST = re.compile(
    rf"(?<![\w-])\d{{1,5}}[A-Za-z]?,?\s+(?:[^\W\d][\w'.-]*\s+){{0,4}}(?:{_STREET_WORDS})\.?(?!\w)", re.IGNORECASE
)
_STREET_NUMBER_AFTER = re.compile(
    rf"(?:{_STREET_WORDS}|\w+(?:straße|strasse|str\.|weg|gasse|allee|platz))\.?\s+\d{{1,5}}[A-Za-z]?(?!\w)",
    re.IGNORECASE,
)
_STREET_NUMBER_WORD_FIRST = re.compile(
    r"(?<![\w-])\d{1,5},?\s+(?:rue|avenue|avenida|calle|via|viale|piazza|boulevard|chemin|allée|place)\s",
    re.IGNORECASE,
)
_UNIT = re.compile(r"(?<!\w)(?:apt|apartment|suite|flat|p\.?\s?o\.?\s?box|postfach)\.?\s*#?\s*\d", re.IGNORECASE)
_CN_ADDRESS = re.compile(r"(?:路|街|道|巷|弄|里|村)\s*\d+\s*(?:号|號|弄)|\d+\s*(?:号楼|號樓|单元|室)|\d+\s*号")


def personal_data_problem(value: str) -> str | None:
    """What in `value` looks like personal data (an e-mail address, a phone number, a street address), or None."""
    if _EMAIL.search(value):
        return "looks like an e-mail address"
    if _PHONE_INTERNATIONAL.search(value) or _PHONE_CN_MOBILE.search(value):
        return "looks like a phone number"
    for match in _PHONE_GROUPED.finditer(value):
        if sum(c.isdigit() for c in match.group()) >= 9:
            return "looks like a phone number"
    if (
        _STREET_NUMBER_FIRST.search(value)
        or _STREET_NUMBER_AFTER.search(value)
        or _STREET_NUMBER_WORD_FIRST.search(value)
        or _UNIT.search(value)
        or _CN_ADDRESS.search(value)
    ):
        return "looks like a street address"
    return None


# the fields of batch events that name places or carry free notes about a shipment
_PLACE_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "shipment": (("destination",),),
    "handoff": (("place",), ("condition", "note")),
    "delivery": (("place",),),
    "shipment_cancel": (("reason",),),
}


def statement_problem(statement: dict[str, Any]) -> str | None:
    """For a batch statement (as JSON): which field looks like personal data, and what to write instead."""
    data = statement.get("data")
    if not isinstance(data, dict):
        return None
    for path in _PLACE_FIELDS.get(str(statement.get("type")), ()):
        value: Any = data
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str):
            problem = personal_data_problem(value)
            if problem is not None:
                return (
                    f"statement.data.{'.'.join(path)} {problem} ({value[:60]!r}): the log is public, so nothing "
                    "personal may be recorded in it; write a region or a facility code (e.g. DE-HH, a GLN or a "
                    "warehouse code), never a person's address, e-mail address or phone number"
                )
    return None
