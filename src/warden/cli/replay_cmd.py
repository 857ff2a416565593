"""`warden replay`: a recorded history through a candidate bundle, with a decision diff. CLI edge.

Register with ``app.command()(replay)``. Exits 0 when the replay decided as recorded, 1 when
it did not (the differences are listed), 2 with a one-line reason on bad input.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from warden.cli.options import DEFAULT_STATE, Config, StateDir, fail
from warden.config import WardenConfig, load_config
from warden.domain.errors import WardenError
from warden.replay import ReplayReport
from warden.replay import replay as replay_history
from warden.store.location import has_log, open_event_store


def replay(
    config: Config = None,
    state_dir: StateDir = None,
    policy_dir: Annotated[
        Path | None,
        typer.Option(
            "--policy-dir",
            help="A candidate Cedar bundle to decide with instead of the configured one.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Replay what came in (probes, signals, alerts, approvals, controls) and diff decisions.

    Nothing runs: each action is answered as the history recorded it. With the
    configuration and bundle the history ran with, the decisions are the same; with a
    candidate bundle (--policy-dir), the differences are what it would change. A model
    agent is not asked again; plans it made show up as differences.

    The history replayed is the one in the config's state_dir (or --state-dir); without
    --config, ./warden.yaml, else the copy `warden demo` keeps in the state dir.

    Example: warden replay -c warden.yaml --policy-dir policies-next/
    """
    err = Console(stderr=True)
    try:
        settings = history_settings(config, state_dir or DEFAULT_STATE)
        state_dir = state_dir or (settings.state_dir if config is not None else DEFAULT_STATE)
        if policy_dir is not None:
            if not policy_dir.is_dir():
                raise WardenError(
                    f"no policy bundle at {policy_dir}/ (a directory of .cedar files)"
                )
            settings = replace(settings, policy_dir=policy_dir)
        if not has_log(state_dir):
            raise WardenError(f"no Warden state in {state_dir}/ (nothing was recorded there)")
        store = open_event_store(state_dir)
        try:
            history = store.read_all()
        finally:
            store.close()
        with Progress(console=err, transient=True, disable=as_json) as bar:
            task = bar.add_task("replaying", total=None)
            report = replay_history(
                history,
                settings,
                progress=lambda n, total: bar.update(task, completed=n, total=total),
            )
    except WardenError as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(_as_dict(report), indent=2))
    else:
        _print(Console(), report)
    raise typer.Exit(0 if report.identical else 1)


def history_settings(config: Path | None, state_dir: Path) -> WardenConfig:
    """The configuration named, else ./warden.yaml, else the one kept in the state dir."""
    candidates = (
        [config] if config is not None else [Path("warden.yaml"), state_dir / "warden.yaml"]
    )
    for chosen in candidates:
        if chosen.exists():
            return load_config(chosen)
    tried = " or ".join(str(c) for c in candidates)
    raise WardenError(
        f"no {tried}: give --config, the warden.yaml the history in {state_dir}/ ran with"
        " (its services, autonomy and guardrails shape every decision)"
    )


def _as_dict(report: ReplayReport) -> dict[str, object]:
    return {
        "identical": report.identical,
        "inputs": report.inputs,
        "incidents": {"recorded": len(report.recorded), "replayed": len(report.replayed)},
        "differences": [asdict(d) for d in report.differences],
        "notes": list(report.notes),
    }


def _print(console: Console, report: ReplayReport) -> None:
    console.print(
        f"replayed {report.inputs} inputs: {len(report.recorded)} incidents recorded,"
        f" {len(report.replayed)} in the replay",
        highlight=False,
    )
    for note in report.notes:
        console.print(f"note: {escape(note)}", highlight=False)
    if report.identical:
        console.print("[green]same decisions as recorded[/green]")
        return
    table = Table(title=f"{len(report.differences)} differences")
    for column in ("incident", "service", "what", "recorded", "replayed"):
        table.add_column(column, overflow="fold")
    for d in report.differences:
        table.add_row(d.incident_id[:12], d.service, d.what, escape(d.recorded), escape(d.replayed))
    console.print(table)
