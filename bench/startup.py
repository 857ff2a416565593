"""Start-up of the runtime over a long history: its first fold, with and without a snapshot.

Builds once, in a temporary directory, a SQLite log of ``--events`` events (1,000,000 by
default) over ``--services`` services: incidents with their probes, plan, decision, step,
verification and resolution, cloned from one incident a real Warden handled, between
probe failures that heal at once. Then times a runtime's start-up (construction and first
fold): from position 0, and from a snapshot ``--behind`` events behind the head.

Run with ``python bench/startup.py [--events N] [--services S] [--incidents I]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from report import emit_table  # bench/report.py, beside this script
from rich.console import Console
from rich.table import Table

from warden.agents.builtin import builtin_agents
from warden.assembly import build
from warden.config import ServiceConfig, WardenConfig
from warden.domain import events as ev
from warden.domain.plans import Step, step_hash
from warden.remediation import RuntimeSettings
from warden.runtime import Runtime
from warden.store.records import decode_record, encode_record
from warden.store.sqlite import SQLiteEventStore
from warden.testing import ManualClock, RecordingAdapter, ScriptedProbe

if TYPE_CHECKING:
    from collections.abc import Iterator

    from warden.domain.events import Event
    from warden.domain.incident import Incident

START = datetime(2026, 11, 1, tzinfo=UTC)
TEMPLATE_SERVICE = "payments"


def template(directory: Path) -> tuple[list[Event], Incident]:
    """One incident a real Warden detected, planned, decided, acted on, verified, closed."""
    names = (TEMPLATE_SERVICE, "a", "b", "c", "d")  # restarting 1 of 5 is within the cap
    config = WardenConfig(
        services=tuple(
            ServiceConfig(n, "http://127.0.0.1:9/health", managed=False, domain=n) for n in names
        ),
        state_dir=directory,
        verification_timeout_s=5,
    )
    clock = ManualClock(START)
    probes = {n: ScriptedProbe() for n in names}
    warden = build(
        config, clock, adapter=RecordingAdapter(probes), probes=probes, agents=builtin_agents()
    )
    try:
        runtime = warden.runtime
        probe = probes[TEMPLATE_SERVICE]
        runtime.record_probe(TEMPLATE_SERVICE, "http", probe.check(), "watch")
        runtime.tick()
        probe.healthy = False
        for _ in range(3):
            clock.advance(1)
            runtime.record_probe(TEMPLATE_SERVICE, "http", probe.check(), "watch")
        for _ in range(30):
            clock.advance(0.5)
            runtime.tick()
        (incident,) = runtime.incidents.values()
        assert incident.state.value == "resolved", incident.state
        return warden.store.read_all(), incident
    finally:
        warden.close()


class Cloner:
    """Copies of template events for another service, incident and time, ids made anew."""

    def __init__(self, events: list[Event], incident: Incident) -> None:
        self.events = events
        self.incident = incident
        failures = [e for e in events if e.type == ev.PROBE_FAILED]
        self.first = failures[0].moment
        self.lifecycle = [e for e in events if e.position >= failures[0].position]
        self.failure = failures[0]
        self.success = next(e for e in events if e.type == ev.PROBE_SUCCEEDED)
        self.policy = next(e for e in events if e.type == ev.POLICY_LOADED)

        self._texts: dict[str, str] = {}

    def copy(self, event: Event, swaps: dict[str, str], at: datetime) -> Event:
        """``event`` with every ``swaps`` key replaced by its value, at ``at``."""
        text = self._texts.get(event.id)
        if text is None:
            text = self._texts[event.id] = encode_record(event)
        stream = event.stream
        for old, new in swaps.items():
            text = text.replace(old, new)
            stream = stream.replace(old, new)
        copied = decode_record(0, stream, text)
        return replace(copied, time=ev.format_time(at), stream=stream, position=0)

    def incident_copy(self, n: str, service: str, at: datetime) -> list[Event]:
        """The whole incident again, as incident ``n`` of ``service``, from ``at`` on."""
        new_id = _hex(f"incident-{n}")
        swaps = {self.incident.id: new_id}
        assert self.incident.plan is not None
        for index, step in enumerate(self.incident.plan.steps):
            moved = Step(step.action, service, step.params)
            swaps[self.incident.step_hashes[index]] = step_hash(new_id, index, moved)
        swaps |= {e.id: _hex(f"{e.id}-{n}") for e in self.lifecycle}
        swaps[TEMPLATE_SERVICE] = service
        return [self.copy(e, swaps, at + (e.moment - self.first)) for e in self.lifecycle]

    def flap(self, n: str, service: str, at: datetime) -> list[Event]:
        """A probe failure of ``service`` at ``at`` and a success a second later."""
        swaps = {
            self.failure.id: _hex(f"failure-{n}"),
            self.success.id: _hex(f"success-{n}"),
            TEMPLATE_SERVICE: service,
        }
        return [
            self.copy(self.failure, swaps, at),
            self.copy(self.success, swaps, at + timedelta(seconds=1)),
        ]


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def history(
    cloner: Cloner, events: int, services: int, incidents: int, *, start: datetime, tag: str
) -> Iterator[Event]:
    """About ``events`` events from ``start`` on: ``incidents`` incidents among probe flaps."""
    yield cloner.copy(cloner.policy, {cloner.policy.id: _hex(f"policy-{tag}")}, start)
    per_incident = len(cloner.lifecycle)
    flaps = max(0, (events - 1 - incidents * per_incident) // 2)
    rounds = incidents + flaps
    every = max(1, rounds // max(1, incidents))
    step = timedelta(days=30) / max(1, rounds)
    made = 0
    for k in range(rounds):
        at = start + k * step
        if k % every == 0 and made < incidents:
            yield from cloner.incident_copy(f"{tag}{made}", f"svc-{made % services:04d}", at)
            made += 1
        else:
            yield from cloner.flap(f"{tag}{k}", f"svc-{(k * 7) % services:04d}", at)


def write(store: SQLiteEventStore, events: Iterator[Event], chunk: int = 10_000) -> int:
    batch: list[tuple[str, list[Event]]] = []
    written = 0
    for event in events:
        batch.append((event.stream, [event]))
        if len(batch) == chunk:
            written += len(batch)
            store.append_batch(batch)
            batch = []
    if batch:
        written += len(batch)
        store.append_batch(batch)
    return written


def start(path: Path, settings: RuntimeSettings) -> tuple[Runtime, SQLiteEventStore, float, int]:
    """A runtime's start-up on the log at ``path``: seconds, and events its first fold read."""
    store = SQLiteEventStore(path)
    began = time.perf_counter()
    none: Any = None
    clock = ManualClock(START)
    runtime = Runtime(store, none, [], none, none, {}, clock, settings, snapshot_every=0)
    read = len(runtime.tail())
    return runtime, store, time.perf_counter() - began, read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--behind", type=int, default=10_000, help="events after the snapshot")
    args = parser.parse_args()
    console = Console()
    settings = RuntimeSettings()
    with tempfile.TemporaryDirectory(prefix="warden-bench-startup-") as directory:
        root = Path(directory)
        cloner = Cloner(*template(root / "template"))
        path = root / "events.db"
        began = time.perf_counter()
        store = SQLiteEventStore(path)
        log = history(cloner, args.events, args.services, args.incidents, start=START, tag="")
        written = write(store, log)
        store.close()
        console.print(f"built a log of {written:,} events in {time.perf_counter() - began:.1f} s")

        cold, store, cold_s, cold_read = start(path, settings)
        incidents = len(cold.incidents)
        kept_at = time.perf_counter()
        cold._snapshots.every = 1
        assert cold._snapshots.keep_if_due(cold._state)
        keep_s = time.perf_counter() - kept_at
        snapshot = store.load_snapshot(cold._snapshots.stream)
        assert snapshot is not None
        size = len(json.dumps(snapshot.state, separators=(",", ":")))
        later = START + timedelta(days=31)
        more = history(cloner, args.behind, args.services, args.behind // 200, start=later, tag="+")
        added = write(store, more)
        store.close()

        warm, store, warm_s, warm_read = start(path, settings)
        assert warm._state.position == written + added == store.head()
        assert len(warm.incidents) > incidents
        store.close()

    table = Table(
        title=f"runtime start-up over {written + added:,} events, {incidents:,} incidents"
    )
    for column in ("start-up", "events folded", "seconds"):
        table.add_column(column, justify="right" if column != "start-up" else "left")
    table.add_row("from position 0", f"{cold_read:,}", f"{cold_s:.2f}")
    table.add_row(f"from a snapshot {added:,} events behind", f"{warm_read:,}", f"{warm_s:.2f}")
    table.add_row(f"keeping the snapshot ({size / 1e6:.1f} MB of JSON)", "", f"{keep_s:.2f}")
    console.print(table)
    emit_table("startup", table)


if __name__ == "__main__":
    main()
