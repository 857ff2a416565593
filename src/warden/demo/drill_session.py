"""Starts the drill fleet under Warden (or attaches to a running one) and runs drills. Edge (demo).

Started: Warden runs in this process on a thread, the drill reads its events as the loop
folds them. Attached (``--attach``): the fleet of a running ``warden drill --serve`` is
found through its ``fleet.json`` and Warden's events are read from its event store.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING

import yaml
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from warden.assembly import build
from warden.config import load_config
from warden.demo.drill import DrillRunner, Events, expected_outcome, results_table
from warden.demo.drill_faults import FAULTS, post_json
from warden.demo.drill_fleet import DRILL_TOKEN_ENV, FLEET_FILE, DrillFleet
from warden.demo.fleet import Traffic
from warden.domain.errors import ConfigError
from warden.store.location import has_log, open_event_store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from rich.console import Console

    from warden.assembly import Warden
    from warden.demo.drill import DrillResult

__all__ = ["run_drills"]


def run_drills(
    console: Console,
    state_dir: Path,
    faults: list[str],
    *,
    repeat: int = 1,
    autonomy: str = "autonomous",
    builtin_policies: bool = False,
    json_path: Path | None = None,
    serve_s: float | None = None,
    attach: bool = False,
) -> int:
    """Run the drills (or, with ``serve_s``, only keep the fleet up); returns the exit code.

    Raises:
        ConfigError: ``attach`` and no running drill fleet in ``state_dir``.
    """
    results: list[DrillResult] = []
    session = _attached(state_dir) if attach else _started(state_dir, autonomy, builtin_policies)
    with session as (fleet, events, policy):
        runner = DrillRunner(fleet, events)
        problem = runner.settle(30.0)
        if problem:
            console.print(
                f"[red]error:[/red] the drill fleet did not reach its steady state: {problem}"
                f" (see {fleet.state_dir}/logs/)"
            )
            return 2
        if serve_s is not None:
            fleet.mark_ready()
            console.print(f"fleet ready; {fleet.state_dir}/{FLEET_FILE} lists its URLs")
            time.sleep(serve_s)
            return 0
        results = _drill_all(console, runner, faults, repeat, *policy)
    console.print(results_table(results))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps([asdict(r) for r in results], indent=2))
        console.print(f"results written to {json_path}")
    failed = [r for r in results if not r.passed]
    if failed:
        console.print(f"[red]{len(failed)} of {len(results)} drills failed")
        return 1
    console.print(f"[green]{len(results)} drills passed")
    return 0


Session = tuple[DrillFleet, Events, tuple[str, bool]]


@contextmanager
def _started(state_dir: Path, autonomy: str, builtin_policies: bool) -> Iterator[Session]:
    """The fleet under a Warden run here; everything is stopped on the way out."""
    fleet = DrillFleet.create(state_dir)
    os.environ[DRILL_TOKEN_ENV] = fleet.token
    config = load_config(fleet.write(autonomy, builtin_policies))
    bank = fleet.start_bank()
    warden = build(config)
    events = Events()
    warden.runtime.subscribe(events)
    stop = threading.Event()
    loop = threading.Thread(target=_run_warden, args=(warden, stop), name="warden", daemon=True)
    traffic = Traffic(fleet.url("gateway", "/checkout"))
    try:
        loop.start()
        threading.Thread(target=traffic.run, name="traffic", daemon=True).start()
        _wait_up(fleet)
        # A first deploy of orders, so a later bad version has a last good one.
        post_json(fleet.url("orders", "/admin/deploy"), {"version": "v1", "by": "drill"})
        yield fleet, events, (autonomy, builtin_policies)
    finally:
        traffic.stop()
        stop.set()
        loop.join(timeout=30)
        _end(bank)


@contextmanager
def _attached(state_dir: Path) -> Iterator[Session]:
    """The fleet of a running ``warden drill --serve``; Warden's events from its store."""
    path = state_dir / FLEET_FILE
    if not path.exists() or not has_log(state_dir):
        raise ConfigError(
            f"no drill fleet in {state_dir}/ (start one with `warden drill --serve 3600"
            f" --state-dir {state_dir}`, then attach to it)"
        )
    found = json.loads(path.read_text())
    if not found.get("ready") or not _alive(int(found.get("pid", 0))):
        raise ConfigError(
            f"the drill fleet of {state_dir}/ is not running (pid {found.get('pid')} is gone"
            " or never got ready); start `warden drill --serve` again"
        )
    fleet = DrillFleet.from_file(path)
    raw = yaml.safe_load((state_dir / "warden.yaml").read_text())
    policy = (str(raw.get("autonomy", "autonomous")), "policy_dir" not in raw)
    events = Events()
    stop = threading.Event()
    follower = threading.Thread(
        target=_follow, args=(state_dir, events, stop), name="follow", daemon=True
    )
    follower.start()
    try:
        yield fleet, events, policy
    finally:
        stop.set()
        follower.join(timeout=10)


def _follow(state_dir: Path, events: Events, stop: threading.Event) -> None:
    """Feed ``events`` from the store, as the running Warden appends them."""
    store = open_event_store(state_dir)
    position = 0
    try:
        while not stop.wait(0.1):
            for event in store.read_all(position):
                events(event)
                position = event.position
    finally:
        store.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, OverflowError):
        return False
    return pid > 0


def _wait_up(fleet: DrillFleet) -> None:
    """Wait for Warden's webhook and for orders: its first deploy must reach Warden."""
    healthz = f"http://127.0.0.1:{fleet.webhook_port}/healthz"
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(healthz, timeout=1.0):
                pass
            post_json(fleet.url("orders", "/admin/fault"), {"slow_ms": 0}, timeout_s=1.0)
            return
        except OSError:
            time.sleep(0.2)


def _drill_all(
    console: Console,
    runner: DrillRunner,
    faults: list[str],
    repeat: int,
    autonomy: str,
    builtin_policies: bool,
) -> list[DrillResult]:
    results: list[DrillResult] = []
    plan = [(FAULTS[name], round_) for round_ in range(repeat) for name in faults]
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("drills", total=len(plan), state="")
        for fault, round_ in plan:
            label = f"{fault.name} -> {fault.target(round_)}"
            progress.update(task, description=label)
            expected = expected_outcome(fault, autonomy, builtin_policies)
            result = runner.run(
                fault, round_, expected, lambda s: progress.update(task, state=s[:60])
            )
            results.append(result)
            mark = "[green]ok[/green]" if result.passed else "[red]FAILED[/red]"
            mttr = f"{result.probe_mttr_s:.2f} s" if result.probe_mttr_s is not None else "-"
            progress.console.print(
                f"{mark} {label}: {result.outcome} (MTTR {mttr}) — {result.injected}"
            )
            progress.advance(task)
    return results


def _run_warden(warden: Warden, stop: threading.Event) -> None:
    warden.run(stop.is_set)


def _end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # stopped by a drill, or ignoring SIGTERM
            process.kill()
            process.wait()
