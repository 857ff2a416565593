"""Control plane end to end on a manual clock: autonomy, kill switches, approvals, reload."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from warden.domain import events as ev
from warden.domain.control import AutonomyRule
from warden.domain.errors import ValidationError
from warden.domain.incident import State
from warden.domain.kpis import resilience_report
from warden.governance.approvals import ApprovalSettings
from warden.governance.gate import Guardrails, RateLimit

from .harness import Harness, make_harness, two_sre_bundle

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def harnesses(tmp_path: Path) -> Iterator[Any]:
    made: list[Harness] = []

    def make(**overrides: Any) -> Harness:
        h = make_harness(tmp_path, **overrides)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def test_autonomous_restart_resolves(harnesses: Any) -> None:
    h = harnesses()
    h.fail("payments")
    h.settle()
    (incident,) = h.incidents("payments")
    assert incident.state is State.RESOLVED
    assert h.adapter.calls == [("restart_service", "payments", {})]
    decision = h.events(ev.DECISION_RECORDED)[0].data
    assert decision["context"]["domain"] == "payments"
    assert decision["context"]["blast_radius_pct"] == 34
    assert decision["decision"]["bundle_version"].startswith("policies@")


def test_autonomy_rule_per_domain_and_audited_change(harnesses: Any) -> None:
    h = harnesses(autonomy_rules=(AutonomyRule("*", "payments", "supervised"),))
    # One at a time: orders fails while payments, its dependency, still answers (else
    # orders is starved, not broken, and only payments gets an incident).
    h.fail("orders")
    h.settle()
    h.fail("payments")
    h.settle()
    assert h.incidents("orders")[0].state is State.RESOLVED
    assert h.incidents("payments")[0].state is State.AWAITING_APPROVAL

    h.control(ev.AUTONOMY_CHANGED, level="recommend", domain="edge", environment="*", by="al")
    h.tick()
    h.fail("gateway")
    h.settle()
    latest = h.incidents("gateway")[-1]
    assert latest.state is State.ESCALATED
    assert latest.decisions[0].reasons[0].policy_id == "autonomy:recommend"
    audited = [r.record["type"] for r in h.warden.audit_log.entries()]
    h.warden.audit.catch_up()
    audited = [r.record["type"] for r in h.warden.audit_log.entries()]
    assert ev.AUTONOMY_CHANGED in audited


def test_domain_kill_switch_leaves_other_domains_alone(harnesses: Any) -> None:
    h = harnesses()
    h.control(ev.KILL_SWITCH_ENGAGED, domain="payments", by="al", reason="migration")
    h.fail("payments")
    h.fail("gateway")  # its dependency, orders, answers: gateway itself is broken
    h.settle()
    payments = h.incidents("payments")[0]
    assert payments.state is State.ESCALATED
    assert payments.decisions[0].reasons[0].policy_id == "guardrail:kill-switch"
    assert h.incidents("gateway")[0].state is State.RESOLVED
    assert h.adapter.calls == [("restart_service", "gateway", {})]


def test_kill_switch_after_allow_still_stops_the_step(harnesses: Any) -> None:
    h = harnesses()
    leases = h.warden.runtime.leases
    # Another worker holds the target: the step is allowed, then waits for the lease.
    assert leases.acquire("payments", "other:worker", 60, h.clock.now().timestamp())
    h.fail("payments")
    while not any(i.state is State.EXECUTING for i in h.incidents()):
        h.tick()
    assert h.incidents()[0].allowed(h.incidents()[0].step_hashes[0])
    h.control(ev.KILL_SWITCH_ENGAGED, by="al", reason="stop now")
    leases.release("payments", "other:worker")
    h.settle()
    (incident,) = h.incidents()
    assert incident.state is State.ESCALATED
    assert "stopped before acting" in incident.close_reason
    assert h.adapter.calls == []


def test_quorum_roles_single_person_and_never_the_proposer(harnesses: Any, tmp_path: Path) -> None:
    two_sre_bundle(tmp_path)
    people = {"alice": ("sre",), "bob": ("sre", "lead"), "mallory": ("dev",)}
    h = harnesses(approvals=ApprovalSettings(approvers=people))
    h.fail("payments")
    h.settle()
    (incident,) = h.incidents()
    assert incident.state is State.AWAITING_APPROVAL
    requested = h.events(ev.APPROVAL_REQUESTED)[0].data
    assert requested["approver_roles"] == ["sre"]
    assert requested["proposal"]["step"]["action"] == "restart_service"
    assert requested["step_hash"] == incident.step_hashes[0]

    with pytest.raises(ValidationError, match="proposer cannot approve"):
        h.approve(incident, "service-down")
    with pytest.raises(ValidationError, match="mallory refused: holds none of the roles sre"):
        h.approve(incident, "mallory")  # refused, never recorded
    h.approve(incident, "alice")
    with pytest.raises(ValidationError, match="already approved"):
        h.approve(incident, "alice")
    h.settle()
    assert h.incidents()[0].state is State.AWAITING_APPROVAL
    assert h.adapter.calls == []
    h.approve(incident, "bob")
    h.settle()
    final = h.incidents()[0]
    assert final.state is State.RESOLVED
    allow = final.decisions[-1]
    assert allow.reasons[0].message == "approved by alice, bob"
    assert h.adapter.calls == [("restart_service", "payments", {})]

    # The approvals were for that proposal only: a new failure needs new approvals (after
    # the relapse window: sooner, a restart that did not hold is not tried again).
    h.clock.advance(1801)
    h.fail("payments")
    h.settle()
    second = h.incidents()[-1]
    assert second.id != final.id
    assert second.state is State.AWAITING_APPROVAL
    assert second.approvals == ()


@pytest.mark.parametrize("fallback", ["escalate", "do_nothing"])
def test_approval_expires_into_the_fallback(harnesses: Any, tmp_path: Path, fallback: str) -> None:
    two_sre_bundle(tmp_path)
    people = {"alice": ("sre",)}
    h = harnesses(approvals=ApprovalSettings(timeout_s=60, fallback=fallback, approvers=people))
    h.fail("payments")
    h.settle()
    (incident,) = h.incidents()
    h.approve(incident, "alice")
    h.clock.advance(61)
    h.settle(2)
    final = h.incidents()[0]
    assert final.state is State.ESCALATED
    assert "approval expired" in final.close_reason
    assert ("no action taken" in final.close_reason) == (fallback == "do_nothing")
    expired = h.events(ev.APPROVAL_EXPIRED)
    assert [e.data["fallback"] for e in expired] == [fallback]
    assert h.adapter.calls == []
    with pytest.raises(ValidationError, match="not awaiting approval"):
        h.approve(final, "bob")


def test_rate_limit_guardrail_escalates_the_second_restart(harnesses: Any) -> None:
    rails = Guardrails(per_target=RateLimit(1, 3600))
    h = harnesses(guardrails=rails)
    h.fail("payments")
    h.settle()
    h.clock.advance(1801)  # past the relapse window: a new failure, not the same one back
    h.fail("payments")
    h.settle()
    first, second = h.incidents("payments")
    assert first.state is State.RESOLVED
    assert second.state is State.ESCALATED
    assert second.decisions[0].reasons[0].policy_id == "guardrail:rate-limit"
    assert len(h.adapter.calls) == 1


def test_broken_bundle_is_refused_and_the_old_one_keeps_serving(
    harnesses: Any, tmp_path: Path
) -> None:
    h = harnesses()
    runtime = h.warden.runtime
    runtime.settings = replace(runtime.settings, policy_poll_s=0)
    old = h.warden.runtime.gate.bundle.version
    loaded = h.events(ev.POLICY_LOADED)
    assert [e.data["version"] for e in loaded] == [old]

    (tmp_path / "policies" / "broken.cedar").write_text("permit (principal, action resource);")
    h.tick(2)
    rejected = h.events(ev.POLICY_REJECTED)
    assert len(rejected) == 1
    assert "policies do not parse: unexpected token" in rejected[0].data["error"]
    assert rejected[0].data["serving"] == old
    h.fail("payments")
    h.settle()
    assert h.incidents()[0].decisions[0].bundle_version == old

    (tmp_path / "policies" / "broken.cedar").write_text(
        '@id("always-ask") @outcome("needs_approval") @approvers("1") @message("ask")\n'
        'permit (principal, action == Action::"restart_service", resource);\n'
    )
    h.tick(2)
    new = h.warden.runtime.gate.bundle.version
    assert new != old
    assert [e.data["version"] for e in h.events(ev.POLICY_LOADED)] == [old, new]
    h.fail("orders")
    h.settle()
    orders = h.incidents("orders")[0]
    assert orders.decisions[0].bundle_version == new
    assert orders.state is State.AWAITING_APPROVAL


def test_a_restart_that_does_not_hold_is_a_relapse_and_is_not_repeated(harnesses: Any) -> None:
    h = harnesses()
    h.fail("payments")
    h.settle()
    h.fail("payments")  # back within the relapse window: the restart treated a symptom
    h.settle()
    first, second = sorted(h.incidents("payments"), key=lambda i: i.opened_at)
    assert first.state is State.RELAPSED
    assert "did not hold" in first.notes[-1]
    assert second.state is State.ESCALATED
    assert "a restart does not hold, it is a loop" in second.close_reason
    assert h.adapter.calls == [("restart_service", "payments", {})]
    report = resilience_report(h.warden.store.read_all())
    assert (report.resolved, report.relapsed, report.remediation_success_rate) == (0, 1, 0.0)
