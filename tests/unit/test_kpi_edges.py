"""Edge cases of each KPI: empty histories, zero denominators, windows, pages, versions."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from tests.kpi_history import T0, Script
from warden.config import load_config
from warden.domain import events as ev
from warden.domain.decisions import Outcome
from warden.domain.errors import ConfigError
from warden.domain.incident import State
from warden.domain.kpis import (
    KpiSettings,
    Prices,
    VersionKey,
    bundle_key,
    by_version,
    resilience_report,
)
from warden.telemetry.metrics import (
    MAX_NAMES_PER_KIND,
    MAX_VERSIONS_PER_NAME,
    OLDER,
    OTHER,
    bounded_versions,
)
from warden.telemetry.report import kpi_rows, report_json

if TYPE_CHECKING:
    from pathlib import Path


def fixed(s: Script, name: str, service: str, t: float, **plan: str) -> None:
    """An incident fixed by one step, first signal at ``t``, resolved at ``t + 40``."""
    i = s.incident(name, service, **plan)
    i.opened(t + 5, first_signal=t).planned(t + 6).decided(t + 7, 0, Outcome.ALLOW, "bp@v1")
    i.intended(t + 8, 0).finished(t + 10, 0).verified(t + 11, t + 40)
    i.add(ev.INCIDENT_RESOLVED, t + 40, {"reason": "verified"})


def test_an_empty_history_has_no_figures_only_n_a() -> None:
    r = resilience_report([], settings=KpiSettings(prices=Prices(1, 1, 1)))
    assert r.period_days is None
    assert r.remediation_success_rate is None
    assert r.automation_coverage is None
    assert r.time_to_act.count == 0 and r.time_to_act.mean is None
    seen = r.fleet.observability
    assert (seen.services, seen.signals_per_service_hour, seen.probe_share) == ((), None, None)
    assert r.fleet.config_drift.per_service_day is None
    assert r.fleet.policy_drift.rate is None and r.fleet.policy_drift.per_day is None
    assert r.cost.total == 0.0  # priced, and nothing was spent
    assert report_json(r)["versions"] == []
    rows = dict((name, value) for name, value, _ in kpi_rows(r))
    assert rows["Remediation success rate"] == "n/a"
    assert rows["Time to act"] == "n/a"
    assert rows["Services with probes · alerts · change events"] == "n/a · n/a · n/a"


def test_configured_services_without_signals_count_as_unwatched() -> None:
    s = Script()
    s.signal(ev.PROBE_FAILED, "web", 0)
    s.signal(ev.PROBE_SUCCEEDED, "web", 7200)  # two hours of history
    r = resilience_report(s.events, settings=KpiSettings(services=("web", "db", "queue", "mq")))
    seen = r.fleet.observability
    assert seen.services == ("db", "mq", "queue", "web")
    assert seen.probe_share == 0.25
    assert seen.alert_share == 0.0  # services, none with an alert: 0, not n/a
    assert seen.signals_per_service_hour == pytest.approx(2 / (4 * 2))


def test_a_burst_is_not_extrapolated_per_hour_or_per_day() -> None:
    s = Script()
    for n in range(6):
        s.signal(ev.DRIFT_DETECTED, "web", n, field="f", desired="1", observed=str(n))
    r = resilience_report(s.events)
    assert r.fleet.observability.signals_per_service_hour == 6.0  # over one hour, not 5 s
    assert r.fleet.config_drift.per_service_day == 6.0


@pytest.mark.parametrize(("gap", "relapsed"), [(0.0, True), (600.0, True), (600.5, False)])
def test_the_relapse_window_bounds_are_inclusive(gap: float, relapsed: bool) -> None:
    s = Script()
    fixed(s, "first", "web", 0)
    s.incident("again", "web").opened(40 + gap + 1, first_signal=40 + gap)
    r = resilience_report(s.events, settings=KpiSettings(relapse_window_s=600))
    first = next(f for f in r.facts if f.incident_id == "first")
    assert first.relapse_inferred is relapsed
    assert r.remediation_success_rate == (0.0 if relapsed else 1.0)


def test_only_a_symptom_after_a_symptom_is_a_relapse() -> None:
    s = Script()
    fixed(s, "rb", "web", 0, agent="oom", version="v9", kind="runbook:oom")
    s.incident("again", "web").opened(60, first_signal=50)
    fixed(s, "down", "db", 0)
    s.incident("drifted", "db", kind="drift").opened(60, first_signal=50)
    r = resilience_report(s.events)
    assert [f.state for f in r.facts if f.incident_id in ("rb", "down")] == [State.RESOLVED] * 2


def test_a_resolution_before_any_step_is_no_remediation() -> None:
    s = Script()
    s.incident("gone", "web").opened(5, first_signal=0).add(ev.INCIDENT_RESOLVED, 9)
    r = resilience_report(s.events)
    assert (r.resolved, r.remediations, r.remediation_success_rate) == (1, 0, None)
    assert r.automation_coverage == 1.0


def test_pages_run_to_recovery_or_to_the_end_of_the_range() -> None:
    s = Script()
    i = s.incident("x", "web")
    i.opened(5, first_signal=0).planned(6).decided(7, 0, Outcome.DENY, "bp@v1").escalated(60)
    quiet = s.incident("y", "db")
    quiet.opened(5, first_signal=0).planned(6).decided(7, 0, Outcome.DENY, "bp@v1")
    quiet.escalated(60, notify=False)
    s.signal(ev.PROBE_SUCCEEDED, "web", 30)  # before the page: does not end it
    s.signal(ev.PROBE_SUCCEEDED, "web", 660)
    assert resilience_report(s.events).cost.page_minutes == 10.0
    assert resilience_report(s.events).cost.pages == 1
    cut = resilience_report(s.events, until=T0 + timedelta(seconds=360))
    assert cut.cost.page_minutes == 5.0


def test_prices_refuse_negative_units() -> None:
    with pytest.raises(ValueError, match=r"kpis\.prices\.approval"):
        Prices(action=1, approval=-1)


def test_versions_split_agents_runbooks_and_bundles() -> None:
    assert bundle_key("builtin@0123abcd") == VersionKey("bundle", "builtin", "0123abcd")
    assert bundle_key("plain") == VersionKey("bundle", "plain", "")
    s = Script()
    fixed(s, "a", "web", 0)
    fixed(s, "b", "db", 0, agent="oom", version="v9", kind="runbook:oom")
    keys = {k.label: k.kind for k in by_version(resilience_report(s.events))}
    assert keys == {"service-down": "agent", "oom@v9": "runbook", "bp@v1": "bundle"}


def test_metrics_keep_the_number_of_version_series_bounded() -> None:
    s = Script()
    for n in range(MAX_VERSIONS_PER_NAME + 3):  # versions of one agent, newest last
        fixed(s, f"v{n}", "web", n * 1000.0, agent="busy", version=f"h{n}")
    for n in range(MAX_NAMES_PER_KIND + 2):  # many agents with one incident each
        fixed(s, f"n{n}", "db", n * 1000.0, agent=f"agent{n:02d}")
    versions = bounded_versions(resilience_report(s.events))
    agents = [k for k in versions if k.kind == "agent"]
    assert len(agents) <= MAX_NAMES_PER_KIND + MAX_VERSIONS_PER_NAME + 1
    busy = sorted(k.version for k in agents if k.name == "busy")
    assert busy == sorted([*(f"h{n}" for n in range(3, MAX_VERSIONS_PER_NAME + 3)), OLDER])
    assert versions[VersionKey("agent", "busy", OLDER)].incidents == 3
    other = versions[VersionKey("agent", OTHER, "")]
    assert len({k.name for k in agents} - {OTHER}) == MAX_NAMES_PER_KIND
    # busy and agent00..agent18 keep their names; agent19..agent21 are counted as other
    assert other.incidents == 3


def test_kpis_prices_in_warden_yaml_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "warden.yaml"
    head = "services:\n  - {name: web, health: 'http://127.0.0.1:1/'}\nrelapse_window_s: 90\n"
    path.write_text(head + "kpis:\n  prices: {action: 0.5, approval: -5, pager: 1}\n")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert "line 5: kpis.prices.approval: -5 is out of range; use a value at least 0" in message
    assert "kpis.prices.pager: unknown key 'pager'; known: action, approval, page_minute" in message
    path.write_text(head + "kpis:\n  prices: {action: 0.5, page_minute: 2}\n")
    settings = load_config(path).kpi_settings
    assert settings == KpiSettings(90.0, Prices(0.5, 0.0, 2.0), ("web",))
    path.write_text(head)
    assert load_config(path).kpi_settings.prices is None  # the cost is then counted, not priced
