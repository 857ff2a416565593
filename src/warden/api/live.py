"""Live updates: new events of the log as server-sent events. Edge (API).

The stream polls the store (so it sees what any process appended, a shared PostgreSQL
store included) and sends each event's position as its SSE id, so a client that
reconnects with ``Last-Event-ID`` misses nothing. Comments keep idle connections alive.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import orjson
from starlette.concurrency import run_in_threadpool

from warden.demo.timeline import describe

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import Request

    from warden.api.context import ApiContext
    from warden.domain.events import Event

BATCH = 200
KEEPALIVE_S = 15.0


def frame(event: Event) -> bytes:
    """One SSE frame for ``event``: id, event type and a small JSON summary."""
    shown = describe(event)
    data = {
        "position": event.position,
        "stream": event.stream,
        "type": event.type,
        "time": event.time,
        "subject": event.subject,
        "label": shown[0] if shown else "",
        "text": shown[1] if shown else "",
    }
    return b"id: %d\nevent: warden\ndata: %s\n\n" % (event.position, orjson.dumps(data))


async def event_stream(ctx: ApiContext, request: Request, after: int) -> AsyncIterator[bytes]:
    """Frames for every event after position ``after``, until the client or server goes."""
    position = after
    idle = 0.0
    yield b"retry: 2000\n\n"
    while not ctx.stopping.is_set():
        page = await run_in_threadpool(ctx.store.read_all, position, BATCH)
        for event in page:
            yield frame(event)
            position = event.position
        if len(page) == BATCH:
            continue
        if await request.is_disconnected():
            return
        idle += ctx.poll_s
        if idle >= KEEPALIVE_S:
            idle = 0.0
            yield b": keep-alive\n\n"
        await asyncio.sleep(ctx.poll_s)
