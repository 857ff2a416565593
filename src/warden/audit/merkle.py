"""RFC 9162 Merkle tree hashing, inclusion and consistency proofs. Audit plane, pure (no I/O).

The module-level functions follow the RFC's recursive definitions word for word (the
reference); :class:`MerkleTree` and :class:`CompactRange` compute the same values in
O(log n) per root or proof and are what the log uses.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.domain.errors import AuditVerificationError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = HASH(): the root of the empty tree (RFC 9162 §2.1.1)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(leaf: bytes) -> bytes:
    """The hash of one leaf: SHA-256(0x00 || leaf)."""
    return hashlib.sha256(_LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n`` must be at least 2)."""
    if n < 2:
        raise ValueError(f"a tree of {n} leaves has no split point")
    return 1 << ((n - 1).bit_length() - 1)


def _is_perfect(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


# ---------------------------------------------------------------------------------------
# Reference definitions (RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1), over a list of leaf hashes.
# ---------------------------------------------------------------------------------------


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of a list of leaf hashes, by the RFC's recursive definition."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = split_point(n)
    return node_hash(root(leaf_hashes[:k]), root(leaf_hashes[k:]))


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the audit path of leaf ``index``, from its sibling up to the root."""
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} is outside a tree of {n} leaves")
    if n == 1:
        return []
    k = split_point(n)
    if index < k:
        return [*inclusion_proof(index, leaf_hashes[:k]), root(leaf_hashes[k:])]
    return [*inclusion_proof(index - k, leaf_hashes[k:]), root(leaf_hashes[:k])]


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]): the consistency proof from the tree of ``old_size`` leaves.

    Empty when ``old_size`` is 0 or equals the tree size: there is nothing to prove.
    """
    n = len(leaf_hashes)
    if not 0 <= old_size <= n:
        raise ValueError(f"old size {old_size} is outside 0..{n}")
    if old_size in (0, n):
        return []
    return _subproof(old_size, leaf_hashes, complete=True)


def _subproof(m: int, leaves: Sequence[bytes], *, complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = split_point(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete=complete), root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], complete=False), root(leaves[:k])]


# ---------------------------------------------------------------------------------------
# Verification (RFC 9162 §2.1.3.2 and §2.1.4.2).
# ---------------------------------------------------------------------------------------


def _check_hashes(proof: Sequence[bytes], what: str, index: int) -> None:
    for position, value in enumerate(proof):
        if len(value) != HASH_SIZE:
            raise AuditVerificationError(
                f"{what}: hash {position} is {len(value)} bytes, not {HASH_SIZE}", index
            )


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """Check that leaf hash ``leaf`` is at ``index`` in the tree of ``size`` with that root.

    Raises:
        AuditVerificationError: the proof does not verify; ``index`` names the leaf.
    """
    what = f"inclusion proof for entry {index} in a tree of {size}"
    if not 0 <= index < size:
        raise AuditVerificationError(f"{what}: the index is outside the tree", index)
    _check_hashes([leaf, *proof], what, index)
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise AuditVerificationError(f"{what}: the proof has too many hashes", index)
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
        raise AuditVerificationError(f"{what}: the proof has too few hashes", index)
    if r != expected_root:
        raise AuditVerificationError(f"{what}: the recomputed root does not match", index)


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """Check that the tree of ``new_size`` with ``new_root`` extends the ``old_size`` one.

    Raises:
        AuditVerificationError: the proof does not verify (``index`` is -1).
    """
    what = f"consistency proof from size {old_size} to {new_size}"
    if not 0 <= old_size <= new_size:
        raise AuditVerificationError(f"{what}: the old size is larger than the new one")
    _check_hashes([old_root, new_root, *proof], what, -1)
    if old_size == new_size:
        if proof:
            raise AuditVerificationError(f"{what}: equal sizes take an empty proof")
        if old_root != new_root:
            raise AuditVerificationError(f"{what}: equal sizes with different roots")
        return
    if old_size == 0:
        if proof:
            raise AuditVerificationError(f"{what}: the empty tree takes an empty proof")
        if old_root != EMPTY_ROOT:
            raise AuditVerificationError(f"{what}: the empty tree has the wrong root")
        return
    if not proof:
        raise AuditVerificationError(f"{what}: the proof is empty")
    path = [old_root, *proof] if _is_perfect(old_size) else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise AuditVerificationError(f"{what}: the proof has too many hashes")
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
        raise AuditVerificationError(f"{what}: the proof has too few hashes")
    if fr != old_root:
        raise AuditVerificationError(f"{what}: the old root does not match")
    if sr != new_root:
        raise AuditVerificationError(f"{what}: the new root does not match")


# ---------------------------------------------------------------------------------------
# Incremental structures.
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompactRange:
    """The leaves [0, size) summarised by the roots of their perfect subtrees.

    ``hashes`` holds one root per set bit of ``size``, largest subtree first, so appending
    a leaf and computing the tree root are both O(log n) in time and space.
    """

    size: int = 0
    hashes: tuple[bytes, ...] = ()

    def append(self, leaf: bytes) -> CompactRange:
        """The range with one more leaf hash at the right."""
        hashes = [*self.hashes, leaf]
        # Each trailing one bit of the old size is a subtree the new leaf completes.
        size = self.size
        while size & 1:
            right = hashes.pop()
            hashes[-1] = node_hash(hashes[-1], right)
            size >>= 1
        return CompactRange(self.size + 1, tuple(hashes))

    def extend(self, leaves: Iterable[bytes]) -> CompactRange:
        """The range with several more leaf hashes at the right."""
        out = self
        for leaf in leaves:
            out = out.append(leaf)
        return out

    def root(self) -> bytes:
        """MTH of the leaves [0, size)."""
        if not self.hashes:
            return EMPTY_ROOT
        r = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            r = node_hash(h, r)
        return r


class MerkleTree:
    """An in-memory index of every perfect aligned subtree of a growing list of leaves.

    Level ``h`` holds the roots of the subtrees of 2**h leaves that start at a multiple of
    2**h, so any root, inclusion proof or consistency proof for any size up to the current
    one takes O(log n) hashes.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for leaf in leaf_hashes:
            self.append(leaf)

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self._levels[0])

    def leaf_hash(self, index: int) -> bytes:
        """The hash of leaf ``index``."""
        return self._levels[0][index]

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash at the right."""
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, not {len(leaf)}")
        self._levels[0].append(leaf)
        level = 0
        while len(self._levels[level]) % 2 == 0:
            row = self._levels[level]
            parent = node_hash(row[-2], row[-1])
            if level + 1 == len(self._levels):
                self._levels.append([])
            self._levels[level + 1].append(parent)
            level += 1

    def truncate(self, size: int) -> None:
        """Forget every leaf from ``size`` on (to undo an append that did not persist)."""
        self._size_arg(size)
        for level, row in enumerate(self._levels):
            del row[size >> level :]
        while len(self._levels) > 1 and not self._levels[-1]:
            self._levels.pop()

    def compact_range(self, size: int | None = None) -> CompactRange:
        """The compact range of the first ``size`` leaves (all by default)."""
        n = self._size_arg(size)
        hashes = []
        offset = 0
        for level in range(n.bit_length() - 1, -1, -1):
            if n >> level & 1:
                hashes.append(self._levels[level][offset >> level])
                offset += 1 << level
        return CompactRange(n, tuple(hashes))

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (all by default)."""
        n = self._size_arg(size)
        return EMPTY_ROOT if n == 0 else self._range(0, n)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[size]), the same hashes as :func:`inclusion_proof`."""
        n = self._size_arg(size)
        if not 0 <= index < n:
            raise ValueError(f"leaf index {index} is outside a tree of {n} leaves")
        siblings = []
        lo, hi = 0, n
        while hi - lo > 1:
            k = split_point(hi - lo)
            if index < lo + k:
                siblings.append(self._range(lo + k, hi))
                hi = lo + k
            else:
                siblings.append(self._range(lo, lo + k))
                lo += k
        siblings.reverse()
        return siblings

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[new_size]), the same hashes as :func:`consistency_proof`."""
        n = self._size_arg(new_size)
        if not 0 <= old_size <= n:
            raise ValueError(f"old size {old_size} is outside 0..{n}")
        if old_size in (0, n):
            return []
        out = []
        m, lo, hi, complete = old_size, 0, n, True
        while m != hi - lo:
            k = split_point(hi - lo)
            if m <= k:
                out.append(self._range(lo + k, hi))
                hi = lo + k
            else:
                out.append(self._range(lo, lo + k))
                m -= k
                lo += k
                complete = False
        if not complete:
            out.append(self._range(lo, hi))
        out.reverse()
        return out

    def _size_arg(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} is outside 0..{self.size}")
        return size

    def _range(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if _is_perfect(n) and lo % n == 0:
            level = n.bit_length() - 1
            return self._levels[level][lo >> level]
        k = split_point(n)
        return node_hash(self._range(lo, lo + k), self._range(lo + k, hi))
