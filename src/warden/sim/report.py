"""The lab's report as a score table (rich) and a self-contained HTML page. Simulation (edge).

Plots reuse the SVG helpers of the KPI report: MTTR per fault class against the on-call
baseline, decision verdicts per autonomy level, and where the time went.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from html import escape
from typing import Any

from rich.table import Table

from warden.telemetry.svg import Series, bars, columns

COLOURS = {
    "baseline": "#888888",
    "observe": "#9ecae1",
    "recommend": "#6baed6",
    "supervised": "#3182bd",
    "autonomous": "#08519c",
}
VERDICT_COLOURS = {"RIGHT": "#2ca25f", "MISS": "#fdae6b", "WRONG": "#de2d26"}
# Decision class -> (legend name, colour); legends are one short row.
DECISION_COLOURS = {
    "act": ("acted", "#08519c"),
    "act_after_approval": ("approved", "#6baed6"),
    "asked_approval": ("asked", "#c6dbef"),
    "escalate": ("paged", "#fdae6b"),
    "no_action": ("none", "#bdbdbd"),
}
PHASE_COLOURS = {"detect": "#c6dbef", "respond": "#6baed6", "repair": "#08519c"}


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f} min"


def score_table(report: dict[str, Any]) -> Table:
    """One row per scenario: the verdict at each level and the MTTRs."""
    levels = report["levels"]
    table = Table(title="Scenario lab", show_lines=False)
    table.add_column("scenario")
    table.add_column("expected")
    for level in levels:
        table.add_column(level)
    table.add_column(f"Warden MTTR ({levels[-1]}, with handover)", justify="right")
    table.add_column("on-call MTTR", justify="right")
    style = {"RIGHT": "green", "MISS": "yellow", "WRONG": "bold red"}
    for row in report["scenarios"]:
        cells = []
        for level in levels:
            run = row["runs"][level]
            unsafe = " UNSAFE" if run["safety_violations"] else ""
            cells.append(f"[{style[run['verdict']]}]{run['verdict']}[/]{unsafe}")
        last = row["runs"][levels[-1]]
        table.add_row(
            row["name"],
            row["expected"],
            *cells,
            _minutes(last["mttr_with_handover_s"]),
            _minutes(row["baseline"]["mttr_s"]),
        )
    summary = report["summary"]
    table.add_section()
    table.add_row(
        "total (RIGHT/MISS/WRONG, unsafe)",
        "",
        *[
            f"{summary[lv]['RIGHT']}/{summary[lv]['MISS']}/{summary[lv]['WRONG']},"
            f" {summary[lv]['safety_violations']}"
            for lv in levels
        ],
        _minutes(summary[levels[-1]]["mean_mttr_s"]),
        _minutes(summary["baseline"]["mean_mttr_s"]),
    )
    return table


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def mttr_chart(report: dict[str, Any]) -> str:
    """Mean MTTR per fault class: the baseline, then each level (with handover)."""
    by_class: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in report["scenarios"]:
        if row["baseline"]["mttr_s"] is not None:
            by_class[row["fault_class"]]["baseline"].append(row["baseline"]["mttr_s"])
        for level, run in row["runs"].items():
            if run["mttr_with_handover_s"] is not None:
                by_class[row["fault_class"]][level].append(run["mttr_with_handover_s"])
    items = []
    for fault_class in sorted(by_class):
        for who in ("baseline", *report["levels"]):
            values = by_class[fault_class].get(who)
            if values:
                label = f"{fault_class[:16]} · {who[:10]}"
                items.append((label, round(_mean(values) / 60, 1), COLOURS.get(who, "#555")))
    return bars("Mean MTTR per fault class, minutes (on call vs Warden with handover)", items)


def verdict_chart(report: dict[str, Any]) -> str:
    """RIGHT, MISS and WRONG counts per autonomy level."""
    levels = report["levels"]
    series = [
        Series(v, VERDICT_COLOURS[v], tuple(float(report["summary"][lv][v]) for lv in levels))
        for v in ("RIGHT", "MISS", "WRONG")
    ]
    return columns("Verdicts per autonomy level", levels, series, y_label="scenarios")


def decision_chart(report: dict[str, Any]) -> str:
    """What Warden decided per autonomy level: acted, asked, escalated or left alone."""
    levels = report["levels"]
    counts = {
        d: tuple(
            float(sum(1 for r in report["scenarios"] if r["runs"][lv]["decision"] == d))
            for lv in levels
        )
        for d in DECISION_COLOURS
    }
    series = [Series(*DECISION_COLOURS[d], counts[d]) for d in DECISION_COLOURS]
    return columns("Decisions per autonomy level", levels, series, y_label="scenarios")


def time_chart(report: dict[str, Any]) -> str:
    """Where the time to recovery went, on average over the recovered runs."""
    who = ["baseline", *report["levels"]]
    phases: dict[str, dict[str, list[float]]] = {w: defaultdict(list) for w in who}
    for row in report["scenarios"]:
        found = [("baseline", row["baseline"].get("phases"))]
        found += [(lv, row["runs"][lv]["phases"]) for lv in report["levels"]]
        for name, split in found:
            for phase, seconds in (split or {}).items():
                phases[name][phase].append(seconds)
    series = [
        Series(p, PHASE_COLOURS[p], tuple(round(_mean(phases[w][p]) / 60, 2) for w in who))
        for p in ("detect", "respond", "repair")
    ]
    return columns(
        "Where the time went (recovered runs, mean minutes)", who, series, y_label="minutes"
    )


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
.RIGHT{color:#2ca25f;font-weight:600}.MISS{color:#e6550d}.WRONG{color:#de2d26;font-weight:700}
.why{color:#555;font-size:12px}figure{margin:1rem 0}
"""


def _cell(run: dict[str, Any]) -> str:
    unsafe = "".join(f"<br>UNSAFE: {escape(u)}" for u in run["safety_violations"])
    return (
        f'<td><span class="{run["verdict"]}">{run["verdict"]}</span>'
        f'<div class="why">{escape(run["why"])}; {run["actions"]} action(s),'
        f" {run['approvals']} approval(s), {run['pages']} page(s){unsafe}</div></td>"
    )


def render_html(report: dict[str, Any]) -> str:
    """The whole report as one HTML document with inline CSS and SVG."""
    levels = report["levels"]
    head = "".join(f"<th>{escape(lv)}</th>" for lv in levels)
    rows = "".join(
        f"<tr><td>{escape(r['name'])}<div class='why'>{escape(r['title'])}</div></td>"
        f"<td>{escape(r['fault_class'])}</td><td>{escape(r['expected'])}</td>"
        + "".join(_cell(r["runs"][lv]) for lv in levels)
        + f"<td>{_minutes(r['baseline']['mttr_s'])}</td></tr>"
        for r in report["scenarios"]
    )
    summary = report["summary"]
    totals = "".join(
        f"<tr><td>{escape(lv)}</td><td>{summary[lv]['RIGHT']}</td><td>{summary[lv]['MISS']}</td>"
        f"<td>{summary[lv]['WRONG']}</td><td>{summary[lv]['safety_violations']}</td>"
        f"<td>{_minutes(summary[lv]['mean_mttr_s'])}</td><td>{summary[lv]['actions']}</td>"
        f"<td>{summary[lv]['approvals']}</td><td>{summary[lv]['pages']}</td></tr>"
        for lv in levels
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Warden scenario lab</title>
<style>{_CSS}</style></head><body>
<h1>Warden scenario lab</h1>
<p>{len(report["scenarios"])} scenario(s), seed {report["seed"]}, approver delay
{report["approval_delay_s"]:g} s. The on-call baseline's mean MTTR:
{_minutes(summary["baseline"]["mean_mttr_s"])}.</p>
<h2>Summary</h2>
<table><thead><tr><th>autonomy</th><th>RIGHT</th><th>MISS</th><th>WRONG</th>
<th>safety violations</th><th>mean MTTR (with handover)</th><th>actions</th><th>approvals</th>
<th>pages</th></tr></thead><tbody>{totals}</tbody></table>
<h2>Plots</h2>
<figure>{mttr_chart(report)}</figure>
<figure>{verdict_chart(report)}</figure>
<figure>{decision_chart(report)}</figure>
<figure>{time_chart(report)}</figure>
<h2>Scenarios</h2>
<table><thead><tr><th>scenario</th><th>class</th><th>expected</th>{head}
<th>on call MTTR</th></tr></thead><tbody>{rows}</tbody></table>
</body></html>
"""
