"""Catalog actions reach outside systems through adapters declared in warden.yaml."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from warden.assembly import build
from warden.config import parse_config
from warden.domain.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def deploy_api() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(
                {
                    "path": self.path,
                    "body": json.loads(body),
                    "key": self.headers.get("Idempotency-Key"),
                }
            )
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def config(tmp_path: Path, actions: dict[str, Any]) -> Any:
    return parse_config(
        {
            "state_dir": str(tmp_path / "state"),
            "services": [
                {"name": "payments", "health": "http://127.0.0.1:9/health", "managed": False}
            ],
            "actions": actions,
        },
        tmp_path,
    )


def test_configured_http_action_runs_through_the_executor_map(
    tmp_path: Path, deploy_api: tuple[str, list[dict[str, Any]]]
) -> None:
    url, seen = deploy_api
    settings = config(
        tmp_path,
        {"rollback_deploy": {"adapter": "http", "url": url + "/deploys/{target}/rollback",
                             "body": {"version": "{version}"}}},
    )  # fmt: skip
    warden = build(settings)
    try:
        adapter = warden.runtime.executor.adapters["rollback_deploy"]
        result = adapter.run(
            "rollback_deploy", "payments", {"version": "1.4.2", "idempotency_key": "k1"}
        )
        assert result.ok, result.detail
        assert seen == [
            {"path": "/deploys/payments/rollback", "body": {"version": "1.4.2"}, "key": "k1"}
        ]
        assert "restart_service" in warden.runtime.executor.adapters
    finally:
        warden.close()


def test_an_action_outside_the_catalog_is_refused(tmp_path: Path) -> None:
    settings = config(
        tmp_path, {"launch_missiles": {"adapter": "http", "url": "http://127.0.0.1:9/x"}}
    )
    with pytest.raises(ConfigError, match="launch_missiles not in the catalog"):
        build(settings)
