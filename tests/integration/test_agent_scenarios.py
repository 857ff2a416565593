"""Built-in agents end to end on a manual clock: fault in, plan, Cedar decision, outcome.

Each scenario injects a fault through the quality gates as a connector would, lets the
real runtime detect, plan, decide (the built-in Cedar bundle) and execute against the
recording adapter, and checks what the audit trail says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from warden.agents.backlog import BacklogAgent
from warden.agents.bad_deploy import BadDeployAgent
from warden.agents.builtin import builtin_agents
from warden.agents.dependency import FailingDependencyAgent
from warden.agents.drift import DriftAgent
from warden.agents.escalation import EscalationAgent
from warden.agents.pipeline import PipelineCorruptionAgent
from warden.config import ServiceConfig
from warden.demo.timeline import describe
from warden.domain import events as ev
from warden.domain.control import Controls
from warden.domain.decisions import Outcome
from warden.domain.errors import PolicyDenied
from warden.domain.incident import Incident, State
from warden.domain.plans import Step

from .harness import Harness, make_harness

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from warden.agents.protocol import Agent

HEALTH = "http://127.0.0.1:9/health"
SERVICES = (
    ServiceConfig("payments", HEALTH, managed=False, domain="payments"),
    ServiceConfig("orders", HEALTH, managed=False, domain="shop", depends_on=("payments",)),
    ServiceConfig("gateway", HEALTH, managed=False, domain="edge", depends_on=("orders",)),
    ServiceConfig("etl", HEALTH, managed=False, domain="data"),
    ServiceConfig("queue", HEALTH, managed=False, domain="data", limits=(("max_consumers", "6"),)),
    ServiceConfig(
        "inventory",
        HEALTH,
        managed=False,
        domain="shop",
        desired=(("replicas", "3"), ("running", "true")),
    ),
)
MEDIUM_RISK = "autonomous-medium-risk-approval"
LOW_RISK = "autonomous-low-risk"


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Any]:
    made: list[Harness] = []

    def make(*agents: Agent) -> Harness:
        chosen = list(agents) or builtin_agents(entry_points=())
        if not any(isinstance(a, EscalationAgent) for a in chosen):
            chosen.append(EscalationAgent(peers=tuple(chosen)))
        h = make_harness(tmp_path / str(len(made)), agents=chosen, services=SERVICES)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def sample(h: Harness, service: str, metric: str, value: float) -> ev.Event:
    h.clock.advance(10)
    return h.ingest(ev.METRIC_SAMPLED, service, metric=metric, value=value)


def only(h: Harness, service: str) -> Incident:
    (incident,) = h.incidents(service)
    return incident


def approve_and_settle(
    h: Harness, incident_id: str, who: str = "alice", settle: int = 12
) -> Incident:
    current = h.warden.runtime.incidents[incident_id]
    assert current.state is State.AWAITING_APPROVAL, current.close_reason
    h.approve(current, who)
    h.settle(rounds=settle)
    return h.warden.runtime.incidents[incident_id]


def policies(incident: Incident, index: int = 0) -> list[tuple[str, str]]:
    """(outcome, policy id) of every decision recorded for step ``index``."""
    hash_ = incident.step_hashes[index]
    return [
        (d.outcome.value, r.policy_id)
        for d in incident.decisions
        if d.step_hash == hash_
        for r in d.reasons[:1]
    ]


# -- bad deploy ---------------------------------------------------------------------------


def bad_deploy(h: Harness) -> tuple[set[str], set[str]]:
    """v1 runs clean, v2 goes out, errors jump to 20%; returns (fault ids, baseline ids)."""
    h.ingest(ev.DEPLOY_COMPLETED, "payments", version="v1")
    baseline = {sample(h, "payments", "error_rate", r).id for r in (0.01, 0.012, 0.009)}
    h.clock.advance(10)
    deploy = h.ingest(ev.DEPLOY_COMPLETED, "payments", version="v2", previous_version="v1")
    bad = {sample(h, "payments", "error_rate", r).id for r in (0.2, 0.22, 0.21)}
    return {deploy.id, *bad}, baseline


def test_bad_deploy_is_rolled_back_after_approval(harness: Any) -> None:
    h = harness(BadDeployAgent())
    fault, baseline = bad_deploy(h)
    h.settle()

    incident = only(h, "payments")
    assert incident.kind == "bad_deploy"
    assert incident.state is State.AWAITING_APPROVAL
    plan = incident.plan
    assert plan is not None
    assert plan.agent == "bad-deploy"
    assert plan.steps == (Step("rollback_deploy", "payments", (("version", "v1"),)),)
    assert set(plan.evidence) == fault
    assert not set(plan.evidence) & baseline
    assert "from v1 to v2" in plan.rationale
    assert plan.confidence == 0.88
    # rollback_deploy is medium risk: in autonomous mode the bundle asks for one approval.
    assert policies(incident) == [("needs_approval", MEDIUM_RISK)]
    assert h.adapter.calls == []

    waiting = approve_and_settle(h, incident.id, settle=3)
    assert h.adapter.calls == [("rollback_deploy", "payments", {"version": "v1"})]
    assert policies(waiting)[-1] == ("allow", "approval")
    # rollback_deploy is verified by the error rate: it waits for a sample after acting.
    assert waiting.state is State.VERIFYING
    sample(h, "payments", "error_rate", 0.012)
    h.settle()
    done = h.warden.runtime.incidents[incident.id]
    assert done.state is State.RESOLVED
    assert done.close_reason == "verified: error rate 1.2% against SLO 5.0%"


def test_bad_deploy_rollback_that_does_not_help_is_rolled_forward_again(harness: Any) -> None:
    h = harness(BadDeployAgent())
    h.adapter.undo["rollback_deploy"] = {"version": "v2"}  # the version it replaced
    bad_deploy(h)
    h.settle()
    incident = approve_and_settle(h, only(h, "payments").id, settle=3)
    sample(h, "payments", "error_rate", 0.25)  # still failing after the rollback
    h.settle(rounds=14)

    done = h.warden.runtime.incidents[incident.id]
    (failed,) = h.events(ev.VERIFICATION_FAILED)
    assert "error rate 25.0% against SLO 5.0%" in failed.data["reason"]
    assert done.state is State.ROLLED_BACK
    assert h.adapter.calls == [
        ("rollback_deploy", "payments", {"version": "v1"}),
        ("deploy_version", "payments", {"version": "v2"}),
    ]


def test_bad_deploy_without_earlier_version_escalates_with_a_summary(harness: Any) -> None:
    h = harness(BadDeployAgent())
    h.clock.advance(10)
    h.ingest(ev.DEPLOY_COMPLETED, "payments", version="v1")
    for rate in (0.3, 0.3, 0.3):
        sample(h, "payments", "error_rate", rate)
    h.settle()

    incident = only(h, "payments")
    assert incident.kind == "bad_deploy"
    assert incident.state is State.ESCALATED
    assert incident.plan is None
    reason = incident.close_reason
    assert reason.startswith("bad_deploy on payments needs a human")
    assert "version v1" in reason
    assert "error_rate 0.3 (3 samples)" in reason
    assert "bad-deploy: no earlier version of payments than v1 is known" in reason
    assert h.adapter.calls == []


def crashes_while_planning() -> BadDeployAgent:
    """The bad-deploy agent, in a worker that dies the first time it plans."""
    crashed: list[bool] = []

    class CrashesWhilePlanning(BadDeployAgent):
        def propose(self, incident: Incident, world: Any) -> Any:
            if not crashed:
                crashed.append(True)
                raise RuntimeError("the worker died while planning")
            return super().propose(incident, world)

    return CrashesWhilePlanning()


def deploy_fails_and_planning_crashes(harness: Any) -> Harness:
    """A bad deploy of payments is detected; the worker dies before it plans."""
    h: Harness = harness(crashes_while_planning())
    h.clock.advance(10)
    h.ingest(ev.DEPLOY_COMPLETED, "payments", version="v1")
    for rate in (0.3, 0.3, 0.3):
        sample(h, "payments", "error_rate", rate)
    with pytest.raises(RuntimeError, match="died while planning"):
        h.tick()
    return h


def test_a_fault_that_cleared_before_planning_resolves_instead_of_escalating(
    harness: Any,
) -> None:
    h = deploy_fails_and_planning_crashes(harness)
    assert only(h, "payments").state is State.OPEN
    for rate in (0.01, 0.01, 0.01):  # the errors go away while nobody plans
        sample(h, "payments", "error_rate", rate)
    h.settle()

    incident = only(h, "payments")
    assert (incident.kind, incident.detected_by) == ("bad_deploy", "bad-deploy")
    assert incident.state is State.RESOLVED
    assert incident.close_reason == (
        "recovered before any action was taken: bad-deploy no longer detects bad_deploy on payments"
    )
    assert h.adapter.calls == []


def test_a_fault_still_there_when_planning_resumes_escalates(harness: Any) -> None:
    h = deploy_fails_and_planning_crashes(harness)
    sample(h, "payments", "error_rate", 0.3)
    h.settle()
    assert only(h, "payments").state is State.ESCALATED


# -- failing dependency -------------------------------------------------------------------


def test_failing_dependency_is_isolated_then_let_back_in_once_it_recovers(
    harness: Any,
) -> None:
    h = harness(FailingDependencyAgent(min_outage_s=30))
    h.fail("payments")
    h.settle()
    assert h.incidents() == []  # a short outage is left to a restart
    h.clock.advance(30)
    h.settle()

    assert h.incidents("payments") == []  # without service-down, nobody restarts it
    assert h.incidents("gateway") == []  # its dependency, orders, is up
    incident = only(h, "orders")
    assert incident.kind == "failing_dependency"
    plan = incident.plan
    assert plan is not None
    assert plan.steps == (Step("open_circuit", "payments"),)
    failures = {e.id for e in h.events(ev.PROBE_FAILED) if e.subject == "payments"}
    assert set(plan.evidence) == failures
    assert "close_circuit" in plan.expected_outcome
    assert policies(incident) == [("needs_approval", MEDIUM_RISK)]

    done = approve_and_settle(h, incident.id)
    assert h.adapter.calls == [("open_circuit", "payments", {})]
    # open_circuit is verified by the probe of the incident's service, the caller (orders).
    assert done.state is State.RESOLVED
    assert done.close_reason == "verified: orders answers its health probe"

    assert set(h.warden.runtime.world().isolated) == {"payments"}

    # payments recovers: the circuit stays open until it has answered for 30 s.
    h.probes["payments"].healthy = True
    h.observe("payments")
    recovered_at = h.clock.now()
    h.settle()
    assert h.adapter.calls == [("open_circuit", "payments", {})]
    for _ in range(6):
        h.clock.advance(5)
        h.observe("payments")
    h.settle()

    lifted = only(h, "payments")
    assert (lifted.kind, lifted.detected_by) == ("dependency_recovered", "failing-dependency")
    assert lifted.first_signal_at == ev.format_time(recovered_at)
    assert lifted.plan is not None
    assert lifted.plan.steps == (Step("close_circuit", "payments"),)
    assert f"incident {incident.id}" in lifted.plan.rationale
    successes = [e.id for e in h.events(ev.PROBE_SUCCEEDED) if e.subject == "payments"]
    assert set(lifted.plan.evidence) <= set(successes) and lifted.plan.evidence
    assert policies(lifted) == [("allow", LOW_RISK)]
    assert lifted.state is State.RESOLVED
    assert h.adapter.calls == [("open_circuit", "payments", {}), ("close_circuit", "payments", {})]
    assert h.warden.runtime.world().isolated == {}
    h.settle()
    assert len(h.incidents("payments")) == 1  # nothing more to lift


def test_an_isolated_dependency_that_fails_again_stays_isolated(harness: Any) -> None:
    h = harness(FailingDependencyAgent(min_outage_s=30))
    h.fail("payments")
    h.clock.advance(30)
    h.settle()
    approve_and_settle(h, only(h, "orders").id)
    h.probes["payments"].healthy = True
    for _ in range(4):
        h.clock.advance(5)
        h.observe("payments")
    h.fail("payments", times=1)  # flaps before it was up for 30 s
    h.probes["payments"].healthy = True
    for _ in range(4):
        h.clock.advance(5)
        h.observe("payments")
    h.settle()
    assert h.incidents("payments") == []  # the run of successes restarted: 20 s so far
    assert set(h.warden.runtime.world().isolated) == {"payments"}


def test_cascade_isolates_the_root_and_never_restarts_the_starved_peer(harness: Any) -> None:
    h = harness(FailingDependencyAgent(min_outage_s=30))
    h.fail("payments")
    h.fail("orders")
    h.clock.advance(30)
    h.settle()

    incident = only(h, "gateway")
    plan = incident.plan
    assert plan is not None
    assert plan.steps == (Step("open_circuit", "payments"),)
    assert "orders -> payments" in plan.rationale
    assert policies(incident, 0) == [("needs_approval", MEDIUM_RISK)]
    done = approve_and_settle(h, incident.id)
    assert h.adapter.calls == [("open_circuit", "payments", {})]
    assert done.state is State.RESOLVED


def test_a_plan_that_restarts_a_starved_peer_is_refused_on_evidence(harness: Any) -> None:
    h = harness(FailingDependencyAgent(min_outage_s=30, restart_in_cascade=True))
    h.fail("payments")
    h.fail("orders")
    h.clock.advance(30)
    h.settle()

    incident = only(h, "gateway")
    assert incident.state is State.ESCALATED
    (rejected,) = h.events(ev.PLAN_REJECTED)
    assert "orders is starved, not broken" in rejected.data["reason"]
    assert "refused on evidence" in incident.close_reason
    assert h.adapter.calls == []


# -- pipeline corruption ------------------------------------------------------------------


def test_corrupt_batch_is_quarantined_then_replayed(harness: Any) -> None:
    h = harness(PipelineCorruptionAgent())
    h.clock.advance(5)
    failed = h.ingest(
        ev.BATCH_FAILED,
        "etl",
        pipeline="orders-etl",
        batch="b-0042",
        reason="checksum mismatch",
        last_good_checkpoint="cp-0041",
    )
    h.settle()

    incident = only(h, "etl")
    assert incident.kind == "pipeline_corruption"
    plan = incident.plan
    assert plan is not None
    assert plan.steps == (
        Step("quarantine_batch", "etl", (("batch", "b-0042"), ("pipeline", "orders-etl"))),
        Step(
            "replay_from_checkpoint", "etl", (("checkpoint", "cp-0041"), ("pipeline", "orders-etl"))
        ),
    )
    assert plan.evidence == (failed.id,)
    assert plan.confidence == 0.9
    assert policies(incident, 0) == [("needs_approval", MEDIUM_RISK)]

    incident = approve_and_settle(h, incident.id)
    assert h.adapter.calls == [
        ("quarantine_batch", "etl", {"pipeline": "orders-etl", "batch": "b-0042"})
    ]
    # Each medium-risk step is decided, and approved, on its own.
    assert policies(incident, 1) == [("needs_approval", MEDIUM_RISK)]
    approve_and_settle(h, incident.id)
    h.settle()  # the quiet period: 5 s without a new failed batch
    done = h.warden.runtime.incidents[incident.id]
    assert h.adapter.calls[-1] == (
        "replay_from_checkpoint",
        "etl",
        {"pipeline": "orders-etl", "checkpoint": "cp-0041"},
    )
    # Both steps verify by "batch": no new failed batch for 5 s after acting.
    assert done.state is State.RESOLVED
    assert done.close_reason == "verified: no failed batch for 5 s"
    # The quarantined batch is a failure no more, said in the service's own stream.
    (recovered,) = h.events(ev.BATCH_RECOVERED)
    assert recovered.stream == "service-etl"
    assert recovered.data == {"service": "etl", "pipeline": "orders-etl", "batch": "b-0042"}
    assert recovered.correlation_id == done.correlation_id
    assert h.warden.runtime.world().signals_of("etl").failed_batches == ()

    # So a later failure is a new incident, not shadowed by the first one.
    h.clock.advance(60)
    h.ingest(
        ev.BATCH_FAILED,
        "etl",
        pipeline="orders-etl",
        batch="b-0050",
        reason="schema violation",
        last_good_checkpoint="cp-0049",
    )
    h.settle()
    later = [i for i in h.incidents("etl") if i.id != incident.id]
    assert [i.state for i in later] == [State.AWAITING_APPROVAL]
    assert later[0].plan is not None
    assert later[0].plan.steps[0].params == (("batch", "b-0050"), ("pipeline", "orders-etl"))


# -- backlog growth -----------------------------------------------------------------------


def test_growing_backlog_gets_more_consumers_within_the_cap(harness: Any) -> None:
    h = harness(BacklogAgent())
    consumers = sample(h, "queue", "consumers", 2)
    growth = [sample(h, "queue", "backlog", v).id for v in (800, 1000, 1300, 1700)]
    h.settle()

    incident = only(h, "queue")
    assert incident.kind == "backlog_growth"
    plan = incident.plan
    assert plan is not None
    assert plan.steps == (Step("scale_consumers", "queue", (("replicas", 4),)),)
    assert plan.evidence == (*growth, consumers.id)
    assert "max_consumers = 6" in plan.rationale
    assert policies(incident) == [("needs_approval", MEDIUM_RISK)]

    waiting = approve_and_settle(h, incident.id, settle=3)
    assert h.adapter.calls == [("scale_consumers", "queue", {"replicas": 4})]
    # scale_consumers is verified by two backlog samples after acting, the last not higher.
    assert waiting.state is State.VERIFYING
    sample(h, "queue", "backlog", 1500)
    sample(h, "queue", "backlog", 1100)
    h.settle(rounds=2)
    done = h.warden.runtime.incidents[incident.id]
    assert done.state is State.RESOLVED
    assert done.close_reason == "verified: backlog 1500 -> 1100"


def test_backlog_at_the_cap_escalates_without_acting(harness: Any) -> None:
    h = harness(BacklogAgent())
    sample(h, "queue", "consumers", 6)
    for v in (800, 1000, 1300, 1700):
        sample(h, "queue", "backlog", v)
    h.settle()

    incident = only(h, "queue")
    assert incident.state is State.ESCALATED
    assert incident.decisions == ()
    assert "backlog: queue already runs 6 consumers, at or above its max_consumers of 6" in (
        incident.close_reason
    )
    assert h.adapter.calls == []


def scale_up_that_is_not_verified(h: Harness) -> Incident:
    sample(h, "queue", "consumers", 2)
    for v in (800, 1000, 1300, 1700):
        sample(h, "queue", "backlog", v)
    h.settle()
    approve_and_settle(h, only(h, "queue").id, settle=16)  # no backlog sample arrives
    (failed,) = h.events(ev.VERIFICATION_FAILED)
    assert "waiting for two backlog samples since acting" in failed.data["reason"]
    return only(h, "queue")


def test_scale_up_without_backlog_samples_is_scaled_back(harness: Any) -> None:
    h = harness(BacklogAgent())
    h.adapter.undo["scale_consumers"] = {"replicas": 2}  # the count it replaced
    done = scale_up_that_is_not_verified(h)
    assert done.state is State.ROLLED_BACK
    assert done.close_reason == "steps 0 undone; a human follows up"
    assert h.adapter.calls == [
        ("scale_consumers", "queue", {"replicas": 4}),
        ("scale_consumers", "queue", {"replicas": 2}),
    ]


def test_the_kill_switch_holds_the_scale_back_until_it_is_released(harness: Any) -> None:
    h = harness(BacklogAgent())
    h.adapter.undo["scale_consumers"] = {"replicas": 2}
    sample(h, "queue", "consumers", 2)
    for v in (800, 1000, 1300, 1700):
        sample(h, "queue", "backlog", v)
    h.settle()
    approve_and_settle(h, only(h, "queue").id, settle=2)  # scaled up, verifying
    assert len(h.adapter.calls) == 1
    h.control(ev.KILL_SWITCH_ENGAGED, by="alice", reason="drill")
    h.settle(rounds=16)  # verification fails meanwhile: the scale-back waits
    (held,) = h.events(ev.COMPENSATION_HELD)
    assert held.data["reason"] == "kill switch engaged by alice: drill"
    assert describe(held) == (
        "UNDO",
        "compensation of step 0 held: kill switch engaged by alice: drill",
    )
    assert only(h, "queue").state is State.COMPENSATING
    with pytest.raises(PolicyDenied, match="kill switch engaged"):  # the executor refuses too
        h.warden.runtime.executor.run_compensation(only(h, "queue"), 0, h.warden.runtime.controls)
    assert len(h.adapter.calls) == 1
    h.control(ev.KILL_SWITCH_RELEASED, by="alice", reason="done")
    h.settle()
    assert only(h, "queue").state is State.ROLLED_BACK
    assert h.adapter.calls[1] == ("scale_consumers", "queue", {"replicas": 2})


def test_a_scale_up_whose_count_before_is_unknown_is_not_undone_but_escalated(
    harness: Any,
) -> None:
    h = harness(BacklogAgent())
    done = scale_up_that_is_not_verified(h)
    # scale_consumers with its own parameters would set 4 replicas again: not an undo.
    assert done.state is State.ESCALATED
    assert done.close_reason.startswith(
        "not verified 5 s after acting: waiting for two backlog samples since acting; left as"
        " is: step 0 (scale_consumers) cannot be undone: its result did not report undo_params"
        " replicas, and scale_consumers with the step's own parameters would only repeat it. "
    )
    assert h.adapter.calls == [("scale_consumers", "queue", {"replicas": 4})]
    with pytest.raises(PolicyDenied, match="did not report undo_params replicas"):
        h.warden.runtime.executor.run_compensation(done, 0, Controls())  # it refuses too
    assert len(h.adapter.calls) == 1


# -- drift --------------------------------------------------------------------------------


def test_drifted_field_is_reconciled(harness: Any) -> None:
    h = harness(DriftAgent())
    observed = h.ingest(ev.STATE_OBSERVED, "inventory", fields={"replicas": 2})
    h.tick()
    (drift,) = h.events(ev.DRIFT_DETECTED)
    assert drift.data == {
        "service": "inventory",
        "field": "replicas",
        "desired": "3",
        "observed": "2",
    }
    h.settle()
    assert h.incidents("inventory") == []  # still within the 30 s grace period

    h.clock.advance(60)
    h.settle()
    incident = only(h, "inventory")
    assert incident.kind == "drift"
    assert incident.severity == "minor"
    plan = incident.plan
    assert plan is not None
    assert plan.steps == (
        Step("reconcile_state", "inventory", (("desired", "3"), ("field", "replicas"))),
    )
    assert plan.evidence == (drift.id,)
    assert observed.id not in plan.evidence
    assert policies(incident) == [("needs_approval", MEDIUM_RISK)]

    waiting = approve_and_settle(h, incident.id, settle=3)
    assert h.adapter.calls == [
        ("reconcile_state", "inventory", {"field": "replicas", "desired": "3"})
    ]
    # reconcile_state is verified by the drift going away, i.e. by observed state.
    assert waiting.state is State.VERIFYING
    h.ingest(ev.STATE_OBSERVED, "inventory", fields={"replicas": 3})
    h.settle(rounds=2)
    (resolved,) = h.events(ev.DRIFT_RESOLVED)
    assert resolved.data["field"] == "replicas"
    done = h.warden.runtime.incidents[incident.id]
    assert done.state is State.RESOLVED
    assert done.close_reason == "verified: observed state matches desired"


def test_reconcile_that_never_shows_in_observed_state_escalates(harness: Any) -> None:
    h = harness(DriftAgent(grace_s=0))
    h.ingest(ev.STATE_OBSERVED, "inventory", fields={"replicas": 2})
    h.settle()
    approve_and_settle(h, only(h, "inventory").id, settle=16)

    done = only(h, "inventory")
    (failed,) = h.events(ev.VERIFICATION_FAILED)
    assert "drift remains" in failed.data["reason"]
    # reconcile_state has no compensation in the catalog: nothing to undo, a human follows.
    assert done.state is State.ESCALATED
    assert h.adapter.calls == [
        ("reconcile_state", "inventory", {"field": "replicas", "desired": "3"})
    ]


def test_service_that_should_run_is_started_autonomously(harness: Any) -> None:
    h = harness(DriftAgent())
    h.fail("inventory", times=1)
    h.tick()
    (drift,) = h.events(ev.DRIFT_DETECTED)
    assert drift.data["field"] == "running"
    h.clock.advance(31)
    h.settle()

    incident = only(h, "inventory")
    plan = incident.plan
    assert plan is not None
    assert plan.steps == (Step("start_service", "inventory"),)
    # start_service is low risk and the drift is certain enough: no human needed.
    assert incident.decisions[0].outcome is Outcome.ALLOW
    assert policies(incident) == [("allow", LOW_RISK)]
    assert h.adapter.calls == [("start_service", "inventory", {})]
    assert incident.state is State.RESOLVED
    assert incident.close_reason == "verified: inventory answers its health probe"
    # The probe answered again, so the drift on running went away too.
    (resolved,) = h.events(ev.DRIFT_RESOLVED)
    assert resolved.data["field"] == "running"


# -- all built-ins together ---------------------------------------------------------------


def test_builtins_restart_a_dependency_before_isolating_it(harness: Any) -> None:
    h = harness()
    h.fail("payments")
    h.settle()
    h.clock.advance(30)
    h.settle()
    # service-down restarted payments within seconds; the outage never lasted long
    # enough for failing-dependency to isolate it.
    (incident,) = h.incidents()
    assert (incident.service, incident.kind, incident.state) == (
        "payments",
        "service_down",
        State.RESOLVED,
    )
    assert h.adapter.calls == [("restart_service", "payments", {})]


def test_builtins_isolate_a_dependency_a_restart_does_not_heal(harness: Any) -> None:
    h = harness()
    h.fail("payments")
    h.adapter.script["restart_service"] = ["fail"]  # the restart does not help
    h.settle()
    restart = only(h, "payments")
    assert restart.state is State.ESCALATED
    h.fail("payments", times=2)
    h.clock.advance(300)  # failing-dependency waits min_outage_s (300 s) before isolating
    h.fail("payments", times=1)  # ... and isolates on a probe that still fails now
    h.settle()

    isolate = only(h, "orders")
    assert isolate.kind == "failing_dependency"
    assert isolate.plan is not None
    assert isolate.plan.steps == (Step("open_circuit", "payments"),)
    assert policies(isolate) == [("needs_approval", MEDIUM_RISK)]


def test_builtins_route_each_fault_to_its_agent(harness: Any) -> None:
    h = harness()
    bad_deploy(h)
    sample(h, "queue", "consumers", 2)
    for v in (800, 1000, 1300, 1700):
        sample(h, "queue", "backlog", v)
    h.settle()

    kinds = {i.service: (i.kind, i.plan.agent if i.plan else "") for i in h.incidents()}
    assert kinds == {
        "payments": ("bad_deploy", "bad-deploy"),
        "queue": ("backlog_growth", "backlog"),
    }
    # Only one agent proposes per kind: the escalation agent never competes.
    assert h.events(ev.PLAN_REJECTED) == []
    approvals = h.events(ev.APPROVAL_REQUESTED)
    assert {e.data["proposal"]["agent"] for e in approvals} == {"bad-deploy", "backlog"}
