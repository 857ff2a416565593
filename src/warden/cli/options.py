"""What every command shares: -c/--config, -s/--state-dir, and how an error is printed. CLI edge.

A command given a config uses that config's ``state_dir``; ``--state-dir`` overrides it,
and without either the state is in ``.warden/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from warden.config import load_config
from warden.domain.errors import WardenError

if TYPE_CHECKING:
    from warden.config import WardenConfig

DEFAULT_STATE = Path(".warden")

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        "-s",
        help="Directory holding Warden's state (default: the state_dir of --config, else .warden).",
        show_default=False,
    ),
]
Config = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="The warden.yaml Warden runs with; its state_dir is used unless --state-dir is given.",
        show_default=False,
    ),
]


def state_dir_of(state_dir: Path | None, config: Path | None) -> Path:
    """Where the state is: ``--state-dir``, else the config's ``state_dir``, else .warden.

    Raises:
        typer.Exit: When ``config`` is given but unusable (after printing why).
    """
    if state_dir is not None:
        return state_dir
    if config is not None:
        try:
            return load_config(config).state_dir
        except WardenError as exc:
            raise fail(str(exc)) from None
    return DEFAULT_STATE


def configured(config: Path | None, state_dir: Path) -> WardenConfig | None:
    """The configuration in force: ``config``, the state dir's warden.yaml, or ./warden.yaml.

    None when there is none. Commands that act on a state without running Warden
    (approvals, ingest, quarantine replay) read from it what the running Warden would
    apply: approvers, redaction.
    """
    chosen = config or next(
        (p for p in (state_dir / "warden.yaml", Path("warden.yaml")) if p.is_file()), None
    )
    return None if chosen is None else load_config(chosen)


def error_text(message: str, label: str = "error") -> str:
    """``label: message`` as Rich markup, the message escaped so ``[...]`` stays visible."""
    return f"[bold red]{escape(label)}:[/] {escape(message)}"


def fail(message: str, code: int = 2, label: str = "error") -> typer.Exit:
    """Print ``error: message`` on stderr, examples intact; returns the Exit to raise."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(error_text(message, label))
    return typer.Exit(code)
