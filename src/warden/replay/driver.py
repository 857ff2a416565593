"""Replay driver: a recorded history through today's agents and policies, diffed.

What came from outside (probe results, signals, alerts, approvals, kill switches,
autonomy changes) is fed again, in order and at its recorded time, to a fresh runtime on
a clock of its own; what actions did is answered from the record, so nothing runs. The
incidents, plans and decisions of the replay are then compared with the recorded ones.
With the configuration and policies that made the history, they are the same (DESIGN.md
invariant 7); with a candidate bundle or agent, the differences are what it would change.
App layer.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict, deque
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warden.assembly import build
from warden.domain import events as ev
from warden.domain import incident as incident_fold
from warden.domain.errors import InvalidTransition
from warden.domain.ids import incident_stream
from warden.ports import ActionResult, ManualClock
from warden.replay.diff import IncidentView, ReplayReport, compare

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from warden.agents.protocol import Agent
    from warden.config import WardenConfig
    from warden.runtime import Runtime


# Decided by people (or their tools) though written with Warden's own source.
HUMAN_INPUTS = frozenset(
    {ev.APPROVAL_GRANTED, ev.APPROVAL_REJECTED, ev.KILL_SWITCH_ENGAGED, ev.KILL_SWITCH_RELEASED,
     ev.AUTONOMY_CHANGED, ev.USER_ADDED, ev.USER_REVOKED}
)  # fmt: skip
# Seconds between rounds, as the live loop ticks. Coarser steps in quiet times would let a
# timer (a retry, a verification window) fire later than it did live, and a step run later
# would not count the probe results recorded right after the live one.
_STEP = 0.1


def is_input(event: ev.Event) -> bool:
    """Whether the runtime received ``event`` rather than derived it."""
    return event.source != ev.WARDEN_SOURCE or event.type in HUMAN_INPUTS


class RecordedOutcomes:
    """An action adapter that answers every step and compensation as the record says.

    Results are found by idempotency key, attempts in order. A step the history never
    ran fails, permanently, and is listed in :attr:`unrecorded`.
    """

    def __init__(self, history: Iterable[ev.Event]) -> None:
        self._results: dict[str, deque[ActionResult]] = defaultdict(deque)
        self._keys: dict[tuple[str, int], str] = {}
        self.unrecorded: list[str] = []
        for event in history:
            data = event.data
            if event.type in (ev.STEP_INTENDED, ev.COMPENSATION_INTENDED):
                self._keys[(event.stream, int(data["index"]))] = str(data["idempotency_key"])
            elif event.type in (
                ev.STEP_SUCCEEDED,
                ev.STEP_FAILED,
                ev.COMPENSATION_SUCCEEDED,
                ev.COMPENSATION_FAILED,
            ):
                key = self._keys.get((event.stream, int(data["index"])))
                if key is None:
                    continue
                ok = event.type in (ev.STEP_SUCCEEDED, ev.COMPENSATION_SUCCEEDED)
                output = dict(data.get("output") or {})
                if not ok:
                    output["retryable"] = bool(data.get("retryable", False))
                self._results[key].append(ActionResult(ok, str(data.get("detail", "")), output))

    def run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        """The recorded result of this step's next attempt."""
        results = self._results.get(str(params.get("idempotency_key", "")))
        if results:
            return results.popleft()
        self.unrecorded.append(f"{action} on {target}")
        return ActionResult(
            False,
            f"replay: {action} on {target} never ran in the recorded history",
            {"retryable": False},
        )

    def check(self, action: str, target: str, params: dict[str, Any] | None = None) -> None:
        """Nothing can be checked in a replay."""
        return None


def replay(
    history: Sequence[ev.Event],
    config: WardenConfig,
    *,
    agents: Sequence[Agent] | None = None,
    settle_s: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
    expected: Iterable[IncidentView] | None = None,
) -> ReplayReport:
    """Feed the inputs of ``history`` to a fresh runtime built from ``config``; compare.

    Args:
        history: Every event of a store, in log order.
        config: The configuration to replay with (``policy_dir`` chooses the bundle);
            its state directory is not touched: the replay keeps its own, temporary.
        agents: Agents to use instead of the configured ones (a candidate agent).
        settle_s: How long to run on after the last recorded event (none by default:
            the record does not say what the live runtime did later).
        progress: Called with (inputs fed, inputs in all) as the replay goes.
        expected: The incidents to compare with, when ``history`` holds only the inputs
            and the action results (a golden history), not the incidents themselves.
    """
    inputs = [e for e in history if is_input(e)]
    recorded = (
        tuple(expected)
        if expected is not None
        else tuple(IncidentView.of(i) for i in incident_fold.fold_all(history).values())
    )
    if not inputs:
        return ReplayReport(0, recorded, (), tuple(compare(recorded, ())))
    clock = ManualClock(inputs[0].moment)
    outcomes = RecordedOutcomes(history)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="warden-replay-") as state:
        # No connectors, and no model endpoint: a model is not asked again (its answer
        # would differ anyway); its recorded plans show as differences.
        quiet = replace(config, state_dir=Path(state), sources={}, model={})
        warden = build(quiet, clock, adapter=outcomes, probes={}, agents=agents)
        try:
            runtime = warden.runtime
            runtime.tick()
            for done, event in enumerate(inputs, start=1):
                _run_until(runtime, clock, event.moment)
                note = _feed(runtime, event)
                if note:
                    notes.append(note)
                runtime.tick()
                if progress is not None:
                    progress(done, len(inputs))
            # On to the last recorded event, whatever wrote it: the live runtime ran at
            # least that long after its last input (timers, detections that take time).
            horizon = max(e.moment for e in history) + timedelta(seconds=settle_s)
            _run_until(runtime, clock, horizon)
            replayed = tuple(IncidentView.of(i) for i in runtime.incidents.values())
            shadowed = tuple(
                e.data
                for e in warden.store.read_stream(ev.SHADOW_STREAM)
                if e.type == ev.AGENT_SHADOWED
            )
        finally:
            warden.close()
    notes += [f"a step the history never ran was decided: {s}" for s in outcomes.unrecorded]
    return ReplayReport(
        len(inputs),
        recorded,
        replayed,
        tuple(compare(recorded, replayed)),
        tuple(notes),
        shadowed,
    )


def _run_until(runtime: Runtime, clock: ManualClock, until: datetime) -> None:
    """Tick on the replay clock up to ``until``, a round every 0.1 s as the live loop."""
    step = timedelta(seconds=_STEP)
    while clock.now() < until:
        clock.advance_to(min(until, clock.now() + step))
        runtime.tick()


def _feed(runtime: Runtime, event: ev.Event) -> str:
    """Append one recorded input; an approval that no longer fits is skipped, with why."""
    store = runtime.store
    if event.type not in (ev.APPROVAL_GRANTED, ev.APPROVAL_REJECTED):
        store.append(event.stream, [replace(event, stream="", position=0)])
        return ""
    current = runtime.incidents.get(event.stream.removeprefix("incident-"))
    try:
        if current is None:
            raise InvalidTransition(f"no incident {event.stream.removeprefix('incident-')}")
        incident_fold.apply(current, event)
    except InvalidTransition as exc:
        who = event.data.get("approver", "?")
        return f"the approval by {who} at {event.time} did not apply in the replay: {exc}"
    store.append(
        incident_stream(current.id), [replace(event, stream="", position=0)], current.version
    )
    return ""
