"""`warden ingest serve` as a process: serves, stores into the state dir, stops on SIGTERM."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from tests.builders import probe_cloudevent
from warden.demo import free_port
from warden.ingest.auth import sign
from warden.store.sqlite import SQLiteEventStore

if TYPE_CHECKING:
    from pathlib import Path

LAUNCH = "from warden.cli.ingest_cmd import ingest_app; ingest_app(prog_name='warden ingest')"


def call(port: int, method: str, path: str, body: str | None = None, **headers: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body, headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def wait_until_serving(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while True:
        assert process.poll() is None, process.communicate()
        try:
            if call(port, "GET", "/healthz") == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "the server did not come up"
        time.sleep(0.05)


def serve(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "serve", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_serve_stores_events_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / ".warden"
    env = {**os.environ, "WARDEN_WEBHOOK_TOKEN": "tok", "WARDEN_WEBHOOK_PASSWORD": "pw"}
    process = serve(
        env, "--port", str(port), "--state-dir", str(state), "--basic-user", "ci",
        "--route", "deploys=warden.webhook.received:service",
    )  # fmt: skip
    try:
        wait_until_serving(port, process)
        body = json.dumps({"service": "orders", "version": "2"})
        assert call(port, "POST", "/v1/json/deploys", body) == 401
        assert call(port, "POST", "/v1/json/deploys", body, Authorization="Bearer tok") == 202
        basic = "Basic " + base64.b64encode(b"ci:pw").decode()
        assert call(port, "POST", "/v1/json/deploys", body, Authorization=basic) == 202
        wrong = "Basic " + base64.b64encode(b"ci:tok").decode()
        assert call(port, "POST", "/v1/json/deploys", body, Authorization=wrong) == 401
        assert call(port, "POST", "/v1/events", "{", Authorization="Bearer tok") == 400
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    text = err.decode()
    assert f"webhook on http://127.0.0.1:{port} (senders: ci (basic), token (bearer))" in text
    assert "tok" not in text.replace("token", "")
    assert "stopped: 2 accepted, 0 duplicate, 1 quarantined" in text
    store = SQLiteEventStore(state / "events.db")
    try:
        events = store.read_stream("service-orders")
        assert [e.data for e in events] == [{"service": "orders", "version": "2"}] * 2
        assert [e.extensions["wardensource"] for e in events] == ["webhook/token", "webhook/ci"]
        assert len(store.quarantined()) == 1
    finally:
        store.close()


def test_serve_without_credentials_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_WEBHOOK_")}
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, "serve", "--port", "0", "--state-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0
    err = done.stderr.decode()
    assert "nobody could send; set WARDEN_WEBHOOK_TOKEN" in err
    assert "Traceback" not in err


def test_serve_takes_standard_webhooks_signatures_and_granted_types(tmp_path: Path) -> None:
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    port = free_port()
    env = {**os.environ, "WARDEN_WEBHOOK_SECRET": secret}
    env.pop("WARDEN_WEBHOOK_TOKEN", None)
    process = serve(
        env, "--port", str(port), "--state-dir", str(tmp_path / ".warden"),
        "--allow-type", "warden.probe.failed",
    )  # fmt: skip
    try:
        wait_until_serving(port, process)
        body = json.dumps(probe_cloudevent(time=time.strftime("%Y-%m-%dT%H:%M:%SZ")))
        stamp = int(time.time())
        signature = sign(secret, "msg-1", stamp, body.encode())
        headers = {"webhook-id": "msg-1", "webhook-timestamp": str(stamp)}
        assert (
            call(port, "POST", "/v1/events", body, **headers, **{"webhook-signature": signature})
            == 202
        )
        assert (
            call(port, "POST", "/v1/events", body, **headers, **{"webhook-signature": signature})
            == 401
        )
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "senders: hmac (hmac)" in err.decode()
    assert secret[6:] not in err.decode()
