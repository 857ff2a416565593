"""A scripted event history for the KPI tests: legal incident streams and fleet signals.

Times are seconds after :data:`T0`; every event gets the next global position, as a store
would give it. The scripts here are checked legal by the incident state machine.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from warden.domain import events as ev
from warden.domain.decisions import Decision, Outcome, Reason
from warden.domain.plans import Plan, Step, step_hash

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAY = 86_400


def at(seconds: float) -> str:
    return ev.format_time(T0 + timedelta(seconds=seconds))


class Script:
    """A log of events in global order, as a store would return it."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []

    def add(self, stream: str, type_: str, seconds: float, data: dict[str, Any]) -> None:
        n = len(self.events) + 1
        self.events.append(
            ev.Event(
                id=f"e{n}", source="test", type=type_, time=at(seconds), data=data,
                stream=stream, position=n, subject=str(data.get("service", "")),
            )
        )  # fmt: skip

    def signal(self, type_: str, service: str, seconds: float, **data: Any) -> None:
        """A signal about ``service`` in its own stream."""
        self.add(f"service-{service}", type_, seconds, {"service": service, **data})

    def shadow(self, seconds: float, live: str, candidate: str, *, agree: bool) -> None:
        """A shadow bundle's decision recorded beside the live one."""
        outcome = "allow" if agree else "deny"
        self.add(
            ev.SHADOW_STREAM,
            ev.SHADOW_DECIDED,
            seconds,
            {
                "live": {"outcome": "allow", "policy": "p", "bundle": live},
                "shadow": {"outcome": outcome, "policy": "p", "bundle": candidate},
                "agree": agree,
            },
        )

    def incident(
        self,
        name: str,
        service: str,
        steps: int = 1,
        *,
        agent: str = "service-down",
        version: str = "",
        kind: str = "service_down",
    ) -> Scripted:
        return Scripted(self, name, service, steps, agent, version, kind)


class Scripted:
    """One incident's stream, written step by step with legal data."""

    def __init__(
        self,
        script: Script,
        name: str,
        service: str,
        steps: int,
        agent: str,
        version: str,
        kind: str,
    ) -> None:
        self.script = script
        self.id = name
        self.stream = f"incident-{name}"
        self.service = service
        self.kind = kind
        self.plan = Plan(
            agent=agent,
            steps=tuple(Step("restart_service", service, (("attempt", i),)) for i in range(steps)),
            rationale="probe failed",
            evidence=("p1",),
            confidence=0.9,
            agent_version=version,
        )
        self.hashes = [step_hash(name, i, s) for i, s in enumerate(self.plan.steps)]

    def add(self, type_: str, seconds: float, data: dict[str, Any] | None = None) -> Scripted:
        self.script.add(self.stream, type_, seconds, data or {})
        return self

    def opened(self, seconds: float, first_signal: float) -> Scripted:
        data = {
            "incident_id": self.id,
            "service": self.service,
            "first_signal_at": at(first_signal),
            "kind": self.kind,
        }
        return self.add(ev.INCIDENT_OPENED, seconds, data)

    def planned(self, seconds: float) -> Scripted:
        return self.add(ev.PLAN_PROPOSED, seconds, {"plan": self.plan.to_dict()})

    def decided(
        self, seconds: float, index: int, outcome: Outcome, version: str, approvers: int = 0
    ) -> Scripted:
        decision = Decision(outcome, self.hashes[index], (Reason("p", "m"),), approvers, version)
        return self.add(
            ev.DECISION_RECORDED, seconds, {"decision": decision.to_dict(), "index": index}
        )

    def asked(self, seconds: float, index: int) -> Scripted:
        return self.add(
            ev.APPROVAL_REQUESTED,
            seconds,
            {"step_hash": self.hashes[index], "expires_at": at(seconds + 900)},
        )

    def approved(self, seconds: float, index: int, who: str) -> Scripted:
        return self.add(
            ev.APPROVAL_GRANTED, seconds, {"step_hash": self.hashes[index], "approver": who}
        )

    def intended(self, seconds: float, index: int) -> Scripted:
        data = {
            "index": index,
            "step_hash": self.hashes[index],
            "action": "restart_service",
            "target": self.service,
        }
        return self.add(ev.STEP_INTENDED, seconds, data)

    def finished(
        self, seconds: float, index: int, ok: bool = True, duration_ms: float | None = None
    ) -> Scripted:
        data: dict[str, Any] = {"index": index, "step_hash": self.hashes[index]}
        if duration_ms is not None:
            data["duration_ms"] = duration_ms
        return self.add(ev.STEP_SUCCEEDED if ok else ev.STEP_FAILED, seconds, data)

    def compensated(self, started: float, index: int, done: float) -> Scripted:
        self.add(ev.COMPENSATION_STARTED, started)
        self.add(ev.COMPENSATION_INTENDED, started, {"index": index})
        return self.add(ev.COMPENSATION_SUCCEEDED, done, {"index": index})

    def verified(self, started: float, passed: float) -> Scripted:
        self.add(ev.VERIFICATION_STARTED, started)
        return self.add(ev.VERIFICATION_PASSED, passed)

    def escalated(self, seconds: float, *, notify: bool = True) -> Scripted:
        data: dict[str, Any] = {"reason": "a human is needed"}
        if not notify:
            data["notify"] = False
        return self.add(ev.INCIDENT_ESCALATED, seconds, data)
