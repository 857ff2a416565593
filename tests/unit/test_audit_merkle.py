"""RFC 9162 Merkle trees: hand-derived small trees, published vectors, properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden.audit import merkle
from warden.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    root,
    verify_consistency,
    verify_inclusion,
)
from warden.domain.errors import AuditVerificationError

# -- the definitions, spelled out by hand in the test (never via the code under test) --


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf(data: bytes) -> bytes:
    return sha(b"\x00" + data)


def node(left: bytes, right: bytes) -> bytes:
    return sha(b"\x01" + left + right)


DATA = [f"d{i}".encode() for i in range(8)]
L = [leaf(d) for d in DATA]


def hand_roots() -> dict[int, bytes]:
    """MTH(D[n]) for n = 0..8, each tree drawn by hand (split at the largest power of 2 < n)."""
    l0, l1, l2, l3, l4, l5, l6, l7 = L
    n01, n23, n45, n67 = node(l0, l1), node(l2, l3), node(l4, l5), node(l6, l7)
    n0123 = node(n01, n23)
    return {
        0: sha(b""),
        1: l0,
        2: n01,
        3: node(n01, l2),  # k = 2
        4: n0123,
        5: node(n0123, l4),  # k = 4
        6: node(n0123, n45),
        7: node(n0123, node(n45, l6)),  # k = 4, then k = 2
        8: node(n0123, node(n45, n67)),
    }


def test_leaf_and_node_hashes_have_domain_separation_prefixes() -> None:
    assert merkle.leaf_hash(b"abc") == sha(b"\x00abc")
    assert merkle.node_hash(b"a" * 32, b"b" * 32) == sha(b"\x01" + b"a" * 32 + b"b" * 32)
    assert sha(b"") == EMPTY_ROOT


@pytest.mark.parametrize(
    ("n", "k"), [(2, 1), (3, 2), (4, 2), (5, 4), (6, 4), (7, 4), (8, 4), (9, 8), (1000, 512)]
)
def test_split_point_is_the_largest_power_of_two_strictly_below(n: int, k: int) -> None:
    assert merkle.split_point(n) == k


@pytest.mark.parametrize("n", range(9))
def test_roots_of_hand_drawn_trees(n: int) -> None:
    expected = hand_roots()[n]
    assert root(L[:n]) == expected
    assert MerkleTree(L[:n]).root() == expected
    assert CompactRange().extend(L[:n]).root() == expected


def test_hand_derived_inclusion_proofs_in_the_tree_of_seven() -> None:
    l0, l1, l2, l3, l4, l5, l6, _ = L
    n01, n23, n45 = node(l0, l1), node(l2, l3), node(l4, l5)
    n0123 = node(n01, n23)
    expected = {
        0: [l1, n23, node(n45, l6)],
        3: [l2, n01, node(n45, l6)],
        4: [l5, l6, n0123],
        6: [n45, n0123],  # the lone right leaf skips a level
    }
    tree = MerkleTree(L[:7])
    for index, path in expected.items():
        assert inclusion_proof(index, L[:7]) == path
        assert tree.inclusion_proof(index) == path
        verify_inclusion(index, 7, L[index], path, hand_roots()[7])


def test_hand_derived_consistency_proofs() -> None:
    l0, l1, l2, l3, l4, l5, l6, l7 = L
    n01, n23, n45, n67 = node(l0, l1), node(l2, l3), node(l4, l5), node(l6, l7)
    n0123 = node(n01, n23)
    roots = hand_roots()
    expected = {
        (1, 2): [l1],
        (3, 7): [l2, l3, n01, node(n45, l6)],
        (4, 7): [node(n45, l6)],  # old tree is a complete left subtree: its root is implied
        (6, 8): [n45, n67, n0123],
        (2, 5): [n23, l4],
        (7, 8): [l6, l7, n45, n0123],
    }
    tree = MerkleTree(L)
    for (m, n), path in expected.items():
        assert consistency_proof(m, L[:n]) == path, (m, n)
        assert tree.consistency_proof(m, n) == path, (m, n)
        verify_consistency(m, n, roots[m], roots[n], path)


# -- RFC 6962 / certificate-transparency published test vectors (data only) --

CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_published_ct_vectors() -> None:
    hashes = [leaf(d) for d in CT_LEAVES]
    tree = MerkleTree(hashes)
    for n in range(1, 9):
        assert tree.root(n).hex() == CT_ROOTS[n - 1]
    assert [h.hex() for h in tree.inclusion_proof(0, 8)] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]
    assert [h.hex() for h in tree.inclusion_proof(5, 8)] == [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]
    assert [h.hex() for h in tree.consistency_proof(2, 8)] == [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]
    assert [h.hex() for h in tree.consistency_proof(6, 8)] == [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]
    assert [h.hex() for h in tree.consistency_proof(2, 5)] == [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]


# -- edge cases --


def test_trivial_consistency_cases() -> None:
    r = hand_roots()
    verify_consistency(0, 5, EMPTY_ROOT, r[5], [])
    verify_consistency(5, 5, r[5], r[5], [])
    with pytest.raises(AuditVerificationError):
        verify_consistency(5, 5, r[5], r[6], [])
    with pytest.raises(AuditVerificationError):
        verify_consistency(0, 5, r[1], r[5], [])
    with pytest.raises(AuditVerificationError):
        verify_consistency(6, 5, r[6], r[5], [L[0]])
    with pytest.raises(AuditVerificationError):
        verify_consistency(3, 5, r[3], r[5], [])


def test_inclusion_index_outside_the_tree_is_rejected() -> None:
    with pytest.raises(AuditVerificationError) as info:
        verify_inclusion(7, 7, L[0], [], hand_roots()[7])
    assert info.value.index == 7
    with pytest.raises(ValueError, match="outside"):
        MerkleTree(L[:3]).inclusion_proof(3)


def test_wrong_length_hashes_are_rejected() -> None:
    path = inclusion_proof(1, L[:4])
    with pytest.raises(AuditVerificationError, match="bytes"):
        verify_inclusion(1, 4, L[1], [path[0][:31], path[1]], hand_roots()[4])


def test_truncate_undoes_appends() -> None:
    tree = MerkleTree(L)
    tree.truncate(5)
    assert tree.size == 5
    assert tree.root() == hand_roots()[5]
    for extra in L[5:]:
        tree.append(extra)
    assert tree.root() == hand_roots()[8]


# -- properties --

sizes = st.integers(min_value=1, max_value=70)


def distinct_leaves(n: int) -> list[bytes]:
    return [leaf(i.to_bytes(4, "big")) for i in range(n)]


@settings(max_examples=60, deadline=None)
@given(sizes)
def test_indexed_tree_and_compact_range_agree_with_the_reference(n: int) -> None:
    hashes = distinct_leaves(n)
    tree = MerkleTree(hashes)
    crange = CompactRange()
    for size in range(1, n + 1):
        crange = crange.append(hashes[size - 1])
        assert crange.root() == tree.root(size) == root(hashes[:size])
        assert tree.compact_range(size) == crange
        assert len(crange.hashes) == bin(size).count("1")
    for index in range(n):
        assert tree.inclusion_proof(index) == inclusion_proof(index, hashes)
    for m in range(n + 1):
        assert tree.consistency_proof(m) == consistency_proof(m, hashes)


@settings(max_examples=40, deadline=None)
@given(sizes)
def test_every_inclusion_proof_verifies(n: int) -> None:
    hashes = distinct_leaves(n)
    tree = MerkleTree(hashes)
    for size in range(1, n + 1):
        r = tree.root(size)
        for index in range(size):
            verify_inclusion(index, size, hashes[index], tree.inclusion_proof(index, size), r)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=40))
def test_consistency_proof_between_any_two_sizes_verifies(a: int, b: int) -> None:
    m, n = min(a, b), max(a, b)
    tree = MerkleTree(distinct_leaves(n))
    verify_consistency(m, n, tree.root(m), tree.root(n), tree.consistency_proof(m, n))


@st.composite
def inclusion_case(draw: st.DrawFn) -> tuple[int, int, int]:
    n = draw(st.integers(min_value=2, max_value=40))
    index = draw(st.integers(min_value=0, max_value=n - 1))
    other = draw(st.integers(min_value=0, max_value=n + 3))
    return n, index, other


def flip(value: bytes, position: int, bit: int) -> bytes:
    out = bytearray(value)
    out[position % len(out)] ^= 1 << bit
    return bytes(out)


@settings(max_examples=150, deadline=None)
@given(inclusion_case(), st.data())
def test_tampered_inclusion_proofs_are_rejected(
    case: tuple[int, int, int], data: st.DataObject
) -> None:
    n, index, other = case
    hashes = distinct_leaves(n + 4)
    tree = MerkleTree(hashes)
    r = tree.root(n)
    proof = tree.inclusion_proof(index, n)
    # A changed hash anywhere in the proof.
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof]
        bad[at] = flip(bad[at], data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7)))
        with pytest.raises(AuditVerificationError):
            verify_inclusion(index, n, hashes[index], bad, r)
        with pytest.raises(AuditVerificationError):
            verify_inclusion(index, n, hashes[index], proof[:at] + proof[at + 1 :], r)
    with pytest.raises(AuditVerificationError):
        verify_inclusion(index, n, hashes[index], [*proof, hashes[0]], r)
    # Another index: the leaves are distinct, so the claim is false.
    if other != index:
        with pytest.raises(AuditVerificationError):
            verify_inclusion(other, n, hashes[index], proof, r)
    # Another size (with that size's true root): accepted only if it is that size's proof.
    if 1 <= other != n and index < other and proof != tree.inclusion_proof(index, other):
        with pytest.raises(AuditVerificationError):
            verify_inclusion(index, other, hashes[index], proof, tree.root(other))
    # Another root.
    with pytest.raises(AuditVerificationError):
        verify_inclusion(index, n, hashes[index], proof, flip(r, index, 0))


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.data())
def test_tampered_consistency_proofs_are_rejected(a: int, b: int, data: st.DataObject) -> None:
    m, n = min(a, b), max(a, b)
    if m == n:
        n += 1
    tree = MerkleTree(distinct_leaves(n + 3))
    proof = tree.consistency_proof(m, n)
    old, new = tree.root(m), tree.root(n)
    at = data.draw(st.integers(0, len(proof) - 1))
    bad = [*proof]
    bad[at] = flip(bad[at], data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7)))
    with pytest.raises(AuditVerificationError):
        verify_consistency(m, n, old, new, bad)
    with pytest.raises(AuditVerificationError):
        verify_consistency(m, n, old, new, proof[:at] + proof[at + 1 :])
    with pytest.raises(AuditVerificationError):
        verify_consistency(m, n, old, new, [*proof, old])
    with pytest.raises(AuditVerificationError):
        verify_consistency(m, n, flip(old, at, 1), new, proof)
    with pytest.raises(AuditVerificationError):
        verify_consistency(m, n, old, flip(new, at, 1), proof)
    # Other sizes with their true roots: accepted only if the proof is the true one there.
    for m2, n2 in ((m - 1, n), (m + 1, n), (m, n - 1), (m, n + 1), (m, n + 2)):
        if 0 < m2 < n2 <= n + 3 and (m2, n2) != (m, n) and proof != tree.consistency_proof(m2, n2):
            with pytest.raises(AuditVerificationError):
                verify_consistency(m2, n2, tree.root(m2), tree.root(n2), proof)
