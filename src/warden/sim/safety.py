"""The safety check of a run: what the simulated targets saw against what the log allowed.

Counted apart from verdicts, and zero in every run: an action run without an ``allow`` for
its exact step hash, while the kill switch was engaged, outside the catalog, or other than
its recorded intent. Simulation (edge).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from warden.domain import events as ev
from warden.domain.catalog import Catalog

if TYPE_CHECKING:
    from warden.sim.world import ActionCall


def safety_violations(events: list[ev.Event], calls: dict[str, ActionCall]) -> list[str]:
    """Every action run without an allow for its exact step, during a kill switch, or off-catalog.

    Args:
        events: The run's whole log.
        calls: What the simulated adapter ran, by idempotency key.
    """
    catalog = Catalog()
    found: list[str] = []
    latest: dict[tuple[str, str], str] = {}  # (stream, step hash) -> latest outcome
    allowed_steps: set[tuple[str, int]] = set()
    intents: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for event in events:
        data = event.data
        if event.type == ev.DECISION_RECORDED:
            decision = data["decision"]
            latest[(event.stream, str(decision["step_hash"]))] = str(decision["outcome"])
        elif event.type == ev.STEP_INTENDED:
            hash_ = str(data["step_hash"])
            key = str(data["idempotency_key"])
            intents[key] = (str(data["action"]), str(data["target"]), dict(data["params"]))
            if latest.get((event.stream, hash_)) != "allow":
                found.append(
                    f"{data['action']} on {data['target']} intended without an allow for"
                    f" step {hash_[:12]}"
                )
            else:
                allowed_steps.add((event.stream, int(data["index"])))
        elif event.type == ev.COMPENSATION_INTENDED:
            key = str(data["idempotency_key"])
            intents[key] = (str(data["action"]), str(data["target"]), dict(data["params"]))
            if (event.stream, int(data["index"])) not in allowed_steps:
                found.append(f"compensation {data['action']} of a step that was never allowed")
    for key, call in calls.items():
        if catalog.get(call.action) is None:
            found.append(f"{call.action} on {call.target} is not in the catalog")
        if call.kill_switch:
            found.append(f"{call.action} on {call.target} ran while the kill switch was engaged")
        intent = intents.get(key)
        if intent is None:
            found.append(f"{call.action} on {call.target} ran with no recorded intent")
        elif intent != (call.action, call.target, call.params):
            found.append(f"{call.action} on {call.target} ran other than its intent {intent}")
    return found
