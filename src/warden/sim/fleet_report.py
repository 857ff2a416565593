"""A fleet run's report: the table per fault class, its figures, an HTML page. Simulation (edge).

The plots are the scenario lab's (MTTR per fault class against the on-call baseline,
verdicts, decisions): a fleet report has the lab report's shape, one row per fault.
"""

from __future__ import annotations

from html import escape
from typing import Any

from rich.table import Table

from warden.sim.report import decision_chart, mttr_chart, verdict_chart


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f}m"


def fleet_table(report: dict[str, Any]) -> Table:
    """One row per fault class: verdicts, outcomes, MTTRs against the baseline, what it cost."""
    level = report["levels"][0]
    fleet = report["fleet"]
    table = Table(
        title=(
            f"Fleet: {fleet['services']} services in {fleet['domains']} domains,"
            f" {fleet['days']:g} simulated day(s), {report['faults_injected']} faults ({level})"
        )
    )
    table.caption = (
        "R/M/W: RIGHT, MISS, WRONG. rec/esc/open/clr: recovered by Warden, escalated to"
        " the person on call, still open, cleared. MTTRs: Warden's median (recovered),"
        " with handover (mean), the on-call baseline's (mean)."
    )
    table.add_column("fault class", no_wrap=True)
    for name in (
        "faults", "R/M/W", "rec/esc/open/clr", "Warden", "handover", "on call", "actions",
        "approvals", "pages",
    ):  # fmt: skip
        table.add_column(name, justify="right", no_wrap=True)
    for fault_class, c in report["by_class"].items():
        table.add_row(
            fault_class,
            str(c["faults"]),
            f"{c['RIGHT']}/{c['MISS']}/{c['WRONG']}",
            f"{c['recovered']}/{c['escalated']}/{c['open']}/{c['cleared']}",
            _minutes(c["warden_mttr_median_s"]),
            _minutes(c["handover_mttr_mean_s"]),
            _minutes(c["baseline_mttr_mean_s"]),
            str(c["actions"]),
            str(c["approvals"]),
            str(c["pages"]),
        )
    s = report["summary"][level]
    o = report["outcomes"]
    table.add_section()
    table.add_row(
        "total",
        str(len(report["scenarios"])),
        f"{s['RIGHT']}/{s['MISS']}/{s['WRONG']}",
        f"{o['recovered']}/{o['escalated']}/{o['open']}/{o['cleared']}",
        "",
        _minutes(s["mean_mttr_s"]),
        _minutes(report["summary"]["baseline"]["mean_mttr_s"]),
        str(s["actions"]),
        str(s["approvals"]),
        str(s["pages"]),
    )
    return table


def fleet_lines(report: dict[str, Any]) -> list[str]:
    """The figures under the table: decisions, safety, events, speed, digest."""
    level = report["levels"][0]
    decisions = ", ".join(f"{k} {v}" for k, v in report["decisions"].items())
    return [
        f"decisions: {decisions}",
        f"safety violations: {len(report['safety_violations'])}",
        f"pages on a service with no fault: {report['summary'][level]['pages_without_fault']}",
        f"events: {report['events']:,}, ticks: {report['ticks']:,},"
        f" wall {report['wall_s']:.1f} s, CPU {report.get('cpu_s', 0.0):.1f} s"
        f" in {report.get('workers', 1)} process(es) ({report['events_per_s']:,.0f} events/s)",
        f"digest: {report['digest']}",
    ]


def render_fleet_html(report: dict[str, Any]) -> str:
    """The fleet report as one HTML page: figures, the table per fault class, the plots."""
    rows = "".join(
        f"<tr><td>{escape(k)}</td><td>{c['faults']}</td>"
        f"<td>{c['RIGHT']}/{c['MISS']}/{c['WRONG']}</td>"
        f"<td>{c['recovered']}/{c['escalated']}/{c['open']}/{c['cleared']}</td>"
        f"<td>{_minutes(c['warden_mttr_median_s'])}</td>"
        f"<td>{_minutes(c['handover_mttr_mean_s'])}</td>"
        f"<td>{_minutes(c['baseline_mttr_mean_s'])}</td>"
        f"<td>{c['actions']}</td><td>{c['approvals']}</td><td>{c['pages']}</td></tr>"
        for k, c in report["by_class"].items()
    )
    figures = "".join(f"<li>{escape(line)}</li>" for line in fleet_lines(report))
    unsafe = "".join(f"<li>{escape(u)}</li>" for u in report["safety_violations"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Warden fleet simulation</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}}
table{{border-collapse:collapse;margin:1rem 0;font-size:13px}}
th,td{{border:1px solid #ddd;padding:4px 8px;text-align:left}}</style></head><body>
<h1>Warden fleet simulation</h1>
<p>{report["fleet"]["services"]} services in {report["fleet"]["domains"]} domains,
{report["fleet"]["days"]:g} simulated day(s), {report["faults_injected"]} faults, seed
{report["seed"]}, autonomy {escape(report["levels"][0])}.</p>
<ul>{figures}</ul>{f"<h2>Safety violations</h2><ul>{unsafe}</ul>" if unsafe else ""}
<table><thead><tr><th>fault class</th><th>faults</th><th>RIGHT/MISS/WRONG</th>
<th>recovered/escalated/open/cleared</th><th>Warden MTTR (median)</th>
<th>with handover (mean)</th><th>on-call MTTR (mean)</th><th>actions</th><th>approvals</th>
<th>pages</th></tr></thead><tbody>{rows}</tbody></table>
<figure>{mttr_chart(report)}</figure>
<figure>{verdict_chart(report)}</figure>
<figure>{decision_chart(report)}</figure>
</body></html>
"""
