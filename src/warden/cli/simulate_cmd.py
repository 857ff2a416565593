"""`warden simulate`: the scenario lab and the fleet from the command line. CLI edge.

Register with ``app.command()(simulate)``. Exits 0 when every run is RIGHT or MISS with no
safety violation, 1 on any WRONG or safety violation (a fleet: on a safety violation),
2 on bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress

from warden.cli.options import fail
from warden.sim.baseline import OnCallRota
from warden.sim.fleet import FleetSettings, WorkerLost, run_fleet
from warden.sim.fleet_report import fleet_lines, fleet_table, render_fleet_html
from warden.sim.format import SCHEMA_FILE, rota_json_schema
from warden.sim.lab import LEVELS, LabSettings, failed, run_lab
from warden.sim.loader import ScenarioError, find, load, load_rota
from warden.sim.report import render_html, score_table


def _fail(console: Console, message: str) -> typer.Exit:
    return fail(message)


def _levels(text: str) -> tuple[str, ...]:
    chosen = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in chosen if p not in LEVELS]
    if not chosen or unknown:
        raise ValueError(
            f"--autonomy {text!r}: use one or more of {', '.join(LEVELS)}, comma-separated"
        )
    return chosen


def simulate(
    path: Annotated[
        Path | None, typer.Argument(help="A scenario file, or a directory of them (*.yaml).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds probe timing and the baseline.")] = 0,
    autonomy: Annotated[
        str, typer.Option(help="Autonomy levels to run, comma-separated.")
    ] = ",".join(LEVELS),
    out: Annotated[
        Path, typer.Option("--out", help="Directory for report.json and report.html.")
    ] = Path("sim-report"),
    approval_delay: Annotated[
        float, typer.Option(help="Seconds the simulated approver takes to answer a request.")
    ] = 120.0,
    max_duration: Annotated[
        float | None, typer.Option(help="Cut every scenario to at most this many seconds.")
    ] = None,
    schema: Annotated[
        bool, typer.Option("--schema", help="Print the scenario format's JSON Schema and exit.")
    ] = False,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="A YAML file of on-call response times (page, acknowledge, diagnose, act),"
            " by fault class; see docs/scenarios.md.",
        ),
    ] = None,
    baseline_schema: Annotated[
        bool, typer.Option("--baseline-schema", help="Print the baseline file's JSON Schema.")
    ] = False,
    fleet: Annotated[
        bool,
        typer.Option(
            "--fleet",
            help="Generate a fleet (--services, --days, --faults, --seed) and run it instead"
            " of scenario files: one Warden per domain, one autonomy level.",
        ),
    ] = False,
    services: Annotated[int, typer.Option(help="Fleet: how many services.")] = 500,
    days: Annotated[float, typer.Option(help="Fleet: simulated days.")] = 30.0,
    faults: Annotated[int, typer.Option(help="Fleet: how many faults to inject.")] = 10_000,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Fleet: worker processes, each running a share of the domains"
            " (default: one per core). The report is the same whatever the number."
        ),
    ] = None,
) -> None:
    """Run scenarios through the real core on simulated time, beside an on-call baseline.

    With --fleet, generate a fleet of services with its topology, resources and a fault
    schedule drawn from the format's fault classes, run it for days of simulated time,
    and report MTTR per fault class against the on-call baseline.

    Example: warden simulate scenarios/ --autonomy supervised,autonomous

    Example: warden simulate --fleet --services 100 --days 7 --faults 500
    """
    console = Console()
    if schema:
        typer.echo(SCHEMA_FILE.read_text(encoding="utf-8"), nl=False)
        return
    if baseline_schema:
        typer.echo(json.dumps(rota_json_schema(), indent=2, sort_keys=True))
        return
    try:
        rota = OnCallRota() if baseline is None else OnCallRota.from_file(load_rota(baseline))
    except ScenarioError as exc:
        raise _fail(console, str(exc)) from None
    if fleet:
        chosen = _fleet_settings(
            console, path, seed, autonomy, approval_delay, rota, services, days, faults
        )
        _fleet(console, out, chosen, workers)
        return
    if path is None:
        raise _fail(console, "name a scenario file or directory (or pass --schema, or --fleet)")
    try:
        levels = _levels(autonomy)
        if approval_delay < 0 or (max_duration is not None and max_duration <= 0):
            raise ValueError("--approval-delay and --max-duration must be positive")
        scenarios = [load(p) for p in find(path)]
    except (ScenarioError, ValueError) as exc:
        raise _fail(console, str(exc)) from None
    settings = LabSettings(
        levels=levels,
        seed=seed,
        approval_delay_s=approval_delay,
        max_duration_s=max_duration,
        on_call=rota,
    )
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("simulating", total=len(scenarios))
        report = run_lab(scenarios, settings, lambda name: progress.advance(task))
    console.print(score_table(report))
    _write(console, out, report, render_html(report))
    if failed(report):
        raise typer.Exit(1)


def _write(console: Console, out: Path, report: dict[str, Any], html: str) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(
            json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        (out / "report.html").write_text(html, encoding="utf-8")
    except OSError as exc:
        raise _fail(console, f"cannot write the report to {out}: {exc.strerror or exc}") from None
    console.print(f"wrote {out / 'report.json'} and {out / 'report.html'}", highlight=False)


def _fleet_settings(
    console: Console,
    path: Path | None,
    seed: int,
    autonomy: str,
    approval_delay: float,
    rota: OnCallRota,
    services: int,
    days: float,
    faults: int,
) -> FleetSettings:
    """The fleet the options ask for, or the error that says why not."""
    if path is not None:
        raise _fail(console, f"--fleet generates its scenarios; drop {path} (or drop --fleet)")
    level = "autonomous" if autonomy == ",".join(LEVELS) else autonomy.strip()
    if level not in LEVELS:
        raise _fail(
            console,
            f"--autonomy {autonomy!r}: a fleet runs at one level, one of {', '.join(LEVELS)}",
        )
    if approval_delay < 0:
        raise _fail(console, "--approval-delay must be positive")
    return FleetSettings(
        services=services,
        days=days,
        faults=faults,
        seed=seed,
        autonomy=level,
        approval_delay_s=approval_delay,
        on_call=rota,
    )


def _fleet(console: Console, out: Path, settings: FleetSettings, workers: int | None) -> None:
    """`warden simulate --fleet`: generate, run, print the table, write the report."""
    if workers is not None and workers < 1:
        raise _fail(console, "--workers must be at least 1")
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("generating the fleet", total=100)

        def advance(phase: str, fraction: float) -> None:
            label = {"generated": "starting a Warden per domain", "built": "simulating"}
            progress.update(
                task, completed=round(fraction * 100), description=label.get(phase, "simulating")
            )

        try:
            report = run_fleet(settings, advance, workers)
        except ValueError as exc:
            raise _fail(console, str(exc)) from None
        except WorkerLost as exc:
            raise fail(str(exc), code=1) from None
    console.print(fleet_table(report))
    for line in fleet_lines(report):
        console.print(line, highlight=False)
    _write(console, out, report, render_fleet_html(report))
    if report["safety_violations"]:
        raise typer.Exit(1)
