"""The ``warden`` command: run, demo, incidents, approve, killswitch, audit. Edge (CLI)."""

from __future__ import annotations

import signal
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from prometheus_client import CollectorRegistry
from rich.console import Console

from warden import operations
from warden.api.context import context_for
from warden.api.server import ApiServer
from warden.assembly import build
from warden.cli.actions_cmd import actions
from warden.cli.api_cmd import api
from warden.cli.audit_cmd import audit_app
from warden.cli.auth import Claimed, KeyFile, TokenFile, approval_settings, check_claim, credential
from warden.cli.config_cmd import config_app
from warden.cli.drill_cmd import drill
from warden.cli.evaluate_cmd import evaluate
from warden.cli.event_cmd import event_app
from warden.cli.helptext import HelpGroup
from warden.cli.ingest_cmd import ingest_app
from warden.cli.lifecycle_cmd import promote, rollback, versions
from warden.cli.options import DEFAULT_STATE, Config, StateDir, error_text, fail, state_dir_of
from warden.cli.policy_cmd import policy_app
from warden.cli.quarantine_cmd import quarantine_app
from warden.cli.replay_cmd import replay
from warden.cli.report_cmd import report
from warden.cli.runbook_cmd import runbook_app
from warden.cli.schema_cmd import schema_app
from warden.cli.shadow_cmd import shadow
from warden.cli.simulate_cmd import simulate
from warden.cli.user_cmd import user_app
from warden.cli.witness_cmd import witness_app
from warden.config import load_config
from warden.demo.fleet import run_demo
from warden.demo.timeline import Timeline, describe, incident_table
from warden.domain import events as ev
from warden.domain.control import AUTONOMY_LEVELS
from warden.domain.errors import WardenError
from warden.domain.ids import incident_stream
from warden.domain.incident import Incident, State
from warden.governance.identity import ApprovalCheck
from warden.runtime import load_incidents
from warden.runtime.approval_links import ApprovalLinks
from warden.runtime.notifications import Notifier, targets_from
from warden.store.location import has_log, open_event_store
from warden.telemetry.metrics import MetricsListener, serve_metrics
from warden.telemetry.tracing import TracingListener, build_tracer_provider
from warden.web.app import create_app

if TYPE_CHECKING:
    from types import FrameType

    from warden.config import WardenConfig
    from warden.ports import EventStore

app = typer.Typer(
    cls=HelpGroup,  # reflows every command's help to the terminal's width
    help=(
        "Warden: governed, agentic remediation. Agents detect faults and propose plans,"
        " Cedar policy and guardrails decide, the executor acts and verifies, and every"
        " decision lands in a tamper-evident audit log.\n\n"
        "Start with `warden demo`; then `warden incidents` and `warden audit verify`."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(audit_app, name="audit")
app.add_typer(config_app, name="config")
app.add_typer(event_app, name="event")
app.add_typer(policy_app, name="policy")
app.add_typer(runbook_app, name="runbook")
app.add_typer(schema_app, name="schema")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(ingest_app, name="ingest")
app.add_typer(user_app, name="user")
app.add_typer(witness_app, name="witness")
console = Console()

_fail = fail


def _open_store(state_dir: Path) -> EventStore:
    if not has_log(state_dir):
        raise _fail(f"no Warden state in {state_dir}/ (run `warden demo` or `warden run` first)")
    return open_event_store(state_dir)


@app.command()
def run(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The warden.yaml to run.", exists=False)
    ] = Path("warden.yaml"),
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
    metrics_port: Annotated[
        int, typer.Option(help="Serve Prometheus /metrics on this port (0: off).", min=0)
    ] = 9464,
    otlp_endpoint: Annotated[
        str | None,
        typer.Option(
            envvar="OTEL_EXPORTER_OTLP_ENDPOINT",
            help="Export one trace per incident by OTLP to this endpoint.",
        ),
    ] = None,
    api_port: Annotated[
        int | None,
        typer.Option(
            help="Serve the HTTP API and web console on this port (0: off; default: api.port"
            " in the config, off when unset).",
            min=0,
            max=65535,
        ),
    ] = None,
    state_dir: StateDir = None,
) -> None:
    """Watch and heal the services declared in a config file until interrupted.

    Probes, alerts and events come in; agents propose, policy decides, the executor acts
    and verifies. Metrics are served on --metrics-port, the API and console on --api-port;
    Ctrl-C (or --duration) stops Warden and the services it started.

    Example: warden run -c warden.yaml

    Then, in another terminal: warden incidents -c warden.yaml
    """
    try:
        settings = load_config(config)
        if state_dir is not None:
            settings = replace(settings, state_dir=state_dir)
        warden = build(settings)
    except WardenError as exc:
        raise _fail(str(exc)) from exc
    try:
        api_server = _start_api(settings, settings.api_port if api_port is None else api_port)
    except WardenError as exc:
        warden.close()
        raise _fail(str(exc)) from exc
    started = datetime.now(UTC)
    registry = CollectorRegistry()
    listener = MetricsListener(
        registry,
        quarantine=warden.store,
        approval_counts=ApprovalCheck(),
        settings=settings.kpi_settings,
        retention=settings.kpi_retention,
    )
    warden.runtime.subscribe(listener)
    server = serve_metrics(registry, "127.0.0.1", metrics_port) if metrics_port else None
    if server is not None:
        console.print(f"metrics at {server.url}", highlight=False)
    tracing_setup = build_tracer_provider(otlp_endpoint)
    if otlp_endpoint:
        console.print(tracing_setup.message, highlight=False)
    tracing = TracingListener(tracing_setup.provider, since=started)
    warden.runtime.subscribe(tracing)
    # Metrics and traces see the whole history; the timeline shows only what happens now.
    warden.runtime.tail()
    warden.runtime.subscribe(Timeline(console, started))
    notifier = _notifier(settings)
    if notifier is not None:  # after the tail: what happened before is not announced again
        warden.runtime.subscribe(notifier)
    stop_at = None if duration is None else started.timestamp() + duration
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    names = ", ".join(s.name for s in settings.services)
    console.print(f"Warden watching {names}; state in {settings.state_dir}/. Ctrl-C stops.")
    try:
        warden.run(
            lambda: stopping or (stop_at is not None and datetime.now(UTC).timestamp() >= stop_at)
        )
    finally:
        if notifier is not None:
            notifier.close()
        tracing.close()
        tracing_setup.provider.shutdown()
        if server is not None:
            server.close()
        if api_server is not None:
            api_server.stop()
            api_server.ctx.store.close()
    console.print("stopped; managed services were stopped too.")


def _notifier(settings: WardenConfig) -> Notifier | None:
    """The notifier of the config's ``notifications`` section; None without one."""
    section = settings.notifications
    if not section:
        return None
    try:
        targets = targets_from(section)
    except WardenError as exc:
        raise _fail(str(exc)) from exc
    names = ", ".join(f"{t.name} ({t.format})" for t in targets)
    console.print(f"notifying {names}", highlight=False)
    return Notifier(
        targets,
        str(section.get("console_url") or ""),
        people=dict(settings.approvals.approvers),
        links=ApprovalLinks(settings.state_dir),
    )


def _start_api(settings: WardenConfig, port: int) -> ApiServer | None:
    """The API and console on ``port`` over their own connection to the store (0: none)."""
    if not port:
        return None
    store = open_event_store(
        settings.state_dir, dsn=settings.store_dsn, schema=settings.store_schema
    )
    ctx = context_for(settings, store)
    try:
        server = ApiServer(create_app(ctx), ctx, settings.api_host, port)
        server.start()
    except (WardenError, RuntimeError) as exc:
        store.close()
        raise WardenError(str(exc)) from exc
    console.print(f"console and API at {server.url}/console", highlight=False)
    return server


@app.command()
def demo(
    duration: Annotated[float, typer.Option(help="Seconds the demo runs.", min=5)] = 15.0,
    crash_after: Annotated[
        float, typer.Option(help="Seconds before the fault is injected.", min=1)
    ] = 4.0,
    victim: Annotated[str, typer.Option(help="Which service crashes.")] = "payments",
    state_dir: StateDir = None,
) -> None:
    """Start gateway -> orders -> payments, crash one, and watch Warden heal it live.

    The services are real processes; --victim crashes after --crash-after seconds and the
    timeline shows detection, the plan, the policy decision and the verified restart. The
    state is kept (default .warden) for `warden incidents`, `warden audit verify` and
    `warden replay` afterwards.

    Example: warden demo --victim orders --duration 20
    """
    state_dir = state_dir_of(state_dir, None)
    if crash_after >= duration - 3:
        raise _fail("--crash-after must leave at least 3 s before --duration ends")
    try:
        code = run_demo(console, state_dir, duration, crash_after, victim)
    except (WardenError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    raise typer.Exit(code)


@app.command()
def incidents(
    incident_id: Annotated[
        str | None, typer.Argument(help="Show this incident's timeline (a prefix is enough).")
    ] = None,
    config: Config = None,
    state_dir: StateDir = None,
) -> None:
    """List incidents, or show one incident's full timeline, with what to do next."""
    state_dir = state_dir_of(state_dir, config)
    store = _open_store(state_dir)
    try:
        try:
            found = load_incidents(store)
        except WardenError as exc:
            raise _fail(f"{exc} (check the store: warden audit verify --store)") from None
        if incident_id is None:
            if not found:
                console.print(f"no incidents in {state_dir}/ yet")
                return
            console.print(incident_table(list(found.values()), f"Incidents in {state_dir}/"))
            _print_next(list(found.values()), state_dir, config)
            return
        matches = [i for i in found if i.startswith(incident_id)]
        if len(matches) != 1:
            raise _fail(f"{len(matches)} incidents match {incident_id!r}; give more characters")
        events = store.read_stream(incident_stream(matches[0]))
        timeline = Timeline(console, events[0].moment)
        for event in events:
            timeline(event)
        _print_next([found[matches[0]]], state_dir, config)
    finally:
        store.close()


def _print_next(found: list[Incident], state_dir: Path, config: Path | None) -> None:
    """What to do next: the exact approve and reject lines for each step awaiting approval."""
    where = f" -c {config}" if config is not None else ""
    if state_dir != DEFAULT_STATE and config is None:
        where = f" -s {state_dir}"
    waiting = [i for i in found if i.state is State.AWAITING_APPROVAL]
    for item in waiting:
        step = item.plan.steps[item.next_step] if item.plan is not None else None
        what = f"{step.action} on {step.target}" if step is not None else "a step"
        hash_ = item.step_hashes[item.next_step]
        console.print(
            f"\nnext: incident {item.id[:12]} waits for your approval of {what}:\n"
            f"  warden approve {item.id} --step-hash {hash_} --key PATH{where}\n"
            f"  (or: warden reject {item.id} --step-hash {hash_} --key PATH{where})",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
    if not waiting and len(found) > 1:
        console.print(
            f"\nnext: one incident's timeline: warden incidents {found[-1].id[:12]}{where}",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )


# The options of approve and reject, which differ only in the decision they record.
DecidedIncident = Annotated[str, typer.Argument(help="The incident (a prefix is enough).")]
StepHash = Annotated[
    str | None,
    typer.Option(help="The exact proposal hash you decide on (shown by incidents)."),
]


@app.command()
def approve(
    incident_id: DecidedIncident,
    key: KeyFile = None,
    token_file: TokenFile = None,
    step_hash: StepHash = None,
    claimed: Claimed = None,
    config: Config = None,
    state_dir: StateDir = None,
) -> None:
    """Approve the step an incident is waiting on, signed with your key; bound to its hash.

    A token is not enough: an approval is signed, so the audit log alone proves who gave it.
    `warden incidents` prints the exact line for each step that waits, with its hash.

    Example: warden approve 3f2a9c --step-hash 8d41e0... --key ~/.ssh/id_ed25519
    """
    state = state_dir_of(state_dir, config)
    _decide(incident_id, (key, token_file), step_hash, claimed, config, state, "approve")


@app.command()
def reject(
    incident_id: DecidedIncident,
    key: KeyFile = None,
    token_file: TokenFile = None,
    step_hash: StepHash = None,
    claimed: Claimed = None,
    config: Config = None,
    state_dir: StateDir = None,
) -> None:
    """Reject the step an incident is waiting on, signed with your key: nothing runs."""
    state = state_dir_of(state_dir, config)
    _decide(incident_id, (key, token_file), step_hash, claimed, config, state, "reject")


def _decide(
    incident_id: str,
    keys: tuple[Path | None, Path | None],
    step_hash: str | None,
    claimed: str | None,
    config: Path | None,
    state_dir: Path,
    decision: str,
) -> None:
    store = _open_store(state_dir)
    try:
        key, token_file = keys
        if key is None:
            token = "a token is not enough: " if token_file else ""
            raise _fail(
                f"to {decision}, {token}sign with your key: --key PATH (the Ed25519 private"
                " key registered for you with `warden user add --public-key`)"
            )
        given = credential(None, key)
        assert given.key is not None
        user = operations.authenticate(store, given, decision)
        check_claim(user, claimed)
        settings = approval_settings(config, state_dir)
        event = operations.approve(
            store, incident_id, given.key, step_hash, decision=decision, settings=settings
        )
    except WardenError as exc:
        raise _fail(str(exc)) from exc
    finally:
        store.close()
    done = "approved" if decision == "approve" else "rejected"
    console.print(
        f"{done} proposal {event.data['step_hash'][:12]} of {event.stream} as {user.name}"
        f" (signed with {event.data['key']})",
        highlight=False,
    )


@app.command()
def killswitch(
    action: Annotated[str, typer.Argument(help="engage or release")],
    token_file: TokenFile = None,
    key: KeyFile = None,
    claimed: Claimed = None,
    reason: Annotated[str, typer.Option(help="Why (shown with every denied step).")] = "",
    domain: Annotated[
        str, typer.Option(help="Only this domain (e.g. payments); default: everything.")
    ] = "",
    config: Config = None,
    state_dir: StateDir = None,
) -> None:
    """Stop all actions at once (engage), or allow them again (release).

    The switch holds whatever the policy says, also for steps already allowed. An operator
    may engage it; releasing it takes an admin.
    """
    if action not in ("engage", "release"):
        raise _fail("say `engage` or `release`")
    type_ = ev.KILL_SWITCH_ENGAGED if action == "engage" else ev.KILL_SWITCH_RELEASED
    data = {"reason": reason, "domain": domain}
    _control(state_dir_of(state_dir, config), type_, data, (token_file, key, claimed))


@app.command()
def autonomy(
    level: Annotated[str, typer.Argument(help="observe | recommend | supervised | autonomous")],
    token_file: TokenFile = None,
    key: KeyFile = None,
    claimed: Claimed = None,
    reason: Annotated[str, typer.Option(help="Why; kept in the audit log.")] = "",
    environment: Annotated[str, typer.Option(help="Environment, or * for all.")] = "*",
    domain: Annotated[str, typer.Option(help="Domain, or * for all.")] = "*",
    config: Config = None,
    state_dir: StateDir = None,
) -> None:
    """Change the autonomy level of an environment and domain (an audited event; admins).

    observe: detect and record; recommend: propose, humans act; supervised: act after
    approval; autonomous: act within guardrails. The most specific rule wins.
    """
    if level not in AUTONOMY_LEVELS:
        raise _fail(f"{level!r} is not one of {', '.join(AUTONOMY_LEVELS)}")
    data = {"level": level, "environment": environment, "domain": domain, "reason": reason}
    _control(state_dir_of(state_dir, config), ev.AUTONOMY_CHANGED, data, (token_file, key, claimed))


def _control(
    state_dir: Path,
    type_: str,
    data: dict[str, str],
    who: tuple[Path | None, Path | None, str | None],
) -> None:
    store = _open_store(state_dir)
    try:
        given = credential(who[0], who[1])
        event = operations.operate(store, given, type_, data, datetime.now(UTC), claimed=who[2])
    except WardenError as exc:
        raise _fail(str(exc)) from exc
    finally:
        store.close()
    shown = describe(event)
    console.print(shown[1] if shown else type_, highlight=False)


# After the commands defined here, so `warden --help` lists run and demo first.
app.command()(actions)
app.command()(api)
app.command()(report)
app.command()(replay)
app.command()(shadow)
app.command()(versions)
app.command()(promote)
app.command()(rollback)
app.command()(simulate)
app.command()(drill)
app.command()(evaluate)


def main() -> None:
    """Entry point: a fault of input or environment is one line and exit code 2."""
    try:
        app()
    except WardenError as exc:  # the one place: commands let these through
        message = " ".join(str(exc).split())
        Console(stderr=True, highlight=False, soft_wrap=True).print(error_text(message))
        raise SystemExit(2) from None
