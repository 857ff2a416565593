"""`warden run` feeds connectors declared in warden.yaml into the same quality gates."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import TYPE_CHECKING

import pytest

from warden.app import build
from warden.config import parse_config
from warden.demo import free_port
from warden.domain.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path


def settings(tmp_path: Path, port: int, **webhook: object) -> object:
    return parse_config(
        {
            "state_dir": str(tmp_path / "state"),
            "services": [
                {"name": "orders", "health": "http://127.0.0.1:9/health", "managed": False}
            ],
            "sources": {"webhook": {"host": "127.0.0.1", "port": port, **webhook}},
        },
        tmp_path,
    )


def test_webhook_source_runs_with_warden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "s3cret")
    port = free_port()
    warden = build(settings(tmp_path, port, token_env="HOOK_TOKEN"))  # type: ignore[arg-type]
    warden.start()
    try:
        event = {
            "specversion": "1.0", "id": "m-1", "source": "test://metrics",
            "type": "warden.metric.sampled", "subject": "orders",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "data": {"service": "orders", "metric": "backlog", "value": 1200},
        }  # fmt: skip
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/events",
            data=json.dumps(event).encode(),
            headers={
                "Content-Type": "application/cloudevents+json",
                "Authorization": "Bearer s3cret",
            },
            method="POST",
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5) as reply:
                    assert reply.status == 202
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # the server thread is still binding
        stored = [e for e in warden.store.read_all() if e.id == "m-1"]
        assert len(stored) == 1
        assert stored[0].stream == "service-orders"
    finally:
        warden.close()


def test_missing_token_env_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\$NOPE_NOT_SET is not set"):
        build(settings(tmp_path, free_port(), token_env="NOPE_NOT_SET"))  # type: ignore[arg-type]
