"""A real Alertmanager for integration tests: its binary, a config, and one way to run it.

Shared by the tests that run Alertmanager against Warden's webhook; they skip when the
`prometheus-alertmanager` binary (Debian package) is missing.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

import pytest

from tests.builders import wait_for
from warden.demo import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
TOKEN = "s3cret-token-0123456789"

needs_alertmanager = pytest.mark.skipif(
    BINARY is None,
    reason="Alertmanager binary not found: `apt-get install -y prometheus-alertmanager`",
)

CONFIG = """
route:
  receiver: warden
  group_by: ['alertname']
  group_wait: 100ms
  group_interval: 400ms
  repeat_interval: 800ms
receivers:
  - name: warden
    webhook_configs:
      - url: {url}/v1/alertmanager
        send_resolved: true
        http_config:
{http_config}
"""
# Alertmanager's own receiver credentials, one per scheme Warden takes from it.
HTTP_CONFIGS = {
    "bearer": "          authorization: {{type: Bearer, credentials: {token}}}",
    "basic": "          basic_auth: {{username: alertmanager, password: {token}}}",
}


def post_alerts(port: int, alerts: list[dict[str, Any]]) -> None:
    """Post alerts to Alertmanager's API, as Prometheus does."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(
            "POST", "/api/v2/alerts", json.dumps(alerts), {"Content-Type": "application/json"}
        )
        response = conn.getresponse()
        assert response.status == 200, response.read()
        response.read()
    finally:
        conn.close()


def ready(port: int) -> bool:
    """Whether Alertmanager on ``port`` says it is ready."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/-/ready")
        response = conn.getresponse()
        response.read()
        return response.status == 200
    except OSError:
        return False
    finally:
        conn.close()


@contextlib.contextmanager
def running_alertmanager(tmp_path: Path, webhook_url: str, scheme: str = "bearer") -> Iterator[int]:
    """Alertmanager posting to ``webhook_url`` with ``scheme`` credentials; yields its port."""
    assert BINARY is not None
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    http_config = HTTP_CONFIGS[scheme].format(token=TOKEN)
    config.write_text(CONFIG.format(url=webhook_url, http_config=http_config), encoding="utf-8")
    log = (tmp_path / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: ready(port) or process.poll() is not None, "Alertmanager to be ready")
        assert process.poll() is None, (tmp_path / "alertmanager.log").read_text()
        yield port
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
