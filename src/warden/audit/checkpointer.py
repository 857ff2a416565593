"""Signs checkpoints, gathers witness cosignatures, publishes them. Audit plane.

What ``warden run`` calls on its checkpoint schedule. A witness or a publication store
that is down is reported and skipped: the log keeps its own signed checkpoints, and
``warden audit verify --witness-key`` shows what went unwitnessed.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from warden.audit.checkpoint import SignedCheckpoint, SignedNote
from warden.audit.cosign import cosigned_by
from warden.audit.witness import PATH, SIZE_TYPE, encode_request
from warden.domain.errors import AuditVerificationError, WardenError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from warden.audit.checkpoint import NoteSignature, Signer
    from warden.audit.log import AuditLog
    from warden.audit.publish import CheckpointPublisher
    from warden.audit.settings import WitnessConfig

_log = logging.getLogger("warden.audit")
TIMEOUT_S = 5.0


class WitnessError(WardenError):
    """A witness refused a checkpoint or could not be reached."""


def _post(url: str, body: bytes) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url + PATH, data=body, method="POST")
    request.add_header("Content-Type", "text/plain; charset=utf-8")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as reply:
            return reply.status, reply.headers.get("Content-Type", ""), reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise WitnessError(f"witness {url} is unreachable: {exc}") from None


def request_cosignature(
    witness: WitnessConfig, log: AuditLog, signed: SignedCheckpoint, old: int
) -> NoteSignature:
    """Submit ``signed`` to ``witness`` (C2SP tlog-witness) and return its valid cosignature.

    ``old`` is the size the witness is believed to have cosigned last; on 409 the
    witness's own size is used once.

    Raises:
        WitnessError: the witness refused, is unreachable, or answered no valid cosignature.
    """
    size = signed.checkpoint.size
    for _ in range(2):
        proof = log.consistency_proof(old, size) if 0 < old <= size else []
        status, ctype, body = _post(witness.url, encode_request(old, proof, signed))
        if status == 409 and ctype.startswith(SIZE_TYPE):
            text = body.decode("ascii", "replace").strip()
            if not text.isdigit() or int(text) == old or int(text) > size:
                raise WitnessError(
                    f"witness {witness.url} has seen size {text} of this log, which this "
                    f"checkpoint of size {size} does not extend"
                )
            old = int(text)
            continue
        if status != 200:
            reason = body.decode("utf-8", "replace").strip()[:200]
            raise WitnessError(f"witness {witness.url} answered {status}: {reason}")
        try:
            cosigned = SignedNote.parse(signed.encode() + body.decode("utf-8"))
        except (AuditVerificationError, UnicodeDecodeError) as exc:
            raise WitnessError(f"witness {witness.url}: malformed answer ({exc})") from None
        for signature in cosigned.signatures:
            if witness.key.timestamp(signature, signed.note.text) is not None:
                return signature
        raise WitnessError(f"witness {witness.url} answered no valid cosignature")
    raise WitnessError(f"witness {witness.url} keeps changing its size; try again later")


class Checkpointer:
    """Signs a checkpoint, has it cosigned by each witness, stores and publishes it."""

    def __init__(
        self,
        log: AuditLog,
        signer: Signer,
        witnesses: Sequence[WitnessConfig] = (),
        publisher: CheckpointPublisher | None = None,
    ) -> None:
        self.log = log
        self.signer = signer
        self.witnesses = tuple(witnesses)
        self.publisher = publisher
        self.problems: list[str] = []
        self._published: SignedCheckpoint | None = None

    def _report(self, message: str) -> None:
        self.problems.append(message)
        _log.warning("%s", message)

    def _witnessed_size(self, witness: WitnessConfig) -> int:
        """The largest stored checkpoint this witness cosigned (0 if none)."""
        best = 0
        for stored in self.log.checkpoints():
            if cosigned_by([stored.note], [witness.key]):
                best = max(best, stored.checkpoint.size)
        return best

    def checkpoint(self) -> SignedCheckpoint:
        """Sign (if the tree grew), gather missing cosignatures, publish; return the result."""
        signed = self.log.sign_checkpoint([self.signer])
        extra: list[NoteSignature] = []
        for witness in self.witnesses:
            if cosigned_by([signed.note], [witness.key]):
                continue
            try:
                old = self._witnessed_size(witness)
                extra.append(request_cosignature(witness, self.log, signed, old))
            except (WitnessError, AuditVerificationError) as exc:
                self._report(f"checkpoint of size {signed.checkpoint.size} not witnessed: {exc}")
        if extra:
            signed = self.log.add_signatures(signed, extra)
        if self.publisher is not None and signed != self._published:
            try:
                self.publisher.publish(signed)
                self._published = signed
            except (WardenError, OSError) as exc:
                self._report(f"checkpoint of size {signed.checkpoint.size} not published: {exc}")
        return signed
