"""Names that look alike: an actor registered as "SGS  Test Lab", or as "SGS Test Lab" with a Cyrillic e (U+0435),
passes for "SGS Test Lab" on a page, so an auditor watching a name must see through case, spacing and confusables.

`name_skeleton` folds a name to what a reader sees: NFKC, each character that Unicode lists as confusable with
an ASCII letter or digit replaced by it (the confusables data of `confusable_homoglyphs`, from Unicode TR39),
case folded, runs of spaces made one. Two names with the same skeleton are taken for each other.
"""

from __future__ import annotations

import functools
import unicodedata

from confusable_homoglyphs import confusables


@functools.lru_cache(maxsize=4096)
def _prototype(character: str) -> str:
    """The ASCII letter or digit a character is confusable with, or the character itself."""
    if character.isascii():
        return character
    for homoglyph in confusables.confusables_data.get(character, ()):
        candidate = str(homoglyph["c"])
        if len(candidate) == 1 and candidate.isascii() and candidate.isalnum():
            return candidate
    return character


def name_skeleton(name: str) -> str:
    folded = "".join(_prototype(c) for c in unicodedata.normalize("NFKC", name)).casefold()
    return " ".join(folded.split())


def resembles(name: str, watched: str) -> bool:
    return name_skeleton(name) == name_skeleton(watched)
