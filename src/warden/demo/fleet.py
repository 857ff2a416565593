"""``warden demo``: a three-service fleet, a crash, and Warden healing it live. Edge.

Starts gateway -> orders -> payments as real local processes, Warden watching them,
kills one after a few seconds, and prints the timeline of detection, decision, restart
and verification, then the measured MTTR. Leaves no process behind.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import yaml

from warden.assembly import Warden, build
from warden.audit.log import AuditLog
from warden.audit.settings import AuditSettings
from warden.audit.state import AuditPaths, trusted_verifiers
from warden.config import ProbeConfig, ServiceConfig, WardenConfig
from warden.demo.service import free_port
from warden.demo.timeline import Timeline, incident_table

if TYPE_CHECKING:
    from pathlib import Path
    from types import FrameType

    from rich.console import Console

    from warden.domain.incident import Incident

from warden.domain.errors import WardenError
from warden.runtime import load_incidents
from warden.store.location import open_event_store

CHAIN = ("gateway", "orders", "payments")


@dataclass
class Traffic:
    """Checkout requests sent through the gateway while the demo runs."""

    url: str
    ok: int = 0
    failed: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Send a request every 200 ms until stopped."""
        while not self._stop.wait(0.2):
            try:
                with urllib.request.urlopen(self.url, timeout=1.0) as reply:
                    ok = reply.status == 200
            except (urllib.error.URLError, OSError):
                ok = False
            if ok:
                self.ok += 1
            else:
                self.failed += 1

    def stop(self) -> None:
        """Stop sending."""
        self._stop.set()


CONFIG_FILE = "warden.yaml"


def demo_config(state_dir: Path) -> WardenConfig:
    """Three chained services on free ports, probed twice a second."""
    ports = {name: free_port() for name in CHAIN}
    services = []
    for i, name in enumerate(CHAIN):
        argv = [sys.executable, "-m", "warden.demo.service", "--name", name]
        argv += ["--port", str(ports[name])]
        depends: tuple[str, ...] = ()
        if i + 1 < len(CHAIN):
            downstream = CHAIN[i + 1]
            argv += ["--downstream", f"http://127.0.0.1:{ports[downstream]}"]
            depends = (downstream,)
        services.append(
            ServiceConfig(
                name=name,
                health_url=f"http://127.0.0.1:{ports[name]}/health",
                argv=tuple(argv),
                # Marks the fleet's processes so a check can prove none outlives the demo.
                env=(("WARDEN_DEMO_STATE", str(state_dir.resolve())),),
                depends_on=depends,
            )
        )
    return WardenConfig(
        services=tuple(services),
        state_dir=state_dir,
        environment="demo",
        autonomy="autonomous",
        probe=ProbeConfig(interval_s=0.5, timeout_s=0.4, jitter=0.1),
        failure_threshold=3,
        verification_timeout_s=10.0,
        audit=AuditSettings(key_path=demo_key_path(state_dir)),
    )


def demo_key_path(state_dir: Path) -> Path:
    """The demo's audit key: beside its state directory, never inside it (no setup needed)."""
    return state_dir.parent / f"{state_dir.name}-keys" / "audit.key"


def _wait_healthy(warden: Warden, deadline_s: float) -> bool:
    end = time.monotonic() + deadline_s
    probes = warden.runtime.probes
    while time.monotonic() < end:
        if all(p.check().ok for p in probes.values()):
            return True
        time.sleep(0.1)
    return False


def _summary(console: Console, incidents: list[Incident], traffic: Traffic) -> None:
    console.print(incident_table(incidents, "Incidents in this demo"))
    console.print(
        f"checkout traffic through the gateway: [green]{traffic.ok} ok[/green],"
        f" [red]{traffic.failed} failed[/red] (failures fall inside the outage)"
    )


def write_config(config: WardenConfig, path: Path) -> None:
    """Keep the demo's configuration beside its state, so `warden replay` finds it."""
    raw = {
        "environment": config.environment,
        "autonomy": config.autonomy,
        "state_dir": str(config.state_dir.resolve()),
        "failure_threshold": config.failure_threshold,
        "verification_timeout_s": config.verification_timeout_s,
        "probe": {
            "interval_s": config.probe.interval_s,
            "timeout_s": config.probe.timeout_s,
            "jitter": config.probe.jitter,
        },
        "audit": {"key_path": str(demo_key_path(config.state_dir).resolve())},
        "services": [
            {
                "name": s.name,
                "health": s.health_url,
                "argv": list(s.argv),
                "env": dict(s.env),
                "depends_on": list(s.depends_on),
            }
            for s in config.services
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# The configuration of the latest `warden demo`, kept for `warden replay`.\n"
    path.write_text(header + yaml.safe_dump(raw, sort_keys=False))


def run_demo(
    console: Console, state_dir: Path, duration_s: float, crash_after_s: float, victim: str
) -> int:
    """Run the demo; returns the process exit code (0 when every fault was healed)."""
    if victim not in CHAIN:
        raise ValueError(f"--victim must be one of {', '.join(CHAIN)}")
    config = demo_config(state_dir)
    write_config(config, state_dir / CONFIG_FILE)
    warden = build(config)
    start_position = warden.store.head()
    start = datetime.now(UTC)
    timeline = Timeline(console, start)
    warden.runtime.subscribe(timeline)
    gateway = config.service("gateway").health_url.replace("/health", "/checkout")
    traffic = Traffic(gateway)
    crash_at = time.monotonic() + crash_after_s
    end_at = time.monotonic() + duration_s
    crashed = False

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    console.rule("[bold]Warden demo: gateway -> orders -> payments")
    try:
        warden.processes.start_all()
        pids = ", ".join(f"{n} pid {warden.processes.pid(n)}" for n in CHAIN)
        timeline.line("START", f"fleet started: {pids}", datetime.now(UTC))
        if not _wait_healthy(warden, 15.0):
            console.print("[red]the demo services did not become healthy; see .warden/logs/")
            return 2
        warden.probes.start()
        threading.Thread(target=traffic.run, name="traffic", daemon=True).start()
        timeline.line(
            "START",
            f"Warden watching; {victim} will crash in {crash_after_s:g} s",
            datetime.now(UTC),
        )

        def should_stop() -> bool:
            nonlocal crashed
            now = time.monotonic()
            if not crashed and now >= crash_at:
                crashed = True
                pid = warden.processes.pid(victim)
                warden.processes.kill(victim, signal.SIGKILL)
                timeline.line("FAULT", f"SIGKILL sent to {victim} (pid {pid})", datetime.now(UTC))
            return now >= end_at

        warden.runtime.run(should_stop)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; cleaning up")
    finally:
        traffic.stop()
        signal.signal(signal.SIGTERM, previous)
        warden.close()
    return _report(console, state_dir, start_position, traffic, crashed)


def _report(
    console: Console, state_dir: Path, start_position: int, traffic: Traffic, crashed: bool
) -> int:
    store = open_event_store(state_dir)
    try:
        mine = {e.stream for e in store.read_all(start_position)}
        incidents = [i for i in load_incidents(store).values() if f"incident-{i.id}" in mine]
    finally:
        store.close()
    console.rule("[bold]Summary")
    _summary(console, incidents, traffic)
    paths = AuditPaths.for_state(state_dir)
    try:
        report = AuditLog(paths.log).verify(trusted_verifiers(paths))
        console.print(
            f"audit log: {report.size} entries, {report.checkpoints} signed checkpoints verified"
            " ([bold]warden audit verify[/bold] re-checks it)"
        )
    except WardenError as exc:
        console.print(f"[red]audit log does not verify: {exc}")
        return 1
    console.print(
        f"state left in {state_dir}/ — try: warden incidents, warden audit verify, warden replay"
    )
    healed = bool(incidents) and all(i.state.value == "resolved" for i in incidents)
    if crashed and not healed:
        console.print("[red]the injected fault was not healed")
        return 1
    return 0
