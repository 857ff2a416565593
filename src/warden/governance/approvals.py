"""Human approvals: who counts, quorum, expiry and the safe fallback. Control plane.

An approval names the exact hash of the proposal it approves (the incident state machine
refuses any other), counts once per authenticated person, never from the proposing agent,
and only while the request is open. It counts only when signed by a registered, active
user whose role may approve, with the key registered for them (so a hand-written or
revoked approval stops counting at once). When approvers are configured, only they count,
and when the policy names roles, only approvers holding one of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from warden.domain import events as ev
from warden.governance.identity import approval_problem

if TYPE_CHECKING:
    from collections.abc import Mapping

    from warden.domain.decisions import Decision
    from warden.domain.incident import Incident
    from warden.domain.users import Registry

FALLBACKS = ("escalate", "do_nothing")


@dataclass(frozen=True, slots=True)
class ApprovalSettings:
    """How long approvals may take, what happens after, and who may give them."""

    timeout_s: float = 900.0
    fallback: str = "escalate"
    approvers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name -> roles

    def __post_init__(self) -> None:
        if self.fallback not in FALLBACKS:
            raise ValueError(f"approval fallback must be one of {FALLBACKS}, not {self.fallback!r}")


@dataclass(frozen=True, slots=True)
class Tally:
    """The approvals (and rejections) that count for one pending decision."""

    counted: tuple[str, ...]
    ignored: tuple[tuple[str, str], ...]  # (approver, why)
    roles: tuple[str, ...]
    needed: int
    rejected: tuple[str, ...] = ()  # who rejected the step, when their rejection counts

    @property
    def met(self) -> bool:
        """True when enough approvals count and nobody who may decide rejected the step."""
        return len(self.counted) >= self.needed and not self.rejected


def tally(
    incident: Incident,
    pending: Decision,
    settings: ApprovalSettings,
    agents: frozenset[str] = frozenset(),
    *,
    users: Registry,
) -> Tally:
    """Count the approvals given for the pending step: distinct, authenticated people only.

    Agents' approvals never count, nor an approval that ``users`` does not verify (unknown
    or revoked approver, a role that may not approve, a bad signature), nor one signed
    after the approval window closed, nor a second one made with the same key. One
    rejection that would have counted as an approval rejects the step.
    """
    counted: list[str] = []
    ignored: list[tuple[str, str]] = []
    roles: set[str] = set()
    keys: dict[str, str] = {}
    for data in incident.approvals_of(pending.step_hash):
        approver = data.get("approver", "")
        problem = _problem(incident, pending, settings, agents, users, data, "approve")
        holder = users.current(approver)
        key = holder.public_key if holder is not None else ""
        if problem is None and (key in keys or approver in counted):
            problem = f"the same person as {keys.get(key, approver)}"
        if problem is not None:
            ignored.append((approver, problem))
            continue
        keys[key] = approver
        counted.append(approver)
        roles |= set(settings.approvers.get(approver, ()))
    rejected: list[str] = []
    for data in incident.rejections_of(pending.step_hash):
        who = data.get("approver", "")
        problem = _problem(incident, pending, settings, agents, users, data, "reject")
        if problem is not None:
            ignored.append((who, f"rejection not counted: {problem}"))
        elif who not in rejected:
            rejected.append(who)
    needed = max(1, pending.approvers)
    return Tally(tuple(counted), tuple(ignored), tuple(sorted(roles)), needed, tuple(rejected))


def _problem(
    incident: Incident,
    pending: Decision,
    settings: ApprovalSettings,
    agents: frozenset[str],
    users: Registry,
    data: Mapping[str, str],
    decision: str,
) -> str | None:
    """Why one recorded approval or rejection must not count, or None."""
    approver = data.get("approver", "")
    if approver in agents:
        return "an agent, not a person"
    problem = approval_problem(users, incident.id, data, decision=decision)
    if problem is not None:
        return problem
    expires_at = next((e for h, e in incident.approval_requests if h == pending.step_hash), "")
    if expires_at and ev.parse_time(data["signed_at"]) > ev.parse_time(expires_at):
        return "signed after the approval window closed"
    if settings.approvers and approver not in settings.approvers:
        return "not a configured approver"
    held = set(settings.approvers.get(approver, ()))
    if pending.approver_roles and not held & set(pending.approver_roles):
        return f"holds none of the roles {', '.join(pending.approver_roles)}"
    return None
