"""C2SP tlog-tiles (ledger/tiles.py) against the small tiled log Tessera wrote (tests/vectors/tlog-tiles/, Apache
2.0): every checkpoint verifies and its root is rebuilt from the tiles, every entry is found, and the tiles and
entry bundles written here for the same entries are byte-identical to Tessera's."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import merkle
from ledger.errors import EncodingError, ValidationError
from ledger.hashing import leaf_hash
from ledger.note import NoteVerifier, open_checkpoint
from ledger.tiles import (
    Tile,
    TileReader,
    bundles_of,
    entry_bundle,
    index_path,
    parse_path,
    tile_bytes,
    tiles_of,
)

LOG = Path(__file__).parent / "vectors" / "tlog-tiles" / "log"
KEY = NoteVerifier.parse("example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx")
WORDS = [b"one", b"two", b"three", b"four", b"five", b"six", b"seven", b"eit", b"nain", b"ten", b"ileven",
         b"twelf", b"threeten", b"fourten", b"fivten"]  # fmt: skip


def _fetch(path: str) -> bytes:
    return (LOG / path).read_bytes()


@pytest.mark.parametrize("size", range(16))
def test_every_tessera_checkpoint_verifies_and_its_tiles_rebuild_it(size: int) -> None:
    checkpoint = open_checkpoint((LOG / f"checkpoint.{size}").read_text(), KEY).checkpoint
    assert checkpoint.size == size
    reader = TileReader(_fetch, size)
    assert reader.root() == checkpoint.root_hash
    assert reader.root() == merkle.root_of([leaf_hash(w) for w in WORDS[:size]])
    assert reader.entries() == WORDS[:size]
    for index in range(size):  # proofs built from tiles verify against the signed root
        merkle.verify_inclusion(
            index, size, leaf_hash(WORDS[index]), reader.inclusion_proof(index), checkpoint.root_hash
        )
    for first in range(1, size):
        older = open_checkpoint((LOG / f"checkpoint.{first}").read_text(), KEY).checkpoint
        merkle.verify_consistency(first, size, older.root_hash, checkpoint.root_hash, reader.consistency_proof(first))


@pytest.mark.parametrize("size", range(1, 16))
def test_tiles_written_here_are_byte_identical_to_tesseras(size: int) -> None:
    assert [t.path for t in tiles_of(size)] == [f"tile/0/000.p/{size}"]
    assert [b.path for b in bundles_of(size)] == [f"tile/entries/000.p/{size}"]
    assert tile_bytes([leaf_hash(w) for w in WORDS[:size]]) == _fetch(f"tile/0/000.p/{size}")
    assert entry_bundle(WORDS[:size]) == _fetch(f"tile/entries/000.p/{size}")


def test_paths_levels_and_widths_as_the_spec_gives_them() -> None:
    assert index_path(1234067) == "x001/x234/067"
    assert index_path(0) == "000"
    assert index_path(1000) == "x001/000"
    assert Tile(0, 1234067, 256).path == "tile/0/x001/x234/067"
    assert Tile(None, 0, 15).path == "tile/entries/000.p/15"
    assert parse_path("tile/2/x001/x234/067.p/17") == Tile(2, 1234067, 17)
    for bad in ("tile/0/1234", "tile/0/x000/001", "tile/0/000.p/256", "tile/0/000.p/0", "tile/64/000", "tiles/0/000"):
        with pytest.raises(EncodingError):
            parse_path(bad)
    # the spec's example: a tree of 70,000 has 273 full level-0 tiles and one of width 112, one full level-1 tile
    # and one of width 17, and a level-2 tile of width 1
    tiles = tiles_of(70_000)
    assert sum(1 for t in tiles if t.level == 0 and t.full) == 273
    assert [(t.level, t.index, t.width) for t in tiles if not t.full or t.level] == [
        (0, 273, 112), (1, 0, 256), (1, 1, 17), (2, 0, 1)
    ]  # fmt: skip
    assert [(t.level, t.width) for t in tiles_of(256)] == [(0, 256), (1, 1)]


def test_an_entry_too_long_for_a_bundle_is_named() -> None:
    with pytest.raises(ValidationError, match="entry 7 is 65,536 bytes"):
        entry_bundle([b"x", b"y" * 65536], first_index=6)


def test_a_tile_that_lies_is_caught() -> None:
    def lying(path: str) -> bytes:
        data = _fetch(path)
        return data.replace(b"nain", b"naim") if "entries" in path else data

    with pytest.raises(EncodingError, match=r"entry 8 of tile/entries/000\.p/15 does not hash to its level-0"):
        TileReader(lying, 15).entries()
