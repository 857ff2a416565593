"""TCP and command health checks from warden.yaml, and the failure kind every probe reports.

Real sockets, real servers and real child processes; the kind reaches the log and the
folded health, where it tells a fault of the process from a fault of the path.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from warden.assembly import build, health_probe
from warden.config import parse_config
from warden.demo import free_port
from warden.domain import events as ev
from warden.domain import health as kinds
from warden.domain.errors import ConfigError
from warden.ingest.probes import (
    CommandProbe,
    HttpProbe,
    TcpProbe,
    network_failure_kind,
    tcp_address,
)
from warden.testing import ManualClock

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PY = sys.executable


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP socket that accepts connections into its backlog and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.fixture
def forbidden() -> Iterator[int]:
    """An HTTP server answering 403 to everything, as a proxy or a policy in between would."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join()


# -- kinds from real failures --------------------------------------------------------------


def test_refused_points_at_the_process_for_tcp_and_http() -> None:
    port = free_port()
    for result in (
        TcpProbe("127.0.0.1", port, 1.0).check(),
        HttpProbe(f"http://127.0.0.1:{port}/health", 1.0).check(),
    ):
        assert (result.ok, result.kind, result.error) == (
            False,
            kinds.REFUSED,
            "connection refused",
        )


def test_a_silent_listener_is_hung_and_a_403_is_an_http_status(
    listener: int, forbidden: int
) -> None:
    silent = HttpProbe(f"http://127.0.0.1:{listener}/health", 0.2).check()
    # Connected, then nothing: the process is there and answers nothing.
    assert (silent.kind, silent.status) == (kinds.HUNG, None)
    denied = HttpProbe(f"http://127.0.0.1:{forbidden}/health", 1.0).check()
    assert (denied.kind, denied.status, denied.error) == (kinds.HTTP_STATUS, 403, "HTTP 403")
    assert TcpProbe("127.0.0.1", listener, 1.0).check().ok


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), kinds.DNS),
        (OSError(113, "No route to host"), kinds.UNREACHABLE),
        (ConnectionResetError(104, "Connection reset by peer"), kinds.RESET),
        (TimeoutError(), kinds.TIMEOUT),
        (PermissionError(13, "Permission denied"), kinds.OTHER),
    ],
)
def test_network_errors_have_a_kind(exc: BaseException, kind: str) -> None:
    # A name that does not resolve would need a real resolver: the error it raises is used.
    assert network_failure_kind(exc) == kind


def test_a_check_command_exit_code_and_last_line_are_the_failure() -> None:
    script = "import sys; print('starting'); print('replica lag 93 s'); sys.exit(3)"
    result = CommandProbe([PY, "-c", script], 5.0, env={}).check()
    assert not result.ok
    assert (result.kind, result.exit_code) == (kinds.EXIT_CODE, 3)
    assert result.error == "check command exit code 3: replica lag 93 s"
    assert CommandProbe([PY, "-c", "pass"], 5.0, env={}).check().ok


def test_a_check_command_that_overruns_is_killed_with_what_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time;"
        f" child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f" open({str(pid_file)!r}, 'w').write(str(child.pid)); time.sleep(60)"
    )
    result = CommandProbe([PY, "-c", script], 1.0, env={}).check()
    assert (result.ok, result.kind) == (False, kinds.TIMEOUT)
    assert result.error == "check command timed out after 1 s"
    grandchild = int(pid_file.read_text())
    # Not ours to reap: it must be gone (or a zombie) once the SIGKILL is delivered.
    deadline = time.monotonic() + 10
    while _state_of(grandchild) not in ("", "Z"):
        assert time.monotonic() < deadline, f"grandchild {grandchild} outlived its check"
        time.sleep(0.01)


def _state_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return ""


def test_a_check_command_that_cannot_run_says_so() -> None:
    result = CommandProbe(["/nonexistent/pg_isready"], 1.0, env={}).check()
    assert (result.ok, result.kind) == (False, kinds.NOT_RUN)
    assert result.error.startswith("cannot run /nonexistent/pg_isready: no such file")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("tcp://127.0.0.1", "needs a port"),
        ("tcp://127.0.0.1:0", "needs a port"),
        ("tcp://:5432", "not tcp://host:port"),
        ("tcp://127.0.0.1:5432/db", "no path"),
    ],
)
def test_tcp_addresses_are_checked(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tcp_address(url)
    assert tcp_address("tcp://db.internal:5432") == ("db.internal", 5432)


# -- from warden.yaml to the log ---------------------------------------------------------


def _config(tmp_path: Path, services: list[dict[str, Any]]) -> Any:
    return parse_config({"state_dir": "state", "services": services}, tmp_path)


def test_health_forms_build_their_probes_and_commands_get_a_minimal_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARDEN_AUDIT_SECRET", "never-in-a-child")
    check = (
        "import os, sys; sys.exit(0 if os.environ.get('ROLE') == 'replica'"
        " and 'WARDEN_AUDIT_SECRET' not in os.environ else 7)"
    )
    config = _config(
        tmp_path,
        [
            {"name": "db", "health": "tcp://127.0.0.1:5432"},
            {
                "name": "replica",
                "health": {"command": [PY, "-c", check], "timeout_s": 5},
                "env": {"ROLE": "replica"},
            },
            {"name": "web", "health": "http://127.0.0.1:8080/health"},
        ],
    )
    db, replica, web = (health_probe(s, config) for s in config.services)
    assert isinstance(db, TcpProbe) and (db.host, db.port) == ("127.0.0.1", 5432)
    assert isinstance(replica, CommandProbe) and replica.timeout_s == 5
    assert repr(replica) == f"CommandProbe({PY!r} + 2 arguments, timeout_s=5)"  # no arguments
    assert isinstance(web, HttpProbe)
    assert replica.check().ok  # ROLE came from env:, the secret did not come at all
    assert set(replica.env) <= {"PATH", "HOME", "LANG", "ROLE"}


def test_the_failure_kind_reaches_the_log_and_the_folded_health(tmp_path: Path) -> None:
    fail = "import sys; print('not accepting connections'); sys.exit(2)"
    config = _config(
        tmp_path,
        [
            {"name": "db", "health": f"tcp://127.0.0.1:{free_port()}"},
            {"name": "replica", "health": {"command": [PY, "-c", fail], "timeout_s": 5}},
        ],
    )
    clock = ManualClock(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    warden = build(config, clock)
    try:
        runtime = warden.runtime
        for name, probe in sorted(runtime.probes.items()):
            runtime.record_probe(name, repr(probe), probe.check(), "watch")
        runtime.tail()
        failed = {e.data["service"]: e.data for e in warden.store.read_all()
                  if e.type == ev.PROBE_FAILED}  # fmt: skip
        assert failed["db"]["kind"] == kinds.REFUSED
        assert (failed["replica"]["kind"], failed["replica"]["exit_code"]) == (kinds.EXIT_CODE, 2)
        assert "not accepting connections" in failed["replica"]["error"]
        health = runtime.world().health
        assert health["db"].last_kind == kinds.REFUSED and health["db"].process_fault
        assert health["replica"].process_fault and not health["replica"].path_fault
    finally:
        warden.close()
