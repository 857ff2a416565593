"""`warden simulate`: the scenario lab from the command line. CLI edge.

Register with ``app.command()(simulate)``. Exits 0 when every run is RIGHT or MISS with no
safety violation, 1 on any WRONG or safety violation, 2 on bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from warden.cli.options import fail
from warden.sim.format import SCHEMA_FILE
from warden.sim.lab import LEVELS, LabSettings, failed, run_lab
from warden.sim.loader import ScenarioError, find, load
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
) -> None:
    """Run scenarios through the real core on simulated time, beside an on-call baseline."""
    console = Console()
    if schema:
        typer.echo(SCHEMA_FILE.read_text(encoding="utf-8"), nl=False)
        return
    if path is None:
        raise _fail(console, "name a scenario file or directory (or pass --schema)")
    try:
        levels = _levels(autonomy)
        if approval_delay < 0 or (max_duration is not None and max_duration <= 0):
            raise ValueError("--approval-delay and --max-duration must be positive")
        scenarios = [load(p) for p in find(path)]
    except (ScenarioError, ValueError) as exc:
        raise _fail(console, str(exc)) from None
    settings = LabSettings(
        levels=levels, seed=seed, approval_delay_s=approval_delay, max_duration_s=max_duration
    )
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("simulating", total=len(scenarios))
        report = run_lab(scenarios, settings, lambda name: progress.advance(task))
    console.print(score_table(report))
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(
            json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        (out / "report.html").write_text(render_html(report), encoding="utf-8")
    except OSError as exc:
        raise _fail(console, f"cannot write the report to {out}: {exc.strerror or exc}") from None
    console.print(f"wrote {out / 'report.json'} and {out / 'report.html'}", highlight=False)
    if failed(report):
        raise typer.Exit(1)
