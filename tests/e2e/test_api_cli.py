"""`warden run` with api.port, and `warden api` alone: the console and API as a user starts them.

Real processes, real sockets: the token printed by `warden user add` opens the API, no
token gets 401, and a busy port or a missing state ends the command with one line.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.cli import ENV, WARDEN, one_error_line, warden
from warden.demo import free_port

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, api_port: int) -> Path:
    path = tmp_path / "warden.yaml"
    raw = {
        "state_dir": "state",
        "services": [{"name": "orders", "health": "http://127.0.0.1:9/health", "managed": False}],
        "api": {"host": "127.0.0.1", "port": api_port},
    }
    path.write_text(json.dumps(raw))
    return path


def _token(tmp_path: Path) -> str:
    added = warden("user", "add", "root", "--role", "admin", "-s", "state", cwd=tmp_path)
    assert added.returncode == 0, added.stdout + added.stderr
    found = re.search(r"wdn_[A-Za-z0-9_-]+", added.stdout)
    assert found is not None, added.stdout
    return found.group(0)


def _wait_up(url: str, child: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert child.poll() is None, child.communicate()
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the API did not come up"
        time.sleep(0.05)


def _check(url: str, token: str) -> None:
    assert httpx.get(f"{url}/api/incidents", timeout=10).status_code == 401
    me = httpx.get(f"{url}/api/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert me.json() == {"name": "root", "role": "admin"}
    page = httpx.get(f"{url}/console", timeout=10)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/console"


def test_run_serves_the_api_and_console_on_the_configured_port(tmp_path: Path) -> None:
    token = _token(tmp_path)
    port = free_port()
    path = _config(tmp_path, port)
    child = subprocess.Popen(
        [*WARDEN, "run", "-c", str(path), "--duration", "20", "--metrics-port", "0"],
        cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_up(url, child)
        _check(url, token)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, out + err
    assert f"console and API at {url}/console" in out


def test_warden_api_serves_a_state_directory_until_interrupted(tmp_path: Path) -> None:
    token = _token(tmp_path)
    port = free_port()
    child = subprocess.Popen(
        [*WARDEN, "api", "-s", "state", "--port", str(port)],
        cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_up(url, child)
        _check(url, token)
        openapi = httpx.get(
            f"{url}/api/openapi.json", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).json()
        assert "/api/approvals/{incident_id}/approve" in openapi["paths"]
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, out + err
    assert f"Warden API and console at {url}/console" in out
    assert "Traceback" not in out + err


def test_api_without_state_or_on_a_busy_port_says_so_in_one_line(
    tmp_path: Path, busy_port: int
) -> None:
    missing = warden("api", "-s", "nowhere", cwd=tmp_path)
    one_error_line(missing, "no Warden state in nowhere/")
    _token(tmp_path)
    busy = warden("api", "-s", "state", "--port", str(busy_port), cwd=tmp_path)
    one_error_line(busy, f"the API cannot listen on 127.0.0.1:{busy_port}", "choose another")
    path = _config(tmp_path, busy_port)
    run = warden("run", "-c", str(path), "--duration", "5", "--metrics-port", "0", cwd=tmp_path)
    one_error_line(run, f"the API cannot listen on 127.0.0.1:{busy_port}")
