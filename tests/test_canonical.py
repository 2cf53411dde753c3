"""Canonical JSON (RFC 8785) round-trips, strict parsing, and the leaf splice being exactly canonical."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import canonical_json, parse_json
from ledger.entry import build_leaf, parse_leaf
from ledger.errors import EncodingError
from ledger.hashing import b64decode, hexdecode, leaf_hash

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    # rfc8785 refuses floats outside the IEEE "safe integer" range; see test_canonical_rejects_what_json_cannot_hold
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=25,
)


@given(json_values)
@settings(max_examples=300)
def test_canonical_round_trip(value: object) -> None:
    encoded = canonical_json(value)
    decoded = parse_json(encoded)
    assert canonical_json(decoded) == encoded
    if not isinstance(value, float):
        assert decoded == value or value != value


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6), st.integers(0, 2**40), st.booleans())
@settings(max_examples=200)
def test_spliced_leaf_is_the_canonical_entry(statement: dict, index: int, first: bool) -> None:
    prev = None if first else bytes(range(32))
    signature = bytes(64)
    statement_bytes = canonical_json(statement)
    leaf = build_leaf(index, "2026-11-20T08:00:00.000001Z", prev, signature, statement_bytes)
    envelope = {
        "index": index,
        "logged_at": "2026-11-20T08:00:00.000001Z",
        "prev": None if prev is None else base64.b64encode(prev).decode(),
        "signature": base64.b64encode(signature).decode(),
        "statement": statement,
    }
    assert leaf == canonical_json(envelope)
    parsed = parse_leaf(leaf)
    assert parsed.statement_bytes == statement_bytes
    assert parsed.hash == leaf_hash(leaf)
    assert (parsed.index, parsed.prev) == (index, prev)


def test_non_canonical_leaf_is_rejected() -> None:
    leaf = build_leaf(3, "2026-11-20T08:00:00.000000Z", None, bytes(64), canonical_json({"a": 1}))
    spaced = leaf.replace(b'"index":3', b'"index": 3')
    with pytest.raises(EncodingError, match="canonical"):
        parse_leaf(spaced)
    reordered = leaf.replace(
        b'{"index":3,"logged_at":"2026-11-20T08:00:00.000000Z"', b'{"logged_at":"2026-11-20T08:00:00.000000Z","index":3'
    )
    with pytest.raises(EncodingError):
        parse_leaf(reordered)


@pytest.mark.parametrize(
    "text",
    [b'{"a":1,"a":2}', b'{"a":NaN}', b'{"a":Infinity}', b"\xff", b'{"a":', b"[1,]"],
)
def test_strict_parser_rejects(text: bytes) -> None:
    with pytest.raises(EncodingError):
        parse_json(text)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (b'{"a":1,"b":2,"a":1}', "a"),  # the same value twice is still two keys
        (b'{"events":[{"statement":{"sku":"A","lot":"1","sku":"B"}}]}', "sku"),  # nested deep
        (b'{"x":{},"y":{"k":1,"k":{}}}', "k"),
    ],
)
def test_strict_parser_names_the_duplicate_key(text: bytes, key: str) -> None:
    with pytest.raises(EncodingError, match=f"duplicate JSON object key '{key}'"):
        parse_json(text)


def test_strict_parser_keeps_distinct_keys_and_order() -> None:
    assert list(parse_json(b'{"b":1,"a":{"d":2,"c":3}}').items()) == [("b", 1), ("a", {"d": 2, "c": 3})]


def test_canonical_rejects_what_json_cannot_hold() -> None:
    with pytest.raises(EncodingError):
        canonical_json({"x": float("nan")})
    with pytest.raises(EncodingError):
        canonical_json({"x": object()})
    with pytest.raises(EncodingError):
        canonical_json({"x": 2**60})


@pytest.mark.parametrize("text", ["AA AA", "AAAA!!*", "AAB=", "AAAA\n", " AAAA", "AA=="[:3]])
def test_strict_base64(text: str) -> None:
    with pytest.raises(EncodingError):
        b64decode(text)


def test_strict_hex() -> None:
    assert hexdecode("00ff") == b"\x00\xff"
    for bad in ("0", "0G", "00FF", " 00"):
        with pytest.raises(EncodingError):
            hexdecode(bad)


any_text = st.text(alphabet=st.characters(codec=None), max_size=12)  # surrogates and astral characters included
wide_floats = st.floats(
    allow_nan=False, allow_infinity=False, min_value=-(2**53) + 1, max_value=2**53 - 1
) | st.sampled_from([1e-4, 9.999e-5, 1e16 - 2, 1e16, 0.1, -0.0, 0.0, 4.0, 4.5, 1e-7, 123456789.123, 5e-324 * 1e300])
wide_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | wide_floats | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=20,
)


@given(wide_values)
@settings(max_examples=2000)
def test_fast_path_agrees_with_rfc8785(value: object) -> None:
    import rfc8785

    try:
        expected = rfc8785.dumps(value)
    except Exception:  # what rfc8785 refuses, canonical_json refuses too
        with pytest.raises(EncodingError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"\ue000": 1, "\U0001f600": 2},  # UTF-16 order differs from code point order
        {"a": "\ud800"},
        {"x": 1e16},
        {"x": 1e-5},
        {"x": 4.0},
        {"x": -0.0},
        {"x": 2**53},
        {"b": [True, None, "é\n\u2028\x7f"], "a": {"z": 0.5}},
    ],
)
def test_fast_path_edge_cases(value: object) -> None:
    import rfc8785

    try:
        expected = rfc8785.dumps(value)
    except Exception:
        with pytest.raises(EncodingError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected
