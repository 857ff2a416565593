"""The resilience report for people: KPI rows, and a self-contained HTML page. Telemetry.

:func:`kpi_rows` is shared by the CLI table and the page; :func:`render_html` adds inline
SVG plots (MTTR distribution, incidents over time, outcomes) and needs nothing else.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from html import escape
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from warden.domain.events import format_time
from warden.domain.incident import State
from warden.domain.kpis import by_version
from warden.telemetry import svg

if TYPE_CHECKING:
    from warden.domain.kpis import IncidentFacts, ResilienceReport, Summary, VersionKey

OUTCOME_COLORS = {
    State.RESOLVED: ("resolved", "#2e9e5b"),
    State.ESCALATED: ("escalated", "#d64545"),
    State.ROLLED_BACK: ("rolled back", "#e08a1e"),
    State.RELAPSED: ("relapsed", "#8e44ad"),
}
OPEN_COLOR = "#4a78c2"
DECISION_COLORS = (("allow", "#2e9e5b"), ("needs approval", "#c9a227"), ("deny", "#d64545"))
# Bucket widths for "incidents over time", smallest first, with how a bucket is labelled.
TIME_BUCKETS = (
    (timedelta(minutes=1), "%H:%M"),
    (timedelta(minutes=5), "%H:%M"),
    (timedelta(minutes=15), "%H:%M"),
    (timedelta(hours=1), "%m-%d %H:00"),
    (timedelta(hours=6), "%m-%d %H:00"),
    (timedelta(days=1), "%Y-%m-%d"),
    (timedelta(days=7), "%Y-%m-%d"),
)
MAX_TIME_BUCKETS = 30
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NA = "n/a"
SUMMARY_STATS = ("count", "mean", "p50", "p90", "p99", "max")


def format_seconds(seconds: float | None) -> str:
    """A duration for people: ms, s, min, h or d; n/a when there is none."""
    if seconds is None:
        return NA
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def format_ratio(ratio: float | None) -> str:
    """A ratio as a percentage; n/a when there is none."""
    return NA if ratio is None else f"{ratio:.1%}"


def format_rate(rate: float | None) -> str:
    """A rate with two decimals; n/a when there is none."""
    return NA if rate is None else f"{rate:.2f}"


def format_money(amount: float | None) -> str:
    """A cost with two decimals (in the currency of kpis.prices); n/a without prices."""
    return NA if amount is None else f"{amount:,.2f}"


def format_moment(moment: datetime | None) -> str:
    """A time in UTC to the second."""
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _durations(
    name: str,
    summary: Summary,
    headline: str = "mean",
    details: tuple[str, ...] = ("p50", "p90", "max"),
) -> tuple[str, str, str]:
    shown = [f"{stat} {format_seconds(getattr(summary, stat))}" for stat in details]
    return (
        name,
        format_seconds(getattr(summary, headline)),
        " · ".join([*shown, f"n={summary.count}"]),
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def describe_range(report: ResilienceReport) -> str:
    """Which incidents the report covers, in words."""
    since = format_moment(report.since) if report.since else "the beginning"
    until = format_moment(report.until) if report.until else "now"
    days = f" ({report.period_days:.2f} days of history)" if report.period_days else ""
    return f"incidents opened from {since} until {until}{days}"


def kpi_rows(report: ResilienceReport) -> list[tuple[str, str, str]]:
    """(KPI, headline value, detail) rows, in the order people read them."""
    r = report
    versions = ", ".join(r.policy_versions) or "none recorded"
    fleet = r.fleet
    seen = fleet.observability
    drift = fleet.config_drift
    policy = fleet.policy_drift
    cost = r.cost
    priced = (
        " · ".join(f"{unit} {format_money(amount)}" for unit, amount in cost.by_unit)
        if cost.by_unit is not None
        else "set kpis.prices in warden.yaml to price them"
    )
    return [
        (
            "Incidents",
            str(r.incidents),
            f"{r.open} open · {r.resolved} resolved · {r.escalated} escalated"
            f" · {r.rolled_back} rolled back · {r.relapsed} relapsed",
        ),
        _durations("MTTR (first signal to verified recovery)", r.mttr),
        _durations("Time to detect", r.time_to_detect),
        _durations("Time to decide", r.time_to_decide),
        _durations("Time to act", r.time_to_act),
        _durations("Action duration", r.action_duration),
        _durations("Decision latency (p50)", r.decision_latency, "p50", ("p99", "mean")),
        (
            "Automation coverage",
            format_ratio(r.automation_coverage),
            f"{r.automated} of {r.closed} closed incidents resolved without a human",
        ),
        (
            "Remediation success rate",
            format_ratio(r.remediation_success_rate),
            f"{r.remediations_held} of {r.remediations} remediations held (a relapse within"
            f" {format_seconds(r.settings.relapse_window_s)} is a failure)",
        ),
        (
            "Escalations per incident",
            format_rate(r.escalations_per_incident),
            f"{r.escalated} escalated · {format_rate(r.escalations_per_day)} per day",
        ),
        (
            "Policy drift",
            format_ratio(policy.rate),
            f"{policy.changed} of {policy.compared} shadow decisions changed between bundle"
            f" versions · {format_rate(policy.per_day)} per day",
        ),
        (
            "Live bundle changes",
            _count(r.policy_changes, "change"),
            f"bundle versions: {versions} · {format_rate(r.policy_changes_per_day)} per day",
        ),
        (
            "Config drift (per service per day)",
            format_rate(drift.per_service_day),
            f"{_count(drift.drifts, 'drift event')} over {_count(len(seen.services), 'service')}",
        ),
        (
            "Observability density (signals per service per hour)",
            format_rate(seen.signals_per_service_hour),
            " · ".join(f"{n} {kind}" for kind, n in seen.signals_by_kind)
            or "no signals in this range",
        ),
        (
            "Services with probes · alerts · change events",
            " · ".join(
                format_ratio(x) for x in (seen.probe_share, seen.alert_share, seen.change_share)
            ),
            f"{seen.with_probes} · {seen.with_alerts} · {seen.with_changes}"
            f" of {_count(len(seen.services), 'service')}",
        ),
        (
            "Cost of resilience",
            format_money(cost.total),
            f"{_count(cost.actions, 'action')} · {_count(cost.approvals_asked, 'approval')}"
            f" asked · {cost.page_minutes:.1f} page minutes ({_count(cost.pages, 'page')})"
            f" · {priced}",
        ),
        (
            "Decisions",
            str(r.decisions),
            f"{r.decisions_allowed} allow · {r.decisions_denied} deny"
            f" · {r.decisions_needing_approval} needs approval"
            f" · {_count(r.approvals, 'approval')} granted",
        ),
        (
            "Actions",
            str(r.actions_succeeded + r.actions_failed),
            f"{r.actions_succeeded} succeeded · {r.actions_failed} failed",
        ),
        ("Kill switch engagements", str(r.kill_switch_engagements), ""),
    ]


def version_rows(versions: dict[VersionKey, ResilienceReport]) -> list[tuple[str, ...]]:
    """One row per version (kind, version, incidents, MTTR p50, coverage, success, cost)."""
    return [
        (
            key.kind,
            key.label,
            str(r.incidents),
            format_seconds(r.mttr.p50),
            format_ratio(r.automation_coverage),
            format_ratio(r.remediation_success_rate),
            str(r.escalated),
            str(r.cost.actions),
            f"{r.cost.page_minutes:.1f}",
            format_money(r.cost.total),
        )
        for key, r in versions.items()
    ]


VERSION_COLUMNS = (
    "kind",
    "version",
    "incidents",
    "MTTR p50",
    "automated",
    "success",
    "escalated",
    "actions",
    "page min",
    "cost",
)


def _summary_json(summary: Summary) -> dict[str, float | int | None]:
    return {stat: getattr(summary, stat) for stat in SUMMARY_STATS}


def _moment(moment: datetime | None) -> str | None:
    return format_time(moment) if moment is not None else None


def _incident_json(r: ResilienceReport) -> dict[str, Any]:
    """The KPIs every report has, a version's too: incidents, durations, rates, cost."""
    cost = r.cost
    return {
        "incidents": r.incidents,
        "open": r.open,
        "resolved": r.resolved,
        "escalated": r.escalated,
        "rolled_back": r.rolled_back,
        "relapsed": r.relapsed,
        "automated": r.automated,
        "mttr_s": _summary_json(r.mttr),
        "time_to_detect_s": _summary_json(r.time_to_detect),
        "time_to_decide_s": _summary_json(r.time_to_decide),
        "time_to_act_s": _summary_json(r.time_to_act),
        "action_duration_s": _summary_json(r.action_duration),
        "decision_latency_s": _summary_json(r.decision_latency),
        "automation_coverage": r.automation_coverage,
        "remediations": r.remediations,
        "remediations_held": r.remediations_held,
        "remediation_success_rate": r.remediation_success_rate,
        "escalations_per_incident": r.escalations_per_incident,
        "escalations_per_day": r.escalations_per_day,
        "decisions": {
            "allow": r.decisions_allowed,
            "deny": r.decisions_denied,
            "needs_approval": r.decisions_needing_approval,
            "approvals_granted": r.approvals,
        },
        "actions": {"succeeded": r.actions_succeeded, "failed": r.actions_failed},
        "cost": {
            "actions": cost.actions,
            "approvals_asked": cost.approvals_asked,
            "pages": cost.pages,
            "page_minutes": cost.page_minutes,
            "prices": None
            if cost.prices is None
            else {
                "action": cost.prices.action,
                "approval": cost.prices.approval,
                "page_minute": cost.prices.page_minute,
            },
            "by_unit": None if cost.by_unit is None else dict(cost.by_unit),
            "total": cost.total,
        },
    }


def report_json(report: ResilienceReport) -> dict[str, Any]:
    """The whole report as JSON: every KPI, overall and per version (None: n/a)."""
    r = report
    seen, drift, policy = r.fleet.observability, r.fleet.config_drift, r.fleet.policy_drift
    return {
        "since": _moment(r.since),
        "until": _moment(r.until),
        "period_days": r.period_days,
        "relapse_window_s": r.settings.relapse_window_s,
        **_incident_json(r),
        "policy_drift": {
            "compared": policy.compared,
            "changed": policy.changed,
            "rate": policy.rate,
            "per_day": policy.per_day,
            "pairs": [
                {
                    "live": p.live,
                    "candidate": p.candidate,
                    "compared": p.compared,
                    "changed": p.changed,
                    "rate": p.rate,
                }
                for p in policy.pairs
            ],
            "live_bundle_changes": r.policy_changes,
            "live_bundle_changes_per_day": r.policy_changes_per_day,
            "live_bundle_versions": list(r.policy_versions),
        },
        "config_drift": {
            "drifts": drift.drifts,
            "per_service_day": drift.per_service_day,
            "by_service": dict(drift.by_service),
        },
        "observability": {
            "services": len(seen.services),
            "signals": seen.signals,
            "signals_by_kind": dict(seen.signals_by_kind),
            "signals_per_service_hour": seen.signals_per_service_hour,
            "with_probes": seen.with_probes,
            "with_alerts": seen.with_alerts,
            "with_changes": seen.with_changes,
            "probe_share": seen.probe_share,
            "alert_share": seen.alert_share,
            "change_share": seen.change_share,
        },
        "kill_switch_engagements": r.kill_switch_engagements,
        "versions": [
            {"kind": k.kind, "name": k.name, "version": k.version, **_incident_json(v)}
            for k, v in by_version(r).items()
        ],
    }


# -- plots -----------------------------------------------------------------------------------


def _unit(width_s: float) -> tuple[float, str]:
    """The unit to label a histogram whose bins are ``width_s`` seconds wide."""
    for limit, size, name in (
        (1, 0.001, "ms"),
        (120, 1, "s"),
        (7200, 60, "min"),
        (172800, 3600, "h"),
    ):
        if width_s < limit:
            return size, name
    return 86400, "d"


def mttr_histogram(report: ResilienceReport) -> str:
    """How long resolved incidents took, first signal to verified recovery."""
    title = "MTTR distribution"
    values = [m for f in report.facts if (m := f.mttr_s) is not None]
    if not values:
        return svg.empty_chart(title, "no resolved incidents in this range")
    start, width, counts = svg.histogram_bins(values)
    size, unit = _unit(width)
    edges = [(start + i * width) / size for i in range(len(counts) + 1)]
    labels = [f"{lo:g}-{hi:g} {unit}" for lo, hi in pairwise(edges)]
    series = svg.Series("incidents", OUTCOME_COLORS[State.RESOLVED][1], tuple(map(float, counts)))
    return svg.columns(
        title,
        labels,
        [series],
        y_label="incidents",
        x_label="first signal to verified recovery",
    )


def _bucket(report: ResilienceReport) -> tuple[datetime, timedelta, str, int]:
    opened = [f.opened_at for f in report.facts]
    start = report.since or min(opened)
    end = report.until or max(opened)
    span = max(end - start, timedelta(seconds=1))
    width, fmt = next(
        ((w, f) for w, f in TIME_BUCKETS if span / w <= MAX_TIME_BUCKETS), TIME_BUCKETS[-1]
    )
    origin = EPOCH + width * ((start - EPOCH) // width)
    count = max(
        1, math.ceil((end - origin) / width), *(((t - origin) // width) + 1 for t in opened)
    )
    return origin, width, fmt, count


def incidents_over_time(report: ResilienceReport) -> str:
    """Incidents opened per time bucket, stacked by how they ended."""
    title = "Incidents over time (by outcome)"
    if not report.facts:
        return svg.empty_chart(title, "no incidents in this range")
    origin, width, fmt, count = _bucket(report)
    stacks: dict[str, list[float]] = {name: [0.0] * count for name, _ in OUTCOME_COLORS.values()}
    stacks["open"] = [0.0] * count
    for facts in report.facts:
        index = (facts.opened_at - origin) // width
        name = OUTCOME_COLORS[facts.state][0] if facts.state in OUTCOME_COLORS else "open"
        stacks[name][index] += 1
    colors = {name: color for name, color in OUTCOME_COLORS.values()} | {"open": OPEN_COLOR}
    series = [svg.Series(name, colors[name], tuple(values)) for name, values in stacks.items()]
    labels = [(origin + width * i).strftime(fmt) for i in range(count)]
    return svg.columns(
        title, labels, series, y_label="incidents", x_label=f"opened (UTC), per {_span(width)}"
    )


def _span(width: timedelta) -> str:
    seconds = int(width.total_seconds())
    if seconds % 86400 == 0:
        return "day" if seconds == 86400 else f"{seconds // 86400} days"
    if seconds % 3600 == 0:
        return "hour" if seconds == 3600 else f"{seconds // 3600} hours"
    return "minute" if seconds == 60 else f"{seconds // 60} minutes"


def outcomes_chart(report: ResilienceReport) -> str:
    """How incidents ended, and what the control plane decided."""
    r = report
    items = [
        ("incidents resolved", float(r.resolved), OUTCOME_COLORS[State.RESOLVED][1]),
        ("incidents escalated", float(r.escalated), OUTCOME_COLORS[State.ESCALATED][1]),
        ("incidents rolled back", float(r.rolled_back), OUTCOME_COLORS[State.ROLLED_BACK][1]),
        ("incidents relapsed", float(r.relapsed), OUTCOME_COLORS[State.RELAPSED][1]),
        ("incidents still open", float(r.open), OPEN_COLOR),
    ]
    counts = (r.decisions_allowed, r.decisions_needing_approval, r.decisions_denied)
    for (name, color), count in zip(DECISION_COLORS, counts, strict=True):
        items.append((f"decisions: {name}", float(count), color))
    return svg.bars("Outcomes", items)


def _short(key: VersionKey) -> str:
    return f"{key.name}@{key.version[:8]}" if key.version else key.name


KIND_COLORS = {"agent": OPEN_COLOR, "runbook": "#2e9e5b", "bundle": "#c9a227"}


def versions_chart(versions: dict[VersionKey, ResilienceReport]) -> str:
    """Remediation success (%) per version of each agent, runbook and bundle."""
    title = "Remediation success per version (%)"
    items = [
        (
            f"{_short(k)}" if r.remediation_success_rate is not None else f"{_short(k)} (n/a)",
            round((r.remediation_success_rate or 0.0) * 100, 1),
            KIND_COLORS.get(k.kind, OPEN_COLOR),
        )
        for k, r in versions.items()
        if r.incidents
    ]
    if not items:
        return svg.empty_chart(title, "no incidents planned or decided in this range")
    return svg.bars(title, items)


def coverage_chart(report: ResilienceReport) -> str:
    """Share of services with probes, alerts and change events."""
    seen = report.fleet.observability
    if not seen.services:
        return svg.empty_chart("Observability coverage", "no services known")
    items = [
        ("with probes %", seen.probe_share, "#2e9e5b"),
        ("with alerts %", seen.alert_share, "#c9a227"),
        ("with changes %", seen.change_share, OPEN_COLOR),
    ]
    return svg.bars(
        f"Observability coverage of {len(seen.services)} services",
        [(label, round((v or 0.0) * 100, 1), color) for label, v, color in items],
    )


def cost_chart(report: ResilienceReport) -> str:
    """The cost of resilience by unit (priced when kpis.prices is set, else counted)."""
    cost = report.cost
    if cost.by_unit is None:
        items = [
            ("actions", float(cost.actions), OPEN_COLOR),
            ("approvals asked", float(cost.approvals_asked), "#c9a227"),
            ("page minutes", round(cost.page_minutes, 1), "#d64545"),
        ]
        return svg.bars("Cost of resilience (units; no kpis.prices set)", items)
    colors = {"action": OPEN_COLOR, "approval": "#c9a227", "page_minute": "#d64545"}
    return svg.bars(
        "Cost of resilience (priced)",
        [(unit, round(amount, 2), colors[unit]) for unit, amount in cost.by_unit],
    )


# -- the page --------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 960px; color: #222; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.35rem 0.6rem; border-bottom: 1px solid #e3e3e3; }
th { background: #f5f5f5; } td.value { font-weight: 600; white-space: nowrap; }
figure { margin: 1rem 0; } .state-resolved { color: #2e9e5b; }
.state-escalated, .state-rolled_back, .state-relapsed { color: #d64545; }
"""


def _incident_row(facts: IncidentFacts) -> str:
    cells = [
        facts.incident_id[:12],
        facts.service,
        format_moment(facts.opened_at),
        facts.state.value,
        format_seconds(facts.mttr_s),
        format_seconds(facts.time_to_detect_s),
        str(len(facts.decisions)),
        str(len(facts.actions)),
    ]
    tds = "".join(
        f'<td class="state-{escape(facts.state.value)}">{escape(c)}</td>'
        if i == 3
        else f"<td>{escape(c)}</td>"
        for i, c in enumerate(cells)
    )
    return f"<tr>{tds}</tr>"


def render_html(
    report: ResilienceReport, *, generated_at: datetime, source: str = "", title: str = ""
) -> str:
    """The whole report as one HTML document with inline CSS and SVG, nothing fetched."""
    heading = title or "Warden resilience report"
    kpis = "".join(
        f'<tr><th scope="row">{escape(name)}</th><td class="value">{escape(value)}</td>'
        f"<td>{escape(detail)}</td></tr>"
        for name, value, detail in kpi_rows(report)
    )
    incidents = "".join(_incident_row(f) for f in report.facts) or (
        '<tr><td colspan="8">no incidents in this range</td></tr>'
    )
    where = f" from {escape(source)}" if source else ""
    versions = by_version(report)
    version_head = "".join(f"<th>{escape(c)}</th>" for c in VERSION_COLUMNS)
    version_body = (
        "".join(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
            for row in version_rows(versions)
        )
        or f'<tr><td colspan="{len(VERSION_COLUMNS)}">no versions recorded in this range</td></tr>'
    )

    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(heading)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{escape(heading)}</h1>
<p class="meta">{escape(describe_range(report))}; computed from the event history{where}
on {escape(format_moment(generated_at))}.</p>
<h2>Key figures</h2>
<table><thead><tr><th>KPI</th><th>value</th><th>detail</th></tr></thead>
<tbody>{kpis}</tbody></table>
<h2>Plots</h2>
<figure>{mttr_histogram(report)}</figure>
<figure>{incidents_over_time(report)}</figure>
<figure>{outcomes_chart(report)}</figure>
<figure>{versions_chart(versions)}</figure>
<figure>{coverage_chart(report)}</figure>
<figure>{cost_chart(report)}</figure>
<h2>Per version</h2>
<table><thead><tr>{version_head}</tr></thead>
<tbody>{version_body}</tbody></table>
<h2>Incidents</h2>
<table><thead><tr><th>incident</th><th>service</th><th>opened</th><th>state</th><th>MTTR</th>
<th>time to detect</th><th>decisions</th><th>actions</th></tr></thead>
<tbody>{incidents}</tbody></table>
</body>
</html>
"""
