"""The CBV 2.0 event hash (ledger/epcis/event_hash.py) against the published examples of the reference generator
(tests/vectors/epcis-event-hash/, MIT): every event hash, and every pre-hash string where one is given."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ledger.epcis.event_hash import Prefixes, document_events, event_hash, format_number, format_time, prehash
from ledger.epcis.identifiers import canonical_gs1_uri

EXAMPLES = Path(__file__).parent / "vectors" / "epcis-event-hash" / "examples"
NOT_SUPPORTED = {
    # These two exercise the reference generator's option to leave named user extensions out of the hash
    # (`repository-x:hash`, `example:captureID`); the algorithm (CBV 2.0 8.8.1, rule 20) hashes every user
    # extension, and so do we: the second event of each, without those fields, reproduces.
    ("epcisDocHavingEventWithIgnoreFields.jsonld", 0),
    ("epcisQueryDocHavingEventWithIgnoreFields.jsonld", 0),
}


def _cases() -> list[tuple[str, int]]:
    cases = []
    for path in sorted(EXAMPLES.glob("*.jsonld")):
        events = document_events(json.loads(path.read_text()))
        cases += [(path.name, i) for i in range(len(events))]
    return cases


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_every_example_document_is_read() -> None:
    documents = sorted(EXAMPLES.glob("*.jsonld"))
    assert len(documents) == 22
    # every event of every example has an expected hash, and we read as many events as the file lists hashes
    for path in documents:
        assert len(document_events(json.loads(path.read_text()))) == len(_lines(path.with_suffix(".hashes"))), path
    assert len(_cases()) == 43


@pytest.mark.parametrize(("name", "number"), _cases())
def test_event_hash_reproduces_the_reference(name: str, number: int) -> None:
    path = EXAMPLES / name
    document = json.loads(path.read_text())
    event = document_events(document)[number]
    prefixes = Prefixes(document.get("@context"))
    expected_hash = _lines(path.with_suffix(".hashes"))[number]
    expected_prehash = _lines(path.with_suffix(".prehashes"))
    if (name, number) in NOT_SUPPORTED:
        assert event_hash(event, prefixes) != expected_hash
        pytest.skip("uses the reference generator's ignore-fields option (see NOT_SUPPORTED)")
    # a published pre-hash string is compared where it is the one the published hash was computed from (a few
    # lines of the files are another event's, or garbled; the hash is the reference)
    if number < len(expected_prehash) and _ni(expected_prehash[number]) == expected_hash:
        assert prehash(event, prefixes) == expected_prehash[number]
    assert event_hash(event, prefixes) == expected_hash


def _ni(text: str) -> str:
    return f"ni:///sha-256;{hashlib.sha256(text.encode()).hexdigest()}?ver=CBV2.0"


def test_most_published_prehash_strings_are_checked_too() -> None:
    checked = 0
    for name, number in _cases():
        path = EXAMPLES / name
        lines = _lines(path.with_suffix(".prehashes"))
        if number < len(lines) and _ni(lines[number]) == _lines(path.with_suffix(".hashes"))[number]:
            checked += 1
    assert checked >= 35


def test_content_not_identity_decides_the_hash() -> None:
    event = {
        "type": "ObjectEvent",
        "eventTime": "2026-11-03T10:00:00.000+01:00",
        "eventTimeZoneOffset": "+01:00",
        "epcList": ["urn:epc:id:sgtin:4012345.011111.2", "urn:epc:id:sgtin:4012345.011111.1"],
        "action": "OBSERVE",
        "bizStep": "shipping",
    }
    same = {
        **event,
        "eventID": "urn:uuid:1",  # identity, not content
        "recordTime": "2026-11-04T00:00:00Z",
        "eventTime": "2026-11-03T09:00:00Z",  # the same moment in UTC
        "epcList": ["https://example.com/01/04012345111118/21/1", "https://id.gs1.org/01/04012345111118/21/2"],
        "bizStep": "https://ref.gs1.org/cbv/BizStep-shipping",
    }
    assert event_hash(event) == event_hash(same)
    for changed in ({"bizStep": "receiving"}, {"epcList": event["epcList"][:1]}, {"eventTimeZoneOffset": "+02:00"}):
        assert event_hash({**event, **changed}) != event_hash(event), changed


def test_times_numbers_and_identifiers() -> None:
    assert format_time("2023-01-18T11:04:03.1415Z") == "2023-01-18T11:04:03.142Z"
    assert format_time("2023-01-18T11:04:03.1425Z") == "2023-01-18T11:04:03.143Z"  # half up, as CBV says
    assert format_time("2023-12-31T23:59:59.9996Z") == "2024-01-01T00:00:00.000Z"
    assert format_time("2023-01-18T01:00:00-06:30") == "2023-01-18T07:30:00.000Z"
    assert format_number(1.0) == "1"
    assert format_number(0.34340) == "0.3434"
    assert canonical_gs1_uri("urn:epc:id:sgln:0614141.07346.1234") == "https://id.gs1.org/414/0614141073467/254/1234"
    assert canonical_gs1_uri("urn:epc:class:lgtin:4012345.012345.998877") == (
        "https://id.gs1.org/01/04012345123456/10/998877"
    )
    assert canonical_gs1_uri("https://shop.example/01/4012345123456/10/L1/21/7?x=1") == (
        "https://id.gs1.org/01/04012345123456/21/7"
    )
    assert canonical_gs1_uri("https://trace.example/p/SKU-1/L1") is None
    assert canonical_gs1_uri("urn:epc:id:sgtin:4012345.011111") is None
