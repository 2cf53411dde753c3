"""The log as C2SP tlog-tiles (`../specs/c2sp/tlog-tiles.md`): static resources any web server or CDN can serve.

- `tile/<L>/<N>[.p/<W>]`: 256 (or, partial, W) consecutive Merkle tree hashes at height 8*L: at level 0 the leaf
  hashes, above it each the hash of a full tile below;
- `tile/entries/<N>[.p/<W>]`: the entries themselves, each prefixed by its big-endian uint16 length (so an entry
  must fit in 65,535 bytes, which intake enforces);
- `<N>` in 3-digit groups, all but the last prefixed with `x` (index 1234067 is `x001/x234/067`).

Writing needs the stored perfect subtrees (`ledger/storage`); reading (`TileReader`) needs only a way to fetch a
path, and rebuilds any subtree hash, root or proof of the tree from the tiles.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ledger import merkle
from ledger.errors import EncodingError, ValidationError
from ledger.hashing import HASH_SIZE, leaf_hash, node_hash
from ledger.merkle import NodeKey

WIDTH = 256
HEIGHT = 8  # log2(WIDTH): the tree levels one tile spans
MOST_ENTRY_BYTES = 0xFFFF
_PATH = re.compile(r"tile/(entries|0|[1-9][0-9]?)/((?:x\d{3}/)*\d{3})(?:\.p/([1-9][0-9]{0,2}))?")


@dataclass(frozen=True, slots=True)
class Tile:
    """A tile (`level` None: an entry bundle) of `width` hashes or entries, 256 for a full one."""

    level: int | None
    index: int
    width: int

    @property
    def path(self) -> str:
        kind = "entries" if self.level is None else str(self.level)
        suffix = "" if self.width == WIDTH else f".p/{self.width}"
        return f"tile/{kind}/{index_path(self.index)}{suffix}"

    @property
    def full(self) -> bool:
        return self.width == WIDTH


def index_path(index: int) -> str:
    """A tile index as path elements: 3 digits each, all but the last prefixed with `x`."""
    if index < 0:
        raise ValueError(f"tile index {index} is negative")
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if not index:
            break
    return "/".join(["x" + g for g in reversed(groups[1:])] + [groups[0]])


def parse_path(path: str) -> Tile:
    """A tile or entry bundle path (`tile/0/x001/234`, `tile/entries/000.p/15`); EncodingError if it is not one."""
    match = _PATH.fullmatch(path)
    if match is None:
        raise EncodingError(f"{path!r} is not a tile path (tile/<level>/<index>[.p/<width>])")
    kind, digits, width = match.groups()
    if len(digits) > 32:  # 7 groups: indices up to 10**21, beyond any tree of 2**63 entries
        raise EncodingError(f"{path!r}: the index is beyond any tree")
    index = int(digits.replace("x", "").replace("/", ""))
    if index * WIDTH >= 1 << 63:
        raise EncodingError(f"{path!r}: the index is beyond any tree")
    if index_path(index) != digits:  # one spelling per index: no extra leading groups
        raise EncodingError(f"{path!r} does not spell its index as tiles do ({index_path(index)})")
    tile_width = WIDTH if width is None else int(width)
    if not 1 <= tile_width <= WIDTH - (width is not None):
        raise EncodingError(f"{path!r}: a partial tile has 1 to 255 hashes")
    level = None if kind == "entries" else int(kind)
    if level is not None and level > 63:
        raise EncodingError(f"{path!r}: tile levels go up to 63")
    return Tile(level, index, tile_width)


def tiles_of(size: int) -> list[Tile]:
    """Every hash tile a tree of `size` has (full ones, and the partial one of each level), bottom-up."""
    tiles: list[Tile] = []
    level = 0
    while True:
        hashes = size >> (HEIGHT * level)  # subtree hashes of height 8*level that the tree holds
        if not hashes:
            return tiles
        tiles += [Tile(level, n, WIDTH) for n in range(hashes // WIDTH)]
        if hashes % WIDTH:
            tiles.append(Tile(level, hashes // WIDTH, hashes % WIDTH))
        level += 1


def bundles_of(size: int) -> list[Tile]:
    """Every entry bundle a tree of `size` has."""
    bundles = [Tile(None, n, WIDTH) for n in range(size // WIDTH)]
    if size % WIDTH:
        bundles.append(Tile(None, size // WIDTH, size % WIDTH))
    return bundles


def node_keys(tile: Tile) -> list[NodeKey]:
    """The perfect subtrees (level, index) whose hashes a hash tile holds, in order."""
    assert tile.level is not None
    first = tile.index * WIDTH
    return [(HEIGHT * tile.level, first + i) for i in range(tile.width)]


def tile_bytes(hashes: Sequence[bytes]) -> bytes:
    if any(len(h) != HASH_SIZE for h in hashes):
        raise ValueError("tile hashes are 32 bytes")
    return b"".join(hashes)


def parse_tile(data: bytes, width: int) -> list[bytes]:
    if len(data) != width * HASH_SIZE:
        raise EncodingError(f"a tile of {width} hashes is {width * HASH_SIZE} bytes, this one {len(data)}")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def entry_bundle(entries: Sequence[bytes], first_index: int = 0) -> bytes:
    """Entries, each prefixed by its big-endian uint16 length; ValidationError naming an entry too long for it."""
    parts = []
    for offset, entry in enumerate(entries):
        if len(entry) > MOST_ENTRY_BYTES:
            raise ValidationError(
                f"entry {first_index + offset} is {len(entry):,} bytes: a tile bundle holds entries of at most "
                f"{MOST_ENTRY_BYTES:,}"
            )
        parts.append(len(entry).to_bytes(2, "big") + entry)
    return b"".join(parts)


def parse_entry_bundle(data: bytes, width: int) -> list[bytes]:
    entries: list[bytes] = []
    at = 0
    while at < len(data):
        if at + 2 > len(data):
            raise EncodingError("entry bundle ends inside a length prefix")
        length = int.from_bytes(data[at : at + 2], "big")
        if at + 2 + length > len(data):
            raise EncodingError(f"entry bundle ends inside entry {len(entries)}")
        entries.append(data[at + 2 : at + 2 + length])
        at += 2 + length
    if len(entries) != width:
        raise EncodingError(f"entry bundle holds {len(entries)} entries, its path says {width}")
    return entries


class TileReader:
    """A tree of `size` read from its tiles: `fetch(path)` returns a tile's bytes. Tiles are fetched once."""

    def __init__(self, fetch: Callable[[str], bytes], size: int) -> None:
        self.fetch, self.size = fetch, size
        self._tiles: dict[tuple[int, int], list[bytes]] = {}

    def _tile(self, level: int, index: int) -> list[bytes]:
        key = (level, index)
        if key not in self._tiles:
            available = self.size >> (HEIGHT * level)
            width = min(WIDTH, available - index * WIDTH)
            if width <= 0:
                raise EncodingError(f"a tree of size {self.size} has no tile {index} at level {level}")
            tile = Tile(level, index, width)
            self._tiles[key] = parse_tile(self.fetch(tile.path), width)
        return self._tiles[key]

    def tile_hash(self, level: int, index: int) -> bytes:
        """The hash at `index` of tile level `level` (a subtree of height 8*level)."""
        return self._tile(level, index // WIDTH)[index % WIDTH]

    def node(self, key: NodeKey) -> bytes:
        """A perfect subtree's hash: its tile level's hashes below it, hashed up."""
        height, index = key
        level, rest = divmod(height, HEIGHT)
        hashes = [self.tile_hash(level, (index << rest) + i) for i in range(1 << rest)]
        while len(hashes) > 1:
            hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
        return hashes[0]

    def nodes(self, keys: set[NodeKey]) -> Mapping[NodeKey, bytes]:
        return {key: self.node(key) for key in keys}

    def root(self) -> bytes:
        return merkle.root_from_nodes(self.size, self.nodes(set(merkle.root_keys(self.size))))

    def inclusion_proof(self, index: int) -> list[bytes]:
        return merkle.build_inclusion_proof(index, self.size, self.nodes)

    def consistency_proof(self, first: int) -> list[bytes]:
        return merkle.build_consistency_proof(first, self.size, self.nodes)

    def entries(self, start: int = 0, end: int | None = None) -> list[bytes]:
        """The entries [start, end) from their bundles, each checked against its leaf hash in the level-0 tiles."""
        end = self.size if end is None else end
        found: list[bytes] = []
        for bundle in bundles_of(self.size):
            first = bundle.index * WIDTH
            if first + bundle.width <= start or first >= end:
                continue
            entries = parse_entry_bundle(self.fetch(bundle.path), bundle.width)
            for offset, entry in enumerate(entries):
                index = first + offset
                if start <= index < end:
                    if leaf_hash(entry) != self.tile_hash(0, index):
                        raise EncodingError(f"entry {index} of {bundle.path} does not hash to its level-0 tile hash")
                    found.append(entry)
        return found


__all__ = [
    "HEIGHT",
    "MOST_ENTRY_BYTES",
    "WIDTH",
    "Tile",
    "TileReader",
    "bundles_of",
    "entry_bundle",
    "index_path",
    "node_keys",
    "parse_entry_bundle",
    "parse_path",
    "parse_tile",
    "tile_bytes",
    "tiles_of",
]
