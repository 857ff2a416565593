"""Undoing completed steps after a failure, and saying what could not be undone. Runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING

from warden.domain import events as ev
from warden.remediation.lifecycle import Lifecycle

if TYPE_CHECKING:
    from warden.domain.incident import Incident


class Undoing(Lifecycle):
    """Compensates completed steps in reverse, then closes the incident."""

    def _fail_plan(self, current: Incident, reason: str) -> None:
        """Undo completed steps in reverse when any can be undone; else escalate."""
        if self._compensable(current):
            started = self._event(current, ev.COMPENSATION_STARTED, {"reason": reason})
            self._append(current, current.id, started)
            return
        left = self._not_undone(current)
        self._close(
            current, ev.INCIDENT_ESCALATED, f"{reason}; left as is: {left}" if left else reason
        )

    def _compensable(self, current: Incident) -> list[int]:
        """Completed steps with a runnable compensation, last first."""
        return [
            i
            for i in sorted(current.succeeded, reverse=True)
            if not self._why_not_undone(current, i)
        ]

    def _why_not_undone(self, current: Incident, index: int) -> str:
        """Why completed step ``index`` cannot be compensated ("" when it can)."""
        assert current.plan is not None
        step = current.plan.steps[index]
        spec = self.catalog.get(step.action)
        if spec is None or not spec.compensation:
            return f"step {index} ({step.action}) has no compensation"
        if not self.executor.can_run(spec.compensation):
            return f"step {index} ({step.action}): no adapter runs {spec.compensation}"
        missing = spec.missing_undo(current.output_of(index))
        if missing:
            return (
                f"step {index} ({step.action}) cannot be undone: its result did not report"
                f" undo_params {', '.join(missing)}, and {spec.compensation} with the step's"
                " own parameters would only repeat it"
            )
        return ""

    def _not_undone(self, current: Incident) -> str:
        """The completed steps no compensation will undo, with why, for the human."""
        assert current.plan is not None
        reasons = [
            why
            for index in sorted(current.succeeded)
            if index not in current.compensated
            and self.catalog.get(current.plan.steps[index].action) is not None
            for why in [self._why_not_undone(current, index)]
            if why
        ]
        return "; ".join(reasons)

    def _compensate(self, current: Incident) -> None:
        if current.compensation_in_flight is not None:
            self._recover(current)
            return
        if current.compensation_failed:
            failed = ", ".join(map(str, current.compensation_failed))
            self._close(current, ev.INCIDENT_ESCALATED, f"compensation of step {failed} failed")
            return
        done = set(current.compensating)
        floor = min(done) if done else len(current.step_hashes)
        pending = [i for i in self._compensable(current) if i < floor]
        if pending:
            if self._hold_leases(current):
                self.executor.run_compensation(current, pending[0])
            return
        left = self._not_undone(current)
        if current.compensated:
            undone = ", ".join(str(i) for i in current.compensated)
            reason = f"steps {undone} undone; a human follows up"
            self._close(current, ev.INCIDENT_ROLLED_BACK, f"{reason} ({left})" if left else reason)
        else:
            reason = "nothing could be undone"
            self._close(current, ev.INCIDENT_ESCALATED, f"{reason}: {left}" if left else reason)
