"""A model agent in shadow: asked off the loop's thread, recorded, never acted on."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.integration.harness import SERVICES, make_harness
from warden.agents.model import ModelAgent
from warden.assembly import default_agents
from warden.config import WardenConfig
from warden.domain import events as ev
from warden.domain.catalog import Catalog
from warden.domain.incident import State
from warden.runtime.candidates import candidate_comparisons, evidence_for
from warden.testing.chat_double import ChatDouble, ChatReply

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def test_a_model_agent_in_shadow_is_recorded_and_never_acts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARDEN_MODEL_API_KEY", "sk-test-key-never-sent-anywhere-else")
    reply = ChatReply.tool_calls(
        [("restart_service", {"target": "payments"})],
        content=json.dumps({"rationale": "payments is down: restart it", "confidence": 0.8}),
    )
    with ChatDouble(default=reply.slowed(1.0)) as double:
        config = WardenConfig(services=SERVICES, state_dir=tmp_path / "state")
        model = ModelAgent(double.url, "test-model", Catalog())
        agents = [*default_agents(config), model]
        h = make_harness(tmp_path, agents=agents, shadow_agents=(model.name,))
        try:
            assert model not in h.warden.runtime.agents
            h.fail("payments")
            h.settle()
            # The live agent planned and acted while the model was still thinking: the
            # question does not hold up the loop.
            (incident,) = h.incidents("payments")
            assert incident.plan is not None
            assert incident.plan.agent == "service-down"
            assert [c[:2] for c in h.adapter.calls] == [("restart_service", "payments")]
            assert len(double.wait_for_requests(1)) == 1
            assert h.events(ev.AGENT_SHADOWED) == []
            h.probes["payments"].healthy = True
            h.settle_until(
                lambda: bool(h.events(ev.AGENT_SHADOWED)), "the model's answer in shadow"
            )
            (shadowed,) = h.events(ev.AGENT_SHADOWED)
            assert shadowed.stream == ev.SHADOW_STREAM
            assert shadowed.data["name"] == model.name
            assert shadowed.data["incident_id"] == incident.id
            assert shadowed.data["plan"]["agent"] == model.name
            assert [(s["action"], s["target"]) for s in shadowed.data["plan"]["steps"]] == [
                ("restart_service", "payments")
            ]
            # Decided by the live policy, which holds a model to people's approval.
            (decided,) = shadowed.data["decisions"]
            assert decided["outcome"] == "needs_approval"
            assert decided["bundle"] == h.warden.runtime.gate.bundle.version
            h.settle()
            # Never acted on: no step of the model's plan intended or executed, and the
            # live incident holds only the live agent's plan.
            intended = h.events(ev.STEP_INTENDED)
            assert [e.stream for e in intended] == [f"incident-{incident.id}"]
            assert [c[:2] for c in h.adapter.calls] == [("restart_service", "payments")]
            assert all(i.plan is None or i.plan.agent != model.name for i in h.incidents())
            (incident,) = h.incidents("payments")
            assert incident.state is State.RESOLVED
            # `warden shadow` compares it; `warden promote` counts it as evidence.
            (found,) = candidate_comparisons(h.warden.store)
            assert (found["kind"], found["name"]) == ("agent", model.name)
            assert found["counts"]["same plan"] == 1
            evidence, actions = evidence_for(
                h.warden.store, "agent", model.name, shadowed.data["version"]
            )
            assert evidence.shadow_proposals == 1
            assert actions == ["restart_service"]
        finally:
            h.close()
