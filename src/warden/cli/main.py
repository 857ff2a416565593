"""The ``warden`` command: run, demo, incidents, approve, killswitch, audit. Edge (CLI)."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from warden.app import build, store_path
from warden.cli.audit_cmd import audit_app
from warden.config import load_config
from warden.demo.fleet import run_demo
from warden.demo.timeline import Timeline, describe, incident_table
from warden.domain import events as ev
from warden.domain import incident as incident_fold
from warden.domain.errors import InvalidTransition, WardenError
from warden.domain.ids import incident_stream
from warden.domain.incident import State
from warden.runtime import load_incidents
from warden.store.sqlite import SQLiteEventStore

if TYPE_CHECKING:
    from types import FrameType

app = typer.Typer(
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
console = Console()

StateDir = Annotated[
    Path, typer.Option("--state-dir", "-s", help="Directory holding Warden's state.")
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/bold red] {message}", highlight=False)
    return typer.Exit(code)


def _open_store(state_dir: Path) -> SQLiteEventStore:
    path = store_path(state_dir)
    if not path.exists():
        raise _fail(f"no Warden state in {state_dir}/ (run `warden demo` or `warden run` first)")
    return SQLiteEventStore(path)


@app.command()
def run(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The warden.yaml to run.", exists=False)
    ] = Path("warden.yaml"),
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
) -> None:
    """Watch and heal the services declared in a config file until interrupted."""
    try:
        settings = load_config(config)
        warden = build(settings)
    except WardenError as exc:
        raise _fail(str(exc)) from exc
    started = datetime.now(UTC)
    warden.runtime.subscribe(Timeline(console, started))
    stop_at = None if duration is None else started.timestamp() + duration
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    names = ", ".join(s.name for s in settings.services)
    console.print(f"Warden watching {names}; state in {settings.state_dir}/. Ctrl-C stops.")
    warden.run(
        lambda: stopping or (stop_at is not None and datetime.now(UTC).timestamp() >= stop_at)
    )
    console.print("stopped; managed services were stopped too.")


@app.command()
def demo(
    duration: Annotated[float, typer.Option(help="Seconds the demo runs.", min=5)] = 15.0,
    crash_after: Annotated[
        float, typer.Option(help="Seconds before the fault is injected.", min=1)
    ] = 4.0,
    victim: Annotated[str, typer.Option(help="Which service crashes.")] = "payments",
    state_dir: StateDir = Path(".warden"),
) -> None:
    """Start gateway -> orders -> payments, crash one, and watch Warden heal it live."""
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
    state_dir: StateDir = Path(".warden"),
) -> None:
    """List incidents, or show one incident's full timeline."""
    store = _open_store(state_dir)
    try:
        found = load_incidents(store)
        if incident_id is None:
            if not found:
                console.print(f"no incidents in {state_dir}/ yet")
                return
            console.print(incident_table(list(found.values()), f"Incidents in {state_dir}/"))
            return
        matches = [i for i in found if i.startswith(incident_id)]
        if len(matches) != 1:
            raise _fail(f"{len(matches)} incidents match {incident_id!r}; give more characters")
        events = store.read_stream(incident_stream(matches[0]))
        timeline = Timeline(console, events[0].moment)
        for event in events:
            timeline(event)
    finally:
        store.close()


@app.command()
def approve(
    incident_id: Annotated[str, typer.Argument(help="The incident (a prefix is enough).")],
    approver: Annotated[str, typer.Option("--as", help="Who approves (your name).")],
    step_hash: Annotated[
        str | None, typer.Option(help="The exact proposal hash you approve (shown by incidents).")
    ] = None,
    state_dir: StateDir = Path(".warden"),
) -> None:
    """Approve the step an incident is waiting on; bound to that step's exact hash."""
    store = _open_store(state_dir)
    try:
        found = load_incidents(store)
        matches = [i for i in found.values() if i.id.startswith(incident_id)]
        if len(matches) != 1:
            raise _fail(f"{len(matches)} incidents match {incident_id!r}")
        current = matches[0]
        if current.state is not State.AWAITING_APPROVAL:
            raise _fail(
                f"incident {current.id[:12]} is {current.state.value}, not awaiting approval"
            )
        awaiting = current.step_hashes[current.next_step]
        if step_hash is not None and step_hash != awaiting:
            raise _fail(f"the incident awaits approval of {awaiting}, not {step_hash}")
        event = ev.derived_event(
            ev.APPROVAL_GRANTED,
            incident_stream(current.id),
            {"step_hash": awaiting, "approver": approver},
            ev.format_time(datetime.now(UTC)),
            key=f"{awaiting}:{approver}",
            subject=current.service,
            correlation_id=current.correlation_id,
            traceparent=current.traceparent,
        )
        try:
            incident_fold.apply(current, event)
        except InvalidTransition as exc:
            raise _fail(str(exc)) from exc
        store.append(incident_stream(current.id), [event], expected_version=current.version)
        console.print(f"approved step {awaiting[:12]} of incident {current.id[:12]} as {approver}")
    finally:
        store.close()


@app.command()
def killswitch(
    action: Annotated[str, typer.Argument(help="engage or release")],
    by: Annotated[str, typer.Option("--as", help="Who flips the switch.")],
    reason: Annotated[str, typer.Option(help="Why (shown with every denied step).")] = "",
    state_dir: StateDir = Path(".warden"),
) -> None:
    """Stop all actions at once (engage), or allow them again (release)."""
    if action not in ("engage", "release"):
        raise _fail("say `engage` or `release`")
    state_dir.mkdir(parents=True, exist_ok=True)
    store = SQLiteEventStore(store_path(state_dir))
    try:
        now = ev.format_time(datetime.now(UTC))
        type_ = ev.KILL_SWITCH_ENGAGED if action == "engage" else ev.KILL_SWITCH_RELEASED
        event = ev.derived_event(
            type_, ev.CONTROL_STREAM, {"by": by, "reason": reason}, now, key=now
        )
        store.append(ev.CONTROL_STREAM, [event])
        shown = describe(event)
        console.print(shown[1] if shown else action)
    finally:
        store.close()


def main() -> None:
    """Entry point."""
    app()
