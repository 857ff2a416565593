"""Loop benchmark: decision latency under load, and the cost of one tick as incidents grow.

Run with ``python bench/loop.py [--rate R] [--duration S] [--plans P] [--runs N]
[--incidents 1,100,1000]``; prints one table. Decision latency is timed from a stored plan
(an incident stream's ``plan.proposed``, stored by another thread at ``--plans`` per
second) to its first step handed to a worker: the round that folds it decides (guardrails
and Cedar) and writes the decision, the leases on the step's targets and its intent in one
append (one transaction, one disk flush), while probe results arrive at ``--rate``
events/s. The loop ticks back to back, so the figure is the loop's own work; the live
loop's period (0.1 s) adds its wait on top, and so does the audit projection after each
round (bench/audit.py measures it). With ``--runs N`` each latency is measured N times and
the run with the lowest p99 is shown beside the spread of all: on a machine shared with
other work one run follows the load. Tick cost is the median of 30 rounds with N
incidents open and awaiting approval (each is looked at every round). Every figure is
taken on SQLite (WAL, synchronous=FULL) and on the in-memory store; the floor of a
durable write on this disk (``fsync`` of a small write, alone) is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from report import emit_table  # bench/report.py, beside this script
from rich.console import Console
from rich.table import Table

from warden.assembly import build
from warden.config import ServiceConfig, WardenConfig
from warden.domain import events as ev
from warden.domain.decisions import Decision, Outcome, Reason
from warden.domain.ids import incident_stream, service_stream
from warden.domain.plans import Plan, Step, step_hash
from warden.execution.workers import ActionWorkers
from warden.governance.gate import Guardrails
from warden.governance.policy import BUILTIN_BUNDLE
from warden.ports import ActionResult, BatchAppender
from warden.store.memory import MemoryEventStore, MemoryLeases

if TYPE_CHECKING:
    from warden.assembly import Warden
    from warden.execution.executor import Intent

TARGET_P99_MS = 5.0
SERVICES = (ServiceConfig("svc", "http://127.0.0.1:9/health", managed=False),)


class Instant:
    """An adapter that answers at once: the benchmark times the loop, not the targets."""

    def run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        """Succeed."""
        return ActionResult(True, "done", {})

    def check(self, action: str, target: str, params: dict[str, Any] | None = None) -> bool:
        """The effect holds."""
        return True


class TimedWorkers(ActionWorkers):
    """Notes when each incident's step was handed over."""

    def __init__(self, inner: ActionWorkers) -> None:
        super().__init__(inner.executor, 0)
        self.inner = inner
        self.handed: dict[str, float] = {}

    def submit(self, intent: Intent) -> None:
        """Time the hand-over, then hand over."""
        self.handed.setdefault(intent.incident.id, time.perf_counter())
        self.inner.submit(intent)

    def running(self, incidents: Any) -> frozenset[str]:
        """As the real pool."""
        return self.inner.running(incidents)


def permissive(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(BUILTIN_BUNDLE / "warden.cedarschema", directory / "warden.cedarschema")
    (directory / "allow.cedar").write_text(
        '@id("bench-allow-all") @message("the benchmark allows everything")\n'
        "permit (principal, action, resource);\n"
    )
    return directory


def make(state: Path, workers: int, store: str = "sqlite") -> Warden:
    config = WardenConfig(
        services=SERVICES,
        state_dir=state / "state",
        policy_dir=permissive(state / "policies"),
        guardrails=Guardrails(per_target=None, per_action=None, total=None),
        verification_timeout_s=1.0,
    )
    if store == "memory":
        memory = MemoryEventStore()
        leases = MemoryLeases(memory.log.leases)
        return build(
            config, adapter=Instant(), probes={}, agents=[], action_workers=workers,
            store=memory, leases=leases,
        )  # fmt: skip
    return build(config, adapter=Instant(), probes={}, agents=[], action_workers=workers)


def incident_events(n: int, *, awaiting: bool) -> tuple[str, list[ev.Event]]:
    """An incident opened and planned (and, if ``awaiting``, waiting for approval)."""
    incident_id = f"bench{n:06d}"
    service = f"svc-{n}"
    stream = incident_stream(incident_id)
    now = ev.format_time(ev.parse_time("2026-11-25T12:00:00Z"))
    plan = Plan("bench", (Step("restart_service", service),), "bench", (), 0.9)
    events = [
        ev.derived_event(
            ev.INCIDENT_OPENED,
            stream,
            {"incident_id": incident_id, "service": service, "first_signal_at": now},
            now,
            subject=service,
        ),
        ev.derived_event(ev.PLAN_PROPOSED, stream, {"plan": plan.to_dict()}, now),
    ]
    if awaiting:
        hash_ = step_hash(incident_id, 0, plan.steps[0])
        pending = Decision(Outcome.NEEDS_APPROVAL, hash_, (Reason("bench", "ask"),), 1)
        events += [
            ev.derived_event(
                ev.DECISION_RECORDED, stream, {"decision": pending.to_dict(), "index": 0}, now
            ),
            ev.derived_event(
                ev.APPROVAL_REQUESTED,
                stream,
                {"step_hash": hash_, "expires_at": "2999-01-01T00:00:00.000000Z"},
                now,
            ),
        ]
    return stream, events


def latency(
    rate: int, duration_s: float, plans_per_s: float, store: str = "sqlite"
) -> tuple[list[float], int, int]:
    """Decision latencies (ms) of ``plans_per_s`` plans, with probe results at ``rate``/s."""
    with tempfile.TemporaryDirectory(prefix="warden-bench-loop-") as tmp:
        warden = make(Path(tmp), workers=4, store=store)
        runtime = warden.runtime
        # The audit log is caught up after every round; bench/audit.py measures it on its own.
        runtime.after_tick = None
        timed = TimedWorkers(runtime.workers)
        runtime.workers = timed
        runtime.interpreter.workers = timed
        stop = threading.Event()
        stored: dict[str, float] = {}
        offered = [0]

        def probes() -> None:
            # Batches of 10 every 10 ms: the offered rate, as a webhook's group commit does.
            batch, period = max(1, rate // 100), 0.01
            start = time.perf_counter()
            k = 0
            while rate and not stop.is_set():
                items = []
                for _ in range(batch):
                    service = f"svc-{k % 50}"
                    data = {"service": service, "probe": "bench", "latency_ms": 1.0}
                    data |= {"status": 200, "purpose": "watch"}
                    when = ev.format_time(ev.parse_time("2026-11-25T12:00:00Z"))
                    event = ev.Event(
                        f"probe-{k}", "bench", ev.PROBE_SUCCEEDED, when, data, subject=service
                    )
                    items.append((service_stream(service), [event]))
                    k += 1
                warden.store.append_batch(items)
                offered[0] += len(items)
                due = start + (k // batch) * period
                time.sleep(max(0.0, due - time.perf_counter()))

        def plans() -> None:
            n = 0
            while not stop.is_set():
                stream, events = incident_events(n, awaiting=False)
                warden.store.append(stream, events, expected_version=0)
                stored[events[0].data["incident_id"]] = time.perf_counter()
                n += 1
                time.sleep(1 / plans_per_s)

        threads = [threading.Thread(target=probes), threading.Thread(target=plans)]
        for thread in threads:
            thread.start()
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            runtime.tick()
        stop.set()
        for thread in threads:
            thread.join()
        warden.close()
        found = [(timed.handed[i] - at) * 1000 for i, at in stored.items() if i in timed.handed]
        return found, len(stored), offered[0]


def fsync_cost(writes: int = 100) -> list[float]:
    """Milliseconds of a small write and ``fsync`` alone, beside the store: the disk's floor."""
    with tempfile.TemporaryDirectory(prefix="warden-bench-fsync-") as tmp:
        fd = os.open(Path(tmp) / "probe", os.O_WRONLY | os.O_CREAT, 0o600)
        found = []
        try:
            for _ in range(writes):
                start = time.perf_counter()
                os.write(fd, b"x" * 512)
                os.fsync(fd)
                found.append((time.perf_counter() - start) * 1000)
        finally:
            os.close(fd)
        return found


def append_cost(appends: int = 100) -> list[float]:
    """Milliseconds of one durable append on this machine: the floor of every write above."""
    with tempfile.TemporaryDirectory(prefix="warden-bench-append-") as tmp:
        warden = make(Path(tmp), workers=0)
        found = []
        for n in range(appends):
            event = ev.Event(f"a{n}", "bench", "bench.appended", "2026-11-25T12:00:00Z", {})
            start = time.perf_counter()
            warden.store.append("bench", [event])
            found.append((time.perf_counter() - start) * 1000)
        warden.close()
        return found


def tick_cost(
    open_incidents: int, rounds: int = 30, store: str = "sqlite", closed: int = 0
) -> float:
    """Median milliseconds of one round with ``open_incidents`` awaiting approval.

    ``closed`` incidents resolved before are in the state too; a round skips them. The
    median, not the mean: a round the scheduler paused for other work is not its cost.
    """
    with tempfile.TemporaryDirectory(prefix="warden-bench-tick-") as tmp:
        warden = make(Path(tmp), workers=0, store=store)
        items = [incident_events(n, awaiting=True) for n in range(open_incidents)]
        for n in range(open_incidents, open_incidents + closed):
            stream, events = incident_events(n, awaiting=False)
            now = events[0].time
            resolved = ev.derived_event(ev.INCIDENT_RESOLVED, stream, {"reason": "bench"}, now)
            items.append((stream, [*events, resolved]))
        assert isinstance(warden.store, BatchAppender)
        warden.store.append_batch(items)  # one commit: the setup is not what is timed
        runtime = warden.runtime
        runtime.tick()  # the fold of the history is start-up, not a round
        took = []
        for _ in range(rounds):
            start = time.perf_counter()
            runtime.tick()
            took.append(time.perf_counter() - start)
        assert len(runtime.incidents) == open_incidents + closed
        warden.close()
        return statistics.median(took) * 1000


def _p(found: list[float], q: int) -> float:
    return statistics.quantiles(found, n=100)[q - 1] if len(found) > 1 else found[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=1000, help="probe results per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds under load")
    parser.add_argument("--plans", type=float, default=5.0, help="plans stored per second")
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="latency runs per store and rate: the best (lowest p99) is shown, with the spread",
    )
    parser.add_argument("--incidents", default="1,100,1000", help="open incidents per tick run")
    parser.add_argument(
        "--stores", default="sqlite,memory", help="event stores to measure, of sqlite,memory"
    )
    args = parser.parse_args()
    console = Console()
    table = Table(title="loop: decision latency under load, and the cost of one round")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("note")
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    for store in stores:
        for rate in (args.rate, 0):
            runs = [latency(rate, args.duration, args.plans, store) for _ in range(args.runs)]
            measured = [run for run in runs if run[0]]
            if not measured:
                none = f"0 of {runs[0][1]} plans acted on"
                table.add_row(f"{store}: decision latency", "-", none)
                continue
            latencies, planned, offered = min(measured, key=lambda r: _p(r[0], 99))
            p99 = _p(latencies, 99)
            verdict = "ok" if p99 < TARGET_P99_MS else f"over the {TARGET_P99_MS:g} ms target"
            load = f"{offered / args.duration:,.0f} probe results/s" if rate else "no ingest"
            spread = ""
            if len(measured) > 1:
                p50s = [statistics.median(r[0]) for r in measured]
                p99s = [_p(r[0], 99) for r in measured]
                spread = (
                    f"; best of {len(measured)} runs (p50 {min(p50s):.2f}-{max(p50s):.2f},"
                    f" p99 {min(p99s):.2f}-{max(p99s):.2f} ms over all)"
                )
            table.add_row(
                f"{store}: decision latency p50 / p99",
                f"{statistics.median(latencies):.2f} / {p99:.2f} ms",
                f"{load}, {len(latencies)} of {planned} plans; {verdict}{spread}",
            )
    writes = append_cost()
    table.add_row(
        "sqlite: one durable append p50 / p99",
        f"{statistics.median(writes):.2f} / {_p(writes, 99):.2f} ms",
        "a decision writes 1 (decision, leases, intent)",
    )
    syncs = fsync_cost()
    table.add_row(
        "disk: 512 B write + fsync p50 / p99",
        f"{statistics.median(syncs):.2f} / {_p(syncs, 99):.2f} ms",
        "the floor of any durable write here",
    )
    growth_notes = []
    for store in stores:
        costs = []
        for n in (int(x) for x in args.incidents.split(",")):
            cost = tick_cost(n, store=store)
            costs.append((n, cost))
            per = f"{cost / n * 1000:.1f} µs per incident" if n else ""
            table.add_row(f"{store}: one round, {n} open", f"{cost:.2f} ms", per)
        with_closed = tick_cost(1, store=store, closed=10_000)
        table.add_row(
            f"{store}: one round, 1 open + 10,000 closed",
            f"{with_closed:.2f} ms",
            "closed ones skipped",
        )
        if len(costs) > 1:
            (n0, c0), (n1, c1) = costs[0], costs[-1]
            growth = (c1 - c0) / max(1, n1 - n0) * 1000
            growth_notes.append(f"{store}: round cost grows by {growth:.1f} µs per open incident")
    console.print(table)
    emit_table("loop", table)
    for note in growth_notes:
        console.print(note)


if __name__ == "__main__":
    main()
