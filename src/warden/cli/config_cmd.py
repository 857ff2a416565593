"""`warden config ...`: print the JSON Schema of warden.yaml, check a file against it. CLI edge.

Exit status: 0 when the file is valid, 2 when it is not (every error listed, one per line).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from warden.cli.options import error_text
from warden.config import load_config
from warden.domain.errors import ConfigError
from warden.runbooks.loader import load_runbooks

config_app = typer.Typer(
    help="warden.yaml: print its JSON Schema for editors, check a file.",
    no_args_is_help=True,
)


@config_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of warden.yaml (e.g. for yaml-language-server)."""
    from warden.config_schema import json_schema

    typer.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


@config_app.command("check")
def check(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The warden.yaml to check.")
    ] = Path("warden.yaml"),
) -> None:
    """Check a configuration file (and its runbooks): a summary, or every error with its line."""
    try:
        settings = load_config(config)
        runbooks = (
            f", runbooks: {len(load_runbooks(settings.runbooks_dir).runbooks)}"
            if settings.runbooks_dir is not None
            else ""
        )
    except ConfigError as exc:
        err = Console(stderr=True, highlight=False, soft_wrap=True)
        for line in str(exc).splitlines():
            err.print(error_text(line.removeprefix("config error: "), "config error"))
        raise typer.Exit(2) from None
    actions = len(settings.adapters.get("actions") or {})
    sources = ", ".join(sorted(settings.sources)) or "none"
    model = "on" if settings.model and settings.model.get("enabled", True) else "off"
    Console(highlight=False, soft_wrap=True).print(
        escape(
            f"{config}: valid; {len(settings.services)} services, {actions} configured actions,"
            f" sources: {sources}, model agent: {model}, autonomy: {settings.autonomy}" + runbooks
        )
    )
