"""The path every source takes into the store: admit through the gates, or quarantine. Data plane.

Sources turn what they receive into :class:`Admit` jobs (a CloudEvents object to check and
store) or :class:`Refuse` jobs (input already known to be bad, kept with its reason); a
:class:`Pipeline` runs them and says, per job, whether the event was accepted, was a
duplicate of one already stored, or went to quarantine. Nothing is dropped: when a job
returns, its input is durably in the store or in quarantine.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from warden.domain.errors import ValidationError
from warden.domain.events import format_time
from warden.domain.ids import service_stream
from warden.domain.plain_json import printable
from warden.domain.redact import redact_text
from warden.ingest.gate import quarantined_text
from warden.ports import BatchAppender

if TYPE_CHECKING:
    from collections.abc import Sequence

    from warden.domain.events import Event
    from warden.ingest.gate import IngestGate

__all__ = [
    "INGEST_STREAM",
    "SOURCE_EXTENSION",
    "Admit",
    "Job",
    "Origin",
    "Outcome",
    "Pipeline",
    "Refuse",
    "Tally",
    "Verdict",
    "is_reserved",
    "stream_for",
]

INGEST_STREAM = "ingest"
SOURCE_EXTENSION = "wardensource"
# Warden's own namespace, except what outside formats legitimately turn into: an
# Alertmanager alert, and a generic JSON body under the default route.
_OPEN_TYPES = frozenset({"warden.alert.firing", "warden.alert.resolved", "warden.webhook.received"})


def is_reserved(type_: str) -> bool:
    """Whether ``type_`` is one of Warden's own (probe, deploy, metric, state, control, ...).

    An outside source may send such an event only when its configuration grants the type.
    """
    return type_.startswith("warden.") and type_ not in _OPEN_TYPES


def stream_for(raw: object) -> str:
    """The stream an ingested CloudEvents object belongs to.

    ``service-<subject>`` when the event names a subject (Warden's subjects are services),
    else the catch-all ``ingest`` stream. Replaying a quarantined event uses the same rule.
    """
    if isinstance(raw, dict):
        subject = raw.get("subject")
        if isinstance(subject, str) and subject:
            return service_stream(subject)
    return INGEST_STREAM


class Verdict(StrEnum):
    """What happened to one job."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class Origin:
    """Who sent a job, as its source authenticated it.

    Attributes:
        name: The sender, e.g. ``webhook/alertmanager``; stored with every event it sends
            as the ``wardensource`` extension attribute.
        allow_types: Warden's own event types (see :func:`is_reserved`) it may send.
        grant_hint: Where the grant goes, for the refusal's reason.
    """

    name: str
    allow_types: frozenset[str] = frozenset()
    grant_hint: str = "allow_types"


@dataclass(frozen=True, slots=True)
class Admit:
    """Check a CloudEvents object and store it, or quarantine it with the gate's reason.

    Attributes:
        payload: The event as received (text keeps the raw input for quarantine) or as
            a parsed JSON object.
        source: Who sent it, e.g. ``webhook:cloudevents``; kept with quarantined input.
        stream: The stream to append to; empty means :func:`stream_for` the event.
        origin: The authenticated sender; ``None`` for Warden's own input (probes, an
            operator's capture), which is neither checked for reserved types nor marked.
    """

    payload: str | bytes | dict[str, Any]
    source: str
    stream: str = ""
    origin: Origin | None = None


@dataclass(frozen=True, slots=True)
class Refuse:
    """Input a source already found bad: quarantine it with the reason.

    Attributes:
        payload: The input as received (or as much of it as was kept).
        source: Who sent it.
        reason: Why it was refused, in words a sender can act on.
        status: The HTTP status that describes the refusal (400, 413, 415, ...).
    """

    payload: str
    source: str
    reason: str
    status: int = 400


Job = Admit | Refuse


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one job: the stored event's id, or the quarantine id and reason."""

    verdict: Verdict
    event_id: str = ""
    stream: str = ""
    quarantine_id: int = 0
    reason: str = ""
    status: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible view for HTTP answers and CLI output."""
        if self.verdict is Verdict.QUARANTINED:
            return {
                "verdict": self.verdict.value,
                "quarantine_id": self.quarantine_id,
                "reason": self.reason,
            }
        return {"verdict": self.verdict.value, "id": self.event_id, "stream": self.stream}


@dataclass(frozen=True, slots=True)
class Tally:
    """Counts of outcomes."""

    accepted: int = 0
    duplicate: int = 0
    quarantined: int = 0

    @property
    def total(self) -> int:
        """Every job counted."""
        return self.accepted + self.duplicate + self.quarantined

    def add(self, outcomes: Sequence[Outcome]) -> Tally:
        """This tally with ``outcomes`` counted too."""
        verdicts = [o.verdict for o in outcomes]
        return Tally(
            self.accepted + verdicts.count(Verdict.ACCEPTED),
            self.duplicate + verdicts.count(Verdict.DUPLICATE),
            self.quarantined + verdicts.count(Verdict.QUARANTINED),
        )

    def since(self, earlier: Tally) -> Tally:
        """What was counted after ``earlier``."""
        return Tally(
            self.accepted - earlier.accepted,
            self.duplicate - earlier.duplicate,
            self.quarantined - earlier.quarantined,
        )


def _text_of(payload: str | bytes | dict[str, Any]) -> str:
    if isinstance(payload, dict):
        try:
            return json.dumps(payload, sort_keys=True, default=str)
        except (ValueError, RecursionError) as exc:  # circular, or an int too long to spell
            return f"(an object that cannot be written as JSON: {exc!s:.200})"
    if isinstance(payload, bytes):
        return payload.decode("utf-8", errors="replace")
    return payload


class Pipeline:
    """Runs jobs through an :class:`IngestGate` and its store.

    The checks and reasons are the gate's own (size, JSON object, envelope, clock skew,
    schema); on top, the pipeline tells a duplicate from a new event and turns any
    unexpected failure of validation into quarantine instead of an exception. The events
    of one :meth:`process` call that pass are appended in one transaction when the store
    has ``append_batch`` (group commit), else one by one. Failures of the store itself
    propagate: the caller must not report the input as taken.
    """

    def __init__(self, gate: IngestGate) -> None:
        self.gate = gate
        self._lock = threading.Lock()
        self._tally = Tally()

    def process(self, jobs: Sequence[Job]) -> list[Outcome]:
        """Run ``jobs``; when this returns, each is stored or quarantined.

        Raises:
            Exception: Whatever the store raises when it cannot write; quarantined jobs
                may be recorded already (appends are idempotent, so a retry is safe).
        """
        with self._lock:
            outcomes: list[Outcome | None] = []
            passed: list[tuple[int, str, Event]] = []
            for job in jobs:
                checked = self._triage(job)
                if isinstance(checked, Outcome):
                    outcomes.append(checked)
                else:
                    passed.append((len(outcomes), *checked))
                    outcomes.append(None)
            for index, outcome in self._store(passed):
                outcomes[index] = outcome
            done = [o for o in outcomes if o is not None]
            assert len(done) == len(jobs)
            self._tally = self._tally.add(done)
        return done

    def statistics(self) -> Tally:
        """Everything this pipeline has processed so far."""
        with self._lock:
            return self._tally

    def _now(self) -> str:
        return format_time(self.gate.clock.now())

    def _quarantine(self, source: str, reason: str, text: str, status: int = 400) -> Outcome:
        # Quarantine keeps the input as received, but never a secret in it (or quoted in
        # the reason), and a store only takes valid Unicode.
        reason = redact_text(printable(reason, 4000), self.gate.redaction)
        text = quarantined_text(text, self.gate.redaction)
        qid = self.gate.store.quarantine(source, reason, text, self._now())
        return Outcome(Verdict.QUARANTINED, quarantine_id=qid, reason=reason, status=status)

    def _triage(self, job: Job) -> Outcome | tuple[str, Event]:
        """Quarantine what fails a gate; return ``(stream, event)`` for what passes."""
        if isinstance(job, Refuse):
            return self._quarantine(job.source, job.reason, job.payload, job.status)
        text = _text_of(job.payload)
        try:
            raw, event = self._check(job.payload, text)
        except ValidationError as exc:
            return self._quarantine(job.source, str(exc), text)
        origin = job.origin
        if origin is not None:
            if is_reserved(event.type) and event.type not in origin.allow_types:
                reason = (
                    f"type: {event.type} is reserved for Warden's own events and the sender"
                    f" {origin.name} is not granted it (add it to {origin.grant_hint} if this"
                    " sender is trusted to report it)"
                )
                return self._quarantine(job.source, reason, text, 403)
            # Set by us, never by the sender: a sender's own wardensource is overwritten.
            marked = {**event.extensions, SOURCE_EXTENSION: origin.name}
            event = replace(event, extensions=marked)
        return job.stream or stream_for(raw), event

    def _store(self, passed: list[tuple[int, str, Event]]) -> list[tuple[int, Outcome]]:
        if not passed:
            return []
        store = self.gate.store
        if isinstance(store, BatchAppender):
            new_ids: set[str] = set()
            results = store.append_batch(
                [(stream, [event]) for _, stream, event in passed], new_ids=new_ids
            )
            stored = [found for (found,) in results]
        else:  # a store without batches: one append each, new if placed after the head
            before = store.head()
            stored = [store.append(stream, [event])[0] for _, stream, event in passed]
            new_ids = {event.id for event in stored if event.position > before}
        seen: set[str] = set()
        out: list[tuple[int, Outcome]] = []
        for (index, _, _), event in zip(passed, stored, strict=True):
            old = event.id not in new_ids or event.id in seen
            seen.add(event.id)
            verdict = Verdict.DUPLICATE if old else Verdict.ACCEPTED
            out.append((index, Outcome(verdict, event.id, event.stream, status=202)))
        return out

    def _check(self, payload: str | bytes | dict[str, Any], text: str) -> tuple[Any, Event]:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.gate.max_bytes:
            raise ValidationError(
                f"event is {size} bytes, the limit is {self.gate.max_bytes}",
                field="size",
                fix="send smaller events or raise the limit",
            )
        if isinstance(payload, dict):
            raw: Any = payload
        else:
            try:
                raw = json.loads(text)
            except (ValueError, RecursionError) as exc:
                raise ValidationError(f"not JSON: {exc!s:.200}") from None
        if not isinstance(raw, dict):
            raise ValidationError("the event is not a JSON object", field="(root)")
        try:
            return raw, self.gate.check(raw)
        except ValidationError:
            raise
        except (ValueError, TypeError, KeyError, OverflowError, RecursionError) as exc:
            raise ValidationError(f"cannot validate the event: {exc!s:.200}") from None
