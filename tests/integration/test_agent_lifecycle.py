"""A candidate runbook earns its autonomy, and loses it: shadow, evidence, canary, rollback.

A real store, gate, Cedar, audit log and reconcile loop on a manual clock; the candidate
is a second file of the same runbook in ``mode: shadow``.
"""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.cli import Cli
from tests.integration.harness import SERVICES, Harness, make_harness
from tests.integration.lifecycle_world import (
    CANDIDATE,
    CautiousRestarts,
    audited,
    evaluated,
    lifecycle_harness,
    oom,
    plans,
    promote,
    record_scores,
    shadow_then_evidence,
)
from warden import operations
from warden.api.context import ApiContext
from warden.api.server import ApiServer
from warden.assembly import default_agents
from warden.config import WardenConfig
from warden.domain import events as ev
from warden.domain.errors import PolicyDenied
from warden.domain.promotion import CanarySettings, PromotionPolicy, Thresholds
from warden.governance.gate import Guardrails, RateLimit
from warden.governance.identity import AuthenticationError, Credential
from warden.governance.policy import BUILTIN_BUNDLE
from warden.runtime.candidates import candidate_comparisons, lifecycle_of, versions_table
from warden.sim.candidate import agent_candidate, find_candidates
from warden.web.app import create_app

if TYPE_CHECKING:
    from pathlib import Path


def test_a_candidate_runbook_is_shadowed_scored_promoted_to_canary_and_rolled_back(
    tmp_path: Path,
) -> None:
    h = lifecycle_harness(tmp_path)
    try:
        version = shadow_then_evidence(h)
        # The version `warden evaluate` gives the candidate's file is the one loaded.
        (scored,) = find_candidates(str(tmp_path / "runbooks" / "oom-next.yaml"))
        assert (scored.kind, scored.name, scored.version) == (
            "runbook",
            "restart-on-oom",
            version["next"],
        )
        # In shadow: its plans decided by the live policy, recorded, never acted on.
        shadowed = [e for e in h.events(ev.RUNBOOK_SHADOWED)]
        assert {e.stream for e in shadowed} == {ev.SHADOW_STREAM}
        assert [s.data["version"] for s in shadowed] == [version["next"]] * 2
        assert [s.data["decisions"][0]["outcome"] for s in shadowed] == ["allow"] * 2
        (found,) = candidate_comparisons(h.warden.store)
        assert found["counts"] == {
            "same plan": 2,
            "different plan": 0,
            "only shadow": 0,
            "only live": 0,
        }

        # Not yet scored on the library: refused, every unmet threshold said.
        with pytest.raises(PolicyDenied) as refused:
            promote(h, "ada", "canary")
        assert refused.value.reasons == (
            f"scenario library: no evaluation of version {version['next']}"
            " (run `warden evaluate` on it with --record)",
        )
        evaluated(h, version["next"], wrong=1)
        with pytest.raises(PolicyDenied, match="1 WRONG of 6, at most 0 allowed"):
            promote(h, "ada", "canary")
        evaluated(h, version["next"])
        # An operator may roll back, never promote.
        with pytest.raises(AuthenticationError, match="promote needs the role admin"):
            promote(h, "otto", "canary", role="operator")
        promoted = promote(h, "ada", "canary")
        assert promoted.data["evidence"]["shadow_proposals"] == 2
        assert promoted.data["evidence"]["agreement_pct"] == 100.0
        assert promoted.data["evidence"]["library"]["wrong"] == 0
        h.tick()

        # In canary: orders gets the new version, payments keeps the previous one.
        h.adapter.script["restart_service"] = ["fail"]  # the canary's restart does not take
        oom(h, "orders")
        h.settle()
        by_service = {p["steps"][0]["target"]: p["agent_version"] for p in plans(h)[2:]}
        assert by_service == {"orders": version["next"]}
        (orders,) = [i for i in h.incidents("orders") if i.intended]
        assert orders.state.terminal
        assert [i.state.value for i in h.incidents() if i.intended and i.service != "orders"] == [
            "resolved",
            "resolved",
        ]

        # The canary did worse than the version before it: rolled back automatically.
        (rolled,) = h.events(ev.VERSION_ROLLED_BACK)
        assert rolled.data["automatic"] is True
        assert rolled.data["version"] == version["next"]
        assert rolled.data["restored"] == version["live"]
        assert "below the previous version's 100%" in rolled.data["reason"]
        assert rolled.data["evidence"]["canary"] == {
            "version": version["next"],
            "closed": 1,
            "held": 0,
        }
        # From now on the previous version acts on orders too.
        h.clock.advance(360)
        oom(h, "orders")
        h.settle()
        assert plans(h)[-1]["agent_version"] == version["live"]
        table = {r["version"]: r["stage"] for r in versions_table(lifecycle_of(h.warden.store))}
        assert table[version["next"]] == "rolled back"
        assert table[version["live"]] == "live"

        # All of it in the audit log, in order.
        kinds = [
            r["type"]
            for r in audited(h)
            if r["type"]
            in (
                ev.RUNBOOK_SHADOWED,
                ev.CANDIDATE_EVALUATED,
                ev.VERSION_PROMOTED,
                ev.VERSION_ROLLED_BACK,
            )
        ]
        assert kinds == [
            ev.RUNBOOK_SHADOWED,
            ev.RUNBOOK_SHADOWED,
            ev.CANDIDATE_EVALUATED,
            ev.CANDIDATE_EVALUATED,
            ev.VERSION_PROMOTED,
            ev.VERSION_ROLLED_BACK,
        ]
    finally:
        h.close()


def test_a_rollback_by_hand_loses_no_incident_in_flight_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    h = lifecycle_harness(tmp_path)
    try:
        version = shadow_then_evidence(h)
        evaluated(h, version["next"])
        promote(h, "ada", "canary")
        # Steps now wait for a person: the canary's incident is in flight at the switch.
        h.control(ev.AUTONOMY_CHANGED, level="supervised", environment="*", domain="*", by="ada")
        oom(h, "orders")
        h.settle(rounds=3)
        (in_flight,) = [i for i in h.incidents("orders") if i.plan is not None]
        assert in_flight.plan is not None and in_flight.plan.agent_version == version["next"]
        assert not in_flight.state.terminal
        # An operator rolls back at once: the previous version acts from the next event.
        operator = h.person("otto", "operator")
        rolled = operations.roll_back(
            h.warden.store,
            Credential(key=operator.key),
            "runbook",
            "restart-on-oom",
            h.clock.now(),
            reason="canary pages too often",
        )
        assert rolled.data["restored"] == version["live"] and rolled.data["automatic"] is False
        h.tick()
        h.approve(h.warden.runtime.incidents[in_flight.id], "bob")
        h.settle()
        stream = list(h.warden.store.read_stream(f"incident-{in_flight.id}"))
        kinds = [e.type for e in stream]
        # Planned once, decided once (then approved once), acted once, closed once.
        assert kinds.count(ev.PLAN_PROPOSED) == 1
        assert kinds.count(ev.STEP_INTENDED) == 1
        assert kinds.count(ev.INCIDENT_RESOLVED) == 1
        assert [c[:2] for c in h.adapter.calls].count(("restart_service", "orders")) == 1
        assert len([i for i in h.incidents("orders") if i.plan is not None]) == 1
        h.clock.advance(360)
        oom(h, "orders")
        h.settle(rounds=3)
        assert plans(h)[-1]["agent_version"] == version["live"]
    finally:
        h.close()
    again = lifecycle_harness(tmp_path)
    try:
        rows = versions_table(lifecycle_of(again.warden.store))
        table = {r["version"]: r["stage"] for r in rows if r["kind"] == "runbook"}
        assert table == {version["live"]: "live", version["next"]: "rolled back"}
        # Everything that decides has a version: built-in agents and the bundle too.
        kinds = {(r["kind"], r["stage"]) for r in rows}
        assert {("agent", "live"), ("bundle", "live")} <= kinds
        again.clock.advance(720)
        oom(again, "orders")
        again.settle(rounds=3)
        # Folded at start-up: the rolled back version neither acts nor shadows any more.
        assert plans(again)[-1]["agent_version"] == version["live"]
        assert len(again.events(ev.RUNBOOK_SHADOWED)) == 2
    finally:
        again.close()


def test_the_commands_list_compare_promote_and_roll_back(tmp_path: Path) -> None:
    h = lifecycle_harness(tmp_path)
    try:
        version = shadow_then_evidence(h)
        state = h.warden.config.state_dir
        (state / "warden.yaml").write_text(
            "services:\n"
            + "".join(
                f"  - {{name: {s}, health: 'http://127.0.0.1:9/h'}}\n"
                for s in ("payments", "orders", "gateway")
            )
            + "promotion:\n  default: {min_shadow_proposals: 2, min_agreement_pct: 90}\n"
            + "  canary: {fraction: 0, services: [orders]}\n"
        )
        cli = Cli(state)
        token = {
            name: str(h.person(name, role).token_file(tmp_path))
            for name, role in (("ada", "admin"), ("otto", "operator"), ("vic", "viewer"))
        }
        code, out = cli("versions", "--json")
        assert code == 0, out
        rows = [r for r in json.loads(out)["versions"] if r["kind"] == "runbook"]
        assert {r["version"]: r["stage"] for r in rows} == {
            version["live"]: "live",
            version["next"]: "shadow",
        }
        code, out = cli("versions")
        assert code == 0 and "restart-on-oom" in out and "shadow" in out, out
        code, out = cli("shadow", "--json")
        (found,) = json.loads(out)["candidates"]
        assert found["counts"]["same plan"] == 2, out
        code, out = cli("shadow")
        assert "runbook restart-on-oom" in out and "same plan" in out, out

        args = ("promote", "runbook", "restart-on-oom", "--to", "canary")
        code, out = cli(*args, "--token-file", token["ada"])
        assert code == 2
        assert "promotion to canary refused; unmet:" in out
        assert "scenario library: no evaluation of version" in out
        evaluated(h, version["next"])
        code, out = cli(*args, "--token-file", token["otto"])
        assert code == 2 and "promote needs the role admin" in out, out
        code, out = cli(*args, "--token-file", token["ada"])
        assert code == 0, out
        assert f"{version['next']} promoted to canary by ada" in out
        code, out = cli("versions")
        assert "canary" in out and "orders" in out, out

        back = ("rollback", "runbook", "restart-on-oom", "--reason", "drill")
        code, out = cli(*back, "--token-file", token["vic"])
        assert code == 2 and "rollback needs the role operator" in out, out
        code, out = cli(*back, "--token-file", token["otto"])
        assert code == 0, out
        assert f"{version['next']} rolled back, {version['live']} restored by otto" in out
        (rolled,) = h.events(ev.VERSION_ROLLED_BACK)
        assert (rolled.data["by"], rolled.data["reason"]) == ("otto", "drill")
    finally:
        h.close()


def test_a_candidate_agent_proposes_in_shadow_then_acts_supervised_and_is_rolled_back(
    tmp_path: Path,
) -> None:
    config = WardenConfig(services=SERVICES, state_dir=tmp_path / "state")
    agents = [*default_agents(config), CautiousRestarts()]
    h = make_harness(tmp_path, agents=agents, shadow_agents=("cautious-restarts",))
    try:
        h.fail("payments")
        h.settle()
        (planned,) = h.events(ev.PLAN_PROPOSED)
        assert planned.data["plan"]["agent"] == "service-down"
        # The plan records the version of the agent that made it, as listed when loaded.
        loaded = {
            (v["name"], v["mode"]): v["version"]
            for v in h.events(ev.VERSIONS_LOADED)[-1].data["versions"]
        }
        assert planned.data["versions"] == {"agent": loaded[("service-down", "live")]}
        # So does each decision, with the bundle's.
        decided = h.events(ev.DECISION_RECORDED)[0].data
        assert decided["versions"] == {
            "agent": loaded[("service-down", "live")],
            "bundle": h.warden.runtime.gate.bundle.version,
        }
        (shadowed,) = h.events(ev.AGENT_SHADOWED)
        assert shadowed.stream == ev.SHADOW_STREAM
        assert shadowed.data["version"] == loaded[("cautious-restarts", "shadow")]
        # The version `warden evaluate` gives the agent is the one loaded.
        scored = agent_candidate("tests.integration.lifecycle_world:CautiousRestarts")
        assert scored.version == loaded[("cautious-restarts", "shadow")]
        assert shadowed.data["decisions"][0]["outcome"] == "allow"
        assert [c[:2] for c in h.adapter.calls] == [("restart_service", "payments")]
        (found,) = candidate_comparisons(h.warden.store)
        assert found["counts"]["same plan"] == 1

        candidate = loaded[("cautious-restarts", "shadow")]
        record_scores(h, "agent", "cautious-restarts", candidate, human=100.0)
        policy = PromotionPolicy(default=Thresholds(min_shadow_proposals=1))
        admin = h.person("ada", "admin")
        operations.promote(
            h.warden.store, Credential(key=admin.key), "agent", "cautious-restarts",
            "supervised", h.clock.now(), policy, h.warden.runtime.catalog,
        )  # fmt: skip
        h.tick()
        runtime = h.warden.runtime
        assert "cautious-restarts" in [a.name for a in runtime.agents]
        assert runtime.agents[-1].name == "escalation"
        assert ("cautious-restarts", "supervised") in runtime.settings.agent_caps

        operations.roll_back(
            h.warden.store, Credential(key=h.person("otto", "operator").key), "agent",
            "cautious-restarts", h.clock.now(), reason="too eager",
        )  # fmt: skip
        h.tick()
        assert "cautious-restarts" not in [a.name for a in runtime.agents]
        assert ("cautious-restarts", "supervised") not in runtime.settings.agent_caps
        # Rolled back, it stays loaded and idle: it neither acts nor proposes in shadow.
        h.fail("orders")
        h.settle()
        assert len(h.events(ev.AGENT_SHADOWED)) == 1
        assert h.events(ev.PLAN_PROPOSED)[-1].data["plan"]["agent"] == "service-down"
    finally:
        h.close()


def test_a_candidate_bundle_is_promoted_kept_across_a_restart_and_rolled_back(
    tmp_path: Path,
) -> None:
    candidate = tmp_path / "candidate"
    shutil.copytree(BUILTIN_BUNDLE, candidate)
    first = sorted(candidate.glob("*.cedar"))[0]
    first.write_text(first.read_text() + "\n// the candidate: same rules, reviewed again\n")
    h = make_harness(tmp_path, shadow_policy_dir=candidate)
    try:
        live = h.warden.runtime.gate.bundle.version
        assert h.warden.runtime.shadow is not None
        next_ = h.warden.runtime.shadow.bundle.version
        assert live != next_
        h.fail("payments")
        h.settle()
        assert [e.data["agree"] for e in h.events(ev.SHADOW_DECIDED)] == [True]
        # Scored as `warden evaluate` names the bundle: by its directory, the same version.
        (bundle,) = find_candidates(str(candidate))
        assert (bundle.kind, bundle.version) == ("bundle", next_)
        record_scores(h, "bundle", bundle.name, bundle.version)
        policy = PromotionPolicy(default=Thresholds(min_shadow_proposals=1))
        admin = Credential(key=h.person("ada", "admin").key)
        promoted = operations.promote(
            h.warden.store, admin, "bundle", "policy", "autonomous", h.clock.now(), policy,
            h.warden.runtime.catalog,
        )  # fmt: skip
        assert promoted.data["evidence"]["shadow_proposals"] == 1
        h.tick()
        assert h.warden.runtime.gate.bundle.version == next_
    finally:
        h.close()
    # The candidate's directory is gone: the promoted bundle comes back from the kept copy.
    shutil.rmtree(candidate)
    again = make_harness(tmp_path)
    try:
        assert again.warden.runtime.gate.bundle.version == next_
        operations.roll_back(
            again.warden.store, Credential(key=again.person("otto", "operator").key),
            "bundle", "policy", again.clock.now(),
        )  # fmt: skip
        again.tick()
        assert again.warden.runtime.gate.bundle.version == live
        again.fail("orders")
        again.settle()
        decided = again.events(ev.DECISION_RECORDED)[-1].data["decision"]
        assert decided["bundle_version"] == live
    finally:
        again.close()


BUNDLE_CANARY = PromotionPolicy(
    default=Thresholds(min_shadow_proposals=1, min_agreement_pct=0.0),
    canary=CanarySettings(fraction=0.0, services=("orders",)),
)


def candidate_bundle(tmp_path: Path, rules: str) -> Path:
    """The built-in bundle with ``rules`` added: a candidate in ``shadow_policy_dir``."""
    candidate = tmp_path / "candidate"
    shutil.copytree(BUILTIN_BUNDLE, candidate)
    (candidate / "candidate.cedar").write_text(rules)
    return candidate


def bundle_in_canary(tmp_path: Path, rules: str, **overrides: Any) -> tuple[Harness, str, str]:
    """A harness with a candidate bundle in canary on orders; the live and candidate versions.

    The candidate (the built-in bundle with ``rules``) shadowed an incident on gateway and
    was scored first, as a promotion asks.
    """
    h = make_harness(tmp_path, shadow_policy_dir=candidate_bundle(tmp_path, rules), **overrides)
    live = h.warden.runtime.gate.bundle.version
    assert h.warden.runtime.shadow is not None
    next_ = h.warden.runtime.shadow.bundle.version
    h.fail("gateway")
    h.settle()
    record_scores(h, "bundle", "policy", next_)
    promoted = promote_bundle(h, "canary")
    assert (promoted.data["version"], promoted.data["previous"]) == (next_, live)
    h.tick()
    return h, live, next_


def promote_bundle(h: Harness, to: str, who: str = "ada") -> ev.Event:
    return operations.promote(
        h.warden.store, Credential(key=h.person(who, "admin").key), "bundle", "policy", to,
        h.clock.now(), BUNDLE_CANARY, h.warden.runtime.catalog,
    )  # fmt: skip


def decided_by(h: Harness) -> list[tuple[str, str, str]]:
    """(target, outcome, bundle version) of each decision recorded, in order."""
    out = []
    for event in h.events(ev.DECISION_RECORDED):
        incident = h.warden.runtime.incidents[event.stream.removeprefix("incident-")]
        assert incident.plan is not None
        target = incident.plan.steps[int(event.data["index"])].target
        decision = event.data["decision"]
        out.append((target, decision["outcome"], decision["bundle_version"]))
    return out


def test_a_bundle_in_canary_decides_for_its_services_only_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    forbids = (
        '@id("candidate-no-restarts")\n@message("the candidate restarts nothing")\n'
        "forbid (principal, action, resource);\n"
    )
    h, live, next_ = bundle_in_canary(tmp_path, forbids)
    try:
        h.fail("payments")
        h.settle()
        h.fail("orders")
        h.settle()
        # orders is in the canary: the candidate denies its restart; payments keeps the live.
        assert decided_by(h) == [
            ("gateway", "allow", live),
            ("payments", "allow", live),
            ("orders", "deny", next_),
        ]
        assert [c[:2] for c in h.adapter.calls] == [
            ("restart_service", "gateway"),
            ("restart_service", "payments"),
        ]
        assert not h.events(ev.VERSION_ROLLED_BACK)  # a denial is no regression
    finally:
        h.close()
    # A restart without the candidate's directory: the canary comes back from the kept copy.
    shutil.rmtree(tmp_path / "candidate")
    again = make_harness(tmp_path)
    try:
        gate = again.warden.runtime.gate
        assert gate.bundle.version == live
        assert gate.canary is not None and gate.canary.bundle.version == next_
        assert [gate.bundle_for(s).version for s in ("payments", "orders")] == [live, next_]
        # Promoted on from the canary: the candidate decides for every service.
        again.clock.advance(4 * 3600)  # past the relapse window: a new incident
        promote_bundle(again, "autonomous", who="bea")
        again.tick()
        assert gate.canary is None
        assert gate.bundle.version == next_
        again.fail("payments")
        again.settle()
        assert decided_by(again)[-1] == ("payments", "deny", next_)
    finally:
        again.close()


SAME_RULES = "// the candidate: the same rules, reviewed again\n"


def test_a_bundle_canary_that_does_worse_is_rolled_back_automatically(tmp_path: Path) -> None:
    h, live, next_ = bundle_in_canary(tmp_path, SAME_RULES)
    try:
        h.adapter.script["restart_service"] = ["fail"]  # the restart it allows does not take
        h.fail("orders")
        h.settle()
        assert decided_by(h) == [("gateway", "allow", live), ("orders", "allow", next_)]
        (rolled,) = h.events(ev.VERSION_ROLLED_BACK)
        assert (rolled.data["kind"], rolled.data["automatic"]) == ("bundle", True)
        assert (rolled.data["version"], rolled.data["restored"]) == (next_, live)
        assert "below the previous version's 100%" in rolled.data["reason"]
        assert rolled.data["evidence"]["canary"] == {"version": next_, "closed": 1, "held": 0}
        h.tick()
        gate = h.warden.runtime.gate
        assert gate.canary is None
        assert gate.bundle_for("orders").version == live
        kinds = [
            r["type"]
            for r in audited(h)
            if r["type"] in (ev.CANDIDATE_EVALUATED, ev.VERSION_PROMOTED, ev.VERSION_ROLLED_BACK)
        ]
        assert kinds == [ev.CANDIDATE_EVALUATED, ev.VERSION_PROMOTED, ev.VERSION_ROLLED_BACK]
    finally:
        h.close()
    # The rollback holds across a restart: the previous bundle for all.
    again = make_harness(tmp_path, shadow_policy_dir=tmp_path / "candidate")
    try:
        gate = again.warden.runtime.gate
        assert gate.canary is None
        assert gate.bundle_for("orders").version == live
    finally:
        again.close()


def test_a_guardrail_tripped_on_a_bundle_canarys_step_rolls_it_back(tmp_path: Path) -> None:
    rails = Guardrails(per_target=RateLimit(1, 3600))
    h, live, next_ = bundle_in_canary(tmp_path, SAME_RULES, guardrails=rails)
    try:
        h.fail("orders")
        h.settle()
        assert not h.events(ev.VERSION_ROLLED_BACK)  # held, as the previous bundle's did
        h.clock.advance(1801)  # past the relapse window: a new failure, not the same one back
        h.fail("orders")
        h.settle()
        assert decided_by(h)[-1] == ("orders", "deny", next_)
        (rolled,) = h.events(ev.VERSION_ROLLED_BACK)
        assert (rolled.data["kind"], rolled.data["version"]) == ("bundle", next_)
        assert rolled.data["reason"].startswith("guardrail guardrail:rate-limit tripped")
        assert h.warden.runtime.gate.canary is None
        assert h.warden.runtime.gate.bundle.version == live
    finally:
        h.close()


def test_a_guardrail_tripped_in_the_canary_rolls_it_back(tmp_path: Path) -> None:
    # The same plan, but less sure of itself than the guardrails' confidence floor (0.6).
    unsure = CANDIDATE.replace("confidence: 0.9", "confidence: 0.5")
    h = lifecycle_harness(tmp_path, candidate=unsure)
    try:
        version = shadow_then_evidence(h)
        shadowed = h.events(ev.RUNBOOK_SHADOWED)
        assert [s.data["decisions"][0]["policy"] for s in shadowed] == [
            "guardrail:confidence-floor"
        ] * 2
        evaluated(h, version["next"])
        promote(h, "ada", "canary")
        h.tick()
        oom(h, "orders")
        h.settle(rounds=3)
        (rolled,) = h.events(ev.VERSION_ROLLED_BACK)
        assert rolled.data["automatic"] is True
        assert rolled.data["reason"].startswith("guardrail guardrail:confidence-floor tripped")
        assert not [c for c in h.adapter.calls if c[1] == "orders"]
    finally:
        h.close()


class EagerRestarts(CautiousRestarts):
    """A candidate that, once acting, outranks the built-in agent."""

    name = "eager-restarts"
    priority = 90


def test_a_candidate_agent_in_canary_acts_on_its_services_only_and_rolls_back(
    tmp_path: Path,
) -> None:
    config = WardenConfig(services=SERVICES, state_dir=tmp_path / "state")
    agents = [*default_agents(config), EagerRestarts()]
    h = make_harness(tmp_path, agents=agents, shadow_agents=("eager-restarts",))
    try:
        h.fail("gateway")
        h.settle()
        (shadowed,) = h.events(ev.AGENT_SHADOWED)
        version = shadowed.data["version"]
        record_scores(h, "agent", "eager-restarts", version, human=None)
        policy = PromotionPolicy(
            default=Thresholds(min_shadow_proposals=1),
            canary=CanarySettings(fraction=0.0, services=("orders",)),
        )
        operations.promote(
            h.warden.store, Credential(key=h.person("ada", "admin").key), "agent",
            "eager-restarts", "canary", h.clock.now(), policy, h.warden.runtime.catalog,
        )  # fmt: skip
        h.tick()
        h.fail("payments")
        h.settle()
        h.adapter.script["restart_service"] = ["fail"]
        h.fail("orders")
        h.settle()
        by_service = {
            e.data["plan"]["steps"][0]["target"]: e.data["plan"]["agent"]
            for e in h.events(ev.PLAN_PROPOSED)
        }
        assert by_service == {
            "gateway": "service-down",
            "payments": "service-down",  # not in the canary: the agents it had
            "orders": "eager-restarts",  # in the canary: the candidate acts
        }
        (rolled,) = h.events(ev.VERSION_ROLLED_BACK)
        assert (rolled.data["automatic"], rolled.data["version"]) == (True, version)
        h.tick()
        assert "eager-restarts" not in [a.name for a in h.warden.runtime.agents]
    finally:
        h.close()


def test_the_api_lists_versions_and_candidates(tmp_path: Path) -> None:
    h = lifecycle_harness(tmp_path)
    ctx = ApiContext(h.warden.store, h.warden.config.state_dir, now=h.clock.now, poll_s=0.05)
    server = ApiServer(create_app(ctx), ctx, "127.0.0.1", 0)
    server.start()
    try:
        version = shadow_then_evidence(h)
        viewer = {"Authorization": f"Bearer {h.person('vic', 'viewer').token}"}
        with httpx.Client(timeout=30) as client:
            listed = client.get(server.url + "/api/versions", headers=viewer)
            compared = client.get(server.url + "/api/shadow", headers=viewer)
            nobody = client.get(server.url + "/api/versions")
        assert listed.status_code == 200, listed.text
        rows = [r for r in listed.json()["versions"] if r["kind"] == "runbook"]
        assert {r["version"]: r["stage"] for r in rows} == {
            version["live"]: "live",
            version["next"]: "shadow",
        }
        (candidate,) = compared.json()["candidates"]
        assert candidate["counts"]["same plan"] == 2
        assert nobody.status_code == 401
    finally:
        server.stop()
        ctx.stopping.set()
        h.close()
