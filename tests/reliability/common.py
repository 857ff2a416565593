"""What every part of the reliability campaign shares: results, a served webhook, a client.

The server is the real one, launched as a user would (``warden ingest serve`` in its own
process); the client speaks HTTP/1.1 over raw sockets on one event loop, so it can also
misbehave (stall, send half a body) where a library would not let it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warden.demo import free_port
from warden.store.location import open_event_store

TOKEN = "reliability-campaign-token-0123456789abcdef"
LAUNCH = "from warden.cli.ingest_cmd import ingest_app; ingest_app(prog_name='warden ingest')"


@dataclass
class Result:
    """One part's counts; ``failures`` lists every loss, repeat or crash found (empty: pass)."""

    part: str
    counts: dict[str, int | float | str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No loss, no repeat, no crash."""
        return not self.failures

    def fail(self, what: str) -> None:
        """Record one failure (kept short: the first few tell the story)."""
        if len(self.failures) < 20:
            self.failures.append(what)
        self.counts["failures"] = int(self.counts.get("failures", 0)) + 1


def cloudevent(tag: str, i: int, *, size: int = 0) -> dict[str, Any]:
    """A valid structured CloudEvent with a unique id (``size`` pads its data)."""
    service = f"svc-{i % 20}"
    data: dict[str, Any] = {"service": service, "error": "connection refused", "status": 503}
    if size:
        data["detail"] = "x" * size
    return {
        "specversion": "1.0",
        "id": f"{tag}-{i:09d}",
        "source": "https://campaign.example/webhook",
        "type": "warden.webhook.received",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "subject": service,
        "data": data,
    }


class Served:
    """``warden ingest serve`` on a free port over ``state``; stopped with SIGTERM."""

    def __init__(self, state: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.state = state
        self.port = free_port()
        # A file, not a pipe: a server logging faster than anyone reads a pipe would block.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, "serve", "--port", str(self.port),
             "--state-dir", str(state), *extra],
            env={**os.environ, "WARDEN_WEBHOOK_TOKEN": TOKEN, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._wait_until_serving()

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the webhook server exited: {self.output()}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                try:
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        return
                finally:
                    conn.close()
            if time.monotonic() > deadline:
                raise RuntimeError("the webhook server did not come up in 20 s")
            time.sleep(0.05)

    def alive(self) -> bool:
        """Whether the server process still runs."""
        return self.process.poll() is None

    def rss_kib(self) -> int:
        """The server's resident memory now (KiB), from /proc."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def output(self) -> str:
        """The end of what the server printed."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]

    def stop(self) -> tuple[int, str]:
        """SIGTERM, wait; returns the exit code and the end of what it printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        out = self.output()
        self._log.close()
        return self.process.returncode, out


def stored_ids(state: Path) -> set[str]:
    """Ids of every event in the state directory's store."""
    store = open_event_store(state)
    try:
        return {e.id for e in store.read_all()}
    finally:
        store.close()


def quarantine_count(state: Path) -> int:
    """How many inputs the state directory's store holds in quarantine."""
    store = open_event_store(state)
    try:
        return len(store.quarantined())
    finally:
        store.close()


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer as the raw client read it (status 0: the connection failed)."""

    status: int
    body: bytes
    headers: dict[bytes, bytes]

    def json(self) -> Any:
        """The body as JSON (None when it is not)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def request_bytes(
    path: str, body: bytes, headers: dict[str, str] | None = None, *, token: str | None = TOKEN
) -> bytes:
    """A complete HTTP/1.1 POST, keep-alive."""
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    if token is not None:
        head.append(f"Authorization: Bearer {token}")
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """Read one HTTP answer (status line, headers, Content-Length body)."""
    lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
    status = int(lines[0].split()[1])
    fields = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(fields.get(b"content-length", b"0")))
    return Answer(status, body, fields)


class Connection:
    """One keep-alive client connection that reconnects when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._pair: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, raw: bytes, wait_s: float = 30.0) -> Answer:
        """Send one request and read its answer; status 0 when the connection failed."""
        try:
            if self._pair is None:
                self._pair = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = self._pair
            writer.write(raw)
            answer = await asyncio.wait_for(read_answer(reader), wait_s)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            await self.close()
            return Answer(0, b"", {})
        if answer.headers.get(b"connection", b"").lower() == b"close":
            await self.close()
        return answer

    async def close(self) -> None:
        """Drop the connection."""
        if self._pair is not None:
            _, writer = self._pair
            self._pair = None
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]
