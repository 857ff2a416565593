"""Overload and slow clients against the real webhook server.

- Overload: the sustainable rate is measured first (a closed loop that waits for each
  ``202``); then many connections send as fast as they can for the whole duration. The
  server must answer only ``202``, ``429`` or ``503``, keep its memory bounded, stay up,
  and every event it answered ``202`` must be in the store afterwards.
- Slow clients: many connections send headers and one byte of a large body, without a
  credential, and hold; meanwhile an authenticated sender must keep getting ``202`` with
  low latency.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
from pathlib import Path

from .common import Connection, Result, Served, cloudevent, percentile, request_bytes, stored_ids

ACCEPTABLE = {202, 429, 503}
MEMORY_BOUND_KIB = 512 * 1024


async def _closed_loop(port: int, tag: str, seconds: float, connections: int) -> tuple[int, float]:
    """Each connection posts and waits; returns events answered 202 and the time taken."""
    done = 0
    counter = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, counter
        conn = Connection(port)
        while time.perf_counter() < stop_at:
            counter += 1
            body = json.dumps(cloudevent(tag, counter)).encode()
            answer = await conn.send(request_bytes("/v1/events", body))
            if answer.status == 202:
                done += 1
        await conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return done, time.perf_counter() - start


async def _flood(
    port: int, rate: float, seconds: float, max_connections: int
) -> tuple[dict[int, int], set[str], int, float]:
    """Open loop: a request is due every ``1/rate`` s whatever the server answers.

    A due request takes an idle connection, or opens one while fewer than
    ``max_connections`` are open; past that it waits, and the rate offered drops (reported).
    Returns the statuses, the ids answered 202, the requests sent and the seconds it took
    to send them.
    """
    statuses: dict[int, int] = {}
    accepted: set[str] = set()
    idle: list[Connection] = []
    opened = 0
    free = asyncio.Condition()

    async def post(i: int) -> None:
        nonlocal opened
        async with free:
            while not idle and opened >= max_connections:
                await free.wait()
            if idle:
                conn = idle.pop()
            else:
                opened += 1
                conn = Connection(port)
        event = cloudevent("flood", i)
        answer = await conn.send(request_bytes("/v1/events", json.dumps(event).encode()))
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
        if answer.status == 202:
            accepted.add(event["id"])
        async with free:
            idle.append(conn)
            free.notify()

    pending = set()
    start = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        pause = start + i / rate - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        task = asyncio.ensure_future(post(i))
        pending.add(task)
        task.add_done_callback(pending.discard)
        if time.perf_counter() - start > seconds * 1.5:
            break  # the client itself cannot keep up; what was sent is reported
    sent = i + 1
    sending = time.perf_counter() - start
    await asyncio.gather(*pending)
    for conn in idle:
        await conn.close()
    return statuses, accepted, sent, sending


def overload(seconds: float, factor: float = 10.0) -> Result:
    """Offer ``factor`` times the sustainable rate for ``seconds``; nothing accepted lost."""
    result = Result("overload: 10x the sustainable rate")
    with tempfile.TemporaryDirectory(prefix="warden-overload-") as tmp:
        state = Path(tmp) / "state"
        served = Served(state, "--queue-size", "64", "--max-in-flight", "256")
        peak = [served.rss_kib()]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.2):
                peak.append(served.rss_kib())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            done, took = asyncio.run(_closed_loop(served.port, "sustain", min(5.0, seconds), 64))
            sustainable = done / took
            statuses, accepted, sent, sending = asyncio.run(
                _flood(served.port, factor * sustainable, seconds, 1024)
            )
            alive = served.alive()
        finally:
            sampling.set()
            sampler.join()
            code, err = served.stop()
        offered = sent / sending
        result.counts.update(
            {
                "sustainable/s": round(sustainable),
                "offered/s": round(offered),
                "offered x": round(offered / max(sustainable, 1), 1),
                "seconds": seconds,
                "accepted": len(accepted),
                **{str(k): v for k, v in sorted(statuses.items())},
                "peak RSS MiB": round(max(peak) / 1024),
            }
        )
        if not alive:
            result.fail(f"the server died under overload: {err}")
        if code != 0 or "Traceback" in err:
            result.fail(f"the server ended badly (exit {code}): {err[-500:]}")
        odd = {k: v for k, v in statuses.items() if k not in ACCEPTABLE and k != 0}
        if odd:
            result.fail(f"answers other than 202/429/503: {odd}")
        if max(peak) > MEMORY_BOUND_KIB:
            result.fail(
                f"memory grew to {max(peak) // 1024} MiB (bound {MEMORY_BOUND_KIB // 1024})"
            )
        lost = accepted - stored_ids(state)
        if lost:
            result.fail(f"{len(lost)} events answered 202 are not in the store: {sorted(lost)[:3]}")
        if statuses.get(429, 0) + statuses.get(503, 0) == 0:
            result.fail("the flood never met back-pressure: it proves nothing about overload")
    return result


async def _hold_slow(
    port: int, count: int, opened: list[int], ready: asyncio.Event, stop: asyncio.Event
) -> None:
    """Open ``count`` connections that send headers and one byte of a large body, then hold."""
    writers = []
    head = (
        b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/cloudevents+json\r\nContent-Length: 100000\r\n\r\n{"
    )
    for _ in range(count):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            continue
        writer.write(head)
        writers.append(writer)
        opened[0] += 1
    ready.set()
    while not stop.is_set():
        for writer in writers:
            if not writer.is_closing():
                writer.write(b" ")  # a trickle, as a slowloris client sends
        await asyncio.sleep(1.0)
    for writer in writers:
        writer.close()


async def _paced(
    port: int, tag: str, rate: float, seconds: float
) -> tuple[list[float], dict[int, int]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    conn = Connection(port)
    count = int(rate * seconds)
    start = time.perf_counter()
    for i in range(count):
        due = start + i / rate
        pause = due - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        body = json.dumps(cloudevent(tag, i)).encode()
        answer = await conn.send(request_bytes("/v1/events", body), wait_s=10)
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
        latencies.append((time.perf_counter() - due) * 1000)
    await conn.close()
    return latencies, statuses


async def _slow_run(
    port: int, slow: int, seconds: float
) -> tuple[list[float], dict[int, int], int]:
    opened = [0]
    ready, stop = asyncio.Event(), asyncio.Event()
    holder = asyncio.ensure_future(_hold_slow(port, slow, opened, ready, stop))
    await ready.wait()
    latencies, statuses = await _paced(port, "auth", 50.0, seconds)
    stop.set()
    await holder
    return latencies, statuses, opened[0]


def slow_clients(count: int, seconds: float) -> Result:
    """``count`` slow unauthenticated connections while an authenticated sender keeps going."""
    result = Result(f"slow clients: {count} held connections")
    with tempfile.TemporaryDirectory(prefix="warden-slow-") as tmp:
        served = Served(Path(tmp) / "state")
        try:
            baseline, _ = asyncio.run(_paced(served.port, "base", 50.0, min(seconds, 3.0)))
            latencies, statuses, opened = asyncio.run(_slow_run(served.port, count, seconds))
            alive = served.alive()
        finally:
            _, err = served.stop()
        p99 = percentile(latencies, 0.99)
        result.counts.update(
            {
                "slow connections": opened,
                "authenticated requests": len(latencies),
                "202": statuses.get(202, 0),
                "p99 ms (baseline)": round(percentile(baseline, 0.99), 1),
                "p99 ms (under slow clients)": round(p99, 1),
            }
        )
        if not alive:
            result.fail(f"the server died: {err}")
        refused = {k: v for k, v in statuses.items() if k != 202}
        if refused:
            result.fail(f"authenticated senders were refused while slow clients held: {refused}")
        # Relative to the same sender's p99 without them: a loaded machine is slow for both.
        bound = max(250.0, 2 * percentile(baseline, 0.99))
        if p99 > bound:
            result.fail(
                f"authenticated p99 rose to {p99:.0f} ms under slow clients (bound {bound:.0f})"
            )
    return result
