"""Decision quality on the scenario library: RIGHT / MISS / WRONG per autonomy level.

Run with ``python bench/scenarios.py [--dir scenarios] [--seed S] [--approval-delay S]``;
prints the per-scenario table ``warden simulate`` prints, then one row per autonomy level
(verdict counts, safety violations, mean MTTR against the on-call baseline, actions,
approvals and pages), and records both in bench/results/scenarios.json. Exits 1 on any
WRONG or safety violation at the supervised or autonomous level.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from report import emit  # bench/report.py, beside this script
from rich.console import Console
from rich.table import Table

from warden.sim.lab import LabSettings, run_lab
from warden.sim.loader import find, load
from warden.sim.report import score_table

ACTING = ("supervised", "autonomous")


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f} min"


def main() -> int:
    """Score the library at every level and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path(__file__).parent.parent / "scenarios")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--approval-delay", type=float, default=120.0, help="seconds")
    args = parser.parse_args()
    console = Console()
    if not console.is_terminal:  # a log or a pipe: the whole table, not 80 columns
        console = Console(width=150)
    scenarios = [load(path) for path in find(args.dir)]
    settings = LabSettings(seed=args.seed, approval_delay_s=args.approval_delay)
    report = run_lab(scenarios, settings)
    console.print(score_table(report))
    summary = report["summary"]
    baseline = summary["baseline"]["mean_mttr_s"]
    table = Table(title=f"Scenario library: {len(scenarios)} scenarios, seed {args.seed}")
    for column in ("level", "RIGHT", "MISS", "WRONG", "unsafe", "mean MTTR", "on-call MTTR"):
        table.add_column(column, justify="left" if column == "level" else "right")
    for column in ("actions", "approvals", "pages"):
        table.add_column(column, justify="right")
    rows = []
    for level in report["levels"]:
        s = summary[level]
        share = s["RIGHT"] / len(scenarios) if scenarios else 0.0
        row = {
            "level": level,
            "RIGHT": f"{s['RIGHT']} ({share:.0%})",
            "MISS": str(s["MISS"]),
            "WRONG": str(s["WRONG"]),
            "unsafe": str(s["safety_violations"]),
            "mean MTTR": _minutes(s["mean_mttr_s"]),
            "on-call MTTR": _minutes(baseline),
            "actions": str(s["actions"]),
            "approvals": str(s["approvals"]),
            "pages": str(s["pages"]),
        }
        rows.append(row)
        table.add_row(*row.values())
    console.print(table)
    emit(
        "scenarios",
        table.title if isinstance(table.title, str) else "Scenario library",
        rows,
        notes="observe and recommend cannot act: their act scenarios are MISS by design",
    )
    bad = [lvl for lvl in ACTING if summary[lvl]["WRONG"] or summary[lvl]["safety_violations"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
