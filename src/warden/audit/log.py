"""The audit log: an append-only file of canonical-JSON entries over an RFC 9162 tree. Audit plane.

Line ``i`` of the file is ``canonical_json({"index": i, "record": {...}, "root": hex})``,
``root`` being the tree root of size ``i + 1`` and the leaf bytes ``canonical_json(record)``.
Signed checkpoints sit beside it in ``<log>.checkpoints``, one ``{"checkpoint": note}`` line
each. Writers hold an exclusive ``flock`` on the log file; every write is fsync'd.
"""

from __future__ import annotations

import bisect
import fcntl
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warden.audit.checkpoint import (
    Checkpoint,
    NoteSignature,
    SignedCheckpoint,
    SignedNote,
    Signer,
    Verifier,
)
from warden.audit.merkle import MerkleTree, leaf_hash, verify_consistency
from warden.audit.verify import VerifyReport, verify_snapshot
from warden.domain.canonical import canonical_json
from warden.domain.errors import (
    AuditVerificationError,
    ConcurrencyConflict,
    ConfigError,
    ValidationError,
)
from warden.store.private import fsync_dir

CHECKPOINTS_SUFFIX = ".checkpoints"
AUDIT_STREAM = "audit"
"""The stream name :class:`ConcurrencyConflict` carries for a lost audit append."""

_ROOT_TAIL = re.compile(rb',"root":"([0-9a-f]{64})"\}\n')
_TAIL_LEN = len(b',"root":""}\n') + 64


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of the log: its index, its record and the tree root after it."""

    index: int
    record: dict[str, Any]
    root: bytes


def encode_entry(index: int, leaf: bytes, root: bytes) -> bytes:
    """The file line of an entry (canonical JSON, keys sorted, newline-terminated)."""
    return b'{"index":%d,"record":%s,"root":"%s"}\n' % (index, leaf, root.hex().encode())


def _split_entry(line: bytes, index: int) -> tuple[bytes, bytes]:
    """The leaf bytes and stored root of a well-formed line (fast path, no JSON parse)."""
    prefix = b'{"index":%d,"record":' % index
    match = _ROOT_TAIL.fullmatch(line, len(line) - _TAIL_LEN)
    leaf = line[len(prefix) : len(line) - _TAIL_LEN]
    if (
        len(line) < len(prefix) + _TAIL_LEN + 2
        or not line.startswith(prefix)
        or match is None
        or leaf[:1] != b"{"
        or leaf[-1:] != b"}"
    ):
        raise AuditVerificationError(
            f"entry {index} is malformed; run `warden audit verify` for details", index
        )
    return leaf, bytes.fromhex(match.group(1).decode("ascii"))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class AuditLog:
    """An append-only audit log file and its signed checkpoints.

    Reads keep an in-memory index of the tree, refreshed from the file on each call, so
    several processes may share one log: appends are serialised by an exclusive ``flock``.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.checkpoints_path = self.path.with_name(self.path.name + CHECKPOINTS_SUFFIX)
        self._tree = MerkleTree()
        self._offsets: list[int] = []
        self._end = 0
        self._mutex = threading.RLock()  # the in-memory index, between threads

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"

    # -- reading ----------------------------------------------------------------------

    @property
    def size(self) -> int:
        """The number of entries."""
        self._sync()
        return self._tree.size

    def root(self, size: int | None = None) -> bytes:
        """The tree root of the first ``size`` entries (all by default)."""
        self._sync()
        return self._tree.root(size)

    def leaf(self, index: int) -> bytes:
        """The leaf bytes of entry ``index``: the canonical JSON of its record."""
        self._sync()
        if not 0 <= index < self._tree.size:
            raise IndexError(f"entry {index} is outside a log of {self._tree.size}")
        start = self._offsets[index]
        end = self._offsets[index + 1] if index + 1 < len(self._offsets) else self._end
        with self.path.open("rb") as f:
            f.seek(start)
            line = f.read(end - start)
        leaf, _ = _split_entry(line, index)
        if leaf_hash(leaf) != self._tree.leaf_hash(index):
            raise AuditVerificationError(f"entry {index} changed since it was read", index)
        return leaf

    def entry(self, index: int) -> AuditEntry:
        """Entry ``index``."""
        leaf = self.leaf(index)
        record: dict[str, Any] = json.loads(leaf)
        return AuditEntry(index, record, self._tree.root(index + 1))

    def entries(self, start: int = 0) -> Iterator[AuditEntry]:
        """Every entry from ``start`` on, in order."""
        self._sync()
        size = self._tree.size
        if start >= size:
            return
        with self.path.open("rb") as f:
            f.seek(self._offsets[start])
            for index in range(start, size):
                leaf, root = _split_entry(f.readline(), index)
                yield AuditEntry(index, json.loads(leaf), root)

    def last_record(self) -> dict[str, Any] | None:
        """The record of the last entry, or ``None`` when the log is empty."""
        size = self.size
        return self.entry(size - 1).record if size else None

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The RFC 9162 inclusion proof of entry ``index`` in the tree of ``size``."""
        self._sync()
        return self._tree.inclusion_proof(index, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The RFC 9162 consistency proof from tree size ``old_size`` to ``new_size``."""
        self._sync()
        return self._tree.consistency_proof(old_size, new_size)

    def checkpoints(self) -> list[SignedCheckpoint]:
        """Every stored signed checkpoint, oldest first (signatures not checked here)."""
        return self._read_checkpoints()

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        """The last stored signed checkpoint, if any."""
        stored = self._read_checkpoints()
        return stored[-1] if stored else None

    # -- writing ----------------------------------------------------------------------

    def append(
        self, records: Sequence[Mapping[str, Any]], *, expected_size: int | None = None
    ) -> int:
        """Append one entry per record, fsync'd; return the new size.

        Args:
            records: JSON-compatible objects; each becomes one leaf.
            expected_size: when given, append only if the log still has this many
                entries (an optimistic check for callers that derive what to append from
                the log itself).

        Raises:
            ValidationError: a record is not a JSON-compatible object.
            ConcurrencyConflict: the log does not have ``expected_size`` entries.
        """
        leaves = []
        for n, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise ValidationError("an audit record is a JSON object", field=f"records[{n}]")
            try:
                leaves.append(canonical_json(dict(record)))
            # AttributeError: canonical_json sorts keys before it checks they are strings.
            except (TypeError, ValueError, AttributeError, RecursionError) as exc:
                raise ValidationError(
                    f"not JSON-compatible: {exc}", field=f"records[{n}]"
                ) from None
        with self._mutex, self._locked(exclusive=True) as fd:
            self._sync(repair_fd=fd)
            size = self._tree.size
            if expected_size is not None and expected_size != size:
                raise ConcurrencyConflict(AUDIT_STREAM, expected_size, size)
            if not leaves:
                return size
            crange = self._tree.compact_range()
            hashes, lines = [], []
            for leaf in leaves:
                hashed = leaf_hash(leaf)
                crange = crange.append(hashed)
                hashes.append(hashed)
                lines.append(encode_entry(crange.size - 1, leaf, crange.root()))
            _write_all(fd, b"".join(lines))
            os.fsync(fd)
            offset = self._end
            for hashed, line in zip(hashes, lines, strict=True):
                self._tree.append(hashed)
                self._offsets.append(offset)
                offset += len(line)
            self._end = offset
            return self._tree.size

    def sign_checkpoint(self, signers: Sequence[Signer]) -> SignedCheckpoint:
        """Sign and store a checkpoint of the current tree; the first signer names the origin.

        Before signing, checks that the tree extends the last stored checkpoint (a
        consistency proof), so the log never signs two inconsistent checkpoints. When the
        last checkpoint already covers the whole tree and carries every signer's
        signature, it is returned as is.

        Raises:
            AuditVerificationError: the log is shorter than, or inconsistent with, the last
                checkpoint; nothing is signed.
            ConfigError: the signer's name is not the log's origin.
        """
        if not signers:
            raise ValidationError("a checkpoint needs at least one signer", field="signers")
        origin = signers[0].name
        with self._mutex, self._locked(exclusive=True) as fd:
            self._sync(repair_fd=fd)
            size, root = self._tree.size, self._tree.root()
            self._repair_checkpoints()
            stored = self._read_checkpoints()
            if stored:
                previous = stored[-1]
                last = previous.checkpoint
                if last.origin != origin:
                    raise ConfigError(
                        f"this log's checkpoints have origin {last.origin!r}, not "
                        f"{origin!r}: sign with a key named {last.origin!r} "
                        "(`warden audit rotate` keeps the name)"
                    )
                if last.size > size:
                    raise AuditVerificationError(
                        f"the log has {size} entries but a checkpoint of {last.size} was "
                        "signed: entries were removed; refusing to sign",
                        size,
                    )
                proof = self._tree.consistency_proof(last.size, size)
                verify_consistency(last.size, size, last.root, root, proof)
                signed_by = {(s.name, s.key_id) for s in previous.note.signatures}
                if last.size == size and all((s.name, s.key_id) in signed_by for s in signers):
                    return previous
            signed = SignedCheckpoint.sign(Checkpoint(origin, size, root), signers)
            self._store_checkpoint(signed)
            return signed

    def add_signatures(
        self, signed: SignedCheckpoint, extra: Sequence[NoteSignature]
    ) -> SignedCheckpoint:
        """Store ``signed`` again with ``extra`` signature lines (witness cosignatures).

        The checkpoints file stays append-only: the copy with more signatures is a new
        line for the same tree head, which must still be the latest one.

        Raises:
            AuditVerificationError: ``signed`` is no longer the latest stored checkpoint.
        """
        with self._mutex, self._locked(exclusive=True):
            self._repair_checkpoints()
            stored = self._read_checkpoints()
            if not stored or stored[-1].checkpoint != signed.checkpoint:
                raise AuditVerificationError(
                    "a newer checkpoint was signed meanwhile; cosign that one", -1
                )
            have = {(s.name, s.key_id, s.signature) for s in stored[-1].note.signatures}
            added = [s for s in extra if (s.name, s.key_id, s.signature) not in have]
            if not added:
                return stored[-1]
            note = SignedNote(signed.note.text, (*stored[-1].note.signatures, *added))
            combined = SignedCheckpoint(signed.checkpoint, note)
            self._store_checkpoint(combined)
            return combined

    # -- verification -----------------------------------------------------------------

    def verify(
        self,
        verifiers: Sequence[Verifier] = (),
        *,
        require_checkpoint: bool = True,
        origin: str | None = None,
    ) -> VerifyReport:
        """Re-read the whole log and its checkpoints and check every byte.

        See :func:`warden.audit.verify.verify_snapshot` for what is checked.

        Args:
            verifiers: the trusted public keys.
            require_checkpoint: fail when a non-empty log has no signed checkpoint.
            origin: the expected checkpoint origin (by default the first checkpoint's).

        Raises:
            AuditVerificationError: the first problem; ``index`` is the first bad entry
                (-1 when the fault is in the checkpoints file alone).
        """
        # A consistent snapshot: checkpoints and the file length under the shared lock,
        # then the scan of that prefix (append-only) without holding writers back.
        with self._locked(exclusive=False) as fd:
            stored = self._read_checkpoints()
            length = os.fstat(fd).st_size if fd >= 0 else 0
        return verify_snapshot(
            self.path,
            length,
            stored,
            verifiers,
            require_checkpoint=require_checkpoint,
            origin=origin,
        )

    # -- files ------------------------------------------------------------------------

    @contextmanager
    def _locked(self, *, exclusive: bool) -> Iterator[int]:
        if exclusive:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            if created:
                fsync_dir(self.path.parent)
        else:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                yield -1
                return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield fd
        finally:
            os.close(fd)

    def _sync(self, repair_fd: int | None = None) -> None:
        """Bring the in-memory tree up to the file; with ``repair_fd``, drop a torn tail."""
        with self._mutex:
            self._sync_locked(repair_fd)

    def _sync_locked(self, repair_fd: int | None) -> None:
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            if self._end:
                raise AuditVerificationError("the audit log file is gone", 0) from None
            return
        with f:
            file_size = os.fstat(f.fileno()).st_size
            if file_size < self._end:
                lost = max(0, bisect.bisect_right(self._offsets, file_size) - 1)
                raise AuditVerificationError(
                    f"the audit log shrank below entry {lost} while open", lost
                )
            if file_size == self._end:
                return
            f.seek(self._end)
            before, pos, last_root = self._tree.size, self._end, b""
            offsets = []
            try:
                for line in f:
                    if not line.endswith(b"\n"):
                        break
                    leaf, last_root = _split_entry(line, self._tree.size)
                    self._tree.append(leaf_hash(leaf))
                    offsets.append(pos)
                    pos += len(line)
                if last_root and last_root != self._tree.root():
                    raise AuditVerificationError(
                        f"entry {self._tree.size - 1}: its root does not match the tree; "
                        "run `warden audit verify` for details",
                        self._tree.size - 1,
                    )
            except AuditVerificationError:
                self._tree.truncate(before)
                raise
        self._offsets.extend(offsets)
        self._end = pos
        if repair_fd is not None and pos < file_size:
            # A torn tail: a writer died mid-line before its append returned. No reader
            # ever took it as an entry, and no checkpoint can cover it.
            os.ftruncate(repair_fd, pos)
            os.fsync(repair_fd)

    def _read_checkpoints(self) -> list[SignedCheckpoint]:
        try:
            data = self.checkpoints_path.read_bytes()
        except FileNotFoundError:
            return []
        out = []
        lines = data.split(b"\n")
        if lines[-1]:
            raise AuditVerificationError(
                f"{self.checkpoints_path.name}: the last line has no final newline", -1
            )
        for number, line in enumerate(lines[:-1], start=1):
            where = f"{self.checkpoints_path.name} line {number}"
            try:
                value = json.loads(line.decode("utf-8"))
                canonical = canonical_json(value)
            except (ValueError, TypeError, RecursionError):
                raise AuditVerificationError(f"{where} is not valid JSON", -1) from None
            if (
                canonical != line
                or not isinstance(value, dict)
                or set(value) != {"checkpoint"}
                or not isinstance(value["checkpoint"], str)
            ):
                raise AuditVerificationError(
                    f'{where} is not canonical {{"checkpoint": "<signed note>"}}', -1
                )
            try:
                out.append(SignedCheckpoint.parse(value["checkpoint"]))
            except AuditVerificationError as exc:
                raise AuditVerificationError(f"{where}: {exc}", -1) from None
        return out

    def _repair_checkpoints(self) -> None:
        """Drop a torn last line of the checkpoints file (a signer died mid-write)."""
        try:
            data = self.checkpoints_path.read_bytes()
        except FileNotFoundError:
            return
        if data and not data.endswith(b"\n"):
            with self.checkpoints_path.open("r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
                f.flush()
                os.fsync(f.fileno())

    def _store_checkpoint(self, signed: SignedCheckpoint) -> None:
        line = canonical_json({"checkpoint": signed.encode()}) + b"\n"
        created = not self.checkpoints_path.exists()
        fd = os.open(self.checkpoints_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            _write_all(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.checkpoints_path.parent)
