"""The event envelope (CloudEvents 1.0 compatible) and the names of Warden's events. Pure core.

Every fact Warden knows is an :class:`Event` in the store: what it ingested, what agents
proposed, what the control plane decided, what the executor intended and observed.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from warden.domain.ids import derived_id

SPEC_VERSION = "1.0"
WARDEN_SOURCE = "warden://runtime"

# Data plane
PROBE_FAILED = "warden.probe.failed"
PROBE_SUCCEEDED = "warden.probe.succeeded"
DEPLOY_COMPLETED = "warden.deploy.completed"
METRIC_SAMPLED = "warden.metric.sampled"
BATCH_FAILED = "warden.pipeline.batch_failed"
BATCH_RECOVERED = "warden.pipeline.batch_recovered"
STATE_OBSERVED = "warden.state.observed"
DRIFT_DETECTED = "warden.drift.detected"
DRIFT_RESOLVED = "warden.drift.resolved"
# Incident lifecycle
INCIDENT_OPENED = "warden.incident.opened"
PLAN_PROPOSED = "warden.plan.proposed"
PLAN_REJECTED = "warden.plan.rejected"
DECISION_RECORDED = "warden.decision.recorded"
APPROVAL_GRANTED = "warden.approval.granted"
STEP_INTENDED = "warden.step.intended"
STEP_SUCCEEDED = "warden.step.succeeded"
STEP_FAILED = "warden.step.failed"
STEP_RETRY_SCHEDULED = "warden.step.retry_scheduled"
COMPENSATION_STARTED = "warden.compensation.started"
COMPENSATION_INTENDED = "warden.compensation.intended"
COMPENSATION_SUCCEEDED = "warden.compensation.succeeded"
COMPENSATION_FAILED = "warden.compensation.failed"
COMPENSATION_HELD = "warden.compensation.held"
VERIFICATION_STARTED = "warden.verification.started"
VERIFICATION_PASSED = "warden.verification.passed"
VERIFICATION_FAILED = "warden.verification.failed"
INCIDENT_RESOLVED = "warden.incident.resolved"
INCIDENT_ESCALATED = "warden.incident.escalated"
INCIDENT_ROLLED_BACK = "warden.incident.rolled_back"
INCIDENT_ANNOTATED = "warden.incident.annotated"
INCIDENT_RELAPSED = "warden.incident.relapsed"
EVIDENCE_ADDED = "warden.incident.evidence_added"
INCIDENT_REPAGED = "warden.incident.repaged"
PLAN_MERGED = "warden.plan.merged"
ALERT_FIRING = "warden.alert.firing"
ALERT_RESOLVED = "warden.alert.resolved"
# Control
KILL_SWITCH_ENGAGED = "warden.killswitch.engaged"
KILL_SWITCH_RELEASED = "warden.killswitch.released"
AUTONOMY_CHANGED = "warden.autonomy.changed"
POLICY_LOADED = "warden.policy.loaded"
POLICY_REJECTED = "warden.policy.rejected"
APPROVAL_REQUESTED = "warden.approval.requested"
APPROVAL_EXPIRED = "warden.approval.expired"
SHADOW_DECIDED = "warden.shadow.decided"
# People: who may authenticate, with which role (see warden.domain.users)
USER_ADDED = "warden.user.added"
USER_REVOKED = "warden.user.revoked"
APPROVAL_REJECTED = "warden.approval.rejected"
# An admin read the unredacted original of an event (the original itself is never logged)
ORIGINAL_READ = "warden.original.read"

# Runbooks (see warden.runbooks): a set loaded or refused, a shadow runbook's would-be plan
RUNBOOKS_LOADED = "warden.runbooks.loaded"
RUNBOOKS_REJECTED = "warden.runbooks.rejected"
RUNBOOK_SHADOWED = "warden.runbook.shadowed"

# A candidate runbook, agent or bundle scored on the scenario library and on history
# (`warden evaluate --record`); promotion reads these as its evidence
CANDIDATE_EVALUATED = "warden.candidate.evaluated"
# Versions of what decides (see warden.domain.versions): loaded, promoted, rolled back; a
# candidate agent's would-be plan (a runbook's is RUNBOOK_SHADOWED)
VERSIONS_LOADED = "warden.versions.loaded"
VERSION_PROMOTED = "warden.version.promoted"
VERSION_ROLLED_BACK = "warden.version.rolled_back"
AGENT_SHADOWED = "warden.agent.shadowed"

SHADOW_STREAM = "shadow"
RUNBOOKS_STREAM = "runbooks"
CANDIDATES_STREAM = "candidates"
LIFECYCLE_STREAM = "lifecycle"

CONTROL_STREAM = "control"
USERS_STREAM = "users"


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds, the one spelling of time in events."""
    if moment.tzinfo is None:
        raise ValueError("event times must be timezone-aware")
    # isoformat, not strftime: twice as fast, and a year before 1000 keeps its four digits
    # (strftime writes year 5 as "5", which parse_time cannot read back).
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp; naive times are refused.

    Folds and agents parse the same stamps again and again: the answers are remembered.
    """
    if type(text) is str:
        return _parse_time(text)
    return _parse_time.__wrapped__(text)


def parse_time_once(text: str) -> datetime:
    """:func:`parse_time` for a stamp read once (an input's own time), not remembered.

    Remembering every input's time would cost more than parsing it, and would push out
    the stamps that are read again and again.
    """
    return _parse_time.__wrapped__(text)


@functools.lru_cache(maxsize=1 << 16)
def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no timezone offset")
    return moment.astimezone(UTC)


# A stamp already spelled as format_time spells it, but for a "+00:00" in place of the
# "Z": what senders that keep UTC with microseconds send. ASCII digits only, so that a
# stamp that parses holds exactly these fields.
_UTC_MICROS = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}(?:Z|\+00:00)"
)


def read_time(text: str) -> tuple[datetime, str]:
    """The moment of an RFC 3339 ``text`` and its spelling in events: ``format_time`` of it.

    For stamps read once (the ingest gate's): neither is remembered, as each new stamp
    would push out one that folds read again. Raises ValueError as :func:`parse_time`.
    """
    if type(text) is str and _UTC_MICROS.fullmatch(text) is not None:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            pass  # an hour 24 or a 30 February: parse_time's own error, below
        else:
            # isoformat (format_time's cost) would write these same characters again.
            return moment, text[:26] + "Z"
    moment = parse_time_once(text)
    return moment, format_time(moment)


@dataclass(frozen=True, slots=True)
class Event:
    """One CloudEvents-compatible fact.

    ``stream`` and ``position`` are assigned by the store: the stream the event belongs to
    (``incident-<id>``, ``service-<name>``, ``control``) and its global position.
    """

    id: str
    source: str
    type: str
    time: str
    data: dict[str, Any]
    subject: str = ""
    schema_version: int = 1
    traceparent: str = ""
    correlation_id: str = ""
    stream: str = ""
    position: int = 0
    extensions: dict[str, str] = field(default_factory=dict)

    @property
    def moment(self) -> datetime:
        """The event time as an aware datetime."""
        return parse_time(self.time)

    def in_stream(self, stream: str) -> Event:
        """The same event, addressed to ``stream``."""
        return replace(self, stream=stream)

    def to_cloudevent(self) -> dict[str, Any]:
        """The structured-mode CloudEvents 1.0 JSON object of this event."""
        out: dict[str, Any] = {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time,
            "datacontenttype": "application/json",
            "data": self.data,
            "schemaversion": self.schema_version,
        }
        if self.subject:
            out["subject"] = self.subject
        if self.traceparent:
            out["traceparent"] = self.traceparent
        if self.correlation_id:
            out["correlationid"] = self.correlation_id
        out.update(self.extensions)
        return out

    def to_record(self) -> dict[str, Any]:
        """Everything the store keeps, as a JSON-compatible dict."""
        record = self.to_cloudevent()
        record["stream"] = self.stream
        record["position"] = self.position
        return record


def derived_event(
    type_: str,
    stream_key: str,
    data: dict[str, Any],
    time: str,
    *,
    key: str = "",
    subject: str = "",
    correlation_id: str = "",
    traceparent: str = "",
) -> Event:
    """An event Warden itself derives, with an id that replay reproduces.

    The id is a function of the stream key, the event type and ``key`` (what makes this
    event unique within its stream), so appending it twice is a no-op.
    """
    return Event(
        id=derived_id(stream_key, type_, key),
        source=WARDEN_SOURCE,
        type=type_,
        time=time,
        data=data,
        subject=subject,
        correlation_id=correlation_id,
        traceparent=traceparent,
    )
