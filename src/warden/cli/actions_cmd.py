"""`warden actions`: the action catalog and its contract (risk, parameters, undo). CLI edge."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from warden.domain.catalog import Catalog

if TYPE_CHECKING:
    from warden.domain.catalog import ActionSpec


def describe_params(schema: dict[str, Any]) -> str:
    """The parameters of an action's JSON Schema as ``name (type, required)``; "none" if none."""
    properties: dict[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    parts = []
    for name, spec in properties.items():
        kind = spec.get("type", "any") if isinstance(spec, dict) else "any"
        parts.append(f"{name} ({kind}, {'required' if name in required else 'optional'})")
    return ", ".join(parts) or "none"


def _as_dict(spec: ActionSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "description": spec.description,
        "risk": spec.risk.value,
        "idempotent": spec.idempotent,
        "timeout_s": spec.timeout_s,
        "max_attempts": spec.max_attempts,
        "params_schema": spec.params_schema,
        "verification": spec.verification,
        "compensation": spec.compensation,
        "undo_needs": list(spec.undo_needs),
    }


def actions(
    as_json: Annotated[bool, typer.Option("--json", help="Print the catalog as JSON.")] = False,
) -> None:
    """List every action Warden may run: risk, parameters, verification and compensation.

    Nothing outside this catalog ever runs; a plan naming anything else is refused. Policy
    and guardrails decide which of these may run where (see `warden policy --help`).
    """
    catalog = Catalog()
    specs = [spec for name in catalog.names() if (spec := catalog.get(name)) is not None]
    if as_json:
        typer.echo(json.dumps([_as_dict(s) for s in specs], indent=2))
        return
    table = Table(title=f"Action catalog ({len(specs)} actions)", title_justify="left")
    for column in ("action", "risk", "parameters", "verified by", "undone by", "what it does"):
        table.add_column(column, overflow="fold")
    for spec in specs:
        undo = spec.compensation or "-"
        if spec.undo_needs:
            undo += f" (needs {', '.join(spec.undo_needs)} from the run)"
        table.add_row(
            spec.name,
            spec.risk.value,
            escape(describe_params(spec.params_schema)),
            spec.verification,
            escape(undo),
            escape(spec.description),
        )
    Console(highlight=False).print(table)
