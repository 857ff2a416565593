"""``warden drill``: real faults in the drill fleet while Warden runs; measured MTTR. Edge (demo).

Starts the drill fleet under Warden, then for each fault: waits for the steady state,
injects the fault into the real process, and watches with its own probe (every service
answers, a checkout passes, the pipeline delivers) until the steady state is back. The
MTTR is measured twice: by that independent probe, and from Warden's event history.
A drill fails when the fleet does not recover within the fault's bound, when Warden acts
outside what the fault calls for, or when its outcome is not the one policy prescribes.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.table import Table

from warden.demo.drill_fleet import MANAGED, DrillFleet
from warden.domain import events as ev
from warden.domain.catalog import Catalog, Risk

if TYPE_CHECKING:
    from collections.abc import Callable

    from warden.demo.drill_faults import Fault

__all__ = [
    "DrillResult",
    "DrillRunner",
    "Events",
    "expected_outcome",
    "results_table",
    "steady_state",
]

_TICK_S = 0.2
_SLOW_S = 0.6  # an answer slower than this breaks the steady state
_OBSERVE_S = 8.0  # a fault the probe has not seen by then is not observable
_OUTSIDE = "unsafe: Warden acted outside the fault: "


class Events:
    """Every event Warden folds, kept for the drill to read (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[ev.Event] = []

    def __call__(self, event: ev.Event) -> None:
        """Keep one event (a runtime listener)."""
        with self._lock:
            self._events.append(event)

    def mark(self) -> int:
        """A position: what comes after it is new."""
        with self._lock:
            return len(self._events)

    def since(self, mark: int) -> list[ev.Event]:
        """The events after ``mark``."""
        with self._lock:
            return self._events[mark:]


def _get(url: str, timeout_s: float = 1.0) -> tuple[int, dict[str, Any]]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as reply:
            status, body = reply.status, json.loads(reply.read() or b"{}")
            if time.monotonic() - started > _SLOW_S:
                return 0, {"error": f"answered in {time.monotonic() - started:.2f} s"}
            return status, body
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return 0, {"error": str(getattr(exc, "reason", exc))}


def steady_state(fleet: DrillFleet) -> str:
    """What breaks the steady state now ("" when it holds).

    Every managed service answers ``/health`` within 0.6 s, a checkout through the gateway
    passes (degraded counts: an open circuit is the cure for an outside outage), the
    processor is not stuck on a batch, and the sink received a batch within the last 2 s.
    """
    for name in MANAGED:
        status, body = _get(fleet.url(name, "/health"))
        if status != 200:
            return f"{name} /health: {status or body.get('error', 'no answer')}"
    status, body = _get(fleet.url("gateway", "/checkout"), timeout_s=2.0)
    if status != 200:
        return f"checkout: HTTP {status or body.get('error', 'no answer')}"
    status, body = _get(fleet.url("processor", "/status"))
    if body.get("stuck_on"):
        return f"pipeline: the processor is stuck on {body['stuck_on']}"
    status, body = _get(fleet.url("sink", "/status"))
    age = body.get("last_batch_age_s")
    if status != 200 or age is None or age > 2.0:
        return f"pipeline: no batch at the sink for {age or '?'} s"
    return ""


def stop_seen(fleet: DrillFleet, since: float) -> float | None:
    """When the processor last stopped on a batch, if at or after ``since`` (wall time).

    A cure faster than one look at the steady state still leaves this witness: the
    processor's own record of the stop, kept after the stop is over.
    """
    _, body = _get(fleet.url("processor", "/status"))
    stop = body.get("last_stop") or {}
    at = stop.get("at")
    return float(at) if isinstance(at, (int, float)) and at >= since else None


@dataclass
class DrillResult:
    """What one drill found."""

    fault: str
    target: str
    injected: str
    expected: str  # "remediate", "approval" or "escalate" (a guard must stop Warden)
    outcome: str = ""
    passed: bool = False
    probe_mttr_s: float | None = None  # injected -> steady state back (independent probe)
    warden_mttr_s: list[float] = field(default_factory=list)  # resolved incidents' MTTR
    detected_s: float | None = None  # injected -> first incident opened
    actions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


STORM_ACTIONS = 3  # the built-in restart-storm rule: this many actions on one service
STORM_WINDOW_S = 600.0  # ... within 10 minutes, and Warden must stop and call a human


def expected_outcome(fault: Fault, autonomy: str, builtin_policies: bool) -> str:
    """What policy makes of the fault's cure: remediate, or wait for an approval."""
    if autonomy != "autonomous":
        return "approval"
    spec = Catalog().get(fault.action)
    medium = spec is not None and spec.risk is not Risk.LOW
    return "approval" if builtin_policies and medium else "remediate"


def _wait(condition: Callable[[], bool], timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(_TICK_S)
    return condition()


def _open_incidents(events: list[ev.Event]) -> set[str]:
    opened: set[str] = set()
    for event in events:
        if event.type == ev.INCIDENT_OPENED:
            opened.add(event.data["incident_id"])
        elif event.type in (ev.INCIDENT_RESOLVED, ev.INCIDENT_ESCALATED, ev.INCIDENT_ROLLED_BACK):
            opened.discard(event.stream.removeprefix("incident-"))
    return opened


class DrillRunner:
    """Runs faults one after the other against a started fleet."""

    def __init__(self, fleet: DrillFleet, events: Events) -> None:
        """Drill ``fleet``, reading Warden's events from ``events``."""
        self.fleet, self.events = fleet, events

    def settle(self, timeout_s: float) -> str:
        """Wait for the steady state and no open incident; what is still wrong, or ""."""
        problem = [""]

        def settled() -> bool:
            problem[0] = steady_state(self.fleet)
            if not problem[0] and _open_incidents(self.events.since(0)):
                problem[0] = "incidents still open"
            return not problem[0]

        _wait(settled, timeout_s)
        return problem[0]

    def run(
        self, fault: Fault, round_: int, expected: str, on_tick: Callable[[str], None]
    ) -> DrillResult:
        """Inject ``fault`` once and judge what happened."""
        target = fault.target(round_)
        result = DrillResult(fault.name, target, "", expected)
        mark = self.events.mark()
        start, wall_start = time.monotonic(), time.time()
        result.injected = fault.inject(self.fleet, target)
        broken_at: float | None = None
        restored_at: float | None = None
        deadline = start + fault.bound_s
        while time.monotonic() < deadline:
            problem = steady_state(self.fleet)
            on_tick(problem or "steady")
            now = time.monotonic()
            if problem and broken_at is None:
                broken_at = now
            elif broken_at is None and (stopped := stop_seen(self.fleet, wall_start)):
                broken_at = start + (stopped - wall_start)
            if not problem and broken_at is not None:
                restored_at = now
                break
            if broken_at is None and now - start > _OBSERVE_S:
                break
            if expected == "approval" and self._asked(mark):
                break
            if self._storm_denials(mark):
                break  # the restart-storm guard holds: Warden must escalate, not act
            time.sleep(_TICK_S)
        if broken_at is None:
            result.problems.append(f"the probe never saw the fault within {_OBSERVE_S:g} s")
        if restored_at is not None:
            result.probe_mttr_s = round(restored_at - start, 2)
        if self._storm_denials(mark):
            # Enough actions on this service lately: the guard must stop Warden, and did.
            result.expected = "escalate"
            self._judge_held(fault, result, mark, start)
        elif expected == "remediate":
            self._judge_remediation(fault, result, mark, start)
        else:
            self._judge_held(fault, result, mark, start)
        # Whatever Warden did, the drill ends its fault so the next one starts clean.
        fault.undo(self.fleet, target)
        if ("open_circuit", target) in self._steps(mark):
            # The outage is over: Warden must let callers back in (close_circuit).
            lifted = _wait(lambda: ("close_circuit", target) in self._steps(mark), fault.bound_s)
            if not lifted:
                result.problems.append(f"the circuit to {target} was not closed again")
            self._collect(fault, result, mark, start)
        problem = self.settle(fault.bound_s)
        if problem:
            result.problems.append(f"did not settle after the drill: {problem}")
        result.passed = not result.problems
        if not result.passed:
            result.outcome = "FAILED"
        return result

    def _asked(self, mark: int) -> bool:
        return any(e.type == ev.APPROVAL_REQUESTED for e in self.events.since(mark))

    def _escalated(self, mark: int) -> bool:
        return any(e.type == ev.INCIDENT_ESCALATED for e in self.events.since(mark))

    def _storm_denials(self, mark: int) -> list[tuple[str, float]]:
        """Targets whose steps the restart-storm rule denied since ``mark``, and when."""
        plans: dict[str, list[dict[str, Any]]] = {}
        denied = []
        for event in self.events.since(mark):
            if event.type == ev.PLAN_PROPOSED:
                plans[event.stream] = event.data["plan"]["steps"]
            elif event.type == ev.DECISION_RECORDED:
                decision = event.data["decision"]
                storm = any(r["policy_id"] == "restart-storm" for r in decision["reasons"])
                steps = plans.get(event.stream, [])
                index = int(event.data.get("index", 0))
                if decision["outcome"] == "deny" and storm and index < len(steps):
                    denied.append((str(steps[index]["target"]), event.moment.timestamp()))
        return denied

    def _storm_grounds(self, target: str, before: float) -> int:
        """How many actions ran on ``target`` in the rule's window before ``before``."""
        return sum(
            1
            for e in self.events.since(0)
            if e.type in (ev.STEP_INTENDED, ev.COMPENSATION_INTENDED)
            and e.data.get("target") == target
            and 0 < before - e.moment.timestamp() < STORM_WINDOW_S
        )

    def _steps(self, mark: int) -> list[tuple[str, str]]:
        return [
            (str(e.data["action"]), str(e.data["target"]))
            for e in self.events.since(mark)
            if e.type in (ev.STEP_INTENDED, ev.COMPENSATION_INTENDED)
        ]

    def _judge_remediation(
        self, fault: Fault, result: DrillResult, mark: int, start: float
    ) -> None:
        # Let Warden finish verifying (the incident resolves after the probe saw recovery).
        _wait(lambda: not _open_incidents(self.events.since(mark)), fault.bound_s)
        self._collect(fault, result, mark, start)
        if result.probe_mttr_s is None:
            result.problems.append(f"steady state not back within {fault.bound_s:g} s")
        if not any(a == fault.action for a, _ in self._steps(mark)):
            result.problems.append(f"Warden did not run {fault.action}")
        result.outcome = "remediated" if not result.problems else "FAILED"

    def _judge_held(self, fault: Fault, result: DrillResult, mark: int, start: float) -> None:
        """Warden must hold back: ask for an approval, or (a guard holding) escalate."""
        approval = result.expected == "approval"
        held = self._asked if approval else self._escalated
        seen = _wait(lambda: held(mark), fault.bound_s)
        self._collect(fault, result, mark, start)
        ran = [a for a, t in self._steps(mark) if a == fault.action]
        what = "an approval was requested" if approval else "the incident was escalated"
        if not seen:
            result.problems.append(f"not as policy requires: {what} within {fault.bound_s:g} s")
        if approval and ran:
            result.problems.append(f"unsafe: {fault.action} ran though policy holds it")
        for target, when in set(self._storm_denials(mark)):
            grounds = self._storm_grounds(target, when)
            if grounds < STORM_ACTIONS:
                result.problems.append(
                    f"restart-storm denied a step on {target} after only {grounds} actions"
                )
        done = "approval requested" if approval else "escalated (restart-storm)"
        result.outcome = done if not result.problems else "FAILED"

    def _collect(self, fault: Fault, result: DrillResult, mark: int, start: float) -> None:
        events = self.events.since(mark)
        result.detected_s, result.warden_mttr_s = None, []
        result.problems = [p for p in result.problems if not p.startswith(_OUTSIDE)]
        wall = time.time() - (time.monotonic() - start)
        for event in events:
            if event.type == ev.INCIDENT_OPENED and result.detected_s is None:
                result.detected_s = round(event.moment.timestamp() - wall, 2)
            if event.type == ev.INCIDENT_RESOLVED and isinstance(
                event.data.get("mttr_s"), int | float
            ):
                result.warden_mttr_s.append(round(float(event.data["mttr_s"]), 2))
        steps = self._steps(mark)
        result.actions = [f"{a} {t}" for a, t in steps]
        allowed = fault.allowed(result.target)
        catalog = Catalog()
        # Undoing an allowed step (a plan cut short by a guard) is allowed too.
        undo = {(spec.compensation, t) for a, t in allowed if (spec := catalog.get(a))}
        allowed = allowed | {(a, t) for a, t in undo if a}
        unsafe = sorted({f"{a} {t}" for a, t in steps if (a, t) not in allowed})
        if unsafe:
            result.problems.append(f"{_OUTSIDE}{', '.join(unsafe)}")


def results_table(results: list[DrillResult]) -> Table:
    """One row per drill: outcome, detection, both MTTRs, Warden's actions."""
    table = Table(title="Drills")
    for column in (
        "fault",
        "target",
        "expected",
        "outcome",
        "detected",
        "MTTR (probe)",
        "MTTR (Warden)",
        "actions",
    ):
        table.add_column(column, overflow="fold")
    for r in results:
        style = "green" if r.passed else "red"
        table.add_row(
            r.fault,
            r.target,
            r.expected,
            f"[{style}]{r.outcome}[/{style}]" + "".join(f"\n{p}" for p in r.problems),
            f"{r.detected_s:.2f} s" if r.detected_s is not None else "-",
            f"{r.probe_mttr_s:.2f} s" if r.probe_mttr_s is not None else "-",
            ", ".join(f"{m:.2f} s" for m in r.warden_mttr_s) or "-",
            ", ".join(r.actions) or "-",
        )
    return table
