"""`warden api`: the HTTP API and web console over a state directory or a shared store. CLI edge.

Register with ``app.command()(api)``. `warden run` serves the same application when
``api.port`` is set in warden.yaml (or ``--api-port`` is given).
"""

from __future__ import annotations

import signal
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from warden.api.context import ApiContext, context_for
from warden.api.server import ApiServer
from warden.cli.options import Config, StateDir, configured, fail, state_dir_of
from warden.config import load_config
from warden.domain.errors import WardenError
from warden.store.location import has_log, open_event_store
from warden.web.app import create_app

if TYPE_CHECKING:
    from types import FrameType

    from warden.ports import EventStore


def api(
    config: Config = None,
    state_dir: StateDir = None,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every one).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8400,
) -> None:
    """Serve the HTTP API and the web console (login with a personal token) until Ctrl-C.

    Every route but /healthz needs a personal token (`warden user add`) whose role allows
    it: viewers read, approvers also approve, admins also change controls. The OpenAPI
    document is at /api/openapi.json; the console at /console.
    """
    console = Console(highlight=False, soft_wrap=True)
    try:
        store, ctx = _open(state_dir, config)
    except WardenError as exc:
        raise fail(str(exc)) from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server = ApiServer(create_app(ctx), ctx, host, port)
    except WardenError as exc:
        store.close()
        raise fail(str(exc)) from None
    console.print(
        f"Warden API and console at {server.url}/console (state in {ctx.state_dir}/);"
        f" OpenAPI at {server.url}/api/openapi.json. Ctrl-C stops."
    )
    try:
        server.serve_forever(stop)
    finally:
        store.close()
    console.print("stopped.")


def _open(given: Path | None, config: Path | None) -> tuple[EventStore, ApiContext]:
    if config is not None:
        settings = load_config(config)
        if given is not None:  # --state-dir wins over the config's, as everywhere
            settings = replace(settings, state_dir=given)
        if not settings.store_dsn and not has_log(settings.state_dir):
            raise WardenError(f"no Warden state in {settings.state_dir}/ (run `warden run` first)")
        store = open_event_store(
            settings.state_dir, dsn=settings.store_dsn, schema=settings.store_schema
        )
        return store, context_for(settings, store)
    state_dir = state_dir_of(given, None)
    if not has_log(state_dir):
        raise WardenError(
            f"no Warden state in {state_dir}/ (run `warden demo` or `warden run` first, or"
            " give -c warden.yaml)"
        )
    found = configured(None, state_dir)
    store = open_event_store(state_dir)
    ctx = ApiContext(store, state_dir, config=found)
    if found is not None:
        ctx.approvals = found.approvals
    return store, ctx
