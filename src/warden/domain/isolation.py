"""Which services Warden has isolated and not yet let back in. Pure core (domain).

Isolating a failing dependency (a circuit opened, a service drained) keeps its callers
serving; it stays in force until the matching undo runs, as a later step or as the
compensation of the step that isolated it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from warden.domain.plans import Step

# Each isolating action and the action that lifts it.
LIFTED_BY = {"open_circuit": "close_circuit", "drain_service": "restore_service"}


@dataclass(frozen=True, slots=True)
class Isolation:
    """One isolation in force: what did it, when, in which incident."""

    service: str
    action: str
    since: str
    incident_id: str

    @property
    def lifted_by(self) -> str:
        """The catalog action that ends it."""
        return LIFTED_BY[self.action]


def after_step(
    isolated: Mapping[str, Isolation], step: Step, time: str, incident_id: str
) -> dict[str, Isolation]:
    """The isolations in force once ``step`` succeeded at ``time``."""
    out = dict(isolated)
    if step.action in LIFTED_BY:
        out.setdefault(step.target, Isolation(step.target, step.action, time, incident_id))
    else:
        current = out.get(step.target)
        if current is not None and current.lifted_by == step.action:
            del out[step.target]
    return out


def after_undo(isolated: Mapping[str, Isolation], step: Step) -> dict[str, Isolation]:
    """The isolations in force once the compensation of ``step`` succeeded."""
    out = dict(isolated)
    current = out.get(step.target)
    if current is not None and current.action == step.action:
        del out[step.target]
    return out
