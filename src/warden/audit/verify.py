"""Full verification of an audit log file against its signed checkpoints. Audit plane.

Reads only the file, the checkpoints and public keys: the offline verifier behind
``warden audit verify``. Every byte is checked; the first bad entry is named.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.audit.merkle import EMPTY_ROOT, CompactRange, leaf_hash
from warden.domain.canonical import canonical_json
from warden.domain.errors import AuditVerificationError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence, Set
    from pathlib import Path
    from typing import BinaryIO

    from warden.audit.checkpoint import Checkpoint, SignedCheckpoint, Verifier


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What a successful :meth:`AuditLog.verify` checked."""

    size: int
    root: bytes
    checkpoints: int
    latest: Checkpoint | None
    signers: tuple[str, ...]

    @property
    def unsigned(self) -> int:
        """Entries after the latest signed checkpoint (their truncation is undetectable)."""
        return self.size - (self.latest.size if self.latest else 0)


def check_line(line: bytes, index: int) -> tuple[bytes, bytes]:
    """Strictly check one line (without its newline); return its leaf bytes and root."""
    try:
        value = json.loads(line.decode("utf-8"))
        canonical = canonical_json(value)
    except (ValueError, TypeError, RecursionError):
        raise AuditVerificationError(f"entry {index} is not valid JSON", index) from None
    if canonical != line:
        raise AuditVerificationError(f"entry {index} is not in canonical JSON form", index)
    if not isinstance(value, dict) or set(value) != {"index", "record", "root"}:
        raise AuditVerificationError(
            f"entry {index} does not have exactly the keys index, record, root", index
        )
    found, record, root = value["index"], value["record"], value["root"]
    if type(found) is not int or found != index:
        raise AuditVerificationError(f"entry {index} says it is entry {found!r}", index)
    if not isinstance(record, dict):
        raise AuditVerificationError(f"entry {index}: the record is not a JSON object", index)
    if not isinstance(root, str) or not re.fullmatch(r"[0-9a-f]{64}", root):
        raise AuditVerificationError(f"entry {index}: the root is not 64 lowercase hex", index)
    return canonical_json(record), bytes.fromhex(root)


def _lines(f: BinaryIO, length: int) -> Iterator[bytes]:
    """The lines of the first ``length`` bytes of ``f`` (the last may lack its newline)."""
    remaining = length
    while remaining > 0:
        line = f.readline(remaining)
        if not line:
            return
        remaining -= len(line)
        yield line


def scan_entries(
    path: Path, length: int, needed: Set[int]
) -> tuple[AuditVerificationError | None, int, bytes, dict[int, bytes]]:
    """Check the first ``length`` bytes line by line.

    Returns the first line error, the number of good entries, their root, and the roots
    at the ``needed`` sizes.
    """
    crange = CompactRange()
    roots = {0: EMPTY_ROOT}
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return None, 0, EMPTY_ROOT, roots
    with f:
        for index, line in enumerate(_lines(f, length)):
            if not line.endswith(b"\n"):
                error = AuditVerificationError(
                    f"entry {index} is incomplete: its line has no final newline "
                    "(a torn write or a truncation)",
                    index,
                )
                return error, crange.size, crange.root(), roots
            try:
                leaf, stored_root = check_line(line[:-1], index)
            except AuditVerificationError as bad:
                return bad, crange.size, crange.root(), roots
            grown = crange.append(leaf_hash(leaf))
            if grown.root() != stored_root:
                error = AuditVerificationError(
                    f"entry {index}: its root does not match the tree recomputed from "
                    "the leaves (the entry or one before it was changed)",
                    index,
                )
                return error, crange.size, crange.root(), roots
            crange = grown
            if crange.size in needed:
                roots[crange.size] = stored_root
    return None, crange.size, crange.root(), roots


def verify_snapshot(
    path: Path,
    length: int,
    stored: Sequence[SignedCheckpoint],
    verifiers: Sequence[Verifier],
    *,
    require_checkpoint: bool = True,
    origin: str | None = None,
) -> VerifyReport:
    """Check the first ``length`` bytes of a log file against its stored checkpoints.

    Each line must be exactly the canonical JSON of its entry, with the right index and
    the root of the tree recomputed from every leaf so far. Every stored checkpoint
    must carry a valid signature from one of ``verifiers`` and match the recomputed
    root at its size; a checkpoint larger than the log reveals truncation.

    Raises:
        AuditVerificationError: the first problem; ``index`` is the first bad entry
            (-1 when the fault is in the checkpoints file alone).
    """
    needed = {signed.checkpoint.size for signed in stored}
    line_error, size, root, roots = scan_entries(path, length, needed)
    errors: list[AuditVerificationError] = [line_error] if line_error else []
    signers: list[str] = []
    proven = 0  # every entry below this is covered by a matching checkpoint
    for number, signed in enumerate(stored, start=1):
        cp = signed.checkpoint
        expected_origin = origin if origin is not None else stored[0].checkpoint.origin
        try:
            keys = signed.verify(verifiers, expected_origin)
        except AuditVerificationError as exc:
            errors.append(AuditVerificationError(f"checkpoint #{number}: {exc}", -1))
            continue
        signers.extend(k.encode() for k in keys if k.encode() not in signers)
        if cp.size > size:
            if line_error is None:  # else the bad line at ``size`` explains the shortfall
                errors.append(
                    AuditVerificationError(
                        f"the log has {size} entries but checkpoint #{number} was signed "
                        f"for {cp.size}: entries {size}..{cp.size - 1} are missing "
                        "(truncated or deleted)",
                        size,
                    )
                )
        elif roots[cp.size] != cp.root:
            errors.append(
                AuditVerificationError(
                    f"the tree of size {cp.size} does not match checkpoint #{number}: an "
                    f"entry in {proven}..{cp.size - 1} was changed and the later roots "
                    "rewritten",
                    proven,
                )
            )
        else:
            proven = max(proven, cp.size)
    entry_errors = [e for e in errors if e.index >= 0]
    if entry_errors:
        raise min(entry_errors, key=lambda e: e.index)
    if errors:
        raise errors[0]
    if require_checkpoint and size and not stored:
        raise AuditVerificationError(
            f"the log has {size} entries and no signed checkpoint: run "
            "`warden audit checkpoint`; until then truncation cannot be detected",
            size - 1,
        )
    latest = max((s.checkpoint for s in stored), key=lambda c: c.size, default=None)
    return VerifyReport(size, root, len(stored), latest, tuple(signers))
