"""The witness (C2SP tlog-witness) and cosignatures (tlog-cosignature v1), in process."""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden.audit.checkpoint import Checkpoint, SignedCheckpoint, Signer
from warden.audit.cosign import CosignatureVerifier, Cosigner, cosigned_by, signed_message
from warden.audit.merkle import MerkleTree, leaf_hash
from warden.audit.witness import SIZE_TYPE, Witness, encode_request, parse_request
from warden.domain.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

LOG = Signer.generate("example.org/log")
TREE = MerkleTree(leaf_hash(b'{"n":%d}' % i) for i in range(40))


def checkpoint(size: int, signer: Signer = LOG, root: bytes | None = None) -> SignedCheckpoint:
    cp = Checkpoint(signer.name, size, TREE.root(size) if root is None else root)
    return SignedCheckpoint.sign(cp, [signer])


@pytest.fixture
def witness(tmp_path: Path) -> Witness:
    return Witness(
        Cosigner.generate("witness.example/w1"),
        tmp_path / "w",
        {LOG.name: [LOG.verifier]},
        clock=lambda: 1_700_000_000.5,
    )


def add(witness: Witness, old: int, size: int, **kw: object) -> tuple[int, str, bytes]:
    signed = checkpoint(size, **kw)  # type: ignore[arg-type]
    proof = TREE.consistency_proof(old, size) if 0 < old <= size else []
    answer = witness.add_checkpoint(encode_request(old, proof, signed))
    return answer.status, answer.content_type, answer.body


def test_cosignature_key_id_and_message_follow_the_spec() -> None:
    cosigner = Cosigner.generate("witness.example/w1")
    pub = cosigner.verifier.public_key
    expected = hashlib.sha256(b"witness.example/w1\n\x04" + pub).digest()[:4]
    assert cosigner.verifier.key_id == expected
    body = checkpoint(5).checkpoint.body()
    assert signed_message(body, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n" + body.encode()
    )
    line = cosigner.cosign(body, 1679315147)
    raw = base64.b64decode(line.line().split(" ")[-1])
    assert raw[:4] == expected
    assert int.from_bytes(raw[4:12], "big") == 1679315147
    assert len(raw) == 4 + 8 + 64
    assert CosignatureVerifier.parse(cosigner.verifier.encode()) == cosigner.verifier
    assert Cosigner.parse(cosigner.encode_private()).verifier == cosigner.verifier
    assert cosigner.encode_private() not in repr(cosigner)


def test_a_cosignature_verifies_only_for_its_checkpoint_and_key() -> None:
    cosigner = Cosigner.generate("witness.example/w1")
    signed = checkpoint(7)
    sig = cosigner.cosign(signed.checkpoint.body(), 1_700_000_000)
    assert cosigner.verifier.timestamp(sig, signed.checkpoint.body()) == 1_700_000_000
    assert cosigner.verifier.timestamp(sig, checkpoint(8).checkpoint.body()) is None
    other = Cosigner.generate("witness.example/w1").verifier
    assert other.timestamp(sig, signed.checkpoint.body()) is None
    # The log's own signature is not a cosignature, and the reverse.
    assert cosigned_by([signed.note], [cosigner.verifier]) == {}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a+b",
        "witness.example/w1+zzzzzzzz+BAAA",
        "witness.example/w1+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(),
        "witness.example/w1+00000000+" + base64.b64encode(b"\x04" + bytes(32)).decode(),
    ],
)
def test_malformed_witness_keys_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="witness key"):
        CosignatureVerifier.parse(text)


def test_first_checkpoint_is_cosigned_and_remembered(witness: Witness) -> None:
    status, _, body = add(witness, 0, 10)
    assert status == 200
    line = body.decode()
    assert line.startswith("\u2014 witness.example/w1 ") and line.endswith("\n")
    signed = checkpoint(10)
    note = SignedCheckpoint.parse(signed.encode() + line).note
    assert cosigned_by([note], [witness.cosigner.verifier]) == {
        witness.cosigner.verifier: 1_700_000_000
    }
    assert witness.known(LOG.name) == (10, TREE.root(10))


def test_a_stale_old_size_gets_409_with_the_known_size(witness: Witness) -> None:
    assert add(witness, 0, 10)[0] == 200
    status, ctype, body = add(witness, 0, 20)
    assert (status, ctype, body) == (409, SIZE_TYPE, b"10\n")
    assert add(witness, 10, 20)[0] == 200
    assert witness.known(LOG.name)[0] == 20


def test_a_bad_consistency_proof_gets_422(witness: Witness) -> None:
    assert add(witness, 0, 10)[0] == 200
    forged = checkpoint(20, root=bytes(32))
    answer = witness.add_checkpoint(encode_request(10, TREE.consistency_proof(10, 20), forged))
    assert answer.status == 422
    assert witness.known(LOG.name)[0] == 10


def test_same_size_other_root_is_a_conflict(witness: Witness) -> None:
    assert add(witness, 0, 10)[0] == 200
    assert add(witness, 10, 10)[0] == 200  # the same tree again: cosigned again
    status, ctype, body = add(witness, 10, 10, root=bytes(32))
    assert (status, ctype, body) == (409, SIZE_TYPE, b"10\n")


def test_unknown_origin_404_unsigned_403_old_beyond_400(witness: Witness) -> None:
    stranger = Signer.generate("other.example/log")
    assert add(witness, 0, 5, signer=stranger)[0] == 404
    forger = Signer.generate(LOG.name)
    assert add(witness, 0, 5, signer=forger)[0] == 403
    assert add(witness, 6, 5)[0] == 400
    assert witness.add_checkpoint(b"new 5\n\n" + checkpoint(5).encode().encode()).status == 400
    assert witness.known(LOG.name) == (0, b"")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_request_body_gets_an_answer_not_a_crash(
    tmp_path_factory: pytest.TempPathFactory, body: bytes
) -> None:
    w = Witness(
        Cosigner.generate("w.example/w"), tmp_path_factory.mktemp("w"), {LOG.name: [LOG.verifier]}
    )
    assert w.add_checkpoint(body).status in {200, 400, 403, 404, 409, 422}


def test_a_forged_empty_tree_is_refused(witness: Witness) -> None:
    assert add(witness, 0, 0, root=bytes(32))[0] == 400
    assert add(witness, 0, 0)[0] == 200


def test_parse_request_round_trips() -> None:
    signed = checkpoint(20)
    proof = TREE.consistency_proof(10, 20)
    assert parse_request(encode_request(10, proof, signed)) == (10, proof, signed)


submission = st.tuples(
    st.integers(0, 40),  # old
    st.integers(0, 40),  # size
    st.booleans(),  # forge the root
    st.booleans(),  # corrupt the proof
)


@settings(max_examples=150, deadline=None)
@given(st.lists(submission, max_size=12))
def test_the_witness_never_cosigns_a_fork_or_a_rollback(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, int, bool, bool]]
) -> None:
    w = Witness(
        Cosigner.generate("w.example/w"), tmp_path_factory.mktemp("w"), {LOG.name: [LOG.verifier]}
    )
    seen = 0
    first: tuple[int, bytes] | None = None  # the first head is taken on the log's word
    for old, size, forge, corrupt in steps:
        root = bytes(32) if forge else None
        signed = checkpoint(size, root=root)
        proof = TREE.consistency_proof(old, size) if 0 < old <= size else []
        if corrupt and proof:
            proof[0] = bytes(32)
        answer = w.add_checkpoint(encode_request(old, proof, signed))
        known = w.known(LOG.name)
        assert known[0] >= seen  # never rolled back
        if answer.status == 200:
            assert known == (size, signed.checkpoint.root)
            first = first or known
        if first is not None and first[1] == TREE.root(first[0]):
            assert known[1] == TREE.root(known[0])  # never moved onto a fork
        elif first is not None:
            assert known == first  # a forged first head can never be extended
        seen = known[0]
