"""The shared world of the agent-lifecycle tests.

A live runbook and its shadow candidate, the promotion policy they are judged by, and the
steps that shadow, score and promote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.integration.harness import Harness, make_harness
from warden import operations
from warden.domain import events as ev
from warden.domain.plans import Plan, Step
from warden.domain.promotion import CanarySettings, PromotionPolicy, Thresholds
from warden.governance.identity import Credential
from warden.ingest.registry import SchemaRegistry
from warden.runbooks.loader import EXAMPLE
from warden.sim.evaluation import record_evaluation

if TYPE_CHECKING:
    from pathlib import Path

    from warden.agents.protocol import Detection
    from warden.domain.incident import Incident
    from warden.domain.world import World

LIVE = EXAMPLE.replace("once_within: 10m", "once_within: 5m") + "\n"
# The candidate: the same plan, surer of itself (a new version of restart-on-oom).
CANDIDATE = "mode: shadow\n" + LIVE.replace("confidence: 0.8", "confidence: 0.9")
assert CANDIDATE != "mode: shadow\n" + LIVE
POLICY = PromotionPolicy(
    default=Thresholds(min_shadow_proposals=2, min_agreement_pct=90.0, max_wrong=0),
    canary=CanarySettings(fraction=0.0, services=("orders",)),
)


def lifecycle_harness(tmp_path: Path, candidate: str = CANDIDATE) -> Harness:
    directory = tmp_path / "runbooks"
    if not directory.exists():
        directory.mkdir()
        (directory / "oom.yaml").write_text(LIVE)
        (directory / "oom-next.yaml").write_text(candidate)
    return make_harness(tmp_path, runbooks_dir=directory, promotion=POLICY)


def oom(h: Harness, service: str) -> ev.Event:
    return h.ingest(
        ev.ALERT_FIRING,
        service,
        alertname="KubePodOOMKilled",
        status="firing",
        fingerprint=f"{service}-{h.clock.now().isoformat()}",
        labels={"namespace": "prod"},
        starts_at=ev.format_time(h.clock.now()),
        group_key="g",
    )


def oom_then_recovered(h: Harness, service: str) -> None:
    """An OOM kill whose alert resolves once the runbook restarted the service."""
    firing = oom(h, service)
    h.settle(rounds=3)
    fields = {k: v for k, v in firing.data.items() if k != "service"}
    h.ingest(ev.ALERT_RESOLVED, service, **{**fields, "status": "resolved"})
    h.settle()


def versions_of(h: Harness) -> dict[str, str]:
    loaded = h.events(ev.RUNBOOKS_LOADED)[-1].data
    return {
        "live": loaded["runbooks"]["restart-on-oom"],
        "next": loaded["shadow"]["restart-on-oom"],
    }


def plans(h: Harness) -> list[dict[str, Any]]:
    return [e.data["plan"] for e in h.events(ev.PLAN_PROPOSED)]


def record_scores(
    h: Harness,
    kind: str,
    name: str,
    version: str,
    wrong: int = 0,
    human: float | None = None,
) -> None:
    """What `warden evaluate --record` appends: the candidate scored on library and history."""
    data = {
        "kind": kind,
        "name": name,
        "version": version,
        "library": {"right": 6 - wrong, "miss": 0, "wrong": wrong, "total": 6},
        "history": {"agree": 2, "differ": 0, "total": 2, "human_agreement": human},
    }
    h.clock.advance(1)  # a second evaluation is a new record, not the first one again
    record_evaluation(h.warden.store, data, h.clock.now(), SchemaRegistry())


def evaluated(h: Harness, version: str, wrong: int = 0) -> None:
    """The candidate runbook scored."""
    record_scores(h, "runbook", "restart-on-oom", version, wrong)


def promote(h: Harness, who: str, to: str, role: str = "admin") -> ev.Event:
    person = h.person(who, role)
    return operations.promote(
        h.warden.store,
        Credential(key=person.key),
        "runbook",
        "restart-on-oom",
        to,
        h.clock.now(),
        POLICY,
        h.warden.runtime.catalog,
    )


def audited(h: Harness) -> list[dict[str, Any]]:
    h.warden.audit.catch_up()
    return [e.record for e in h.warden.audit_log.entries()]


def shadow_then_evidence(h: Harness) -> dict[str, str]:
    """OOM kills of payments and gateway: the live version acts, the candidate shadows."""
    version = versions_of(h)
    for service in ("payments", "gateway"):
        oom_then_recovered(h, service)
        h.clock.advance(360)
    assert [p["agent_version"] for p in plans(h)] == [version["live"]] * 2
    assert [c[:2] for c in h.adapter.calls] == [
        ("restart_service", "payments"),
        ("restart_service", "gateway"),
    ]
    return version


class CautiousRestarts:
    """A candidate agent: restarts a service that is down, as the built-in one does."""

    name = "cautious-restarts"
    handles = frozenset({"service_down"})
    priority = 5

    def detect(self, world: World) -> list[Detection]:
        return []

    def propose(self, incident: Incident, world: World) -> Plan | None:
        return Plan(
            agent=self.name,
            steps=(Step("restart_service", incident.service),),
            rationale=f"{incident.service} is down",
            evidence=incident.evidence_ids,
            confidence=0.9,
        )
