"""The executor: runs one allowed step with an intent before and a result after. Action plane.

It refuses any step that the control plane did not allow for its exact hash, writes the
intent (with the step's idempotency key) before touching anything, runs the adapter under
the action's timeout, and records the outcome.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.domain import events as ev
from warden.domain.errors import PolicyDenied
from warden.domain.ids import derived_id, incident_stream
from warden.ports import ActionAdapter, ActionResult, Clock, EventStore

if TYPE_CHECKING:
    from collections.abc import Mapping

    from warden.domain.catalog import Catalog
    from warden.domain.control import Controls
    from warden.domain.incident import Incident


@dataclass(frozen=True, slots=True)
class StepRun:
    """What one run of a step left in the store."""

    intent: ev.Event
    result: ev.Event
    ok: bool


def _run_with_timeout(
    adapter: ActionAdapter, action: str, target: str, params: dict[str, object], timeout: float
) -> ActionResult:
    box: list[ActionResult] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            box.append(adapter.run(action, target, params))
        except Exception as exc:  # an adapter's crash is a failed step, never a dead runtime
            failure.append(exc)

    worker = threading.Thread(target=work, name=f"step-{action}-{target}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return ActionResult(False, f"timed out after {timeout:g} s", {})
    if failure:
        return ActionResult(False, f"adapter error: {failure[0]}", {})
    return box[0]


class Executor:
    """Runs allowed steps through the adapter registered for each action."""

    def __init__(
        self,
        store: EventStore,
        catalog: Catalog,
        adapters: Mapping[str, ActionAdapter],
        clock: Clock,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.adapters = adapters
        self.clock = clock

    def run_next_step(self, incident: Incident, controls: Controls) -> StepRun:
        """Run the incident's next step; raises :class:`PolicyDenied` if it is not allowed."""
        if incident.plan is None or incident.next_step >= len(incident.step_hashes):
            raise PolicyDenied(f"incident {incident.id} has no step left to run")
        index = incident.next_step
        hash_ = incident.step_hashes[index]
        step = incident.plan.steps[index]
        if not incident.allowed(hash_):
            raise PolicyDenied(f"step {index} of incident {incident.id} was not allowed")
        if controls.kill_switch:
            raise PolicyDenied("kill switch engaged", ("guardrail:kill-switch",))
        spec = self.catalog.get(step.action)
        adapter = self.adapters.get(step.action)
        if spec is None or adapter is None:
            raise PolicyDenied(f"no adapter runs {step.action!r}")
        stream = incident_stream(incident.id)
        key = derived_id("idempotency", incident.id, hash_)
        common = {
            "subject": step.target,
            "correlation_id": incident.correlation_id,
            "traceparent": incident.traceparent,
        }
        intent = ev.derived_event(
            ev.STEP_INTENDED,
            stream,
            {
                "index": index,
                "step_hash": hash_,
                "idempotency_key": key,
                "action": step.action,
                "target": step.target,
                "params": dict(step.params),
                "timeout_s": spec.timeout_s,
            },
            ev.format_time(self.clock.now()),
            key=str(index),
            **common,
        )
        (intent,) = self.store.append(stream, [intent], expected_version=incident.version)
        started = time.monotonic()
        result = _run_with_timeout(
            adapter, step.action, step.target, dict(step.params), spec.timeout_s
        )
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        outcome = ev.derived_event(
            ev.STEP_SUCCEEDED if result.ok else ev.STEP_FAILED,
            stream,
            {
                "index": index,
                "step_hash": hash_,
                "idempotency_key": key,
                "detail": result.detail,
                "output": result.output,
                "duration_ms": duration_ms,
            },
            ev.format_time(self.clock.now()),
            key=str(index),
            **common,
        )
        (outcome,) = self.store.append(stream, [outcome], expected_version=incident.version + 1)
        return StepRun(intent, outcome, result.ok)
