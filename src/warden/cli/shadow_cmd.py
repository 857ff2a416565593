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
from warden.store.location import has_log, open_event_store


def shadow(
    config: Config = None,
    state_dir: StateDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparisons as JSON.")] = False,
) -> None:
    """Compare the shadow bundle's decisions with the live ones, step by step.

    Set shadow_policy_dir in warden.yaml to a candidate Cedar bundle: every step Warden
    decides is also decided by the candidate, recorded and never acted on. This lists how
    often they agree and every step where they did not.
    """
    state_dir = state_dir_of(state_dir, config)
    if not has_log(state_dir):
        raise fail(f"no Warden state in {state_dir}/ (run `warden run` first)")
    store = open_event_store(state_dir)
    try:
        compared = [e.data for e in store.read_stream(ev.SHADOW_STREAM)]
    finally:
        store.close()
    differ = [c for c in compared if not c.get("agree")]
    if as_json:
        summary = {"compared": len(compared), "agree": len(compared) - len(differ)}
        typer.echo(json.dumps({**summary, "differences": differ}, indent=2))
        return
    console = Console()
    if not compared:
        console.print(
            "no shadow decisions recorded: set shadow_policy_dir in warden.yaml to a candidate"
            " bundle, then run Warden"
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


def _shown(verdict: dict[str, Any]) -> str:
    return escape(f"{verdict.get('outcome', '?')} ({verdict.get('policy') or 'no policy'})")
