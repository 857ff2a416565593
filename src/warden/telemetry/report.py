"""The resilience report for people: KPI rows, and a self-contained HTML page. Telemetry.

:func:`kpi_rows` is shared by the CLI table and the page; :func:`render_html` adds inline
SVG plots (MTTR distribution, incidents over time, outcomes) and needs nothing else.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from html import escape
from itertools import pairwise
from typing import TYPE_CHECKING

from warden.domain.incident import State
from warden.telemetry import svg

if TYPE_CHECKING:
    from warden.domain.kpis import IncidentFacts, ResilienceReport, Summary

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


def format_seconds(seconds: float | None) -> str:
    """A duration for people: ms, s, min, h or d; a dash when there is none."""
    if seconds is None:
        return "-"
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
    """A ratio as a percentage; a dash when there is none."""
    return "-" if ratio is None else f"{ratio:.1%}"


def format_rate(rate: float | None) -> str:
    """A rate with two decimals; a dash when there is none."""
    return "-" if rate is None else f"{rate:.2f}"


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
            f"{r.resolved} resolved of {r.closed} closed",
        ),
        (
            "Escalations per incident",
            format_rate(r.escalations_per_incident),
            f"{r.escalated} escalated · {format_rate(r.escalations_per_day)} per day",
        ),
        (
            "Policy drift",
            _count(r.policy_changes, "change"),
            f"bundle versions: {versions} · {format_rate(r.policy_changes_per_day)} per day",
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
<h2>Incidents</h2>
<table><thead><tr><th>incident</th><th>service</th><th>opened</th><th>state</th><th>MTTR</th>
<th>time to detect</th><th>decisions</th><th>actions</th></tr></thead>
<tbody>{incidents}</tbody></table>
</body>
</html>
"""
