"""`warden ingest ...`: replay JSON-lines captures, or serve the webhook alone. CLI edge.

Both store into the state directory's event store through the quality gates; refused
input lands in quarantine (see `warden quarantine`).
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from warden.assembly import ingest_gate
from warden.cli.options import Config, StateDir, configured, state_dir_of
from warden.cli.schema_cmd import SchemaDirs, fail, load_registry
from warden.domain.errors import ConfigError, WardenError
from warden.ingest.auth import SenderAuth
from warden.ingest.cloudevents import GenericRoute
from warden.ingest.jsonl import ingest_jsonl
from warden.ingest.pipeline import Pipeline
from warden.ingest.senders import Sender, hmac_key
from warden.ingest.webhook_server import WebhookSource
from warden.ports import SystemClock
from warden.store.location import open_event_store

if TYPE_CHECKING:
    from types import FrameType

    from warden.ingest.pipeline import Tally
    from warden.ingest.webhook_server import WebhookServer
    from warden.ports import EventStore

ingest_app = typer.Typer(
    help="Feed events in: replay a JSON-lines capture, or run the webhook server alone.",
    no_args_is_help=True,
)

TOKEN_ENV = "WARDEN_WEBHOOK_TOKEN"
SECRET_ENV = "WARDEN_WEBHOOK_SECRET"
PASSWORD_ENV = "WARDEN_WEBHOOK_PASSWORD"


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _summary(tally: Tally) -> str:
    return (
        f"{tally.accepted} accepted, {tally.duplicate} duplicate, {tally.quarantined} quarantined"
    )


def _pipeline(
    state_dir: Path, config: Path | None, schemas: list[Path] | None
) -> tuple[EventStore, Pipeline]:
    """The store and the gates of the running Warden (its redact.fields included)."""
    registry = load_registry(schemas)
    try:
        settings = configured(config, state_dir)
    except WardenError as exc:
        raise fail(str(exc)) from None
    store = open_event_store(state_dir)
    return store, Pipeline(ingest_gate(store, registry, SystemClock(), settings, state_dir))


def parse_route(text: str) -> tuple[str, GenericRoute]:
    """Parse ``NAME=TYPE[@VERSION][:SUBJECT_KEY]``, e.g. ``deploys=acme.deploy.done@2:service``.

    Raises:
        ConfigError: When the text does not follow the pattern.
    """
    name, sep, spec = text.partition("=")
    spec, _, subject_key = spec.partition(":")
    type_, _, version = spec.partition("@")
    if not sep or not name or not type_ or (version and not version.isdigit()):
        raise ConfigError(
            f"--route {text!r}: write NAME=TYPE[@VERSION][:SUBJECT_KEY],"
            " e.g. deploys=acme.deploy.finished@1:service"
        )
    return name, GenericRoute(type_, int(version or 1), subject_key)


@ingest_app.command()
def jsonl(
    file: Annotated[
        str, typer.Argument(metavar="FILE|-", help="A JSON-lines file, or - for stdin.")
    ],
    config: Config = None,
    state_dir: StateDir = None,
    schemas: SchemaDirs = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar for files.")] = True,
) -> None:
    """Replay CloudEvents JSON lines (one event per line) through the gates."""
    state_dir = state_dir_of(state_dir, config)
    if file != "-" and not Path(file).is_file():
        raise fail(f"no such file: {file}")
    store, pipeline = _pipeline(state_dir, config, schemas)
    try:
        tally = ingest_jsonl(file, pipeline, console=_err() if progress else None)
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc}") from None
    finally:
        store.close()
    typer.echo(f"{file}: {_summary(tally)}")
    if tally.quarantined:
        _err().print(f"see the reasons with `warden quarantine list --state-dir {state_dir}`")


def _auth(
    secret: str, token: str, basic_user: str, granted: frozenset[str], *, insecure: bool
) -> SenderAuth:
    """The senders of ``warden ingest serve``: an hmac secret, a token, a user, or anyone."""
    found = []
    if basic_user:
        password = os.environ.get(PASSWORD_ENV, "")
        if not password or ":" in basic_user:
            raise ConfigError(
                f"ingest serve: --basic-user needs a user name without ':' and its password"
                f" in {PASSWORD_ENV}"
            )
        found.append(
            Sender(basic_user, "basic", password.encode(), basic_user, allow_types=granted)
        )
    if secret:
        found.append(Sender("hmac", "hmac", hmac_key(secret, "--secret"), allow_types=granted))
    if token:
        found.append(Sender("token", "bearer", token.encode("utf-8"), allow_types=granted))
    if not found and not insecure:
        raise ConfigError(
            f"ingest serve: nobody could send; set {TOKEN_ENV} (a bearer token) or"
            f" {SECRET_ENV} (a whsec_ secret for Standard Webhooks signatures), or pass --insecure"
        )
    return SenderAuth(found, insecure=insecure, anonymous_allow_types=granted)


@ingest_app.command()
def serve(
    port: Annotated[int, typer.Option(help="TCP port to listen on.", min=0, max=65535)] = 8088,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    config: Config = None,
    state_dir: StateDir = None,
    schemas: SchemaDirs = None,
    token: Annotated[
        str,
        typer.Option(
            envvar=TOKEN_ENV,
            help=f"Require this bearer token on every POST (better: set {TOKEN_ENV}).",
            show_default=False,
        ),
    ] = "",
    secret: Annotated[
        str,
        typer.Option(
            envvar=SECRET_ENV,
            help="Require a Standard Webhooks signature made with this whsec_ secret"
            f" (better: set {SECRET_ENV}).",
            show_default=False,
        ),
    ] = "",
    basic_user: Annotated[
        str,
        typer.Option(help=f"Require basic auth as this user; the password is in {PASSWORD_ENV}."),
    ] = "",
    allow_type: Annotated[
        list[str] | None,
        typer.Option(
            help="A Warden event type (warden.*) senders may send, e.g."
            " warden.deploy.completed (repeatable); others are quarantined.",
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure", help="Take requests without credentials (not for a shared network)."
        ),
    ] = False,
    header_timeout: Annotated[
        float, typer.Option(help="Seconds a request head may take before it is cut.", min=0.1)
    ] = 10.0,
    body_timeout: Annotated[
        float, typer.Option(help="Seconds a request body may take before it is cut.", min=0.1)
    ] = 30.0,
    route: Annotated[
        list[str] | None,
        typer.Option(
            help="A generic JSON route NAME=TYPE[@VERSION][:SUBJECT_KEY] (repeatable);"
            " default: default=warden.webhook.received."
        ),
    ] = None,
    queue_size: Annotated[
        int, typer.Option(help="Requests that may wait for the store before 429.", min=1)
    ] = 64,
    max_in_flight: Annotated[
        int,
        typer.Option(
            help="Requests served at once (their bodies are in memory); more get 503.", min=1
        ),
    ] = 256,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
) -> None:
    """Serve the webhook endpoints alone, storing into the state directory.

    POST /v1/events (CloudEvents), /v1/alertmanager (Alertmanager v4),
    /v1/json/<route> (generic JSON); GET /healthz. Every POST must authenticate: a bearer
    token, or a Standard Webhooks signature (webhook-id, webhook-timestamp,
    webhook-signature), unless --insecure.
    """
    state_dir = state_dir_of(state_dir, config)
    granted = frozenset(allow_type or [])
    try:
        routes = dict(parse_route(r) for r in route) if route else None
        auth = _auth(secret, token, basic_user, granted, insecure=insecure)
    except ConfigError as exc:
        raise fail(str(exc).replace("sources.webhook", "ingest serve")) from None
    store, pipeline = _pipeline(state_dir, config, schemas)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def on_ready(server: WebhookServer) -> None:
        who = f"senders: {auth.describe()}"
        _err().print(
            f"webhook on {server.url} ({escape(who)}); storing into {state_dir}/. Ctrl-C stops."
        )
        if insecure:
            _err().print(
                "[yellow]warning:[/yellow] --insecure: anyone who can reach the port can send"
            )
        if duration is not None:
            timer = threading.Timer(duration, stop.set)
            timer.daemon = True
            timer.start()

    previous = [signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)]
    source = WebhookSource(
        host,
        port,
        auth=auth,
        routes=routes,
        capacity=queue_size,
        max_in_flight=max_in_flight,
        header_timeout_s=header_timeout,
        body_timeout_s=body_timeout,
        on_ready=on_ready,
    )
    try:
        tally = source.run(pipeline, stop)
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc}") from None
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
        store.close()
    _err().print(f"stopped: {escape(_summary(tally))}")
