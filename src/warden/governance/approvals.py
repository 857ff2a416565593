"""Human approvals: who counts, quorum, expiry and the safe fallback. Control plane.

An approval names the exact hash of the proposal it approves (the incident state machine
refuses any other), counts once per person, never from the proposing agent, and only
while the request is open. When approvers are configured, only they count, and when the
policy names roles, only approvers holding one of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from warden.domain.decisions import Decision
    from warden.domain.incident import Incident

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
    """The approvals that count for one pending decision."""

    counted: tuple[str, ...]
    ignored: tuple[tuple[str, str], ...]  # (approver, why)
    roles: tuple[str, ...]
    needed: int

    @property
    def met(self) -> bool:
        """True when enough approvals count."""
        return len(self.counted) >= self.needed


def tally(
    incident: Incident,
    pending: Decision,
    settings: ApprovalSettings,
    agents: frozenset[str] = frozenset(),
) -> Tally:
    """Count the approvals given for the pending step; agents' approvals never count."""
    counted: list[str] = []
    ignored: list[tuple[str, str]] = []
    roles: set[str] = set()
    for approver in incident.approvers_of(pending.step_hash):
        if approver in agents:
            ignored.append((approver, "an agent, not a person"))
            continue
        if settings.approvers and approver not in settings.approvers:
            ignored.append((approver, "not a configured approver"))
            continue
        held = set(settings.approvers.get(approver, ()))
        if pending.approver_roles and not held & set(pending.approver_roles):
            ignored.append(
                (approver, f"holds none of the roles {', '.join(pending.approver_roles)}")
            )
            continue
        counted.append(approver)
        roles |= held
    return Tally(tuple(counted), tuple(ignored), tuple(sorted(roles)), max(1, pending.approvers))
