"""``warden runbook``: check a runbook directory, run its cases, explain one event. Edge (CLI)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from warden.cli.options import Config, StateDir, state_dir_of
from warden.config import load_config
from warden.domain import events as ev
from warden.domain.errors import ConfigError
from warden.governance.policy import BUILTIN_BUNDLE, PolicyBundle
from warden.runbooks.cases import case_files, load_cases, run_case
from warden.runbooks.loader import EXAMPLE, RunbookSet, load_runbooks
from warden.runbooks.model import evaluate
from warden.store.location import has_log, open_event_store

runbook_app = typer.Typer(
    help=(
        "Runbooks: remediation rules written as YAML; check them, test them, explain one.\n\n"
        "A runbook has a trigger, a CEL condition, a throttle and a plan template, and runs"
        " as an agent under policy, guardrails and approvals. Set runbooks_dir in warden.yaml;"
        " the directory is hot reloaded. Cases beside the runbooks (NAME.cases.yaml) say"
        " which event gives which plan. See docs/runbooks.md."
        f"\n\nA runbook:\n\n{textwrap.indent(EXAMPLE, '    ')}"
    ),
    no_args_is_help=True,
)
console = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

RunbookDir = Annotated[
    Path, typer.Argument(help="The runbook directory (*.yaml, cases in *.cases.yaml).")
]


def _load(directory: Path) -> RunbookSet:
    try:
        return load_runbooks(directory)
    except ConfigError as exc:
        err.print(f"[bold red]runbooks refused[/]\n{escape(str(exc))}")
        raise typer.Exit(2) from exc


@runbook_app.command()
def check(directory: RunbookDir) -> None:
    """Load and check every runbook; print each with its version."""
    runbooks = _load(directory)
    for runbook in runbooks.runbooks:
        console.print(
            f"[green]valid[/] {runbook.name} ({runbook.version}, {runbook.mode}):"
            f" {', '.join(sorted(runbook.trigger.types))} -> "
            + ", ".join(s.action for s in runbook.steps)
        )
    console.print(f"{len(runbooks.runbooks)} runbooks, set version {runbooks.version}")


@runbook_app.command("test")
def run_tests(
    directory: RunbookDir,
    policy_dir: Annotated[
        Path,
        typer.Option(
            "--policy-dir", "-p", help="The Cedar bundle that decides expected decisions."
        ),
    ] = BUILTIN_BUNDLE,
) -> None:
    """Run the cases beside the runbooks (*.cases.yaml); exit 1 if any fails.

    A case gives an event (and optionally the world and earlier events) and the plan it
    must give, or `plan: none`; `decision:` checks the first step with the policy bundle.
    """
    runbooks = _load(directory)
    try:
        bundle = PolicyBundle(policy_dir)
        files = case_files(directory)
        cases = [c for f in files for c in load_cases(f)]
    except ConfigError as exc:
        err.print(f"[bold red]cases refused[/]\n{escape(str(exc))}")
        raise typer.Exit(2) from exc
    if not cases:
        err.print(f"no cases in {directory}: write NAME.cases.yaml beside the runbooks")
        raise typer.Exit(2)
    failed = 0
    failures: list[str] = []
    table = Table(title=f"{len(cases)} runbook cases ({directory})")
    for column in ("", "case", "plan", "decision", "why"):
        table.add_column(column, overflow="fold")
    for case in cases:
        result = run_case(runbooks, case, bundle)
        failed += not result.passed
        if not result.passed:
            failures.append(f"FAIL {Path(case.file).name}: {case.name}: {result.why}")
        plan = result.plan
        shown = (
            f"{plan.agent}: " + ", ".join(f"{s.action}({s.target})" for s in plan.steps)
            if plan is not None
            else "none"
        )
        table.add_row(
            "[green]ok[/]" if result.passed else "[bold red]FAIL[/]",
            escape(f"{Path(case.file).name}: {case.name}"),
            escape(shown),
            result.decision,
            escape(result.why),
        )
    console.print(table)
    for line in failures:
        console.print(escape(line), soft_wrap=True, style="red")
    console.print(f"{len(cases) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


@runbook_app.command()
def explain(
    event: Annotated[
        str,
        typer.Argument(
            help="A JSON file holding an event (type, data, subject, time), or an event id"
            " in the state directory's log."
        ),
    ],
    directory: Annotated[
        Path | None,
        typer.Option(
            "--runbooks",
            "-r",
            help="The runbook directory (default: runbooks_dir of --config, else runbooks).",
            show_default=False,
        ),
    ] = None,
    config: Config = None,
    state_dir: StateDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdicts as JSON.")] = False,
) -> None:
    """Show which runbooks match an event, and why the others do not.

    The world is taken as empty (healthy, no signals) and no throttle applies: this shows
    what the rules say about the event itself. An event id is looked up in the state
    directory's log.
    """
    state = state_dir_of(state_dir, config)  # a broken config fails here, cleanly
    if directory is None:
        configured = load_config(config).runbooks_dir if config is not None else None
        directory = configured or Path("runbooks")
    runbooks = _load(directory)
    found = _event(event, state)
    verdicts = [evaluate(r, found, None) for r in runbooks.runbooks]
    if as_json:
        rows: list[dict[str, Any]] = [
            {
                "runbook": v.runbook,
                "matched": v.matched,
                "reason": v.reason,
                "plan": v.plan.to_dict() if v.plan is not None else None,
            }
            for v in verdicts
        ]
        typer.echo(json.dumps({"event": found.id, "verdicts": rows}, indent=2))
        return
    table = Table(title=f"event {found.id} ({found.type})")
    for column in ("runbook", "matched", "why", "plan"):
        table.add_column(column, overflow="fold")
    for v in verdicts:
        plan = (
            ", ".join(f"{s.action}({s.target})" for s in v.plan.steps) if v.plan is not None else ""
        )
        table.add_row(v.runbook, "[green]yes[/]" if v.matched else "no", escape(v.reason), plan)
    console.print(table)


def _event(event: str, state_dir: Path) -> ev.Event:
    path = Path(event)
    if path.is_file():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            err.print(f"[bold red]error:[/] {escape(str(path))}: not a JSON event: {exc}")
            raise typer.Exit(2) from exc
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            err.print(f"[bold red]error:[/] {escape(str(path))}: expected {{type, data, ...}}")
            raise typer.Exit(2)
        given = raw.get("data")
        data: dict[str, Any] = given if isinstance(given, dict) else {}
        return ev.Event(
            str(raw.get("id") or path.stem),
            str(raw.get("source") or "warden://explain"),
            raw["type"],
            str(raw.get("time") or "2026-01-01T00:00:00.000000Z"),
            data,
            subject=str(raw.get("subject") or data.get("service") or ""),
        )
    if not has_log(state_dir):
        err.print(
            f"[bold red]error:[/] {escape(event)} is neither a file nor an event id in"
            f" {escape(str(state_dir))}/ (no Warden state there)"
        )
        raise typer.Exit(2)
    store = open_event_store(state_dir)
    try:
        for stored in store.read_all(0):
            if stored.id == event:
                return stored
    finally:
        store.close()
    err.print(f"[bold red]error:[/] no event {escape(event)} in {escape(str(state_dir))}/")
    raise typer.Exit(2)
