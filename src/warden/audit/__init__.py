"""The audit plane: a tamper-evident transparency log (RFC 9162, C2SP checkpoints). Audit plane.

Open it with :func:`open_audit`, feed it with :class:`AuditProjector`, sign, cosign and
publish checkpoints with :class:`Checkpointer`, prove entries with :func:`build_proof`
and check everything offline with :meth:`AuditLog.verify`, :func:`verify_trusted` (against
a :class:`TrustStore` outside the state directory) and :func:`verify_proof`.
"""

from __future__ import annotations

from warden.audit.checkpoint import (
    Checkpoint,
    SignedCheckpoint,
    SignedNote,
    Signer,
    Verifier,
)
from warden.audit.checkpointer import Checkpointer
from warden.audit.cosign import CosignatureVerifier, Cosigner
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
from warden.audit.storecheck import crosscheck_store
from warden.audit.trust import TrustStore, verify_trusted
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
    "Checkpointer",
    "CosignatureVerifier",
    "Cosigner",
    "SignedCheckpoint",
    "SignedNote",
    "Signer",
    "TlogProof",
    "TrustStore",
    "VerifiedProof",
    "Verifier",
    "VerifyReport",
    "audit_record",
    "build_proof",
    "crosscheck_store",
    "keygen",
    "open_audit",
    "rotate",
    "trusted_verifiers",
    "verify_proof",
    "verify_snapshot",
    "verify_trusted",
]
