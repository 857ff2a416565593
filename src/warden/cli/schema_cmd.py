"""`warden schema ...`: list and show event schemas, check a new version's compatibility. CLI edge.

Exit status: 0 on success, 1 when a checked schema breaks compatibility, 2 when an
argument or file is unusable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from warden.cli.options import error_text
from warden.cli.options import fail as shared_fail
from warden.domain.errors import ConfigError, ValidationError
from warden.ingest.registry import SchemaRegistry, parse_schema_name, read_schema

schema_app = typer.Typer(
    help="Versioned event schemas: list them, show one, check a new version is compatible.",
    no_args_is_help=True,
)

SchemaDirs = Annotated[
    list[Path] | None,
    typer.Option(
        "--schemas",
        help="A directory of extra <type>@<version>.json schemas (repeatable).",
        file_okay=False,
    ),
]


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr; returns the Exit to raise."""
    return shared_fail(message, code)


def load_registry(schemas: list[Path] | None) -> SchemaRegistry:
    """The built-in schemas plus those of ``schemas``; exits 2 with the reason on error."""
    try:
        return SchemaRegistry(list(schemas or []))
    except ConfigError as exc:
        raise fail(str(exc)) from None


@schema_app.command("list")
def list_(schemas: SchemaDirs = None) -> None:
    """List every event type with its versions and title."""
    registry = load_registry(schemas)
    table = Table(title="Event schemas", title_justify="left")
    table.add_column("type", style="bold", no_wrap=True)
    table.add_column("versions", no_wrap=True)
    table.add_column("title", overflow="fold")
    for type_ in registry.types():
        versions = registry.versions(type_)
        title = str(registry.schema(type_).get("title", ""))
        table.add_row(type_, ", ".join(str(v) for v in versions), escape(title))
    _out().print(table)


@schema_app.command()
def show(
    type_: Annotated[str, typer.Argument(metavar="TYPE", help="The event type.")],
    version: Annotated[
        int | None, typer.Option("--version", "-v", help="Which version (default: latest).")
    ] = None,
    schemas: SchemaDirs = None,
) -> None:
    """Print one schema as JSON (the latest version unless --version)."""
    registry = load_registry(schemas)
    try:
        schema = registry.schema(type_, version)
    except ValidationError as exc:
        raise fail(str(exc)) from None
    typer.echo(json.dumps(schema, indent=2, sort_keys=False))


@schema_app.command()
def check(
    file: Annotated[
        Path,
        typer.Argument(
            help="A schema file named <type>@<version>.json.", exists=True, dir_okay=False
        ),
    ],
    schemas: SchemaDirs = None,
) -> None:
    """Check a new schema version: valid JSON Schema, and backward compatible.

    Compares it with the closest registered older version (and the closest newer one)
    and prints the differences; exits 1 on a breaking change.
    """
    registry = load_registry(schemas)
    try:
        key = parse_schema_name(file)
        schema = read_schema(file)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    out = _out()
    try:
        known = (
            registry.schema(key.type, key.version)
            if key.version in registry.versions(key.type)
            else None
        )
        if known is not None and known != schema:
            raise fail(
                f"{key} is registered already with another schema; a published version never"
                f" changes: name the file {key.type}@{registry.versions(key.type)[-1] + 1}.json",
                1,
            )
        report = registry.check_compatible(key.type, key.version, schema)
    except ValidationError as exc:
        _err().print(error_text(str(exc), "incompatible"))
        raise typer.Exit(1) from None
    if known is not None:
        out.print(f"{key}: identical to the registered version")
    elif report is None:
        out.print(f"{key}: valid; the first version of {key.type}")
    else:
        out.print(escape(report.describe()))
