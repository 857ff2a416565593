"""``warden event original ID``: an event's unredacted original, for an admin. Edge (CLI).

With ``redact: {keep_original: true}`` the event log holds only the redacted form of
each event; what redaction replaced is sealed in ``<state>/originals`` with a key kept
outside the state directory (see :mod:`warden.ingest.originals`). Reading it takes an
admin's credential, and the read is audited (who, which event; never the values).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from warden import operations
from warden.cli.auth import Claimed, KeyFile, TokenFile, credential
from warden.cli.options import Config, StateDir, fail, state_dir_of
from warden.config import load_config
from warden.domain.errors import ConfigError, ValidationError
from warden.ingest.originals import OriginalsStore, default_key_path
from warden.store.location import has_log, open_event_store

event_app = typer.Typer(
    help="Events in the log: read the sealed original of a redacted one (admins only).",
    no_args_is_help=True,
)
console = Console()


@event_app.command("original")
def original(
    event_id: Annotated[str, typer.Argument(metavar="ID", help="The id of the stored event.")],
    token_file: TokenFile = None,
    key: KeyFile = None,
    claimed: Claimed = None,
    originals_key: Annotated[
        Path | None,
        typer.Option(
            "--originals-key",
            help=f"The originals key (default: as configured, else {default_key_path()}).",
            dir_okay=False,
        ),
    ] = None,
    config: Config = None,
    state_dir: StateDir = None,
) -> None:
    """Print the unredacted data and extensions of event ID, as JSON (admins only).

    Example: warden event original 3f2a... --token-file ~/.warden-token -s .warden
    """
    state_dir = state_dir_of(state_dir, config)
    if originals_key is None and config is not None:
        originals_key = load_config(config).redact_key_path
    if not has_log(state_dir):
        raise fail(f"no Warden state in {state_dir}/")
    store = open_event_store(state_dir)
    originals = None
    try:
        originals = OriginalsStore(state_dir, originals_key, create=False)
        found = operations.read_original(
            store, originals, credential(token_file, key), event_id, datetime.now(UTC), claimed
        )
    except (ValidationError, ConfigError) as exc:
        raise fail(str(exc)) from exc
    finally:
        if originals is not None:
            originals.close()
        store.close()
    typer.echo(json.dumps(found, indent=2, sort_keys=True, ensure_ascii=False))
