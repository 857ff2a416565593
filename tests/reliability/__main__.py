"""``python -m tests.reliability``: the reliability campaign, with its counts.

``make reliability`` runs the full campaign (about an hour on two cores); ``--short`` is
the form ``make test`` runs. Exits 1 on any loss, repeat, crash or undetected tampering,
2 on bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from .campaign import PARTS, Sizes, run_part

if TYPE_CHECKING:
    from .common import Result

FULL = Sizes(
    kills=1000,
    fuzz_inputs=1_000_000,
    fuzz_requests=50_000,
    overload_s=180.0,
    slow_connections=1000,
    slow_s=60.0,
    disk_events=3000,
    tamperings=10_000,
)
SHORT = Sizes(
    kills=20,
    fuzz_inputs=5_000,
    fuzz_requests=500,
    overload_s=5.0,
    slow_connections=300,
    slow_s=5.0,
    disk_events=600,
    tamperings=300,
)


def _table(results: list[Result], took: float) -> Table:
    table = Table(title=f"Reliability campaign ({took:,.0f} s)", show_lines=True)
    table.add_column("part")
    table.add_column("counts")
    table.add_column("verdict")
    for result in results:
        counts = ", ".join(
            f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in result.counts.items()
        )
        skipped = "skipped" in result.counts
        verdict = "skipped" if skipped and result.passed else ("pass" if result.passed else "FAIL")
        table.add_row(result.part, counts, verdict)
    return table


def main(argv: list[str] | None = None) -> int:
    """Run the chosen parts; print their counts; 1 when any part failed."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability",
        description="Kill, fuzz, flood, starve, fill and tamper with a real Warden; count what broke.",
    )
    parser.add_argument("--short", action="store_true", help="the short form make test runs")
    parser.add_argument(
        "--only", action="append", choices=sorted(PARTS), help="run only this part (repeatable)"
    )
    parser.add_argument("--seed", type=int, default=20261202, help="seed of every random choice")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="fuzz processes")
    args = parser.parse_args(argv)
    sizes = SHORT if args.short else FULL
    console = Console(stderr=True)
    started = time.monotonic()
    results: list[Result] = []
    strict = os.environ.get("CI", "").lower() == "true"
    with tempfile.TemporaryDirectory(prefix="warden-reliability-") as tmp:
        for name in args.only or list(PARTS):
            console.print(f"[bold]{name}[/bold] ...")
            part_started = time.monotonic()
            found = run_part(name, sizes, args.seed, Path(tmp) / name, args.jobs, console)
            for result in found:
                if strict and "skipped" in result.counts:
                    result.fail(f"skipped under CI=true: {result.counts['skipped']}")
                console.print(
                    f"  {result.part}: {'pass' if result.passed else 'FAIL'}"
                    f" ({time.monotonic() - part_started:,.0f} s)"
                )
            results += found
    Console().print(_table(results, time.monotonic() - started))
    failed = [r for r in results if not r.passed]
    for result in failed:
        console.print(f"[red]FAIL[/red] {result.part}:")
        for failure in result.failures:
            console.print(f"  - {failure}", markup=False)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
