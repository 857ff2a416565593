"""Integration fixtures: the real NATS JetStream server, or a clear skip (a failure on CI)."""

from __future__ import annotations

import asyncio
import os

import pytest

NATS_URL_ENV = "WARDEN_NATS_URL"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"


async def _jetstream_problem(url: str) -> str:
    """Why JetStream at ``url`` is unusable, or "" when it works."""
    import nats
    from nats.errors import Error as NatsError

    async def quiet(exc: Exception) -> None:
        pass

    try:
        nc = await nats.connect(
            url,
            connect_timeout=1,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            allow_reconnect=False,
            error_cb=quiet,
        )
    except (OSError, NatsError, TimeoutError) as exc:
        return f"cannot connect: {exc or type(exc).__name__}"
    try:
        await nc.jetstream().account_info()
    except (NatsError, TimeoutError) as exc:
        return f"JetStream is not enabled: {exc or type(exc).__name__}"
    finally:
        await nc.close()
    return ""


@pytest.fixture(scope="session")
def nats_url() -> str:
    """The URL of a NATS server with JetStream, from WARDEN_NATS_URL or the default.

    Skips the test with the reason when none answers; on CI (CI=true) fails instead, so a
    missing server can never turn the NATS tests silently green.
    """
    url = os.environ.get(NATS_URL_ENV, DEFAULT_NATS_URL)
    problem = asyncio.run(_jetstream_problem(url))
    if problem:
        message = (
            f"NATS JetStream at {url}: {problem}. Start one with"
            " `nats-server -js` (or set WARDEN_NATS_URL)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI=true requires it", pytrace=False)
        pytest.skip(message)
    return url
