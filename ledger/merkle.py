"""RFC 9162 Merkle tree hashing, proofs and their verification, on plain values.

Proof *building* works on stored perfect subtrees: the subtree at (level, index) covers leaves
[index * 2**level, (index + 1) * 2**level). Every range a proof needs decomposes into at most log2(n) such
subtrees, so a proof needs O(log n) stored hashes (fetched together), never a pass over the leaves.
Proof *verification* follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from ledger.errors import ProofError, RootMismatchError
from ledger.hashing import EMPTY_ROOT, HASH_SIZE, node_hash

NodeKey = tuple[int, int]
"""(level, index) of a perfect subtree."""


def largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162: the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_subtrees(start: int, end: int) -> list[NodeKey]:
    """Decompose the RFC 9162 subtree over leaves [start, end) into perfect subtrees, left to right.

    `start` must be aligned to the power of two above end - start, as it is for every subtree RFC 9162 names.
    The subtree's hash is the right fold of these: H(p0, H(p1, ... H(pk-1, pk))).
    """
    if end <= start:
        raise ValueError(f"empty range [{start}, {end})")
    keys: list[NodeKey] = []
    size = end - start
    offset = start
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            keys.append((level, offset >> level))
            offset += 1 << level
    return keys


def fold_subtrees(hashes: Sequence[bytes]) -> bytes:
    """Combine perfect-subtree hashes (left to right) into the RFC 9162 hash of their union."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes make up PATH(index, D[size]) (RFC 9162 2.1.3.1), bottom-up."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = largest_power_of_two_below(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes make up PROOF(first, D[second]) (RFC 9162 2.1.4.1), bottom-up."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    ranges: list[tuple[int, int]] = []
    start, end, m, whole = 0, second, first, True
    while True:
        n = end - start
        if m == n:
            if not whole:
                ranges.append((start, end))
            break
        k = largest_power_of_two_below(n)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            whole = False
    ranges.reverse()
    return ranges


def node_keys_for(ranges: Iterable[tuple[int, int]]) -> set[NodeKey]:
    keys: set[NodeKey] = set()
    for start, end in ranges:
        keys.update(perfect_subtrees(start, end))
    return keys


def hashes_for_ranges(ranges: Sequence[tuple[int, int]], nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    """Resolve each range to its hash from stored perfect subtrees (missing ones raise ProofError)."""
    result = []
    for start, end in ranges:
        try:
            result.append(fold_subtrees([nodes[key] for key in perfect_subtrees(start, end)]))
        except KeyError as exc:
            raise ProofError(f"stored subtree {exc.args[0]} missing for leaves [{start}, {end})") from exc
    return result


def root_keys(size: int) -> list[NodeKey]:
    return perfect_subtrees(0, size) if size else []


def root_from_nodes(size: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    if size == 0:
        return EMPTY_ROOT
    return hashes_for_ranges([(0, size)], nodes)[0]


NodeLookup = Callable[[set[NodeKey]], Mapping[NodeKey, bytes]]


def build_inclusion_proof(index: int, size: int, lookup: NodeLookup) -> list[bytes]:
    ranges = inclusion_ranges(index, size)
    return hashes_for_ranges(ranges, lookup(node_keys_for(ranges)))


def build_consistency_proof(first: int, second: int, lookup: NodeLookup) -> list[bytes]:
    if first == second:
        return []
    ranges = consistency_ranges(first, second)
    return hashes_for_ranges(ranges, lookup(node_keys_for(ranges)))


class CompactRange:
    """The right edge of a tree of `size` leaves: one perfect subtree hash per set bit of `size`.

    Appending a leaf returns the perfect subtrees it completes (what storage must add), and `root()` is the
    RFC 9162 tree hash, all without touching earlier leaves.
    """

    __slots__ = ("_hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {size.bit_count()} right-edge subtrees, got {len(hashes)}")
        self.size = size
        self._hashes = list(hashes)

    @classmethod
    def from_nodes(cls, size: int, nodes: Mapping[NodeKey, bytes]) -> CompactRange:
        return cls(size, [nodes[key] for key in root_keys(size)])

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; return (level, index, hash) of every perfect subtree it completes, leaf included."""
        index = self.size
        created = [(0, index, leaf)]
        current = leaf
        level = 0
        while index >> level & 1:
            current = node_hash(self._hashes.pop(), current)
            level += 1
            created.append((level, index >> level, current))
        self._hashes.append(current)
        self.size += 1
        return created

    def root(self) -> bytes:
        return fold_subtrees(self._hashes) if self._hashes else EMPTY_ROOT

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self._hashes)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """The tree hash of a list of leaf hashes (for tests and small inputs)."""
    compact = CompactRange()
    for leaf in leaf_hashes:
        compact.append(leaf)
    return compact.root()


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 2.1.3.2: raise ProofError (RootMismatchError for a wrong root) unless `leaf` is at `index`."""
    if index < 0 or index >= size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_hash(leaf, "leaf hash")
    _check_hash(root, "root hash")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        _check_hash(p, "proof hash")
        if sn == 0:
            raise ProofError(f"inclusion proof for index {index} in size {size} is too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof for index {index} in size {size} is too short ({len(proof)} hashes)")
    if r != root:
        raise RootMismatchError(r, root)


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 2.1.4.2: raise ProofError unless the tree of size `first` is a prefix of the one of `second`."""
    if second < first:
        raise ProofError(f"tree size went backwards: {first} then {second}")
    if first == 0:
        raise ProofError("a consistency proof from an empty tree proves nothing")
    if first == second:
        if proof:
            raise ProofError("sizes are equal, so the consistency proof must be empty")
        if first_root != second_root:
            raise RootMismatchError(second_root, first_root)
        return
    if not proof:
        raise ProofError(f"empty consistency proof from size {first} to {second}")
    _check_hash(first_root, "first root")
    _check_hash(second_root, "second root")
    for p in proof:
        _check_hash(p, "proof hash")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof from {first} to {second} is too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof from {first} to {second} is too short ({len(proof)} hashes)")
    if fr != first_root:
        raise RootMismatchError(fr, first_root)
    if sr != second_root:
        raise RootMismatchError(sr, second_root)
