"""Replay's decision diff: incidents as replay compares them, and their differences. App layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from warden.domain.decisions import outcome_label

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from warden.domain.incident import Incident


@dataclass(frozen=True, slots=True)
class IncidentView:
    """What is compared of one incident: its plan, the decisions on it, where it ended."""

    incident_id: str
    service: str
    kind: str
    agent: str
    steps: tuple[str, ...]
    decisions: tuple[str, ...]
    state: str
    opened_at: str = ""  # not compared: what the candidate's evaluation matches by

    @property
    def plan(self) -> str:
        """The plan in one line: its agent and steps ("" when there was none)."""
        return f"{self.agent}: {', '.join(self.steps)}" if self.agent else ""

    @classmethod
    def of(cls, incident: Incident) -> IncidentView:
        """The view of a folded incident."""
        plan = incident.plan
        index = {h: i for i, h in enumerate(incident.step_hashes)}
        return cls(
            incident.id,
            incident.service,
            incident.kind,
            plan.agent if plan is not None else "",
            tuple(step_text(s.action, s.target, dict(s.params)) for s in plan.steps)
            if plan
            else (),
            tuple(
                f"step {index.get(d.step_hash, '?')}: {outcome_label(d.outcome.value, d.approvers)}"
                f" ({d.reasons[0].policy_id if d.reasons else 'no policy'})"
                for d in incident.decisions
            ),
            incident.state.value,
            incident.opened_at,
        )


def step_text(action: str, target: str, params: Mapping[str, Any]) -> str:
    """A step as replay and evaluation show it: ``action(target: k=v, k=v)``."""
    shown = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{action}({target}{': ' + shown if shown else ''})"


@dataclass(frozen=True, slots=True)
class Difference:
    """One way the replay decided otherwise than the record."""

    incident_id: str
    service: str
    what: str
    recorded: str
    replayed: str


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """The outcome of a replay: what was fed, and every difference found."""

    inputs: int
    recorded: tuple[IncidentView, ...]
    replayed: tuple[IncidentView, ...]
    differences: tuple[Difference, ...]
    notes: tuple[str, ...] = field(default=())
    # What candidate agents in shadow (agents.shadow) proposed in the replay: the data of
    # each ``warden.agent.shadowed``, in log order. Never acted on.
    shadowed: tuple[dict[str, Any], ...] = field(default=())

    @property
    def identical(self) -> bool:
        """True when the replay decided exactly as recorded."""
        return not self.differences


def compare(recorded: Iterable[IncidentView], replayed: Iterable[IncidentView]) -> list[Difference]:
    """Every difference between two sets of incidents, by incident."""
    before = {v.incident_id: v for v in recorded}
    after = {v.incident_id: v for v in replayed}
    out: list[Difference] = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old is None or new is None:
            seen = old or new
            assert seen is not None
            summary = f"{seen.kind} on {seen.service}, {seen.state}"
            out.append(
                Difference(
                    key,
                    seen.service,
                    "incident",
                    summary if old is not None else "not opened",
                    summary if new is not None else "not opened",
                )
            )
            continue
        for what, a, b in (
            ("plan", old.plan, new.plan),
            ("decisions", "; ".join(old.decisions), "; ".join(new.decisions)),
            ("final state", old.state, new.state),
        ):
            if a != b:
                out.append(Difference(key, old.service, what, a or "none", b or "none"))
    return out
