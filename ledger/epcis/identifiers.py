"""GS1 identifiers as the CBV 2.0 event hash writes them: EPC URIs (`urn:epc:id:sgtin:...`), EPC class and pattern
URIs, and GS1 Digital Link URIs on any domain, each as its constrained canonical Digital Link URI on id.gs1.org
(GS1 Digital Link 1.2 section 4.11; GS1 Tag Data Standard 2.0 for the EPC URI schemes): only the most
fine-grained key (a serial wins over a lot), no query string, no other attributes. Anything else is left alone.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ledger.events import gtin_check_digit

CANONICAL = "https://id.gs1.org"
# Characters of GS1 AI encodable character set 82 that GS1 Digital Link keeps as they are in a path segment.
_AI82 = r"[\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]|%[0-9A-Fa-f]{2}"
_PATH_ESCAPES = {"!": "%21", "(": "%28", ")": "%29", "*": "%2A", "+": "%2B", ",": "%2C", ":": "%3A"}
_SHORT_NAMES = {
    "gtin": "01", "itip": "8006", "cpid": "8010", "gln": "414", "party": "417", "gsrnp": "8017", "gsrn": "8018",
    "gcn": "255", "sscc": "00", "gdti": "253", "ginc": "401", "gsin": "402", "grai": "8003", "giai": "8004",
    "cpv": "22", "lot": "10", "ser": "21",
}  # fmt: skip
# A primary key, and the qualifiers that may follow it, finest first (GS1 DL 1.2 section 4.11 constrained form).
_KEYS: dict[str, tuple[str, ...]] = {
    "00": (), "01": ("21", "10", "235"), "253": (), "255": (), "401": (), "402": (), "414": ("254",), "417": (),
    "8003": (), "8004": (), "8006": ("21", "10"), "8010": ("8011",), "8017": (), "8018": (),
}  # fmt: skip
_KEY_VALUE = {
    "00": r"\d{18}", "01": r"\d{14}", "253": rf"\d{{13}}(?:{_AI82}){{0,17}}", "255": r"\d{13}\d{0,12}",
    "401": rf"(?:{_AI82}){{1,30}}", "402": r"\d{17}", "414": r"\d{13}", "417": r"\d{13}",
    "8003": rf"\d{{14}}(?:{_AI82}){{0,16}}", "8004": rf"(?:{_AI82}){{1,30}}", "8006": r"\d{18}",
    "8010": r"[\x23\x2D\x2F\x30-\x39\x41-\x5A]{1,30}", "8017": r"\d{18}", "8018": r"\d{18}",
}  # fmt: skip
_QUALIFIER_VALUE = {"21": rf"(?:{_AI82}){{1,20}}", "10": rf"(?:{_AI82}){{1,20}}", "235": rf"(?:{_AI82}){{1,28}}",
                    "254": rf"(?:{_AI82}){{1,20}}", "8011": r"\d{1,12}"}  # fmt: skip


def _with_check_digit(body: str) -> str:
    return body + str(gtin_check_digit(body))


def _escaped(text: str) -> str:
    """An EPC URI component as a Digital Link path segment (EPC URIs already escape the rest)."""
    return "".join(_PATH_ESCAPES.get(ch, ch) for ch in text)


def _gtin(company: str, item: str) -> str:
    """GTIN-14 from an EPC URI's company prefix and indicator-plus-item reference."""
    return _with_check_digit(item[:1] + company + item[1:])


def _split(rest: str, parts: int, digits: tuple[int, ...]) -> list[str] | None:
    """`rest` split on the first parts-1 dots; the leading numeric fields must have these combined digit counts
    (company prefix 6 to 12 digits)."""
    fields = rest.split(".", parts - 1)
    if len(fields) != parts or not 6 <= len(fields[0]) <= 12:
        return None
    numeric = fields[: len(digits)]
    if not all(f.isdigit() or f == "" for f in numeric) or not fields[0].isdigit():
        return None
    if len(digits) == 2 and len(fields[0]) + len(fields[1]) != digits[1]:
        return None
    return fields


def _from_epc_uri(uri: str) -> str | None:  # one branch per EPC scheme (GS1 TDS 2.0)
    match = re.fullmatch(r"urn:epc:(id|class|idpat):([a-z]+):(.+)", uri)
    if match is None:
        return None
    kind, scheme, rest = match.groups()
    if kind == "id":
        if scheme == "sgtin" and (f := _split(rest, 3, (0, 13))) and f[2]:
            return f"{CANONICAL}/01/{_gtin(f[0], f[1])}/21/{_escaped(f[2])}"
        if scheme == "sscc" and (f := _split(rest, 2, (0, 17))):
            return f"{CANONICAL}/00/{_with_check_digit(f[1][:1] + f[0] + f[1][1:])}"
        if scheme == "sgln" and (f := _split(rest, 3, (0, 12))):
            gln = _with_check_digit(f[0] + f[1])
            return f"{CANONICAL}/414/{gln}" + ("" if f[2] == "0" else f"/254/{_escaped(f[2])}")
        if scheme == "pgln" and (f := _split(rest, 2, (0, 12))):
            return f"{CANONICAL}/417/{_with_check_digit(f[0] + f[1])}"
        if scheme == "grai" and (f := _split(rest, 3, (0, 12))):
            return f"{CANONICAL}/8003/{_with_check_digit('0' + f[0] + f[1])}{_escaped(f[2])}"
        if scheme == "giai" and (f := _split(rest, 2, (0,))):
            return f"{CANONICAL}/8004/{f[0]}{_escaped(f[1])}"
        if scheme == "gsrn" and (f := _split(rest, 2, (0, 17))):
            return f"{CANONICAL}/8018/{_with_check_digit(f[0] + f[1])}"
        if scheme == "gsrnp" and (f := _split(rest, 2, (0, 17))):
            return f"{CANONICAL}/8017/{_with_check_digit(f[0] + f[1])}"
        if scheme == "gdti" and (f := _split(rest, 3, (0, 12))):
            return f"{CANONICAL}/253/{_with_check_digit(f[0] + f[1])}{_escaped(f[2])}"
        if scheme == "cpi" and (f := rest.rsplit(".", 1)) and len(f) == 2 and (g := _split(f[0], 2, (0,))):
            return f"{CANONICAL}/8010/{_escaped(g[0] + g[1])}/8011/{f[1]}"
        if scheme == "sgcn" and (f := _split(rest, 3, (0, 12))):
            return f"{CANONICAL}/255/{_with_check_digit(f[0] + f[1])}{f[2]}"
        if scheme == "ginc" and (f := _split(rest, 2, (0,))):
            return f"{CANONICAL}/401/{f[0]}{_escaped(f[1])}"
        if scheme == "gsin" and (f := _split(rest, 2, (0, 16))):
            return f"{CANONICAL}/402/{_with_check_digit(f[0] + f[1])}"
        if scheme == "itip" and (f := _split(rest, 5, (0, 13))):
            return f"{CANONICAL}/8006/{_gtin(f[0], f[1])}{f[2]}{f[3]}/21/{_escaped(f[4])}"
        if scheme == "upui" and (f := _split(rest, 3, (0, 13))):
            return f"{CANONICAL}/01/{_gtin(f[0], f[1])}/235/{_escaped(f[2])}"
        return None
    if kind == "class":
        if scheme == "lgtin" and (f := _split(rest, 3, (0, 13))) and f[2]:
            return f"{CANONICAL}/01/{_gtin(f[0], f[1])}/10/{_escaped(f[2])}"
        return None
    # idpat: the class-level key, the pattern's '*' dropped
    if not rest.endswith(".*"):
        return None
    rest = rest[:-2]
    if scheme in ("sgtin", "upui") and (f := _split(rest, 2, (0, 13))):
        return f"{CANONICAL}/01/{_gtin(f[0], f[1])}"
    if scheme == "grai" and (f := _split(rest, 2, (0, 12))):
        return f"{CANONICAL}/8003/{_with_check_digit('0' + f[0] + f[1])}"
    if scheme == "gdti" and (f := _split(rest, 2, (0, 12))):
        return f"{CANONICAL}/253/{_with_check_digit(f[0] + f[1])}"
    if scheme == "sgcn" and (f := _split(rest, 2, (0, 12))):
        return f"{CANONICAL}/255/{_with_check_digit(f[0] + f[1])}"
    if scheme == "cpi" and (f := _split(rest, 2, (0,))):
        return f"{CANONICAL}/8010/{_escaped(f[0] + f[1])}"
    if scheme == "itip" and (f := _split(rest, 4, (0, 13))):
        return f"{CANONICAL}/8006/{_gtin(f[0], f[1])}{f[2]}{f[3]}"
    return None


def _from_digital_link(uri: str) -> str | None:
    """A GS1 Digital Link URI on any domain, in its constrained canonical form; None if it is not one."""
    if not uri.startswith(("https://", "http://")):
        return None
    parts = urlsplit(uri)
    segments = [_SHORT_NAMES.get(s, s) for s in parts.path.split("/")[1:]]
    if segments and segments[-1] == "":
        segments.pop()
    start = next((i for i, s in enumerate(segments) if s in _KEYS and i + 1 < len(segments)), None)
    if start is None:
        return None
    key, value = segments[start], segments[start + 1]
    if key == "01" and re.fullmatch(r"\d{8}|\d{12}|\d{13}", value):
        value = value.zfill(14)
    if not re.fullmatch(r"\d{4}.*", value) or not re.fullmatch(_KEY_VALUE[key], value):
        return None
    rest = segments[start + 2 :]
    if len(rest) % 2:
        return None
    qualifiers = dict(zip(rest[::2], rest[1::2], strict=True))
    kept = next((q for q in _KEYS[key] if q in qualifiers), None)
    path = f"/{key}/{value}"
    if kept is not None:
        if not re.fullmatch(_QUALIFIER_VALUE[kept], qualifiers[kept]):
            return None
        path += f"/{kept}/{qualifiers[kept]}"
    return CANONICAL + path


def canonical_gs1_uri(value: str) -> str | None:
    """The constrained canonical GS1 Digital Link URI of an EPC URI, EPC class or pattern URI or Digital Link URI;
    None for anything that is not one of those."""
    if value.startswith("urn:epc:"):
        return _from_epc_uri(value)
    return _from_digital_link(value)


__all__ = ["CANONICAL", "canonical_gs1_uri"]
