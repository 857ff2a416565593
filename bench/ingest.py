"""Ingest benchmark: durable events/s on SQLite and PostgreSQL, and latency at a fixed rate.

Run with ``python bench/ingest.py [--events N] [--duration S] [--rate R] [--postgres DSN]``;
prints one table. Latency is open loop (each event timed from when it was due, so a slow
store cannot hide its queue): through the GroupCommitter (submit -> durably stored), and
end to end through the webhook server (POST -> ``202``, sent only once stored).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import sqlite3
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvloop
from report import emit_table  # bench/report.py, beside this script
from rich.console import Console
from rich.table import Table

from warden.domain.events import Event
from warden.store.group_commit import GroupCommitter
from warden.store.sqlite import SQLiteEventStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from concurrent.futures import Future
    from multiprocessing.connection import Connection

DEFAULT_DSN = os.environ.get("WARDEN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
TARGET_SQLITE_BATCHED = 50_000  # durable events/s on SQLite with batching
TARGET_P99_MS = 20.0  # at 1,000 events/s offered


def events(tag: str, count: int) -> list[tuple[str, Event]]:
    """Webhook-like probe events spread over 50 service streams, built before timing."""
    out = []
    for i in range(count):
        service = f"svc-{i % 50}"
        out.append(
            (
                f"service-{service}",
                Event(
                    id=f"{tag}-{i:010d}",
                    source="https://alerts.example/webhook",
                    type="warden.probe.failed",
                    time="2026-11-25T12:00:00.000000Z",
                    data={
                        "service": service,
                        "url": f"http://{service}.internal:8080/healthz",
                        "status": 503,
                        "latency_ms": 1234.5,
                        "detail": "connection refused",
                    },
                    subject=service,
                    correlation_id=f"corr-{i // 10}",
                ),
            )
        )
    return out


def one_per_commit(store: Any, items: list[tuple[str, Event]]) -> float:
    start = time.perf_counter()
    for stream, event in items:
        store.append(stream, [event])
    return time.perf_counter() - start


def batched(store: Any, items: list[tuple[str, Event]], size: int) -> float:
    start = time.perf_counter()
    for at in range(0, len(items), size):
        store.append_batch([(stream, [event]) for stream, event in items[at : at + size]])
    return time.perf_counter() - start


def group_committed(store: Any, items: list[tuple[str, Event]], threads: int) -> tuple[float, int]:
    """Closed loop: ``threads`` producers each append one event at a time and wait."""
    with GroupCommitter(store) as committer:
        start = time.perf_counter()

        def produce(k: int) -> None:
            for stream, event in items[k::threads]:
                committer.append(stream, [event])

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(produce, range(threads)))
        seconds = time.perf_counter() - start
    return seconds, committer.statistics().commits


def open_loop(store: Any, items: list[tuple[str, Event]], rate: float) -> dict[str, float]:
    """Submit at a fixed rate whatever the store does; latency from when each was due."""
    due = [0.0] * len(items)
    stored = [0.0] * len(items)
    remaining = threading.Semaphore(0)

    def on_stored(i: int) -> Callable[[Future[list[Event]]], None]:
        def record(future: Future[list[Event]]) -> None:
            if future.exception() is None:
                stored[i] = time.perf_counter()
            remaining.release()

        return record

    with GroupCommitter(store) as committer:
        start = time.perf_counter() + 0.05
        for i, (stream, event) in enumerate(items):
            due[i] = start + i / rate
            pause = due[i] - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            committer.submit(stream, [event]).add_done_callback(on_stored(i))
        for _ in items:
            remaining.acquire()
        commits = committer.statistics().commits
    found = _latencies(due, stored)
    found["per_commit"] = len(items) / max(commits, 1)
    return found


def cloudevents(tag: str, count: int) -> list[bytes]:
    """Webhook request bodies (structured CloudEvents), timestamped now, built before timing."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    bodies = []
    for i in range(count):
        service = f"svc-{i % 50}"
        event = {
            "specversion": "1.0",
            "id": f"{tag}-{i:010d}",
            "source": "https://alerts.example/webhook",
            "type": "warden.probe.failed",
            "time": now,
            "subject": service,
            "data": {
                "service": service,
                "probe": f"http://{service}.internal:8080/healthz",
                "error": "connection refused",
                "status": 503,
                "latency_ms": 1234.5,
            },
        }
        bodies.append(json.dumps(event).encode())
    return bodies


async def _post_all(port: int, bodies: list[bytes], rate: float) -> tuple[list[float], ...]:
    """POST each body when it is due, over 64 keep-alive connections; one event per request.

    A connection serves one request at a time; a request due while all 64 are busy waits
    for one, and that wait counts in its latency. A connection the server closes is
    reopened.
    """
    due = [0.0] * len(bodies)
    answered = [0.0] * len(bodies)
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    head = b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += b"Content-Type: application/cloudevents+json\r\nContent-Length: "

    async def post(i: int) -> None:
        reader, writer = await pool.get()
        try:
            writer.write(b"%s%d\r\n\r\n%s" % (head, len(bodies[i]), bodies[i]))
            lines = (await reader.readuntil(b"\r\n\r\n")).lower().split(b"\r\n")
            fields = dict(line.partition(b":")[::2] for line in lines[1:] if line)
            await reader.readexactly(int(fields.get(b"content-length", b"0")))
            if lines[0].split()[1] == b"202":
                answered[i] = time.perf_counter()
            if fields.get(b"connection", b"").strip() == b"close":
                raise ConnectionResetError
        except (OSError, asyncio.IncompleteReadError):
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        pool.put_nowait((reader, writer))

    sent = []
    start = time.perf_counter() + 0.05
    for i in range(len(bodies)):
        due[i] = start + i / rate
        pause = due[i] - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        sent.append(asyncio.ensure_future(post(i)))
    await asyncio.gather(*sent)
    return due, answered


def _post_open_loop(port: int, bodies: list[bytes], rate: float, out: Connection) -> None:
    """The load generator, in its own process, on one event loop.

    Threads waiting for the GIL in a threaded client would add their own delays to the
    latency it measures.
    """
    uvloop.install()
    out.send(asyncio.run(_post_all(port, bodies, rate)))


def webhook_open_loop(store: Any, bodies: list[bytes], rate: float) -> dict[str, float]:
    """Serve the webhook on ``store``; a client process posts at ``rate``; time to ``202``."""
    from warden.ingest.auth import SenderAuth
    from warden.ingest.gate import IngestGate
    from warden.ingest.pipeline import Pipeline
    from warden.ingest.registry import SchemaRegistry
    from warden.ingest.webhook import WebhookApp, WebhookSettings
    from warden.ingest.webhook_server import WebhookServer
    from warden.ingest.writer import IngestWriter
    from warden.ports import SystemClock

    clock = SystemClock()
    writer = IngestWriter(Pipeline(IngestGate(store, SchemaRegistry(), clock)), capacity=1024)
    writer.start()
    # The client posts probe events without credentials: an open webhook granted that type.
    auth = SenderAuth(insecure=True, anonymous_allow_types=["warden.probe.failed"])
    server = WebhookServer(WebhookApp(writer, clock, WebhookSettings(auth=auth)))
    server.start()
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    client = context.Process(target=_post_open_loop, args=(server.port, bodies, rate, send))
    try:
        before = resource.getrusage(resource.RUSAGE_SELF)
        client.start()
        due, answered = receive.recv()
        after = resource.getrusage(resource.RUSAGE_SELF)
        client.join()
    finally:
        server.stop()
        writer.close()
    found = _latencies(due, answered)
    cpu_s = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    found["cpu_ms"] = cpu_s * 1000 / len(bodies)
    return found


def _latencies(due: list[float], done: list[float]) -> dict[str, float]:
    """Percentiles of done - due over the events that succeeded (``done`` is 0 otherwise)."""
    latencies = sorted((d - s) * 1000 for s, d in zip(due, done, strict=True) if d) or [0.0]
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    span = due[-1] - due[0]
    return {
        "p50": cuts[49],
        "p99": cuts[98],
        "max": latencies[-1],
        "offered": (len(due) - 1) / span if span > 0 else 0.0,
        "ok": sum(1 for d in done if d),
    }


def measure(
    name: str, open_store: Callable[[str], Any], args: argparse.Namespace
) -> Iterator[list[str]]:
    """The table rows of one backend, short rows padded by rich."""
    n = args.events
    single = min(n, args.single)
    store = open_store("single")
    seconds = one_per_commit(store, events("single", single))
    store.close()
    yield [name, "append, 1 event per commit", f"{single:,}", f"{single / seconds:,.0f}"]

    store = open_store("batch")
    seconds = batched(store, events("batch", n), args.batch)
    store.close()
    rate = n / seconds
    row = [name, f"append_batch, {args.batch:,} events per commit", f"{n:,}", f"{rate:,.0f}"]
    if name == "SQLite":
        met = "yes" if rate >= TARGET_SQLITE_BATCHED else "NO"
        row += ["", "", f">= {TARGET_SQLITE_BATCHED:,}/s", met]
    yield row

    count = min(n, args.grouped)
    store = open_store("group")
    seconds, commits = group_committed(store, events("group", count), args.threads)
    store.close()
    yield [
        name,
        f"GroupCommitter, {args.threads} threads closed loop, {count / commits:,.1f} events/commit",
        f"{count:,}",
        f"{count / seconds:,.0f}",
    ]

    count = int(args.rate * args.duration)
    store = open_store("latency")
    found = open_loop(store, events("latency", count), args.rate)
    store.close()
    yield _latency_row(
        name,
        f"GroupCommitter submit -> stored, open loop {found['offered']:,.0f}/s,"
        f" {found['per_commit']:,.1f} events/commit, {found['ok']:,.0f} stored",
        count,
        found,
    )

    store = open_store("webhook")
    found = webhook_open_loop(store, cloudevents("webhook", count), args.rate)
    store.close()
    yield _latency_row(
        name,
        f"webhook POST -> 202 stored, open loop {found['offered']:,.0f}/s,"
        f" {found['ok']:,.0f} accepted, server CPU {found['cpu_ms']:.2f} ms/request",
        count,
        found,
    )


def _latency_row(name: str, what: str, count: int, found: dict[str, float]) -> list[str]:
    """A latency row: met when p99 is under target and every event got through."""
    met = found["p99"] < TARGET_P99_MS and found["ok"] == count
    return [
        name,
        what,
        f"{count:,}",
        "",
        f"{found['p50']:.2f}",
        f"{found['p99']:.2f}",
        f"p99 < {TARGET_P99_MS:.0f} ms",
        "yes" if met else "NO",
    ]


def sqlite_backend(tmp: Path) -> tuple[str, Callable[[str], Any]]:
    probe = SQLiteEventStore(tmp / "probe.db")  # read the pragmas the store really set
    mode = probe._db.execute("PRAGMA journal_mode").fetchone()[0]
    sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[
        probe._db.execute("PRAGMA synchronous").fetchone()[0]
    ]
    probe.close()
    settings = f"SQLite {sqlite3.sqlite_version}: journal_mode={mode}, synchronous={sync}"
    return settings, lambda tag: SQLiteEventStore(tmp / f"{tag}.db")


def postgres_backend(dsn: str) -> tuple[str, Callable[[str], Any], Callable[[], None]] | None:
    try:
        import psycopg
        from psycopg import sql

        from warden.store.postgres import PostgresEventStore

        with psycopg.connect(dsn, connect_timeout=3, autocommit=True) as conn:
            shown = {}
            for name in ("server_version", "synchronous_commit", "fsync"):
                row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
                shown[name] = str(row[0]) if row else "?"
    except Exception as exc:
        Console(stderr=True).print(f"PostgreSQL skipped: {exc!s:.200}")
        return None
    schemas: list[str] = []

    def open_store(tag: str) -> Any:
        schema = f"warden_bench_{os.getpid()}_{tag}"
        schemas.append(schema)
        return PostgresEventStore(dsn, schema=schema, pool_size=8)

    def cleanup() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )

    settings = (
        f"PostgreSQL {shown['server_version'].split()[0]}:"
        f" synchronous_commit={shown['synchronous_commit']}, fsync={shown['fsync']}"
    )
    return settings, open_store, cleanup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000, help="events per batched run")
    parser.add_argument("--batch", type=int, default=1000, help="events per append_batch")
    parser.add_argument("--single", type=int, default=2000, help="events for 1-per-commit")
    parser.add_argument("--grouped", type=int, default=10_000, help="events via GroupCommitter")
    parser.add_argument("--threads", type=int, default=16, help="GroupCommitter producers")
    parser.add_argument("--duration", type=float, default=10.0, help="open-loop seconds")
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop events/s")
    parser.add_argument("--postgres", default=DEFAULT_DSN, help="DSN, or 'none' to skip")
    args = parser.parse_args()

    table = Table(title="ingest: durable events per second, and latency at a fixed offered rate")
    numeric = ("events", "events/s", "p50 ms", "p99 ms")
    for column in ("backend", "measurement", *numeric, "target", "met"):
        table.add_column(column, justify="right" if column in numeric else "left")
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        settings, open_store = sqlite_backend(Path(tmp))
        notes.append(settings)
        for row in measure("SQLite", open_store, args):
            table.add_row(*row)
    backend = None if args.postgres == "none" else postgres_backend(args.postgres)
    if backend is not None:
        settings, open_pg, cleanup = backend
        notes.append(settings)
        try:
            for row in measure("PostgreSQL", open_pg, args):
                table.add_row(*row)
        finally:
            cleanup()
    notes.append(
        "Latency rows are open loop: each event is timed from when it was due, not from when"
        " a busy sender got round to it. The webhook row is end to end (HTTP server, gates,"
        " schema check, IngestWriter, append_batch), the client in its own process;"
        " server CPU is the benchmark process's user + system time over the requests."
    )
    console = Console(width=max(Console().width, 132))
    console.print(table)
    emit_table("ingest", table)
    for note in notes:
        console.print(note)


if __name__ == "__main__":
    main()
