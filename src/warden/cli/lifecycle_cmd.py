"""`warden versions`, `warden promote`, `warden rollback`: the lifecycle of what decides. CLI edge.

Register with ``app.command()(versions)`` and the others. Each reads or appends the
``lifecycle`` stream of the state (see docs/agent-lifecycle.md); a running Warden applies
a promotion or rollback on its next round. Exits 0, or 2 with the reason.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from warden import operations
from warden.cli.auth import Claimed, KeyFile, TokenFile, credential
from warden.cli.options import Config, StateDir, configured, fail, state_dir_of
from warden.domain.catalog import Catalog
from warden.domain.errors import PolicyDenied, WardenError
from warden.domain.promotion import PromotionPolicy
from warden.runtime.candidates import lifecycle_of, versions_table
from warden.store.location import has_log, open_event_store

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from warden.domain import events as ev
    from warden.ports import EventStore

console = Console()

Kind = Annotated[str, typer.Argument(metavar="KIND", help="agent, runbook or bundle")]
Name = Annotated[str, typer.Argument(metavar="NAME", help="Its name (a bundle's is `policy`).")]


def versions(
    config: Config = None,
    state_dir: StateDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the versions as JSON.")] = False,
) -> None:
    """List every version of agents, runbooks, bundles and model settings, and its stage.

    live acts; canary acts on its services first; shadow proposes beside the live one and
    never acts; retired is kept loaded for a rollback; rolled back was taken out.
    """
    state_dir = state_dir_of(state_dir, config)
    if not has_log(state_dir):
        raise fail(f"no Warden state in {state_dir}/ (run `warden run` first)")
    store = open_event_store(state_dir)
    try:
        rows = versions_table(lifecycle_of(store))
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps({"versions": rows}, indent=2))
        return
    if not rows:
        console.print("no versions recorded yet: run Warden once (`warden run`)")
        return
    table = Table(title="versions")
    for column in ("kind", "name", "version", "stage", "since"):
        table.add_column(column, overflow="fold")
    for row in rows:
        stage = row["stage"]
        if "autonomy" in row:
            stage += f" ({row['autonomy']})"
        if "canary" in row:
            canary = row["canary"]
            named = ", ".join(canary["services"])
            stage += f" ({canary['fraction']:.0%} of services{', ' + named if named else ''})"
        table.add_row(row["kind"], row["name"], row["version"], stage, row["since"])
    console.print(table)


def promote(
    kind: Kind,
    name: Name,
    to: Annotated[
        str, typer.Option("--to", help="canary, supervised or autonomous.", show_default=False)
    ],
    version: Annotated[
        str | None, typer.Option("--version", help="The candidate (default: the only one).")
    ] = None,
    token_file: TokenFile = None,
    key: KeyFile = None,
    claimed: Claimed = None,
    config: Config = None,
    state_dir: StateDir = None,
) -> None:
    """Promote a candidate on evidence (admins): refused with every unmet threshold.

    The thresholds are the promotion: section of warden.yaml; the evidence (shadow
    proposals, agreement, the scenario library's WRONG count) is attached to the audited
    event.

    Example: warden promote runbook restart-on-oom --to canary --key me.key
    """
    state_dir = state_dir_of(state_dir, config)
    found = configured(config, state_dir) if has_log(state_dir) else None
    policy = found.promotion if found is not None else PromotionPolicy()
    try:
        event = _appended(
            state_dir,
            lambda store: operations.promote(
                store,
                credential(token_file, key),
                kind,
                name,
                to,
                datetime.now(UTC),
                policy,
                Catalog(),
                version=version,
                claimed=claimed,
            ),
        )
    except PolicyDenied as exc:
        listed = "\n".join(f"  - {r}" for r in exc.reasons)
        raise fail(f"{kind} {name}: promotion to {to} refused; unmet:\n{listed}") from exc
    data = event.data
    console.print(
        f"{kind} {name} {data['version']} promoted to {to} by {data['by']}"
        f" (previous: {data['previous'] or 'none'})",
        highlight=False,
    )


def rollback(
    kind: Kind,
    name: Name,
    reason: Annotated[str, typer.Option(help="Why; kept in the audit log.")] = "",
    token_file: TokenFile = None,
    key: KeyFile = None,
    claimed: Claimed = None,
    config: Config = None,
    state_dir: StateDir = None,
) -> None:
    """Restore the previous version at once (operators and admins), as an audited event.

    No evidence is asked for: the version acting now (the canary, else the live one) is
    taken out and the one before it acts again. `warden versions` shows both.

    Example: warden rollback runbook restart-on-oom --reason relapses --key me.key
    """
    event = _appended(
        state_dir_of(state_dir, config),
        lambda store: operations.roll_back(
            store,
            credential(token_file, key),
            kind,
            name,
            datetime.now(UTC),
            reason=reason,
            claimed=claimed,
        ),
    )
    data = event.data
    console.print(
        f"{kind} {name}: {data['version']} rolled back, {data['restored']} restored"
        f" by {data['by']}",
        highlight=False,
    )


def _appended(state_dir: Path, append: Callable[[EventStore], ev.Event]) -> ev.Event:
    """Run ``append`` against the state's store; refusals other than policy are one line."""
    if not has_log(state_dir):
        raise fail(f"no Warden state in {state_dir}/ (run `warden run` first)")
    store = open_event_store(state_dir)
    try:
        return append(store)
    except PolicyDenied:
        raise
    except WardenError as exc:
        raise fail(str(exc)) from exc
    finally:
        store.close()
