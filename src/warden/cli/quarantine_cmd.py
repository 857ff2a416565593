"""`warden quarantine ...`: list and show refused input, replay it through the gates. CLI edge.

Replay re-runs the quality gates (e.g. after a schema fix) and removes an item from
quarantine only when its events were accepted. Exit status: 0 on success, 1 when a
replay left items refused, 2 when an argument is unusable.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from warden.assembly import ingest_gate
from warden.cli.auth import Claimed, KeyFile, TokenFile
from warden.cli.auth import gate as gate_for
from warden.cli.options import Config, StateDir, configured, state_dir_of
from warden.cli.schema_cmd import SchemaDirs, fail, load_registry
from warden.domain.errors import WardenError
from warden.ingest.quarantine import ReplayVerdict, replay_quarantined
from warden.ports import SystemClock
from warden.store.location import has_log, open_event_store

if TYPE_CHECKING:
    from warden.ports import EventStore, QuarantinedInput

quarantine_app = typer.Typer(
    help="Input the quality gates refused, kept with the reason: list, show, replay.",
    no_args_is_help=True,
)


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _open(state_dir: Path) -> EventStore:
    if not has_log(state_dir):
        raise fail(f"no Warden state in {state_dir}/ (nothing was ingested there yet)")
    return open_event_store(state_dir)


def _find(items: list[QuarantinedInput], item_id: int) -> QuarantinedInput:
    for item in items:
        if item.id == item_id:
            return item
    raise fail(f"no quarantined item {item_id} (see `warden quarantine list`)")


@quarantine_app.command("list")
def list_(
    config: Config = None,
    state_dir: StateDir = None,
    limit: Annotated[int, typer.Option(help="Show at most this many, newest last.")] = 50,
) -> None:
    """List quarantined input: id, when, from where, and why."""
    state_dir = state_dir_of(state_dir, config)
    store = _open(state_dir)
    try:
        items = store.quarantined()
    finally:
        store.close()
    out = _out()
    if not items:
        out.print(f"quarantine in {state_dir}/ is empty")
        return
    table = Table(title=f"Quarantine in {state_dir}/ ({len(items)} items)", title_justify="left")
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("received", no_wrap=True)
    table.add_column("source", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for item in items[-limit:]:
        table.add_row(str(item.id), item.received_at, escape(item.source), escape(item.reason))
    out.print(table)


@quarantine_app.command()
def show(
    item_id: Annotated[int, typer.Argument(metavar="ID", help="The quarantine id.")],
    config: Config = None,
    state_dir: StateDir = None,
) -> None:
    """Show one quarantined item: its reason and the input exactly as received."""
    state_dir = state_dir_of(state_dir, config)
    store = _open(state_dir)
    try:
        item = _find(store.quarantined(), item_id)
    finally:
        store.close()
    out = _out()
    out.print(f"[bold]id[/]        {item.id}")
    out.print(f"[bold]received[/]  {item.received_at}")
    out.print(f"[bold]source[/]    {escape(item.source)}")
    out.print(f"[bold]reason[/]    {escape(item.reason)}")
    out.print("[bold]payload[/]")
    typer.echo(item.payload)


@quarantine_app.command()
def replay(
    item_id: Annotated[
        int | None, typer.Argument(metavar="[ID]", help="The item to replay.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every quarantined item.")] = False,
    token_file: TokenFile = None,
    key: KeyFile = None,
    claimed: Claimed = None,
    config: Config = None,
    state_dir: StateDir = None,
    schemas: SchemaDirs = None,
) -> None:
    """Run quarantined input through the gates again; release what is now accepted.

    Takes an operator's credential (--token-file, WARDEN_TOKEN or --key). The gates are
    those of the running Warden: the configuration's redact.fields apply.
    """
    state_dir = state_dir_of(state_dir, config)
    if (item_id is None) == (not all_):
        raise fail("give one quarantine ID, or --all")
    registry = load_registry(schemas)
    if not has_log(state_dir):
        raise fail(f"no Warden state in {state_dir}/ (nothing was ingested there yet)")
    try:
        gate_for(state_dir, "quarantine.replay", (token_file, key, claimed))
        settings = configured(config, state_dir)
    except WardenError as exc:
        raise fail(str(exc)) from None
    store = _open(state_dir)
    try:
        items = store.quarantined()
        chosen = items if all_ else [_find(items, item_id or 0)]
        gate = ingest_gate(store, registry, SystemClock(), settings, state_dir)
        results = replay_quarantined(store, gate, chosen)
    finally:
        store.close()
    out = _out()
    for result in results:
        if result.verdict is ReplayVerdict.STILL_REFUSED:
            out.print(f"{result.quarantine_id}: still refused: {escape(result.reason)}")
        else:
            ids = ", ".join(i[:12] for i in result.event_ids)
            out.print(f"{result.quarantine_id}: {result.verdict.value} ({ids}); released")
    refused = sum(r.verdict is ReplayVerdict.STILL_REFUSED for r in results)
    out.print(
        f"replayed {len(results)}: {len(results) - refused} released, {refused} still refused"
    )
    if refused:
        raise typer.Exit(1)
