"""Control-plane decisions: allow, deny or needs_approval(n), always with reasons. Pure core."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """What the control plane said about one step."""

    ALLOW = "allow"
    DENY = "deny"
    NEEDS_APPROVAL = "needs_approval"


def outcome_label(outcome: str, approvers: int = 0) -> str:
    """The one spelling of an outcome for people: ``allow``, ``deny``, ``needs_approval(n)``."""
    return f"{outcome}({approvers})" if outcome == Outcome.NEEDS_APPROVAL.value else outcome


@dataclass(frozen=True, slots=True)
class Reason:
    """Why: the policy (or guardrail) that decided, and its message."""

    policy_id: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """JSON form."""
        return {"policy_id": self.policy_id, "message": self.message}


@dataclass(frozen=True, slots=True)
class Decision:
    """The control plane's answer for the step with hash ``step_hash``."""

    outcome: Outcome
    step_hash: str
    reasons: tuple[Reason, ...]
    approvers: int = 0
    bundle_version: str = ""
    approver_roles: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as stored in ``warden.decision.recorded``."""
        return {
            "outcome": self.outcome.value,
            "step_hash": self.step_hash,
            "reasons": [r.to_dict() for r in self.reasons],
            "approvers": self.approvers,
            "approver_roles": list(self.approver_roles),
            "bundle_version": self.bundle_version,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Decision:
        """Inverse of :meth:`to_dict`."""
        return cls(
            outcome=Outcome(raw["outcome"]),
            step_hash=str(raw["step_hash"]),
            reasons=tuple(Reason(str(r["policy_id"]), str(r["message"])) for r in raw["reasons"]),
            approvers=int(raw.get("approvers", 0)),
            bundle_version=str(raw.get("bundle_version", "")),
            approver_roles=tuple(str(r) for r in raw.get("approver_roles", ())),
        )

    def describe(self) -> str:
        """One line for people: the outcome and the policies that decided."""
        head = outcome_label(self.outcome.value, self.approvers)
        if self.outcome is Outcome.NEEDS_APPROVAL and self.approver_roles:
            head += f" from {'/'.join(self.approver_roles)}"
        why = "; ".join(f"{r.policy_id}: {r.message}" for r in self.reasons)
        return f"{head} — {why}" if why else head
