"""Fleet benchmark: a generated fleet run through the real core on simulated days.

Run with ``python bench/fleet.py [--services N] [--days D] [--faults F] [--seed S]
[--workers W]`` (500 services, 30 days, 10,000 faults by default, one worker
process per core); prints the figure: services, days, faults, worker processes, wall
seconds (and the CPU seconds of every process together, the fairer figure on a shared
machine), events/s and whether it finished under the target (120 s wall), with the digest
of what was decided (the same seed gives the same digest, whatever the workers). The
time includes generating the fleet and starting one Warden per domain. The figures go
to bench/results/fleet.json through bench/report.py, with the command in its notes.
"""

from __future__ import annotations

import argparse

from report import emit_table  # bench/report.py, beside this script
from rich.console import Console
from rich.table import Table

from warden.sim.fleet import FleetSettings, default_workers, run_fleet

TARGET_S = 120.0


def main() -> None:
    """Run the fleet once and print its figure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--faults", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=default_workers(), help="processes")
    parser.add_argument("--target", type=float, default=TARGET_S, help="seconds")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    settings = FleetSettings(
        services=args.services, days=args.days, faults=args.faults, seed=args.seed
    )
    report = run_fleet(settings, workers=args.workers)
    level = report["levels"][0]
    summary = report["summary"][level]
    table = Table(title="warden simulate --fleet")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("services", f"{report['fleet']['services']} in {report['fleet']['domains']} domains"),
        ("simulated days", f"{report['fleet']['days']:g}"),
        ("faults injected", f"{report['faults_injected']:,}"),
        ("events / ticks", f"{report['events']:,} / {report['ticks']:,}"),
        ("worker processes", str(report["workers"])),
        ("wall seconds", f"{report['wall_s']:.1f}"),
        ("CPU seconds (all processes)", f"{report['cpu_s']:.1f}"),
        ("events/s", f"{report['events_per_s']:,.0f}"),
        (f"under {args.target:g} s", "yes" if report["wall_s"] < args.target else "NO"),
        ("RIGHT / MISS / WRONG", f"{summary['RIGHT']} / {summary['MISS']} / {summary['WRONG']}"),
        ("safety violations", str(len(report["safety_violations"]))),
        ("digest", report["digest"][:16]),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
    command = (
        f"bench/fleet.py --services {args.services} --days {args.days:g}"
        f" --faults {args.faults} --seed {args.seed} --workers {args.workers}"
    )
    emit_table("fleet", table, notes=command)


if __name__ == "__main__":
    main()
