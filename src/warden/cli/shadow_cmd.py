"""`warden shadow`: how a candidate bundle running in shadow compares with the live one. CLI edge.

Register with ``app.command()(shadow)``. The runtime records a comparison for every step it
decides while ``shadow_policy_dir`` is configured; this reads them back. Exits 0, or 2
with a one-line reason when there is no state.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from warden.cli.options import Config, StateDir, fail, state_dir_of
from warden.domain import events as ev
from warden.domain.promotion import SAME, VERDICTS
from warden.runtime.candidates import candidate_comparisons
from warden.store.location import has_log, open_event_store


def shadow(
    config: Config = None,
    state_dir: StateDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparisons as JSON.")] = False,
) -> None:
    """Compare candidates in shadow with the live side: agents, runbooks and the bundle.

    A candidate agent (agents.shadow) or runbook (mode: shadow) proposes beside the live
    one: per incident, the same plan, a different plan, a plan where the live side had
    none, or none where it had one. A candidate bundle (shadow_policy_dir) decides every
    step the live one decides: how often they agree, and every step where they did not.
    Nothing a candidate decides is acted on.
    """
    state_dir = state_dir_of(state_dir, config)
    if not has_log(state_dir):
        raise fail(f"no Warden state in {state_dir}/ (run `warden run` first)")
    store = open_event_store(state_dir)
    try:
        shadowed = list(store.read_stream(ev.SHADOW_STREAM))
        compared = [e.data for e in shadowed if e.type == ev.SHADOW_DECIDED]
        found = candidate_comparisons(store)
    finally:
        store.close()
    differ = [c for c in compared if not c.get("agree")]
    if as_json:
        summary = {"compared": len(compared), "agree": len(compared) - len(differ)}
        typer.echo(json.dumps({**summary, "differences": differ, "candidates": found}, indent=2))
        return
    console = Console()
    _print_candidates(console, found)
    if not compared:
        if not found:
            console.print(
                "no shadow decisions recorded: set shadow_policy_dir in warden.yaml to a"
                " candidate bundle, give a runbook mode: shadow, or list an agent under"
                " agents.shadow, then run Warden"
            )
        return
    bundles = sorted({str(c["shadow"].get("bundle", "")) for c in compared})
    share = 100 * (len(compared) - len(differ)) / len(compared)
    console.print(
        f"{len(compared)} steps decided by both; the shadow bundle ({', '.join(bundles)})"
        f" agreed on {len(compared) - len(differ)} ({share:.0f}%)",
        highlight=False,
    )
    if differ:
        table = Table(title=f"{len(differ)} steps decided otherwise")
        for column in ("incident", "service", "step", "live", "shadow"):
            table.add_column(column, overflow="fold")
        for c in differ:
            table.add_row(
                str(c["incident_id"])[:12],
                str(c["service"]),
                f"{c['index']}: {c['action']}({c['target']})",
                _shown(c["live"]),
                _shown(c["shadow"]),
            )
        console.print(table)


def _print_candidates(console: Console, found: list[dict[str, Any]]) -> None:
    for candidate in found:
        counts = candidate["counts"]
        title = f"{candidate['kind']} {candidate['name']} {candidate['version']} in shadow"
        summary = Table(title=title)
        for verdict in VERDICTS:
            summary.add_column(verdict, justify="right")
        summary.add_row(*(str(counts[v]) for v in VERDICTS))
        console.print(summary)
        differing = [c for c in candidate["incidents"] if c["verdict"] != SAME]
        if not differing:
            continue
        table = Table(title=f"{len(differing)} incidents where they differ")
        for column in ("time", "incident", "service", "verdict", "live", "shadow"):
            table.add_column(column, overflow="fold")
        for c in differing:
            table.add_row(
                c["time"],
                c["incident_id"][:12] or "-",
                c["service"],
                c["verdict"],
                _steps(c["live"]),
                _steps(c["shadow"]),
            )
        console.print(table)


def _steps(steps: list[list[str]]) -> str:
    return escape("; ".join(f"{a}({t})" for a, t, _ in steps) or "none")


def _shown(verdict: dict[str, Any]) -> str:
    return escape(f"{verdict.get('outcome', '?')} ({verdict.get('policy') or 'no policy'})")
