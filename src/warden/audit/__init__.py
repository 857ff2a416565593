"""The audit plane: a tamper-evident transparency log (RFC 9162, C2SP checkpoints). Audit plane.

Open it with :func:`open_audit`, feed it with :class:`AuditProjector`, prove entries with
:func:`build_proof` and check everything offline with :meth:`AuditLog.verify` and
:func:`verify_proof`.
"""

from __future__ import annotations

from warden.audit.checkpoint import (
    Checkpoint,
    SignedCheckpoint,
    SignedNote,
    Signer,
    Verifier,
)
from warden.audit.log import AuditEntry, AuditLog
from warden.audit.projector import SKIPPED_TYPES, AuditProjector, audit_record
from warden.audit.proofs import TlogProof, VerifiedProof, build_proof, verify_proof
from warden.audit.state import (
    DEFAULT_KEY_NAME,
    KEY_ENV,
    AuditPaths,
    keygen,
    open_audit,
    rotate,
    trusted_verifiers,
)
from warden.audit.verify import VerifyReport, verify_snapshot

__all__ = [
    "DEFAULT_KEY_NAME",
    "KEY_ENV",
    "SKIPPED_TYPES",
    "AuditEntry",
    "AuditLog",
    "AuditPaths",
    "AuditProjector",
    "Checkpoint",
    "SignedCheckpoint",
    "SignedNote",
    "Signer",
    "TlogProof",
    "VerifiedProof",
    "Verifier",
    "VerifyReport",
    "audit_record",
    "build_proof",
    "keygen",
    "open_audit",
    "rotate",
    "trusted_verifiers",
    "verify_proof",
    "verify_snapshot",
]
