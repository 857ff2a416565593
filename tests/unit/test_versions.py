"""Versions and promotion on evidence: the lifecycle fold, canary selection, thresholds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from warden.agents.canary import CanaryAgent
from warden.agents.model import ModelAgent
from warden.agents.protocol import is_slow
from warden.agents.service_down import ServiceDownAgent
from warden.agents.versioning import versions_of
from warden.domain import events as ev
from warden.domain import promotion as pr
from warden.domain import versions as vs
from warden.domain.catalog import Catalog

T0 = "2026-11-25T12:00:00.000000Z"


def event(type_: str, data: dict[str, Any], position: int) -> ev.Event:
    made = ev.derived_event(type_, ev.LIFECYCLE_STREAM, data, T0, key=str(position))
    return replace(made, position=position)


def loaded(*entries: tuple[str, str], position: int = 1) -> ev.Event:
    versions = [{"kind": "runbook", "name": "oom", "version": v, "mode": m} for v, m in entries]
    return event(ev.VERSIONS_LOADED, {"versions": versions}, position)


def promoted(version: str, to: str, position: int, **extra: Any) -> ev.Event:
    data = {"kind": "runbook", "name": "oom", "version": version, "to": to, **extra}
    return event(ev.VERSION_PROMOTED, data, position)


def rolled_back(version: str, restored: str, position: int) -> ev.Event:
    data = {"kind": "runbook", "name": "oom", "version": version, "restored": restored}
    return event(ev.VERSION_ROLLED_BACK, data, position)


def test_a_candidate_goes_from_shadow_through_canary_to_live_and_back() -> None:
    life = vs.fold([loaded(("v1", "live"), ("v2", "shadow"))])
    track = life.track("runbook", "oom")
    assert (track.live, track.shadow, track.canary) == ("v1", ("v2",), None)
    assert track.role("v2", "payments") == vs.SHADOW
    assert track.role("v1", "payments") == vs.LIVE

    life = vs.observe(life, promoted("v2", "canary", 2, fraction=0.0, services=["orders"]))
    track = life.track("runbook", "oom")
    assert track.role("v2", "orders") == vs.LIVE
    assert track.role("v1", "orders") == vs.IDLE
    assert track.role("v1", "payments") == vs.LIVE
    assert track.role("v2", "payments") == vs.IDLE
    assert track.previous() == "v1"

    life = vs.observe(life, promoted("v2", "autonomous", 3))
    track = life.track("runbook", "oom")
    assert (track.live, track.stage, track.canary, track.retired) == (
        "v2",
        "autonomous",
        None,
        ("v1",),
    )
    assert track.previous() == "v1"

    life = vs.observe(life, rolled_back("v2", "v1", 4))
    track = life.track("runbook", "oom")
    assert (track.live, track.rolled_back) == ("v1", ("v2",))
    assert track.stage_of("v2") == "rolled back"
    assert track.role("v2", "orders") == vs.IDLE

    # A restart loads the same files: the rollback holds, v2 does not shadow again.
    again = vs.observe(life, loaded(("v1", "live"), ("v2", "shadow"), position=5))
    track = again.track("runbook", "oom")
    assert (track.live, track.shadow) == ("v1", ())


def test_a_promotion_holds_across_restarts_until_the_files_change() -> None:
    life = vs.fold([loaded(("v1", "live"), ("v2", "shadow")), promoted("v2", "supervised", 2)])
    life = vs.observe(life, loaded(("v1", "live"), ("v2", "shadow"), position=3))
    assert life.track("runbook", "oom").live == "v2"
    assert life.track("runbook", "oom").stage == "supervised"
    # An edit of the live file is a new version: it takes over, the promotion retires.
    life = vs.observe(life, loaded(("v3", "live"), ("v2", "shadow"), position=4))
    track = life.track("runbook", "oom")
    assert track.live == "v3"
    assert "v2" in track.retired


def test_the_latest_evaluation_of_the_exact_version_counts() -> None:
    def scored(version: str, wrong: int, position: int) -> ev.Event:
        data = {
            "kind": "runbook",
            "name": "oom",
            "version": version,
            "library": {"right": 3, "miss": 1, "wrong": wrong, "total": 4 + wrong},
            "history": {"agree": 9, "differ": 1, "total": 10, "human_agreement": 90.0},
        }
        return event(ev.CANDIDATE_EVALUATED, data, position)

    life = vs.fold([scored("v2", 2, 1), scored("v2", 0, 2), scored("v3", 5, 3)])
    found = life.evaluation("runbook", "oom", "v2")
    assert found is not None
    assert (found.wrong, found.human_agreement_pct) == (0, 90.0)
    assert life.evaluation("runbook", "oom", "v4") is None


@given(st.lists(st.text(min_size=1, max_size=12), max_size=40, unique=True))
def test_canary_selection_is_a_function_of_the_name(services: list[str]) -> None:
    chosen = [s for s in services if vs.in_canary(s, 0.3, ())]
    assert chosen == [s for s in reversed(services) if vs.in_canary(s, 0.3, ())][::-1]
    assert all(vs.in_canary(s, 1.0, ()) for s in services)
    assert not any(vs.in_canary(s, 0.0, ()) for s in services)
    assert all(vs.in_canary(s, 0.0, (s,)) for s in services)


def test_canary_selection_does_not_depend_on_the_hash_seed() -> None:
    names = [f"svc-{n}" for n in range(200)]
    code = (
        "import json; from warden.domain.versions import in_canary;"
        f"print(json.dumps(sorted(n for n in {names!r} if in_canary(n, 0.25, ()))))"
    )
    seen = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("0", "1", "12345")
    }
    assert len(seen) == 1
    share = len(json.loads(seen.pop())) / len(names)
    assert 0.15 < share < 0.35


def evidence(proposals: int, same: int, differ: int, wrong: int | None) -> pr.Evidence:
    evaluation = None if wrong is None else vs.Evaluation(6 - wrong, 0, wrong, 6, 0, 0, 0, None, T0)
    return pr.Evidence(
        "runbook",
        "oom",
        "v2",
        proposals,
        {pr.SAME: same, pr.DIFFERENT: differ},
        evaluation,
    )


def test_unmet_lists_every_threshold_short() -> None:
    strict = pr.Thresholds(min_shadow_proposals=20, min_agreement_pct=90, max_wrong=0)
    assert pr.unmet(strict, evidence(20, 19, 1, 0)) == []
    assert pr.unmet(strict, evidence(3, 1, 1, 2)) == [
        "shadow proposals: 3, at least 20 needed",
        "agreement: 50%, at least 90% needed",
        "scenario library: 2 WRONG of 6, at most 0 allowed",
    ]
    assert pr.unmet(strict, evidence(20, 20, 0, None))[-1].startswith(
        "scenario library: no evaluation of version v2"
    )


def test_human_agreement_counts_before_agreement_with_the_live_version() -> None:
    found = vs.Evaluation(6, 0, 0, 6, 0, 0, 10, 50.0, T0)
    with_humans = pr.Evidence("runbook", "oom", "v2", 30, {pr.SAME: 30}, found)
    assert with_humans.agreement_pct == 50.0
    assert pr.unmet(pr.Thresholds(), with_humans) == ["agreement: 50%, at least 90% needed"]


def test_the_strictest_class_of_the_actions_used_applies() -> None:
    policy = pr.PromotionPolicy(
        default=pr.Thresholds(10, 80, 1),
        classes=(
            ("high", pr.Thresholds(50, 99, 0)),
            ("restart_service", pr.Thresholds(5, 95, 0)),
        ),
    )
    assert policy.for_actions([("restart_service", "low")]) == pr.Thresholds(5, 95, 0)
    assert policy.for_actions([("scale_out", "low")]) == pr.Thresholds(10, 80, 1)
    assert policy.for_actions(
        [("restart_service", "low"), ("rollback_deploy", "high")]
    ) == pr.Thresholds(50, 99, 0)
    assert policy.for_actions([]) == pr.Thresholds(10, 80, 1)


def test_compare_sorts_proposals_against_the_live_incidents() -> None:
    restart = (("restart_service", "payments", ""),)
    scale = (("scale_out", "orders", "replicas=3"),)
    proposals = [
        pr.Proposal("payments", "t1", ("e1",), restart),  # same as live
        pr.Proposal("orders", "t2", ("e2",), restart),  # live scaled out
        pr.Proposal("gateway", "t3", ("e3",), restart),  # live had nothing
        pr.Proposal("orders", "t5", (), (), incident_id="i5"),  # asked, proposed nothing
    ]
    live = [
        pr.LiveIncident("i1", "payments", "t1", ("e1",), restart),
        pr.LiveIncident("i2", "orders", "t2", ("e2",), scale),
        pr.LiveIncident("i4", "orders", "t4", ("e4",), scale),  # never seen by the candidate
        pr.LiveIncident("i5", "orders", "t5", ("e5",), scale),
    ]
    compared = pr.compare(proposals, live)
    assert [(c.verdict, c.incident_id) for c in compared] == [
        (pr.SAME, "i1"),
        (pr.DIFFERENT, "i2"),
        (pr.ONLY_SHADOW, ""),
        (pr.ONLY_LIVE, "i4"),
        (pr.ONLY_LIVE, "i5"),
    ]
    assert pr.tally(compared) == {
        pr.SAME: 1,
        pr.DIFFERENT: 1,
        pr.ONLY_SHADOW: 1,
        pr.ONLY_LIVE: 2,
    }


def test_agents_and_model_settings_carry_versions() -> None:
    one = versions_of(ModelAgent("http://127.0.0.1:9/v1", "model-one", Catalog()))
    two = versions_of(ModelAgent("http://127.0.0.1:9/v1", "model-two", Catalog()))
    assert one["agent"] == two["agent"]  # the same code
    assert one["model"] != two["model"]  # other settings
    assert one["agent"].startswith("model-advisor@")
    built_in = versions_of(ServiceDownAgent())
    assert set(built_in) == {"agent"}
    assert built_in["agent"].startswith("service-down@")
    assert built_in == versions_of(ServiceDownAgent())  # a function of the code alone


def test_a_model_agent_in_canary_is_still_asked_off_the_loop() -> None:
    model = ModelAgent("http://127.0.0.1:9/v1", "model-one", Catalog())
    assert is_slow(CanaryAgent(model, lambda service: service == "orders"))
    assert not is_slow(CanaryAgent(ServiceDownAgent(), lambda service: True))
