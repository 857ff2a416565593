"""Faults of input and environment, as a user meets them: one line, never a traceback.

A poisoned POST does not stop `warden run`; a source that cannot listen, a busy metrics
port and a damaged events.db each end the command with `error: ...` and exit code 2.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest

from tests.cli import ENV, WARDEN, one_error_line, warden
from warden.demo import free_port
from warden.domain.events import Event
from warden.store.sqlite import SQLiteEventStore

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow


def config(tmp_path: Path, port: object) -> Path:
    path = tmp_path / "warden.yaml"
    raw = {
        "state_dir": "state",
        "services": [{"name": "orders", "health": "http://127.0.0.1:9/health", "managed": False}],
        "sources": {"webhook": {"host": "127.0.0.1", "port": port, "insecure": True}},
    }
    path.write_text(json.dumps(raw))  # JSON is YAML
    return path


def test_a_webhook_on_a_busy_port_stops_run_with_one_line(tmp_path: Path, busy_port: int) -> None:
    path = config(tmp_path, busy_port)
    result = warden("run", "-c", str(path), "--duration", "30", "--metrics-port", "0", cwd=tmp_path)
    one_error_line(result, "webhook", f"127.0.0.1:{busy_port}", "in use")


def test_a_webhook_on_a_bad_port_is_a_config_error(tmp_path: Path) -> None:
    path = config(tmp_path, 70000)
    result = warden("run", "-c", str(path), "--duration", "30", "--metrics-port", "0", cwd=tmp_path)
    one_error_line(result, "sources.webhook.port", "70000", "65535")


def test_a_busy_metrics_port_is_one_line(tmp_path: Path, busy_port: int) -> None:
    path = config(tmp_path, free_port())
    result = warden("run", "-c", str(path), "--duration", "30", "--metrics-port", str(busy_port),
                    cwd=tmp_path)  # fmt: skip
    one_error_line(result, f"metrics on 127.0.0.1:{busy_port}", "--metrics-port")


def damaged_state(tmp_path: Path, how: str) -> Path:
    state = tmp_path / ".warden"
    state.mkdir()
    db = state / "events.db"
    if how == "not a database":
        db.write_bytes(b"this is not a database\n" * 400)
        return db
    store = SQLiteEventStore(db)
    for n in range(400):
        event = Event(id=f"e{n}", source="test://x", type="warden.webhook.received",
                      time="2026-11-25T12:00:00.000000Z", data={"n": n, "pad": "x" * 200})  # fmt: skip
        store.append("service-orders", [event])
    store.close()
    (state / "events.db-wal").unlink(missing_ok=True)
    size = db.stat().st_size
    with db.open("r+b") as f:  # keep the header, lose the pages after it
        f.truncate(size // 3)
    return db


@pytest.mark.parametrize("how", ["not a database", "truncated"])
@pytest.mark.parametrize(
    "command",
    [
        ["incidents"],
        ["report"],
        ["quarantine", "list"],
        ["killswitch", "engage", "--as", "alice"],
        ["shadow"],
    ],
)
def test_a_damaged_events_db_is_one_line_naming_the_file(
    tmp_path: Path, how: str, command: list[str]
) -> None:
    db = damaged_state(tmp_path, how)
    result = warden(*command, cwd=tmp_path)
    one_error_line(result, str(db.relative_to(tmp_path)), "restore it from a backup")


def post(port: int, body: bytes) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/events", data=body, method="POST",
        headers={"Content-Type": "application/cloudevents+json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def wait_for_webhook(port: int, child: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert child.poll() is None, child.communicate()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            assert time.monotonic() < deadline, "the webhook did not come up"
            time.sleep(0.05)


def test_a_lone_surrogate_is_refused_and_run_goes_on(tmp_path: Path) -> None:
    port = free_port()
    path = config(tmp_path, port)
    child = subprocess.Popen(
        [*WARDEN, "run", "-c", str(path), "--duration", "8", "--metrics-port", "0"],
        cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_webhook(port, child)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        event = {"specversion": "1.0", "id": "poison", "source": "test://x", "time": stamp,
                 "type": "warden.webhook.received", "data": {"s": "\ud800"}}  # fmt: skip
        body = json.dumps(event).encode()  # ASCII: the lone surrogate as a \ud800 escape
        assert b"\\ud800" in body
        assert post(port, body) == 400
        fine = json.dumps({**event, "id": "fine", "data": {"s": "ok"}}).encode()
        assert post(port, fine) == 202
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, out + err
    assert "Traceback" not in out + err
    listed = warden("quarantine", "list", "--state-dir", "state", cwd=tmp_path)
    assert "lone surrogate" in listed.stdout, listed.stdout + listed.stderr
    verified = warden("audit", "verify", "--state-dir", "state", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
