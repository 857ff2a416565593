"""Every KPI of a scripted history, worked out by hand, against the report, /metrics and the API.

The history goes into a real SQLite store; `warden report --json` reads it with a real
warden.yaml (relapse window 600 s, prices), the API serves it over a socket, and the
metrics listener folds it and is scraped over HTTP. Each expected figure carries the
arithmetic that gives it.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import typer
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from tests.builders import register
from tests.kpi_history import DAY, T0, Script
from warden.api.context import ApiContext
from warden.api.server import ApiServer
from warden.cli.report_cmd import report
from warden.config import load_config
from warden.domain import events as ev
from warden.domain.decisions import Outcome
from warden.domain.incident import fold
from warden.store.sqlite import SQLiteEventStore
from warden.telemetry.metrics import MetricsListener, serve_metrics
from warden.web.app import create_app

if TYPE_CHECKING:
    from pathlib import Path

app = typer.Typer()


@app.callback()
def warden() -> None:
    """Stands in for the real `warden` app, so the command is invoked as `report`."""


app.command()(report)

CONFIG = """\
state_dir: state
relapse_window_s: 600
services:
  - {name: payments, health: "http://127.0.0.1:1/health"}
  - {name: orders, health: "http://127.0.0.1:1/health"}
  - {name: search, health: "http://127.0.0.1:1/health"}
  - {name: cache, health: "http://127.0.0.1:1/health"}
kpis:
  prices: {action: 0.10, approval: 5, page_minute: 2}
"""


def history() -> Script:
    """Nine incidents, twelve signals, three shadow decisions; what each contributes."""
    s = Script()
    s.signal(ev.PROBE_FAILED, "payments", 0)
    s.signal(ev.PROBE_SUCCEEDED, "payments", 25)
    s.signal(ev.DEPLOY_COMPLETED, "payments", 50, version="v2")
    s.signal(ev.ALERT_FIRING, "orders", 95, fingerprint="f1", alertname="HighErrors")
    s.signal(ev.METRIC_SAMPLED, "orders", 120, metric="errors", value=3)
    s.signal(ev.PROBE_FAILED, "search", 195)
    s.signal(ev.PROBE_FAILED, "payments", 290)
    s.signal(ev.PROBE_SUCCEEDED, "search", 400)  # search is well: ends no page yet
    s.signal(ev.DRIFT_DETECTED, "search", 1000, field="version", desired="2", observed="1")
    s.signal(ev.PROBE_SUCCEEDED, "search", 1400)  # ends g's page
    s.signal(ev.DRIFT_RESOLVED, "search", 1500, field="version", desired="2", observed="2")
    s.shadow(150, "bp@v1", "bp@v2", agree=True)
    s.shadow(250, "bp@v1", "bp@v2", agree=False)
    s.shadow(350, "bp@v1", "bp@v3", agree=False)

    # a: automated fix, but payments fails again at 290, 270 s after: relapsed (inferred)
    a = s.incident("a", "payments")
    a.opened(10, first_signal=0).planned(11).decided(13, 0, Outcome.ALLOW, "bp@v1")
    a.intended(14, 0).finished(16, 0, duration_ms=2000).verified(17, 20)
    a.add(ev.INCIDENT_RESOLVED, 20, {"reason": "verified"})

    # b: a runbook's plan, approved by a human, held
    b = s.incident("b", "orders", agent="restart-on-oom", version="abc123", kind="runbook:oom")
    b.opened(100, first_signal=95).planned(101)
    b.decided(103, 0, Outcome.NEEDS_APPROVAL, "bp@v1", approvers=1).asked(103, 0)
    b.approved(160, 0, "alice").decided(161, 0, Outcome.ALLOW, "bp@v1")
    b.intended(162, 0).finished(165, 0).verified(166, 170)
    b.add(ev.INCIDENT_RESOLVED, 170, {"reason": "verified"})

    # c: step 0 ran, step 1 failed, step 0 compensated: rolled back
    c = s.incident("c", "search", steps=2)
    c.opened(200, first_signal=195).planned(201).decided(205, 0, Outcome.ALLOW, "bp@v2")
    c.intended(206, 0).finished(208, 0, duration_ms=2000)
    c.decided(209, 1, Outcome.ALLOW, "bp@v2").intended(210, 1)
    c.finished(213, 1, ok=False, duration_ms=3000).compensated(214, 0, 216)
    c.add(ev.INCIDENT_ROLLED_BACK, 217, {"reason": "compensated"})

    # r: a new version of the agent; fixed, then relapsed (recorded by the runtime)
    r = s.incident("r", "payments", agent="service-down", version="sd2")
    r.opened(300, first_signal=290).planned(301).decided(303, 0, Outcome.ALLOW, "bp@v2")
    r.intended(304, 0).finished(306, 0, duration_ms=1000).verified(307, 310)
    r.add(ev.INCIDENT_RESOLVED, 310, {"reason": "verified"})

    # d: denied, escalated (paged at 506, re-paged at 1200); cache never reports back
    d = s.incident("d", "cache")
    d.opened(500, first_signal=497).planned(501).decided(505, 0, Outcome.DENY, "bp@v1")
    d.escalated(506)

    # s: payments again at 690, still open
    s_ = s.incident("s", "payments", agent="service-down", version="sd2")
    s_.opened(695, first_signal=690).planned(696)
    r.add(ev.INCIDENT_RELAPSED, 700, {"reason": "payments failed again"})

    # e: recovered before any plan
    e = s.incident("e", "cache")
    e.opened(800, first_signal=797).add(ev.INCIDENT_RESOLVED, 810, {"reason": "recovered"})

    # f: awaited approval, escalated without a page (the people who decided know)
    f = s.incident("f", "orders")
    f.opened(900, first_signal=898).planned(901)
    f.decided(903, 0, Outcome.NEEDS_APPROVAL, "bp@v2", approvers=1).asked(903, 0)
    f.escalated(1100, notify=False)

    d.add(ev.INCIDENT_REPAGED, 1200, {"reason": "still down"})

    # g: its step failed; escalated and paged at 1310; search is well again at 1400
    g = s.incident("g", "search")
    g.opened(1300, first_signal=1290).planned(1301).decided(1303, 0, Outcome.ALLOW, "bp@v2")
    g.intended(1304, 0).finished(1309, 0, ok=False, duration_ms=5000).escalated(1310)

    s.signal(ev.DRIFT_DETECTED, "cache", 2000, field="replicas", desired="3", observed="2")
    return s


def summary(count: int, mean: float | None, p50: float | None, p90: float | None,
            p99: float | None, max_: float | None) -> dict[str, Any]:  # fmt: skip
    return {"count": count, "mean": mean, "p50": p50, "p90": p90, "p99": p99, "max": max_}


def incident_figures(**given: Any) -> dict[str, Any]:
    """Expected incident KPIs; every key must be given."""
    return given


# Nine incidents a b c d r s e f g. History from 0 s to 2000 s: rates per day divide by
# one day (the floor), per hour by one hour; 4 services (the configured ones).
PAGE_D = (2000 - 506) / 60  # paged at 506, no recovery: runs to the history's end
PAGE_G = (1400 - 1310) / 60  # paged at 1310, search probe succeeded at 1400
EXPECTED: dict[str, Any] = {
    "since": None,
    "until": None,
    "period_days": 2000 / DAY,
    "relapse_window_s": 600.0,
    "incidents": 9,
    "open": 1,  # s
    "resolved": 2,  # b, e
    "escalated": 3,  # d, f, g
    "rolled_back": 1,  # c
    "relapsed": 2,  # a (inferred: r's first signal 290 - 20 = 270 <= 600), r (recorded)
    "automated": 1,  # e; b needed alice
    # detect: a 10, b 5, c 5, r 10, d 3, s 5, e 3, f 2, g 10 -> 2 3 3 5 5 5 10 10 10
    "time_to_detect_s": summary(9, 53 / 9, 5, 10, 10, 10),
    # MTTR (resolved only): b 170 - 95 = 75, e 810 - 797 = 13
    "mttr_s": summary(2, 44, 13, 75, 75, 75),
    # decide: a 3, b 3, c 5, r 3, d 5, f 3, g 3
    "time_to_decide_s": summary(7, 25 / 7, 3, 5, 5, 5),
    # act (first decision -> first intent): a 1, b 162 - 103 = 59, c 1, r 1, g 1
    "time_to_act_s": summary(5, 63 / 5, 1, 59, 59, 59),
    # steps: a 2, b 3 (intent 162 -> 165), c 2 and 3, r 1, g 5
    "action_duration_s": summary(6, 16 / 6, 2, 5, 5, 5),
    # latency: a 2; b 2, 1; c 4, 1; r 2; d 4; f 2; g 2
    "decision_latency_s": summary(9, 20 / 9, 2, 4, 4, 4),
    "automation_coverage": 1 / 8,  # e of 8 closed
    "remediations": 5,  # a, b, c, r, g ran a step
    "remediations_held": 1,  # b; a and r relapsed, c rolled back, g escalated
    "remediation_success_rate": 1 / 5,
    "escalations_per_incident": 3 / 9,
    "escalations_per_day": 3.0,
    "decisions": {"allow": 6, "deny": 1, "needs_approval": 2, "approvals_granted": 1},
    "actions": {"succeeded": 4, "failed": 2},
    "cost": {
        "actions": 7,  # 6 step results + c's compensation
        "approvals_asked": 2,  # b, f
        "pages": 3,  # d twice, g once; f's escalation paged nobody
        "page_minutes": PAGE_D + PAGE_G,  # 24.9 + 1.5
        "prices": {"action": 0.1, "approval": 5.0, "page_minute": 2.0},
        "by_unit": {"action": 0.7, "approval": 10.0, "page_minute": 52.8},
        "total": 63.5,
    },
    "policy_drift": {
        "compared": 3,
        "changed": 2,
        "rate": 2 / 3,
        "per_day": 2.0,
        "pairs": [
            {"live": "bp@v1", "candidate": "bp@v2", "compared": 2, "changed": 1, "rate": 0.5},
            {"live": "bp@v1", "candidate": "bp@v3", "compared": 1, "changed": 1, "rate": 1.0},
        ],
        # by time: a v1, b v1 v1, c v2 v2, r v2, d v1, f v2, g v2 -> three changes
        "live_bundle_changes": 3,
        "live_bundle_changes_per_day": 3.0,
        "live_bundle_versions": ["bp@v1", "bp@v2"],
    },
    "config_drift": {
        "drifts": 2,  # search at 1000, cache at 2000 (a resolution is no drift)
        "per_service_day": 2 / (4 * 1),
        "by_service": {"cache": 1, "search": 1},
    },
    "observability": {
        "services": 4,
        "signals": 12,
        "signals_by_kind": {"alert": 1, "change": 1, "drift": 3, "metric": 1, "probe": 6},
        "signals_per_service_hour": 12 / (4 * 1),
        "with_probes": 2,  # payments, search
        "with_alerts": 1,  # orders
        "with_changes": 1,  # payments
        "probe_share": 0.5,
        "alert_share": 0.25,
        "change_share": 0.25,
    },
    "kill_switch_engagements": 0,
}

# Per version: (kind, name, version) -> the figures that tell them apart.
VERSIONS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("agent", "service-down", ""): {  # a c d f g
        "incidents": 5,
        "automation_coverage": 0.0,
        "remediations": 3,  # a, c, g
        "remediation_success_rate": 0.0,
        "escalated": 3,
        "cost_actions": 5,  # a 1, c 2 + 1 compensation, g 1
        "page_minutes": PAGE_D + PAGE_G,
        "cost_total": 0.5 + 5 + (PAGE_D + PAGE_G) * 2,  # f asked one approval
    },
    ("agent", "service-down", "sd2"): {  # r s
        "incidents": 2,
        "automation_coverage": 0.0,
        "remediations": 1,
        "remediation_success_rate": 0.0,
        "escalated": 0,
        "cost_actions": 1,
        "page_minutes": 0.0,
        "cost_total": 0.1,
    },
    ("bundle", "bp", "v1"): {  # first decided a b d
        "incidents": 3,
        "automation_coverage": 0.0,
        "remediations": 2,
        "remediation_success_rate": 0.5,
        "escalated": 1,
        "cost_actions": 2,
        "page_minutes": PAGE_D,
        "cost_total": 0.2 + 5 + PAGE_D * 2,
    },
    ("bundle", "bp", "v2"): {  # c r f g
        "incidents": 4,
        "automation_coverage": 0.0,
        "remediations": 3,
        "remediation_success_rate": 0.0,
        "escalated": 2,
        "cost_actions": 5,
        "page_minutes": PAGE_G,
        "cost_total": 0.5 + 5 + PAGE_G * 2,
    },
    ("runbook", "restart-on-oom", "abc123"): {  # b
        "incidents": 1,
        "automation_coverage": 0.0,
        "remediations": 1,
        "remediation_success_rate": 1.0,
        "escalated": 0,
        "cost_actions": 1,
        "page_minutes": 0.0,
        "cost_total": 5.1,
    },
}


def approx(value: Any) -> Any:
    """``value`` with every float compared approximately, however deep."""
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-9, abs=1e-9)
    if isinstance(value, dict):
        return {k: approx(v) for k, v in value.items()}
    if isinstance(value, list):
        return [approx(v) for v in value]
    return value


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SQLiteEventStore]:
    root = tmp_path_factory.mktemp("kpis")
    config = root / "warden.yaml"
    config.write_text(CONFIG)
    store = SQLiteEventStore(root / "state" / "events.db")
    for event in history().events:
        store.append(event.stream, [replace(event, stream="", position=0)])
    register(store, "vera", "viewer", when=T0)
    return config, store


@pytest.fixture(scope="module")
def reported(world: tuple[Path, SQLiteEventStore]) -> dict[str, Any]:
    config, _ = world
    result = CliRunner().invoke(app, ["report", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.output)
    return found


def test_the_scripted_history_is_legal() -> None:
    events = history().events
    for stream in {e.stream for e in events if e.stream.startswith("incident-")}:
        assert fold(e for e in events if e.stream == stream) is not None


def test_the_report_json_holds_every_figure_worked_out_by_hand(reported: dict[str, Any]) -> None:
    for key, expected in EXPECTED.items():
        assert reported[key] == approx(expected), key


def test_the_report_json_per_version(reported: dict[str, Any]) -> None:
    found = {(v["kind"], v["name"], v["version"]): v for v in reported["versions"]}
    assert set(found) == set(VERSIONS)
    for key, expected in VERSIONS.items():
        v = found[key]
        shown = {
            "incidents": v["incidents"],
            "automation_coverage": v["automation_coverage"],
            "remediations": v["remediations"],
            "remediation_success_rate": v["remediation_success_rate"],
            "escalated": v["escalated"],
            "cost_actions": v["cost"]["actions"],
            "page_minutes": v["cost"]["page_minutes"],
            "cost_total": v["cost"]["total"],
        }
        assert shown == approx(expected), key
    assert found["runbook", "restart-on-oom", "abc123"]["mttr_s"]["p50"] == 75


def test_the_api_answers_the_same_json(
    world: tuple[Path, SQLiteEventStore], reported: dict[str, Any]
) -> None:
    config, store = world
    settings = load_config(config)
    viewer = register(store, "vic", "viewer", when=T0)
    ctx = ApiContext(store, settings.state_dir, kpis=settings.kpi_settings)
    server = ApiServer(create_app(ctx), ctx, "127.0.0.1", 0)
    server.start()
    try:
        answer = httpx.get(
            f"{server.url}/api/kpis",
            headers={"Authorization": f"Bearer {viewer.token}"},
            timeout=30,
        )
        anonymous = httpx.get(f"{server.url}/api/kpis", timeout=30)
    finally:
        ctx.stopping.set()
        server.stop()
    assert anonymous.status_code == 401
    assert answer.status_code == 200
    body = answer.json()
    rows = body.pop("kpis")
    assert body == reported
    assert {"name": "Remediation success rate", "value": "20.0%"}.items() <= rows[8].items()


def test_metrics_expose_the_same_figures(world: tuple[Path, SQLiteEventStore]) -> None:
    config, store = world
    registry = CollectorRegistry()
    listener = MetricsListener(registry, settings=load_config(config).kpi_settings)
    for event in store.read_all():
        listener(event)
    with serve_metrics(registry, "127.0.0.1", 0) as server:
        text = httpx.get(server.url, timeout=30).text
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def value(metric: str, /, **labels: str) -> float:
        return samples[(metric, frozenset(labels.items()))]

    e = EXPECTED
    assert value("warden_kpi_automation_coverage_ratio") == pytest.approx(1 / 8)
    assert value("warden_kpi_remediation_success_ratio") == pytest.approx(1 / 5)
    assert value("warden_kpi_remediations") == 5
    assert value("warden_kpi_time_to_act_seconds", stat="p90") == 59
    assert value("warden_kpi_time_to_act_seconds", stat="mean") == pytest.approx(63 / 5)
    assert value("warden_kpi_mttr_seconds", stat="mean") == 44
    assert value("warden_kpi_escalations_per_day") == 3
    assert value("warden_kpi_policy_drift_ratio") == pytest.approx(2 / 3)
    assert value("warden_kpi_policy_drift_changes") == 2
    assert value("warden_kpi_policy_drift_per_day") == 2
    assert value("warden_kpi_policy_changes") == 3
    assert value("warden_kpi_config_drift_per_service_day") == pytest.approx(0.5)
    assert value("warden_kpi_signals_per_service_hour") == pytest.approx(3.0)
    assert value("warden_kpi_service_coverage_ratio", signal="probes") == 0.5
    assert value("warden_kpi_service_coverage_ratio", signal="alerts") == 0.25
    assert value("warden_kpi_service_coverage_ratio", signal="changes") == 0.25
    assert value("warden_kpi_cost") == pytest.approx(e["cost"]["total"])
    assert value("warden_kpi_cost_units", unit="action") == 7
    assert value("warden_kpi_cost_units", unit="approval") == 2
    assert value("warden_kpi_cost_units", unit="page_minute") == pytest.approx(PAGE_D + PAGE_G)
    for (kind, name, version), expected in VERSIONS.items():
        labels = {"kind": kind, "name": name, "version": version}
        assert value("warden_kpi_version_incidents", **labels) == expected["incidents"]
        assert value("warden_kpi_version_remediation_success_ratio", **labels) == pytest.approx(
            expected["remediation_success_rate"]
        )
        assert value("warden_kpi_version_cost", **labels) == pytest.approx(expected["cost_total"])
        assert value("warden_kpi_version_page_minutes", **labels) == pytest.approx(
            expected["page_minutes"]
        )


def test_the_table_shows_n_a_where_nothing_divides(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "state" / "events.db")
    store.append("service-web", [history().events[0]])  # one probe result, no incident
    store.close()
    result = CliRunner().invoke(
        app, ["report", "-s", str(tmp_path / "state")], env={"COLUMNS": "220"}
    )
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    assert "n/a" in lines["Remediation success rate"]
    assert "n/a" in lines["Automation coverage"]
    assert "set kpis.prices" in lines["Cost of resilience"]


def test_the_html_plots_per_version_coverage_and_cost(
    world: tuple[Path, SQLiteEventStore], tmp_path: Path
) -> None:
    config, _ = world
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        app, ["report", "-c", str(config), "--html", str(out)], env={"COLUMNS": "220"}
    )
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")

    def bar(label: str) -> str:
        found = re.search(rf">{re.escape(label)}</text>.*?<text[^>]*>([^<]*)</text>", page)
        assert found, label
        return found.group(1)

    assert bar("restart-on-oom@abc123") == "100"
    assert bar("service-down@sd2") == "0"
    assert bar("bp@v1") == "50"
    assert (bar("with probes %"), bar("with alerts %"), bar("with changes %")) == ("50", "25", "25")
    assert (bar("action"), bar("approval"), bar("page_minute")) == ("0.7", "10", "52.8")
    assert "restart-on-oom@abc123" in result.output  # the per-version table
    assert "<td>restart-on-oom@abc123</td>" in page  # the per-version table
