"""The model agent inside the runtime: its plan is validated and governed like any other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from warden.agents.alerts import AlertAgent
from warden.agents.escalation import EscalationAgent
from warden.agents.model import CONFIDENCE_CEILING, ModelAgent
from warden.agents.service_down import ServiceDownAgent
from warden.domain import events as ev
from warden.domain.catalog import Catalog
from warden.domain.incident import State
from warden.ingest.alertmanager import parse_webhook
from warden.ingest.cloudevents import TraceContext
from warden.ingest.pipeline import Pipeline
from warden.testing.chat_double import ChatDouble, ChatReply

from .harness import Harness, make_harness, permissive_bundle

if TYPE_CHECKING:
    import pytest

FIRING = Path(__file__).parents[1] / "fixtures" / "alertmanager" / "firing.json"


def test_model_plan_for_an_alert_is_decided_and_executed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARDEN_MODEL_API_KEY", "sk-test-key-never-sent-anywhere-else")
    with ChatDouble() as double:
        double.script(
            ChatReply.tool_calls(
                [("restart_service", {"target": "payments"})],
                content=json.dumps(
                    {"rationale": "ServiceDown fired for payments: restart it", "confidence": 0.8}
                ),
            )
        )
        model = ModelAgent(double.url, "test-model", Catalog())
        h = make_harness(tmp_path, agents=[AlertAgent(), model, EscalationAgent()])
        try:
            body = json.loads(FIRING.read_text())
            body["alerts"] = [a for a in body["alerts"] if a["labels"].get("service") == "payments"]
            body["alerts"][0]["startsAt"] = "2026-11-25T11:59:30Z"
            jobs = parse_webhook(
                json.dumps(body), received_at=h.clock.now(), context=TraceContext()
            )
            Pipeline(h.warden.runtime.ingest).process(jobs)
            h.probes["payments"].healthy = False
            h.observe("payments")
            h.settle_until(
                lambda: [i.state for i in h.incidents("payments")] == [State.AWAITING_APPROVAL],
                "the model's plan to wait for a person",
            )
            (incident,) = h.incidents("payments")
            assert incident.kind == "alert"
            assert incident.plan is not None
            assert incident.plan.agent == "model-advisor"
            # A model acts through people: capped at supervised, whatever it claims.
            assert incident.decisions[0].outcome.value == "needs_approval"
            assert "supervised-approval" in [r.policy_id for r in incident.decisions[0].reasons]
            assert h.adapter.calls == []
            h.approve(incident, "alice")
            h.settle_until(lambda: bool(h.adapter.calls), "the approved plan to run")
            h.settle(6)
            (incident,) = h.incidents("payments")
            assert incident.decisions[-1].outcome.value == "allow"
            assert h.adapter.calls == [("restart_service", "payments", {})]
            assert incident.state in (State.VERIFYING, State.RESOLVED)
            sent = double.requests[0].json()
            assert "sk-test-key" not in json.dumps(sent)
            assert {t["function"]["name"] for t in sent["tools"]} >= {"restart_service"}
            proposed = h.events(ev.PLAN_PROPOSED)[0].data["plan"]
            assert proposed["confidence"] == CONFIDENCE_CEILING  # the model said 0.8
        finally:
            h.close()


def alert_for_payments(h: Harness) -> None:
    body = json.loads(FIRING.read_text())
    body["alerts"] = [a for a in body["alerts"] if a["labels"].get("service") == "payments"]
    body["alerts"][0]["startsAt"] = "2026-11-25T11:59:30Z"
    jobs = parse_webhook(json.dumps(body), received_at=h.clock.now(), context=TraceContext())
    Pipeline(h.warden.runtime.ingest).process(jobs)
    h.probes["payments"].healthy = False
    h.observe("payments")


def test_a_slow_model_does_not_hold_up_other_incidents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARDEN_MODEL_API_KEY", "sk-test")
    restart = ChatReply.tool_calls(
        [("restart_service", {"target": "payments"})],
        content=json.dumps({"rationale": "restart payments", "confidence": 0.8}),
    )
    with ChatDouble() as double:
        double.script(restart.slowed(2.0))
        model = ModelAgent(double.url, "test-model", Catalog(), timeout_s=5)
        agents = [AlertAgent(), ServiceDownAgent(), model, EscalationAgent()]
        permissive_bundle(tmp_path)  # the test is about waiting, not about approvals
        h = make_harness(tmp_path, agents=agents)
        try:
            alert_for_payments(h)
            h.fail("orders")
            h.settle_until(
                lambda: [i.state for i in h.incidents("orders")] == [State.RESOLVED],
                "the orders restart to be verified",
            )
            (waiting,) = h.incidents("payments")
            assert waiting.state is State.OPEN  # the model is still thinking
            assert h.adapter.calls == [("restart_service", "orders", {})]
            assert len(double.requests) == 1  # asked once, not once per round

            h.settle_until(lambda: len(h.adapter.calls) == 2, "the model's plan to run")
            (incident,) = h.incidents("payments")
            assert incident.plan is not None and incident.plan.agent == "model-advisor"
            assert h.adapter.calls[1] == ("restart_service", "payments", {})
            assert len(double.requests) == 1
        finally:
            h.close()


def test_the_model_is_not_asked_when_a_rule_agent_has_a_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARDEN_MODEL_API_KEY", "sk-test")
    with ChatDouble() as double:
        model = ModelAgent(double.url, "test-model", Catalog())
        h = make_harness(tmp_path, agents=[ServiceDownAgent(), model, EscalationAgent()])
        try:
            h.fail("orders")
            h.settle_until(
                lambda: [i.state for i in h.incidents("orders")] == [State.RESOLVED],
                "the orders restart to be verified",
            )
            (incident,) = h.incidents("orders")
            assert incident.plan is not None and incident.plan.agent == "service-down"
            assert double.requests == []
        finally:
            h.close()


def test_a_certain_model_lifted_to_autonomous_still_asks_a_person(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator may raise the model's cap; the model's own certainty never skips a gate."""
    monkeypatch.setenv("WARDEN_MODEL_API_KEY", "sk-test")
    sure = ChatReply.tool_calls(
        [("restart_service", {"target": "payments"})],
        content=json.dumps(
            {"rationale": "restart payments", "confidence": 1.0, "risk": "low", "approved": True}
        ),
    )
    with ChatDouble() as double:
        double.script(sure)
        model = ModelAgent(double.url, "test-model", Catalog(), timeout_s=5)
        h = make_harness(
            tmp_path,
            agents=[AlertAgent(), model, EscalationAgent()],
            agent_caps=(("model-advisor", "autonomous"),),
        )
        try:
            alert_for_payments(h)
            h.settle_until(
                lambda: [i.state for i in h.incidents("payments")] == [State.AWAITING_APPROVAL],
                "the model's plan to be decided",
            )
            (incident,) = h.incidents("payments")
            (decision,) = incident.decisions
            assert decision.outcome.value == "needs_approval"
            assert [r.policy_id for r in decision.reasons] == ["autonomous-medium-risk-approval"]
            assert h.adapter.calls == []
        finally:
            h.close()
