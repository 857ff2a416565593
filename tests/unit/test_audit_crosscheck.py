"""Cross-checks against independent implementations (sigstore, pymerkle) when installed.

sigstore (PyPI ``sigstore``) verifies RFC 6962 inclusion proofs and signed-note checkpoints
for Rekor; pymerkle (PyPI ``pymerkle``) builds RFC 9162 trees of its own. Neither shares
code with Warden, so agreement means the formats interoperate, not just round-trip.
"""

from __future__ import annotations

import base64
import importlib
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from warden.audit.checkpoint import Checkpoint, SignedCheckpoint, Signer
from warden.audit.merkle import MerkleTree, leaf_hash, verify_consistency
from warden.audit.proofs import TlogProof


def _import(name: str, package: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        pytest.skip(f"cross-check needs the {package!r} package (pip install {package})")


def _sigstore() -> dict[str, Any]:
    merkle = _import("sigstore._internal.merkle", "sigstore")
    checkpoint = _import("sigstore._internal.rekor.checkpoint", "sigstore")
    trust = _import("sigstore._internal.trust", "sigstore")
    utils = _import("sigstore._utils", "sigstore")
    models = _import("sigstore_models.common.v1", "sigstore")
    return {
        "verify_inclusion": merkle.verify_merkle_inclusion,
        "SignedCheckpoint": checkpoint.SignedCheckpoint,
        "Keyring": trust.Keyring,
        "KeyID": utils.KeyID,
        "PublicKey": models.PublicKey,
        "Ed25519": models.PublicKeyDetails.PKIX_ED25519,
    }


def _sigstore_keyring(sig: dict[str, Any], signer: Signer) -> Any:
    der = Ed25519PublicKey.from_public_bytes(signer.verifier.public_key).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = sig["PublicKey"](raw_bytes=base64.b64encode(der), key_details=sig["Ed25519"])
    return sig["Keyring"]([key])


def _sigstore_entry(index: int, size: int, hashes: list[bytes], root: bytes, leaf: bytes) -> Any:
    """The two attributes of a Rekor entry that sigstore's inclusion check reads."""
    proof = SimpleNamespace(log_index=index, tree_size=size, hashes=hashes, root_hash=root)
    return SimpleNamespace(_inner=SimpleNamespace(inclusion_proof=proof, canonicalized_body=leaf))


LEAVES = [f'{{"position":{i}}}'.encode() for i in range(64)]
TREE = MerkleTree(leaf_hash(leaf) for leaf in LEAVES)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 64), st.data())
def test_sigstore_verifies_our_inclusion_proofs(size: int, data: st.DataObject) -> None:
    sig = _sigstore()
    index = data.draw(st.integers(0, size - 1))
    proof = TREE.inclusion_proof(index, size)
    entry = _sigstore_entry(index, size, proof, TREE.root(size), LEAVES[index])
    sig["verify_inclusion"](entry)
    if proof:
        bad = [*proof]
        bad[0] = bytes(32)
        with pytest.raises(Exception, match="invalid root hash"):
            sig["verify_inclusion"](
                _sigstore_entry(index, size, bad, TREE.root(size), LEAVES[index])
            )


def test_sigstore_verifies_our_signed_checkpoints() -> None:
    sig = _sigstore()
    signer = Signer.generate("example.org/audit")
    signed = SignedCheckpoint.sign(Checkpoint(signer.name, 64, TREE.root()), [signer])
    # As it would be read out of a tlog-proof file.
    text = TlogProof(5, tuple(TREE.inclusion_proof(5)), signed, LEAVES[5]).encode()
    parsed = sig["SignedCheckpoint"].from_text(text.split("\n\n", 1)[1])
    assert parsed.checkpoint.origin == signer.name
    assert parsed.checkpoint.log_size == 64
    assert parsed.checkpoint.log_hash == TREE.root().hex()
    # sigstore matches the 4-byte key hint, then checks the Ed25519 signature over the body.
    key_id = sig["KeyID"](signer.key_id + bytes(28))
    parsed.signed_note.verify(_sigstore_keyring(sig, signer), key_id)
    forger = Signer.generate(signer.name)
    forged = SignedCheckpoint.sign(Checkpoint(signer.name, 64, TREE.root()), [forger])
    with pytest.raises(Exception, match="invalid signature"):
        sig["SignedCheckpoint"].from_text(forged.encode()).signed_note.verify(
            _sigstore_keyring(sig, signer), sig["KeyID"](forger.key_id + bytes(28))
        )


def test_pymerkle_agrees_on_roots_and_inclusion_paths() -> None:
    pymerkle = _import("pymerkle", "pymerkle")
    other = pymerkle.InmemoryTree(algorithm="sha256")
    for leaf in LEAVES:
        other.append_entry(leaf)
    for size in range(1, len(LEAVES) + 1):
        assert other.get_root(size) == TREE.root(size)
        for index in range(0, size, 3):
            theirs = other.prove_inclusion(index + 1, size)  # pymerkle counts from one
            assert theirs.path[0] == TREE.leaf_hash(index)
            assert theirs.path[1:] == TREE.inclusion_proof(index, size)


def test_our_consistency_proofs_join_pymerkle_roots() -> None:
    pymerkle = _import("pymerkle", "pymerkle")
    other = pymerkle.InmemoryTree(algorithm="sha256")
    for leaf in LEAVES[:40]:
        other.append_entry(leaf)
    for old in range(1, 40):
        for new in range(old, 41, 7):
            proof = TREE.consistency_proof(old, new)
            verify_consistency(old, new, other.get_root(old), other.get_root(new), proof)
