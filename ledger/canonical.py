"""The one canonical JSON encoding (RFC 8785, JCS) and the one strict JSON parser.

Everything that is signed or hashed goes through `canonical_json`; everything read back from bytes goes through
`parse_json`, which refuses what a lenient parser would let through (duplicate keys, NaN, non-UTF-8).
"""

from __future__ import annotations

import json
import re
from typing import Any

import rfc8785

from ledger.errors import EncodingError

_MAX_SAFE_INT = 2**53 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")
_FAST_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _same_as_jcs(value: Any) -> bool:
    """True if the standard library's sorted, compact JSON of `value` is byte for byte its RFC 8785 form.

    They agree on null, booleans, strings (both escape exactly '"', '\\\\' and control characters, the same way),
    integers within +/- 2**53 - 1, and objects whose keys sort the same by code point as by UTF-16 code unit
    (every key below U+D800). Floats agree where Python's repr and ECMAScript's Number::toString both print
    plain decimals: non-integral values with 1e-4 <= |x| < 1e16. Anything else goes to rfc8785 itself.
    """
    kind = type(value)
    if kind is str:  # a lone surrogate: JCS escapes it, the standard library cannot encode it
        return value.isascii() or _SURROGATE.search(value) is None
    if kind is int:
        return bool(-_MAX_SAFE_INT <= value <= _MAX_SAFE_INT)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not (key.isascii() or max(key) < "\ud800"):
                return False
            if not _same_as_jcs(item):
                return False
        return True
    if kind is list:
        return all(_same_as_jcs(item) for item in value)
    if value is None or kind is bool:
        return True
    if kind is float:
        return bool(1e-4 <= abs(value) < 1e16 and not value.is_integer())
    return False


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of a JSON value (dicts, lists, str, int, float, bool, None).

    Values whose standard-library encoding is provably identical take that (C) path; all others, and every
    error, are rfc8785's. tests/test_canonical.py checks the two agree on generated values.
    """
    if _same_as_jcs(value):
        return _FAST_ENCODER.encode(value).encode("utf-8")
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise EncodingError(f"value cannot be canonicalized as JSON: {exc}") from exc


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)  # in C; the loop below runs only to name the duplicate (a third of parsing time saved)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise EncodingError(f"duplicate JSON object key {key!r}")
            seen.add(key)
    return result


def _reject_constant(name: str) -> Any:
    raise EncodingError(f"{name} is not valid JSON")


def parse_json(data: bytes | str) -> Any:
    """Parse JSON strictly: UTF-8 only, no duplicate keys, no NaN/Infinity."""
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EncodingError(f"JSON is not valid UTF-8: {exc}") from exc
    else:
        text = data
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise EncodingError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
