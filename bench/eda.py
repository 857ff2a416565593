"""Warden's runbooks side by side with Event-Driven Ansible (ansible-rulebook), one stream.

Run with ``python bench/eda.py [--events N] [--hosts H]``. Both process the same N events
(half of them match ``severity == "critical"``), throttle once within 5 s per host and run
a no-op action. ansible-rulebook runs from its own virtual environment (made on first use
under .bench-venv/eda with ``ansible-rulebook`` and ``ansible-core`` from PyPI) on the
machine's Java 17; its events come from a local source plugin. Warden runs as two
processes on one durable store (SQLite, synchronous=FULL), as `warden ingest serve`
beside `warden run`: the ingest process validates every event at the ingest gate and
appends it through the group committer, as the webhook does (what arrived while the
previous commit ran is made durable in one transaction); the loop process folds it, runs
the runbook, and sends each plan through Cedar, guardrails and the executor.
``--processes 1`` runs both in one process. Peak memory is each system's maximum RSS,
Warden's two processes' peaks added. Latency is from an event's creation to its action
running, for the events that fire.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".bench-venv" / "eda"
TARGET_RATIO = 5.0

RULEBOOK = """\
- name: bench
  hosts: all
  sources:
    - stream:
        n: {n}
        hosts: {hosts}
  rules:
    - name: critical
      condition: event.severity == "critical"
      throttle:
        once_within: 5 seconds
        group_by_attributes:
          - event.host
      action:
        print_event:
          pretty: false
    - name: done
      condition: event.done == true
      action:
        print_event:
          pretty: false
"""
SOURCE = """\
import asyncio, time
async def main(queue, args):
    n, hosts = int(args["n"]), int(args["hosts"])
    print("START", time.time_ns(), flush=True)
    for i in range(n):
        await queue.put({"host": f"h{i % hosts}", "severity": "critical" if i % 2 == 0
                         else "info", "i": i, "sent_ns": time.time_ns()})
    await queue.put({"done": True, "sent_ns": time.time_ns()})
    await asyncio.sleep(3600)
"""
RUNBOOK = """\
name: bench-critical
trigger:
  events: [warden.metric.sampled]
condition: event.data.metric == "severity" && event.data.value >= 2.0
throttle: {once_within: 5s, group_by: "{{ event.data.service }}"}
plan:
  steps:
    - action: restart_service
      target: "{{ event.data.service }}"
  rationale: "{{ event.data.service }} reported a critical event"
  confidence: 0.9
"""


def _java_home() -> str:
    for candidate in sorted(Path("/usr/lib/jvm").glob("java-17-openjdk*")):
        return str(candidate)
    return os.environ.get("JAVA_HOME", "")


def ensure_venv() -> Path:
    """ansible-rulebook in its own virtual environment (installed once, from PyPI)."""
    binary = VENV / "bin" / "ansible-rulebook"
    if not binary.exists():
        print(f"installing ansible-rulebook into {VENV} (once)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "-q", "ansible-rulebook", "ansible-core"],
            check=True,
        )
    return binary


def measured(command: list[str], env: dict[str, str], cwd: Path, timeout: float) -> Any:
    """Run ``command`` in a fresh wrapper; its stdout lines with arrival times, and max RSS."""
    wrapper = (
        "import resource, subprocess, sys, time, json\n"
        "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,"
        " text=True, bufsize=1)\n"
        "for line in p.stdout:\n"
        "    sys.stdout.write(f'{time.time_ns()} {line}'); sys.stdout.flush()\n"
        "    if 'DONE-MARK' in line or \"'done': True\" in line: p.terminate()\n"
        "p.wait()\n"
        "print('RSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.stdout.splitlines()


def run_eda(n: int, hosts: int) -> dict[str, Any]:
    binary = ensure_venv()
    with tempfile.TemporaryDirectory(prefix="warden-bench-eda-") as tmp:
        work = Path(tmp)
        (work / "sources").mkdir()
        (work / "sources" / "stream.py").write_text(SOURCE)
        (work / "rules.yml").write_text(RULEBOOK.format(n=n, hosts=hosts))
        (work / "inventory.yml").write_text("all:\n  hosts:\n    localhost: {}\n")
        env = {
            **os.environ,
            "JAVA_HOME": _java_home(),
            "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', '')}",
        }
        lines = measured(
            [str(binary), "-r", "rules.yml", "-i", "inventory.yml", "-S", "sources"],
            env,
            work,
            timeout=1800,
        )
    start = next(int(line.split()[2]) for line in lines if " START " in line)
    latencies, end, fired = [], 0, 0
    for line in lines:
        found = re.search(r"'sent_ns': (\d+)", line)
        if not found:
            continue
        arrived = int(line.split()[0])
        if "'done': True" in line:
            end = arrived
            continue
        fired += 1
        latencies.append((arrived - int(found.group(1))) / 1e6)
    rss = next(int(line.split()[1]) for line in lines if line.startswith("RSS"))
    return _figures("ansible-rulebook", n, (end - start) / 1e9, latencies, fired, rss)


def _figures(
    name: str, n: int, seconds: float, latencies: list[float], fired: int, rss_kib: int
) -> dict[str, Any]:
    ordered = sorted(latencies) or [0.0]
    return {
        "system": name,
        "events": n,
        "seconds": round(seconds, 3),
        "events_per_s": round(n / seconds, 1) if seconds > 0 else 0.0,
        "actions": fired,
        "latency_p50_ms": round(statistics.median(ordered), 2),
        "latency_p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "peak_rss_mib": round(rss_kib / 1024, 1),
    }


# -- Warden ------------------------------------------------------------------------------


_SECOND: dict[int, str] = {}  # the second the sender last spelled, and its spelling


def _stamp() -> str:
    """Now in RFC 3339 (UTC, to the microsecond), as a busy sender writes it.

    A sender that stamps thousands of events a second spells each second once and adds
    the microseconds: ``isoformat`` for every event would be most of the sender's cost.
    """
    seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
    prefix = _SECOND.get(seconds)
    if prefix is None:
        _SECOND.clear()
        prefix = _SECOND[seconds] = datetime.fromtimestamp(seconds, UTC).isoformat()[:19]
    return f"{prefix}.{micros:06d}+00:00"


def _cloudevent(i: int, hosts: int) -> dict[str, Any]:
    """Event ``i`` of the stream as a sender posts it: the parsed body, a CloudEvent."""
    host = f"h{i % hosts}"
    return {
        "specversion": "1.0",
        "id": f"bench-{i}",
        "source": "bench://stream",
        "type": "warden.metric.sampled",
        # Its creation time, which latency is counted from (to the microsecond).
        "time": _stamp(),
        "datacontenttype": "application/json",
        "data": {"service": host, "metric": "severity", "value": 2.0 if i % 2 == 0 else 0.0},
        "schemaversion": 1,
        "subject": host,
    }


def admit_stream(gate: Any, store: Any, n: int, hosts: int, window: int = 1000) -> int:
    """Check each event at the ingest gate and append it through a group committer.

    As the webhook does: the committer makes what arrived while its previous commit ran
    durable in one transaction. As senders do, at most ``window`` events wait to be
    stored at once: the oldest is waited for before the next is sent. Returns the time
    (ns) the first event was made.
    """
    from collections import deque

    from warden.domain.ids import service_stream
    from warden.store.group_commit import GroupCommitter

    started = time.time_ns()
    waiting: deque[Any] = deque()
    with GroupCommitter(store) as committer:
        for i in range(n):
            event = gate.check(_cloudevent(i, hosts))  # envelope, schema, redaction
            waiting.append(committer.submit(service_stream(event.subject), [event]))
            if len(waiting) > window:
                waiting.popleft().result()
    return started


def _build(state: Path) -> Any:
    """Warden with the bench runbook, a no-op adapter, and its durable SQLite store."""
    from loop import Instant, permissive  # bench/loop.py, beside this script

    from warden.assembly import build
    from warden.config import ServiceConfig, WardenConfig
    from warden.governance.gate import Guardrails

    class Noop(Instant):
        def run(self, action: str, target: str, params: dict[str, Any]) -> Any:
            ran.setdefault(target, []).append(time.time_ns())
            return super().run(action, target, params)

    ran: dict[str, list[int]] = {}
    (state / "runbooks").mkdir(exist_ok=True)
    (state / "runbooks" / "bench.yaml").write_text(RUNBOOK)
    config = WardenConfig(
        services=(ServiceConfig("h0", "http://127.0.0.1:9/health", managed=False),),
        state_dir=state / "state",
        policy_dir=permissive(state / "policies"),
        guardrails=Guardrails(per_target=None, per_action=None, total=None),
        runbooks_dir=state / "runbooks",
        # No probe verifies a no-op: incidents wait in verifying, as an action is done.
        verification_timeout_s=3600.0,
    )
    warden = build(config, adapter=Noop(), probes={}, agents=[], action_workers=2)
    warden.runtime.after_tick = None  # the audit projection runs on its own (bench/audit.py)
    return warden, ran


def decide(warden: Any, ran: dict[str, list[int]], n: int, ready: Any) -> dict[str, Any]:
    """Tick until the stream's last event is folded; the end time and the latencies.

    ``ready`` is called once the runtime listens; the stream may start then.
    """
    from warden.domain import events as ev
    from warden.domain.ids import service_stream

    runtime = warden.runtime
    opened: dict[str, list[str]] = {}  # host: the events that opened its incidents

    def note(event: ev.Event) -> None:
        if event.type == ev.INCIDENT_OPENED:
            evidence = event.data.get("evidence") or [""]
            opened.setdefault(str(event.data["service"]), []).append(str(evidence[0]))

    runtime.subscribe(note)
    last_id = f"bench-{n - 1}"
    seen = threading.Event()
    runtime.subscribe(lambda e: seen.set() if e.id == last_id else None)
    ready()
    while not seen.is_set():
        if runtime.tick() == 0:
            time.sleep(0.001)  # nothing new: as the live loop, leave the CPU to ingest
    end = time.time_ns()
    deadline = time.monotonic() + 30
    actions = sum(len(v) for v in opened.values())
    while sum(len(v) for v in ran.values()) < actions and time.monotonic() < deadline:
        runtime.tick()
    # Each host's actions ran in the order its incidents opened; an event's time is
    # when it was made.
    latencies: list[float] = []
    for host, event_ids in opened.items():
        made = {
            e.id: ev.parse_time(e.time).timestamp()
            for e in warden.store.read_stream(service_stream(host))
            if e.id in event_ids
        }
        latencies.extend(
            (at / 1e9 - made[event_id]) * 1e3
            for event_id, at in zip(event_ids, ran.get(host, []), strict=False)
            if event_id in made
        )
    return {"end_ns": end, "latencies": latencies, "actions": sum(len(v) for v in ran.values())}


def _peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def warden_child(n: int, hosts: int) -> None:
    """Warden in one process: ingest on a thread beside the loop. One JSON line of figures."""
    with tempfile.TemporaryDirectory(prefix="warden-bench-eda-") as tmp:
        warden, ran = _build(Path(tmp))
        started: list[int] = []

        def ingest() -> None:
            started.append(admit_stream(warden.runtime.ingest, warden.store, n, hosts))

        producer = threading.Thread(target=ingest)
        done = decide(warden, ran, n, producer.start)
        producer.join()
        warden.close()
    figures = _figures(
        "warden", n, (done["end_ns"] - started[0]) / 1e9, done["latencies"], done["actions"],
        _peak_rss_kib(),
    )  # fmt: skip
    print(json.dumps(figures), flush=True)


def warden_loop_child(state: Path, n: int) -> None:
    """The deciding process of two: prints READY, then one JSON line once the stream is in."""
    warden, ran = _build(state)
    done = decide(warden, ran, n, lambda: print("READY", flush=True))
    warden.close()
    print(json.dumps({**done, "rss_kib": _peak_rss_kib()}), flush=True)


def warden_ingest_child(state: Path, n: int, hosts: int) -> None:
    """The ingest process of two, as `warden ingest serve` beside `warden run`.

    It opens the same store file and admits the stream through the same gate; it imports
    only what admission needs.
    """
    from warden.ingest.gate import IngestGate
    from warden.ingest.registry import SchemaRegistry
    from warden.ports import SystemClock
    from warden.store.location import open_event_store

    store = open_event_store(state / "state")
    gate = IngestGate(store, SchemaRegistry(), SystemClock())  # ingest_gate() sans config
    started = admit_stream(gate, store, n, hosts)
    print(json.dumps({"start_ns": started, "rss_kib": _peak_rss_kib()}), flush=True)


def _child(*args: str) -> list[str]:
    return [sys.executable, __file__, *args]


def run_warden(n: int, hosts: int, processes: int) -> dict[str, Any]:
    if processes == 1:
        done = subprocess.run(
            _child("--warden-child", "--events", str(n), "--hosts", str(hosts)),
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    with tempfile.TemporaryDirectory(prefix="warden-bench-eda-") as tmp:
        loop = subprocess.Popen(
            _child("--warden-loop", tmp, "--events", str(n)),
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert loop.stdout is not None
        if loop.stdout.readline().strip() != "READY":
            sys.exit("bench/eda.py: the Warden loop process did not start")
        ingest = subprocess.run(
            _child("--warden-ingest", tmp, "--events", str(n), "--hosts", str(hosts)),
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        decided = json.loads(loop.stdout.read().strip().splitlines()[-1])
        if loop.wait() != 0:
            sys.exit("bench/eda.py: the Warden loop process failed")
    admitted = json.loads(ingest.stdout.strip().splitlines()[-1])
    # Each process's own peak, added up: at least the peak of the two together.
    rss = decided["rss_kib"] + admitted["rss_kib"]
    seconds = (decided["end_ns"] - admitted["start_ns"]) / 1e9
    figures = _figures(
        "warden (2 processes)", n, seconds, decided["latencies"], decided["actions"], rss
    )
    figures["rss_parts"] = (
        f"Warden's loop process peaked at {decided['rss_kib'] / 1024:.1f} MiB and its ingest"
        f" process at {admitted['rss_kib'] / 1024:.1f} MiB (added in the table)."
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument(
        "--processes",
        type=int,
        choices=(1, 2),
        default=2,
        help="Warden as one process (ingest on a thread beside the loop) or two on one"
        " store (ingest, as `warden ingest serve`, beside the deciding loop)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="Run both N times, one after the other; the rows are the run of median ratio,"
        " with Warden's highest peak memory and ansible-rulebook's lowest",
    )
    parser.add_argument("--warden-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warden-loop", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warden-ingest", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.warden_child:
        warden_child(args.events, args.hosts)
        return
    if args.warden_loop:
        warden_loop_child(args.warden_loop, args.events)
        return
    if args.warden_ingest:
        warden_ingest_child(args.warden_ingest, args.events, args.hosts)
        return
    if shutil.which("java", path=f"{_java_home()}/bin") is None:
        sys.exit("bench/eda.py needs Java 17 (apt-get install openjdk-17-jre-headless)")
    runs: list[tuple[dict[str, Any], dict[str, Any], float]] = []
    for _ in range(max(1, args.repeat)):
        load = os.getloadavg()[0]  # the machine is shared: each run says how busy it was
        runs.append(
            (
                run_warden(args.events, args.hosts, args.processes),
                run_eda(args.events, args.hosts),
                load,
            )
        )
    # The run of median ratio (the lower of the middle two): both rows come from one run.
    ranked = sorted(runs, key=lambda run: float(run[0]["events_per_s"] / run[1]["events_per_s"]))
    middle_warden, middle_eda, _ = ranked[(len(ranked) - 1) // 2]
    warden, eda = dict(middle_warden), dict(middle_eda)
    warden["peak_rss_mib"] = max(w["peak_rss_mib"] for w, _, _ in runs)
    eda["peak_rss_mib"] = min(e["peak_rss_mib"] for _, e, _ in runs)
    parts = str(warden.pop("rss_parts", ""))
    each = ", ".join(
        f"{w['events_per_s'] / e['events_per_s']:.2f}x at load {load:.1f}"
        f" ({w['events_per_s']:,.0f} vs {e['events_per_s']:,.0f} events/s)"
        for w, e, load in runs
    )
    parts = f"Ratio of each run: {each}. {parts}".strip()
    ratio = warden["events_per_s"] / eda["events_per_s"] if eda["events_per_s"] else 0.0
    memory = warden["peak_rss_mib"] / eda["peak_rss_mib"] if eda["peak_rss_mib"] else 0.0
    rows = [warden, eda]
    for row in rows:
        row["events_per_s_vs_eda"] = round(row["events_per_s"] / eda["events_per_s"], 2)
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"runbooks vs Event-Driven Ansible: {args.events:,} events, {args.hosts} hosts"
    )
    for column in rows[0]:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console = Console(width=160)
    console.print(table)
    verdict = "meets" if ratio >= TARGET_RATIO and memory <= 1.0 else "misses"
    console.print(
        f"Warden processes {ratio:.1f}x the events/s of ansible-rulebook at {memory:.2f}x its"
        f" peak memory: {verdict} the target (>= {TARGET_RATIO:g}x at no more memory). {parts}"
    )
    from report import emit  # bench/report.py, beside this script

    emit(
        "eda",
        "Runbooks side by side with Event-Driven Ansible",
        rows,
        f"events/s ratio {ratio:.2f}x, memory ratio {memory:.2f}x (target >= 5x at <= 1x)."
        f" {parts}".strip(),
    )


if __name__ == "__main__":
    main()
