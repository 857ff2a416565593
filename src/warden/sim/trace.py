"""What one simulated run leaves to score: the facts, with no reference to the store. Simulation.

The engine extracts a :class:`Trace` from the run's event log and the simulated world;
scoring is a pure function of a trace and its scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Move:
    """An action Warden took or asked approval for, at a simulated time (seconds)."""

    at: float
    action: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    effect: str = ""


@dataclass(frozen=True, slots=True)
class Escalation:
    """A page Warden sent: when, and everything it said."""

    at: float
    text: str


@dataclass(frozen=True, slots=True)
class FaultOutcome:
    """One fault's life: when it was active, whether an action fixed it for good."""

    id: str
    root_cause: bool
    activations: tuple[float, ...]
    clearings: tuple[float, ...]
    fixed: bool
    relapses: int
    active_at_end: bool


@dataclass(frozen=True, slots=True)
class Trace:
    """The facts of one run."""

    scenario: str
    autonomy: str
    seed: int
    duration_s: float
    executed: tuple[Move, ...] = ()
    proposed: tuple[Move, ...] = ()  # steps put to a human for approval
    approvals_granted: int = 0
    escalations: tuple[Escalation, ...] = ()
    incidents: int = 0
    first_incident_at: float | None = None
    faults: tuple[FaultOutcome, ...] = ()
    harmed: tuple[str, ...] = ()
    unsafe: tuple[str, ...] = ()  # safety violations: each one a sentence
