"""Offline proofs that an entry is in the log: C2SP tlog-proof@v1 files. Audit plane.

```
c2sp.org/tlog-proof@v1
extra <base64 leaf bytes: the canonical JSON of the audit record>
index <entry index>
<base64 inclusion proof hash, one per line, from the leaf's sibling up>

<signed checkpoint, verbatim>
```

Checking one needs only the file and the log's public verifier key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from warden.audit.checkpoint import SignedCheckpoint, Verifier, decode_base64, encode_base64
from warden.audit.merkle import HASH_SIZE, leaf_hash, verify_inclusion
from warden.domain.errors import AuditVerificationError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from warden.audit.log import AuditLog

HEADER = "c2sp.org/tlog-proof@v1"
SUFFIX = ".tlog-proof"
"""The file extension C2SP recommends for proofs."""


def _malformed(message: str) -> AuditVerificationError:
    return AuditVerificationError(f"malformed tlog-proof: {message}")


@dataclass(frozen=True, slots=True)
class TlogProof:
    """An entry index, its inclusion proof, a signed checkpoint and optional extra data."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: SignedCheckpoint
    extra: bytes | None = None

    def encode(self) -> str:
        """The tlog-proof@v1 text."""
        lines = [HEADER]
        if self.extra is not None:
            lines.append(f"extra {encode_base64(self.extra)}")
        lines.append(f"index {self.index}")
        lines.extend(encode_base64(h) for h in self.hashes)
        return "\n".join(lines) + "\n\n" + self.checkpoint.encode()

    @classmethod
    def parse(cls, data: str | bytes) -> TlogProof:
        """Parse a tlog-proof@v1 text strictly, without verifying it.

        Raises:
            AuditVerificationError: it is not well-formed.
        """
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                raise _malformed("not valid UTF-8") from None
        head, sep, note = data.partition("\n\n")
        if not sep:
            raise _malformed("no blank line before the checkpoint")
        lines = head.split("\n")
        if lines[0] != HEADER:
            raise _malformed(f"the first line is not {HEADER!r}")
        rest = lines[1:]
        extra = None
        if rest and rest[0].startswith("extra "):
            try:
                extra = decode_base64(rest[0][len("extra ") :])
            except ValueError as exc:
                raise _malformed(f"extra data: {exc}") from None
            rest = rest[1:]
        if not rest or not rest[0].startswith("index "):
            raise _malformed("no 'index N' line")
        digits = rest[0][len("index ") :]
        if not digits.isascii() or not digits.isdigit() or (digits != "0" and digits[0] == "0"):
            raise _malformed(f"index {digits!r} is not a decimal without leading zeroes")
        hashes = []
        for number, line in enumerate(rest[1:]):
            try:
                value = decode_base64(line)
            except ValueError as exc:
                raise _malformed(f"inclusion hash {number}: {exc}") from None
            if len(value) != HASH_SIZE:
                raise _malformed(f"inclusion hash {number} is not {HASH_SIZE} bytes")
            hashes.append(value)
        return cls(int(digits), tuple(hashes), SignedCheckpoint.parse(note), extra)


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    """What a proof established: this leaf is entry ``index`` of the signed tree."""

    index: int
    leaf: bytes
    checkpoint: SignedCheckpoint
    signers: tuple[Verifier, ...]

    @property
    def record(self) -> dict[str, Any]:
        """The audit record the leaf bytes spell (canonical JSON)."""
        value: dict[str, Any] = json.loads(self.leaf)
        return value


def build_proof(log: AuditLog, index: int, checkpoint: SignedCheckpoint) -> TlogProof:
    """The proof that entry ``index`` is in the tree ``checkpoint`` signed.

    Raises:
        AuditVerificationError: the checkpoint does not cover the entry or does not match
            the log.
    """
    size = checkpoint.checkpoint.size
    if not 0 <= index < size:
        raise AuditVerificationError(
            f"entry {index} is not covered by the checkpoint of size {size}", index
        )
    if log.root(size) != checkpoint.checkpoint.root:
        raise AuditVerificationError(
            f"the checkpoint of size {size} does not match this log", index
        )
    hashes = tuple(log.inclusion_proof(index, size))
    return TlogProof(index, hashes, checkpoint, extra=log.leaf(index))


def verify_proof(
    proof: TlogProof | str | bytes,
    verifiers: Sequence[Verifier],
    *,
    leaf: bytes | None = None,
    origin: str | None = None,
) -> VerifiedProof:
    """Check a proof with only public keys: signature, then inclusion of the leaf.

    Args:
        proof: a parsed proof or its text.
        verifiers: the trusted public keys of the log.
        leaf: the leaf bytes to check; by default the proof's extra data.
        origin: the expected log origin, if known.

    Raises:
        AuditVerificationError: the proof is malformed or does not verify.
    """
    if not isinstance(proof, TlogProof):
        proof = TlogProof.parse(proof)
    signers = proof.checkpoint.verify(verifiers, origin)
    if leaf is None:
        if proof.extra is None:
            raise AuditVerificationError("the proof carries no leaf and none was given")
        leaf = proof.extra
    elif proof.extra is not None and proof.extra != leaf:
        raise AuditVerificationError("the proof's extra data is not the given leaf")
    cp = proof.checkpoint.checkpoint
    verify_inclusion(proof.index, cp.size, leaf_hash(leaf), proof.hashes, cp.root)
    return VerifiedProof(proof.index, leaf, proof.checkpoint, signers)
