"""C2SP tlog-proof@v1 files: exact layout, offline verification, tampering."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden.audit.checkpoint import Checkpoint, SignedCheckpoint, Signer
from warden.audit.merkle import MerkleTree, leaf_hash
from warden.audit.proofs import HEADER, TlogProof, verify_proof
from warden.domain.canonical import canonical_json
from warden.domain.errors import AuditVerificationError

SIGNER = Signer.generate("example.org/audit")
LEAVES = [canonical_json({"position": i, "type": "warden.step.intended"}) for i in range(13)]
TREE = MerkleTree(leaf_hash(leaf) for leaf in LEAVES)


def make_proof(index: int, size: int = 13, signer: Signer = SIGNER) -> TlogProof:
    checkpoint = Checkpoint(signer.name, size, TREE.root(size))
    signed = SignedCheckpoint.sign(checkpoint, [signer])
    return TlogProof(index, tuple(TREE.inclusion_proof(index, size)), signed, LEAVES[index])


def test_layout_follows_the_spec_line_by_line() -> None:
    proof = make_proof(5)
    text = proof.encode()
    lines = text.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1" == HEADER
    assert lines[1] == "extra " + base64.b64encode(LEAVES[5]).decode()
    assert lines[2] == "index 5"
    hashes = lines[3 : 3 + len(proof.hashes)]
    assert [base64.b64decode(h) for h in hashes] == TREE.inclusion_proof(5, 13)
    assert lines[3 + len(hashes)] == ""
    assert text.endswith("\n\n" + proof.checkpoint.encode())
    assert TlogProof.parse(text) == proof


def test_proof_without_extra_or_hashes() -> None:
    tree = MerkleTree([leaf_hash(b"only")])
    signed = SignedCheckpoint.sign(Checkpoint(SIGNER.name, 1, tree.root()), [SIGNER])
    proof = TlogProof(0, (), signed)
    text = proof.encode()
    assert text.startswith(HEADER + "\nindex 0\n\n")
    checked = verify_proof(text, [SIGNER.verifier], leaf=b"only")
    assert checked.index == 0
    with pytest.raises(AuditVerificationError, match="no leaf"):
        verify_proof(text, [SIGNER.verifier])


def test_every_entry_of_every_size_verifies_with_only_the_public_key() -> None:
    for size in range(1, 14):
        for index in range(size):
            text = make_proof(index, size).encode()
            checked = verify_proof(text.encode(), [SIGNER.verifier], origin=SIGNER.name)
            assert checked.index == index
            assert checked.leaf == LEAVES[index]
            assert checked.record == {"position": index, "type": "warden.step.intended"}


def test_wrong_key_wrong_leaf_wrong_origin() -> None:
    text = make_proof(3).encode()
    with pytest.raises(AuditVerificationError, match="trusted"):
        verify_proof(text, [Signer.generate(SIGNER.name).verifier])
    with pytest.raises(AuditVerificationError, match="extra"):
        verify_proof(text, [SIGNER.verifier], leaf=LEAVES[4])
    with pytest.raises(AuditVerificationError, match="origin"):
        verify_proof(text, [SIGNER.verifier], origin="other.example")


def test_tampered_index_size_and_signature_are_rejected() -> None:
    proof = make_proof(6)
    for index in (5, 7, 12, 13, 100):
        bad = TlogProof(index, proof.hashes, proof.checkpoint, proof.extra)
        with pytest.raises(AuditVerificationError):
            verify_proof(bad, [SIGNER.verifier])
    # A checkpoint for another size, re-signed by an attacker's key under the same name.
    forger = Signer.generate(SIGNER.name)
    for size in (7, 12, 14):
        other = SignedCheckpoint.sign(
            Checkpoint(SIGNER.name, size, proof.checkpoint.checkpoint.root), [forger]
        )
        with pytest.raises(AuditVerificationError):
            verify_proof(TlogProof(6, proof.hashes, other, proof.extra), [SIGNER.verifier])
    # The size changed in the signed text itself.
    text = proof.encode().replace(f"\n{SIGNER.name}\n13\n", f"\n{SIGNER.name}\n14\n")
    with pytest.raises(AuditVerificationError, match="does not verify"):
        verify_proof(text, [SIGNER.verifier])


@pytest.mark.parametrize(
    "text",
    [
        "c2sp.org/tlog-proof@v2\nindex 0\n\n{cp}",
        "c2sp.org/tlog-proof@v1\nindex 01\n\n{cp}",
        "c2sp.org/tlog-proof@v1\nindex -1\n\n{cp}",
        "c2sp.org/tlog-proof@v1\nextra !!\nindex 0\n\n{cp}",
        "c2sp.org/tlog-proof@v1\nindex 0\nAAAA\n\n{cp}",
        "c2sp.org/tlog-proof@v1\nindex 0\n{cp}",
        "c2sp.org/tlog-proof@v1\n\n{cp}",
    ],
)
def test_malformed_proofs(text: str) -> None:
    cp = make_proof(0).checkpoint.encode()
    with pytest.raises(AuditVerificationError, match="malformed"):
        TlogProof.parse(text.replace("{cp}", cp))


PROOF_BYTES = make_proof(9).encode().encode()


@settings(max_examples=400, deadline=None)
@given(st.integers(0, len(PROOF_BYTES) - 1), st.integers(1, 255))
def test_any_single_byte_change_of_a_proof_file_is_rejected(at: int, xor: int) -> None:
    raw = bytearray(PROOF_BYTES)
    raw[at] ^= xor
    with pytest.raises(AuditVerificationError):
        verify_proof(bytes(raw), [SIGNER.verifier])


def test_any_deleted_line_of_a_proof_file_is_rejected() -> None:
    lines = PROOF_BYTES.split(b"\n")
    for at in range(len(lines) - 1):
        with pytest.raises(AuditVerificationError):
            verify_proof(b"\n".join(lines[:at] + lines[at + 1 :]), [SIGNER.verifier])
