"""`warden evaluate`: a candidate scored on the scenario library and on history. CLI edge.

Register with ``app.command()(evaluate)``. Exits 0 when no candidate has a WRONG run on
the library, 1 when one has, 2 with a one-line reason on bad input or a refused credential.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from warden.cli.auth import Claimed, KeyFile, TokenFile, gate
from warden.cli.options import Config, StateDir, fail, state_dir_of
from warden.cli.replay_cmd import history_settings
from warden.domain.errors import WardenError
from warden.ingest.registry import SchemaRegistry
from warden.replay.agreement import Agreement
from warden.sim.candidate import find_candidates
from warden.sim.evaluation import evaluated_data, record_evaluation, run_history, run_library
from warden.sim.lab import LEVELS
from warden.sim.loader import ScenarioError, find, load
from warden.store.location import has_log, open_event_store

if TYPE_CHECKING:
    from warden.replay.agreement import Comparison
    from warden.sim.candidate import Candidate
    from warden.sim.evaluation import LibraryScore

SCENARIOS = Path("scenarios")


def evaluate(
    candidate: Annotated[
        str,
        typer.Argument(
            help="A runbook file, a directory of runbooks (each scored alone), a policy"
            " bundle directory, or an agent plugin as module:Class."
        ),
    ],
    scenarios: Annotated[
        Path, typer.Option("--scenarios", help="The scenario library: a file or a directory.")
    ] = SCENARIOS,
    config: Config = None,
    state_dir: StateDir = None,
    autonomy: Annotated[
        str, typer.Option(help=f"The level the library runs at: {', '.join(LEVELS)}.")
    ] = "autonomous",
    seed: Annotated[int, typer.Option(help="Seeds probe timing in the simulations.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="Append warden.candidate.evaluated to the state's log (an operator's"
            " credential), the evidence promotion reads.",
        ),
    ] = False,
    token_file: TokenFile = None,
    key: KeyFile = None,
    claimed: Claimed = None,
) -> None:
    """Score a candidate on the scenario library and on replayed history, before promotion.

    The library: every scenario runs without the candidate, then with it (beside the
    built-in agents, or in place of the one of its name); each run is RIGHT, MISS or WRONG,
    and the scenarios it changed are listed. History (with -s or -c): the recorded inputs
    replay with the candidate live; each past incident it proposed for is compared with
    what happened and with what people did (approved, rejected, acted by hand).

    --record keeps the scores as the evidence `warden promote` reads; it takes an operator's
    credential (--token-file, WARDEN_TOKEN or --key).

    Example: warden evaluate examples/runbooks/ -s .warden --record
    """
    if autonomy not in LEVELS:
        raise fail(f"--autonomy {autonomy!r}: use one of {', '.join(LEVELS)}")
    with_history = state_dir is not None or config is not None
    state = state_dir_of(state_dir, config)
    try:
        found = find_candidates(candidate)
        library = [load(p) for p in find(scenarios)]
        if record:
            if not with_history:
                raise WardenError("--record needs the state to record in: give -s or -c")
            gate(state, "evaluate", (token_file, key, claimed))
        history = []
        settings = None
        if with_history:
            if not has_log(state):
                raise WardenError(f"no Warden state in {state}/ (nothing was recorded there)")
            settings = history_settings(config, state)
            store = open_event_store(state)
            try:
                history = store.read_all()
            finally:
                store.close()
    except (WardenError, ScenarioError) as exc:
        raise fail(str(exc)) from None
    err = Console(stderr=True)
    runs = len(library) * (len(found) + 1)
    with Progress(console=err, transient=True, disable=as_json) as bar:
        task = bar.add_task("scoring on the scenario library", total=runs)
        scores = run_library(library, found, autonomy, seed, lambda _: bar.advance(task))
        agreements = []
        for chosen in found:
            if settings is None:
                agreements.append(Agreement(()))
                continue
            step = bar.add_task(f"replaying history with {chosen.name}", total=None)
            advance = functools.partial(_replayed, bar, step)
            agreements.append(run_history(chosen, history, settings, advance))
    results = list(zip(found, scores, agreements, strict=True))
    if record:
        _record(state, results)
    if as_json:
        typer.echo(json.dumps({"candidates": [_as_dict(*r) for r in results]}, indent=2))
    else:
        _print(Console(), results, with_history, record)
    if any(s.to_dict()["wrong"] for s in scores):
        raise typer.Exit(1)


def _replayed(bar: Progress, task: TaskID, done: int, total: int) -> None:
    bar.update(task, completed=done, total=total)


def _record(state: Path, results: list[tuple[Candidate, LibraryScore, Agreement]]) -> None:
    store = open_event_store(state)
    try:
        registry = SchemaRegistry()
        now = datetime.now(UTC)
        for candidate, library, history in results:
            record_evaluation(store, evaluated_data(candidate, library, history), now, registry)
    except WardenError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()


def _comparison(c: Comparison) -> dict[str, Any]:
    return {
        "incident_id": c.incident_id,
        "service": c.service,
        "recorded": list(c.recorded),
        "human": c.human,
        "candidate": list(c.candidate),
        "agree": c.agree,
    }


def _as_dict(candidate: Candidate, library: LibraryScore, history: Agreement) -> dict[str, Any]:
    return {
        **evaluated_data(candidate, library, history),
        "source": candidate.source,
        "scenarios": [s.to_dict() for s in library.scenarios],
        "changed": [s.scenario for s in library.changed],
        "comparisons": [_comparison(c) for c in history.comparisons],
    }


def _print(
    console: Console,
    results: list[tuple[Candidate, LibraryScore, Agreement]],
    with_history: bool,
    recorded: bool,
) -> None:
    table = Table(title="candidates on the scenario library and on history")
    for column in ("candidate", "version", "RIGHT", "MISS", "WRONG", "changed"):
        table.add_column(column, overflow="fold")
    for column in ("agree", "differ", "humans agree"):
        table.add_column(column, overflow="fold")
    for candidate, library, history in results:
        counts = library.to_dict()
        share = history.human_agreement
        wrong = f"[bold red]{counts['wrong']}[/]" if counts["wrong"] else "0"
        table.add_row(
            escape(f"{candidate.kind} {candidate.name}"),
            escape(candidate.version),
            str(counts["right"]),
            str(counts["miss"]),
            wrong,
            f"{len(library.changed)}/{counts['total']}",
            str(history.agree) if with_history else "—",
            str(history.differ) if with_history else "—",
            "—" if share is None else f"{share:g}%",
        )
    console.print(table)
    for candidate, library, history in results:
        shown = [s for s in library.scenarios if s.changed or s.verdict == "WRONG"]
        if shown:
            changed = Table(title=f"scenarios {candidate.name} changed (and any WRONG)")
            for column in ("scenario", "expected", "without", "with", "why"):
                changed.add_column(column, overflow="fold")
            for s in shown:
                changed.add_row(s.scenario, s.expected, s.baseline, s.verdict, escape(s.why))
            console.print(changed)
        differ = [c for c in history.comparisons if not c.agree]
        if differ:
            past = Table(title=f"past incidents where {candidate.name} differs")
            for column in ("incident", "service", "people", "recorded", "candidate"):
                past.add_column(column, overflow="fold")
            for c in differ:
                past.add_row(
                    c.incident_id[:12],
                    c.service,
                    c.human,
                    escape(", ".join(c.recorded) or "nothing"),
                    escape(", ".join(c.candidate) or "nothing"),
                )
            console.print(past)
    if not with_history:
        console.print("no history compared: give -s STATE (or -c) to replay one", highlight=False)
    if recorded:
        console.print(f"recorded {len(results)} evaluation(s)", highlight=False)
