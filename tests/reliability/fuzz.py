"""Fuzzed input through every parser, the gates, a real store and the audit projector.

Seeded mutations of valid inputs (bytes flipped, cut, repeated; JSON values swapped for odd
ones: lone surrogates, NaN, huge numbers, deep nesting, wrong types) go to each parser a
source uses: CloudEvents (structured, batch, binary), Alertmanager, generic JSON routes,
JSON lines and NATS messages. Their jobs run through the real pipeline into a real SQLite
store, and what it accepts is projected into a real audit log. A crash is any exception,
a refusal without a reason, or an accepted event that cannot be stored, read back or
audited. A share of the inputs goes to the real webhook server over HTTP, raw bytes too.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warden.audit.log import AuditLog
from warden.audit.projector import AuditProjector
from warden.ingest.alertmanager import parse_webhook
from warden.ingest.cloudevents import GenericRoute, TraceContext, parse_cloudevents, wrap_json
from warden.ingest.gate import IngestGate
from warden.ingest.jsonl import MAX_LINE_BYTES, read_lines
from warden.ingest.jsonl import _job as jsonl_job
from warden.ingest.nats_source import job_for_message
from warden.ingest.pipeline import Pipeline, Verdict
from warden.ingest.registry import SchemaRegistry
from warden.ports import SystemClock
from warden.store.sqlite import SQLiteEventStore

from .common import Connection, Result, Served, cloudevent, request_bytes

if TYPE_CHECKING:
    from collections.abc import Callable

    from warden.ingest.pipeline import Job

FIXTURES = Path(__file__).parent.parent / "fixtures"
ODD_VALUES: list[Any] = [
    None, True, False, 0, -0.0, 1e308, -1e308, 10**40, -(10**40), 2**63, 0.1, "", " ",
    "\u0000", "\ud800", "\udfff", "\U0001f525", "x" * 70_000, [], {}, [[[[[]]]]],
    {"a": {"b": {"c": None}}}, "2026-13-45T99:99:99Z", "1970-01-01T00:00:00Z",
    "../../etc/passwd", "<script>", "%s%n", "${jndi:ldap://x}",
]  # fmt: skip
ODD_TOKENS = [
    "NaN", "Infinity", "-Infinity", '"\\ud800"', '"\\udfff\\ud800"', "1e999", "-0",
    "[" * 2000 + "]" * 2000, '{"":' * 500 + "1" + "}" * 500, "\x00", '"\xff\xfe"',
]  # fmt: skip


def seeds() -> dict[str, list[bytes]]:
    """Valid inputs per parser, to mutate."""
    ce = [json.dumps(cloudevent("seed", i)).encode() for i in range(4)]
    batch = [json.dumps([cloudevent("seedb", i) for i in range(3)]).encode()]
    alerts = [p.read_bytes() for p in sorted((FIXTURES / "alertmanager").glob("*.json"))]
    lines = [
        line
        for p in sorted((FIXTURES / "jsonl").glob("*.jsonl"))
        for line in p.read_bytes().splitlines()
    ]
    generic = [json.dumps({"service": "orders", "version": "2", "by": "ci"}).encode()]
    return {
        "structured": ce,
        "batch": batch,
        "binary": [json.dumps(cloudevent("seedbin", 0)["data"]).encode()],
        "alertmanager": alerts,
        "generic": generic,
        "jsonl": lines or ce,
        "nats": ce,
    }


def _mutate_json(value: Any, rng: random.Random, depth: int = 0) -> Any:
    """Replace, drop or add one value somewhere in a parsed JSON document."""
    if isinstance(value, dict) and value and depth < 6:
        key = rng.choice(sorted(value, key=str))
        roll = rng.random()
        out = dict(value)
        if roll < 0.2:
            del out[key]
        elif roll < 0.3:
            out[rng.choice(["extra", "id", "type", "specversion", "\ud800", ""])] = rng.choice(
                ODD_VALUES
            )
        elif roll < 0.7:
            out[key] = rng.choice(ODD_VALUES)
        else:
            out[key] = _mutate_json(value[key], rng, depth + 1)
        return out
    if isinstance(value, list) and value and depth < 6:
        out_list = list(value)
        at = rng.randrange(len(out_list))
        out_list[at] = _mutate_json(out_list[at], rng, depth + 1)
        if rng.random() < 0.2:
            out_list.append(rng.choice(ODD_VALUES))
        return out_list
    return rng.choice(ODD_VALUES)


def _dumps(value: Any) -> bytes:
    # Lone surrogates go out as JSON escapes, as a hostile sender would write them.
    return json.dumps(value, allow_nan=True).encode("utf-8", errors="surrogatepass")


def mutate(seed: bytes, rng: random.Random) -> bytes:
    """One fuzzed input from ``seed``."""
    data = seed
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        if roll < 0.35:
            try:
                data = _dumps(_mutate_json(json.loads(data), rng))
                continue
            except (ValueError, RecursionError):
                pass
        buf = bytearray(data)
        if roll < 0.5 and buf:
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif roll < 0.6 and buf:
            del buf[rng.randrange(len(buf)) :]
        elif roll < 0.7 and buf:
            at = rng.randrange(len(buf))
            buf[at:at] = rng.choice(ODD_TOKENS).encode("utf-8", errors="surrogatepass")
        elif roll < 0.8 and buf:
            start = rng.randrange(len(buf))
            buf[start:start] = buf[start : start + rng.randint(1, 64)] * rng.randint(1, 50)
        elif roll < 0.9:
            text = data.decode("utf-8", errors="replace")
            for token in ('"orders"', '"svc-', "503", "true", '"1.0"'):
                text = text.replace(token, rng.choice(ODD_TOKENS), 1)
            buf = bytearray(text.encode("utf-8", errors="surrogatepass"))
        else:
            buf = bytearray(rng.randbytes(rng.randint(0, 256)))
        data = bytes(buf)
    return data


def _headers(rng: random.Random) -> dict[str, str]:
    """Binary-mode CloudEvents headers, sometimes broken."""
    headers = {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": f"bin-{rng.randrange(10**9)}",
        "ce-source": "https://campaign.example/binary",
        "ce-type": "warden.webhook.received",
        "ce-time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ce-subject": "orders",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
    for _ in range(rng.randint(0, 2)):
        key = rng.choice(sorted(headers))
        headers[key] = rng.choice(["", "\ufffd", "1.0", "x" * 300, "00-zz", "2026-99-99"])
    return headers


def jobs_for(kind: str, body: bytes, rng: random.Random) -> list[Job]:
    """What the source of ``kind`` makes of ``body`` (its own parser, as it runs live)."""
    context = TraceContext.from_headers({})
    now = datetime.now(UTC)
    if kind == "structured":
        return parse_cloudevents({"content-type": "application/cloudevents+json"}, body)
    if kind == "batch":
        return parse_cloudevents({"content-type": "application/cloudevents-batch+json"}, body)
    if kind == "binary":
        return parse_cloudevents(_headers(rng), body)
    if kind == "alertmanager":
        return parse_webhook(body, received_at=now, context=context)
    if kind == "generic":
        return [
            wrap_json(
                body,
                GenericRoute(subject_key="service"),
                event_id=f"gen-{rng.randrange(10**12)}",
                received_at=now,
                context=context,
                source="webhook:json/default",
            )
        ]
    if kind == "jsonl":
        lines = read_lines(io.BytesIO(body + b"\n"))
        return [jsonl_job(n, line, "fuzz", MAX_LINE_BYTES) for n, line, _ in lines]
    headers = {"Nats-Msg-Id": f"n-{rng.randrange(10**9)}"} if rng.random() < 0.5 else None
    return [job_for_message("warden.events.fuzz", body, headers)]


def parsers(count: int, seed: int, progress: Callable[[int], None] | None = None) -> Result:
    """``count`` fuzzed inputs through parsers, gates, store and audit projector."""
    result = Result("fuzz: parsers, gates, store, audit")
    rng = random.Random(seed)
    corpus = seeds()
    kinds = sorted(corpus)
    with tempfile.TemporaryDirectory(prefix="warden-fuzz-") as tmp:
        store = SQLiteEventStore(":memory:")
        pipeline = Pipeline(IngestGate(store, SchemaRegistry(), SystemClock()))
        log = AuditLog(Path(tmp) / "audit.log")
        projector = AuditProjector(store, log)
        tally = {"accepted": 0, "duplicate": 0, "quarantined": 0}
        for i in range(count):
            kind = rng.choice(kinds)
            body = mutate(rng.choice(corpus[kind]), rng)
            try:
                outcomes = pipeline.process(jobs_for(kind, body, rng))
            except Exception as exc:  # the campaign counts crashes, it must not become one
                result.fail(f"{kind}: {type(exc).__name__}: {exc!s:.200} (input {body[:120]!r})")
                continue
            for outcome in outcomes:
                tally[outcome.verdict.value] += 1
                if outcome.verdict is Verdict.QUARANTINED and not outcome.reason.strip():
                    result.fail(f"{kind}: quarantined without a reason (input {body[:120]!r})")
            if i % 500 == 499 or i == count - 1:
                try:
                    projector.catch_up()
                except Exception as exc:
                    result.fail(f"audit projector: {type(exc).__name__}: {exc!s:.200}")
                    projector = AuditProjector(store, AuditLog(Path(tmp) / f"audit-{i}.log"))
                if progress is not None:
                    progress(500 if i % 500 == 499 else count % 500)
        try:
            read_back = len(store.read_all())
        except Exception as exc:
            result.fail(f"reading the store back: {type(exc).__name__}: {exc!s:.200}")
            read_back = -1
        if read_back != tally["accepted"]:
            result.fail(f"{tally['accepted']} accepted but {read_back} read back")
        quarantined = len(store.quarantined())
        if quarantined != tally["quarantined"]:
            result.fail(f"{tally['quarantined']} quarantined but {quarantined} in quarantine")
        store.close()
    result.counts.update({"inputs": count, **tally, "crashes": len(result.failures)})
    return result


async def _send_all(port: int, bodies: list[tuple[str, bytes]], raw: list[bytes]) -> list[int]:
    statuses: list[int] = []
    connection = Connection(port)
    for path, body in bodies:
        answer = await connection.send(request_bytes(path, body), wait_s=15)
        statuses.append(answer.status)
        if answer.status >= 400 and not isinstance(answer.json(), dict):
            statuses.append(-1)  # a refusal without a JSON error body
    await connection.close()
    for chunk in raw:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(chunk)
            writer.write_eof()
            await asyncio.wait_for(reader.read(), 5)
            writer.close()
        except (OSError, TimeoutError):
            pass
    return statuses


def server(count: int, seed: int) -> Result:
    """``count`` fuzzed requests to the real webhook server; it must answer each clearly."""
    result = Result("fuzz: real webhook server")
    rng = random.Random(seed)
    corpus = seeds()
    routes = {
        "structured": "/v1/events",
        "batch": "/v1/events",
        "alertmanager": "/v1/alertmanager",
        "generic": "/v1/json/default",
    }
    bodies = []
    for _ in range(count):
        kind = rng.choice(sorted(routes))
        bodies.append((routes[kind], mutate(rng.choice(corpus[kind]), rng)))
    raw = [mutate(request_bytes("/v1/events", b'{"a":1}'), rng) for _ in range(max(1, count // 10))]
    with tempfile.TemporaryDirectory(prefix="warden-fuzz-http-") as tmp:
        state = Path(tmp) / "state"
        served = Served(state)
        try:
            statuses = asyncio.run(_send_all(served.port, bodies, raw))
            alive = served.alive()
        finally:
            code, err = served.stop()
        if not alive:
            result.fail(f"the server died under fuzzing: {err}")
        if code != 0:
            result.fail(f"the server exited {code} on SIGTERM: {err}")
        if "Traceback" in err:
            result.fail(f"a traceback reached the server's output: {err[-500:]}")
        for status in statuses:
            if status == -1:
                result.fail("a refusal came without a JSON error body")
            elif status == 0 or (status >= 500 and status != 503):
                result.fail(f"answer {status} to a fuzzed request")
        by_status: dict[str, int] = {}
        for status in statuses:
            if status > 0:
                by_status[str(status)] = by_status.get(str(status), 0) + 1
        result.counts.update(
            {
                "requests": len(bodies),
                "raw connections": len(raw),
                **dict(sorted(by_status.items())),
            }
        )
    return result
