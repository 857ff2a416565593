"""`warden drill`: real faults in a real fleet while Warden runs, with measured MTTR. CLI edge.

Register with ``app.command()(drill)``. Exits 0 when every drill passed, 1 when one did not
recover within its bound or Warden acted unsafely, 2 on bad input or a fleet that never
reached its steady state.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from warden.demo.drill_faults import FAULTS
from warden.demo.drill_session import run_drills
from warden.domain.errors import WardenError

if TYPE_CHECKING:
    from types import FrameType

_FAULT_HELP = "; ".join(f"{f.name}: {f.description}" for f in FAULTS.values())


def drill(
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help=f"Run only this fault (repeatable). Faults: {_FAULT_HELP}."),
    ] = None,
    repeat: Annotated[int, typer.Option(help="Run every fault this many times.", min=1)] = 1,
    autonomy: Annotated[
        str,
        typer.Option(
            help="autonomous: Warden must remediate; supervised: it must ask for approval."
        ),
    ] = "autonomous",
    builtin_policies: Annotated[
        bool,
        typer.Option(
            "--builtin-policies",
            help="Decide with Warden's built-in bundle (medium-risk actions then need an"
            " approval, which the drill asserts) instead of the drill bundle.",
        ),
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the results as JSON to this file.")
    ] = None,
    serve: Annotated[
        float | None,
        typer.Option(
            help="Inject nothing: keep the fleet up under Warden for this many seconds"
            " (fleet.json in the state directory lists its URLs, for Chaos Toolkit).",
            min=1,
        ),
    ] = None,
    attach: Annotated[
        bool,
        typer.Option(
            "--attach",
            help="Drill the fleet a running `warden drill --serve` keeps in --state-dir,"
            " reading Warden's events from its store, instead of starting one.",
        ),
    ] = False,
    state_dir: Annotated[
        Path, typer.Option("--state-dir", "-s", help="Directory for the drill's state.")
    ] = Path(".warden-drill"),
) -> None:
    """Inject real faults into a fleet Warden runs, and measure how fast it recovers.

    Starts gateway -> orders -> payments -> bank (bank is an outside dependency Warden
    watches but cannot restart) and producer -> processor -> sink (a pipeline over files),
    then per fault: waits for the steady state, injects the fault into the real process,
    and times the recovery with its own probe and from Warden's event history.
    Exit 1 when a drill fails. docs/drills.md explains each fault and the figures.
    """
    console = Console()
    names = only or list(FAULTS)
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        console.print(
            f"[bold red]error:[/bold red] unknown fault {escape(unknown[0])!r}"
            f" (known: {', '.join(FAULTS)})",
            highlight=False,
        )
        raise typer.Exit(2)
    if attach and serve is not None:
        console.print("[bold red]error:[/bold red] --attach drills a served fleet; drop --serve")
        raise typer.Exit(2)
    if autonomy not in ("autonomous", "supervised"):
        console.print("[bold red]error:[/bold red] --autonomy must be autonomous or supervised")
        raise typer.Exit(2)

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        code = run_drills(
            console,
            state_dir,
            names,
            repeat=repeat,
            autonomy=autonomy,
            builtin_policies=builtin_policies,
            json_path=json_out,
            serve_s=serve,
            attach=attach,
        )
    except KeyboardInterrupt:
        # With --serve, a signal is how the fleet is meant to stop.
        console.print(
            "stopped; the fleet was stopped too"
            if serve
            else "[yellow]interrupted; the fleet was stopped"
        )
        code = 0 if serve else 1
    except WardenError as exc:
        console.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False)
        code = 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise typer.Exit(code)
