"""Plans that agents propose: ordered steps with rationale, evidence and confidence. Pure core."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warden.domain.canonical import content_hash


@dataclass(frozen=True, slots=True)
class Step:
    """One action from the catalog, on one target, with its parameters."""

    action: str
    target: str
    params: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form, the basis of the step's hash."""
        return {"action": self.action, "target": self.target, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Step:
        """Inverse of :meth:`to_dict`."""
        params = raw.get("params") or {}
        return cls(str(raw["action"]), str(raw["target"]), tuple(sorted(params.items())))


@dataclass(frozen=True, slots=True)
class Plan:
    """What an agent proposes for an incident, and why."""

    agent: str
    steps: tuple[Step, ...]
    rationale: str
    evidence: tuple[str, ...]
    confidence: float
    expected_outcome: str = ""
    agent_version: str = ""  # the content hash of a runbook; "" for code agents

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be within [0, 1], got {self.confidence}")
        if not self.steps:
            raise ValueError("a plan needs at least one step")

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as stored in ``warden.plan.proposed``."""
        found: dict[str, Any] = {
            "agent": self.agent,
            "steps": [s.to_dict() for s in self.steps],
            "rationale": self.rationale,
            "evidence": list(self.evidence),
            "confidence": self.confidence,
            "expected_outcome": self.expected_outcome,
        }
        if self.agent_version:
            found["agent_version"] = self.agent_version
        return found

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Plan:
        """Inverse of :meth:`to_dict`."""
        return cls(
            agent=str(raw["agent"]),
            steps=tuple(Step.from_dict(s) for s in raw["steps"]),
            rationale=str(raw["rationale"]),
            evidence=tuple(str(e) for e in raw["evidence"]),
            confidence=float(raw["confidence"]),
            expected_outcome=str(raw.get("expected_outcome", "")),
            agent_version=str(raw.get("agent_version", "")),
        )


def step_hash(incident_id: str, index: int, step: Step) -> str:
    """The identity of one proposed step: what an allow or an approval is bound to."""
    return content_hash({"incident": incident_id, "index": index, "step": step.to_dict()})
