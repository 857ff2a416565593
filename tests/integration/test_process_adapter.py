"""LocalProcessAdapter against real processes: the demo fleet, crashes, restarts, groups."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.builders import wait_for
from warden.demo import free_port
from warden.domain.errors import ConfigError, ValidationError
from warden.execution.adapters import LocalProcessAdapter, ProcessSpec
from warden.ingest.probes import HttpProbe

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

SERVICES = ("gateway", "orders", "payments")


def gone(pid: int) -> bool:
    """True when no such process exists, or only its zombie waits for another reaper."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def get(url: str, timeout_s: float = 3.0) -> tuple[int, dict[str, Any]]:
    host_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
    try:
        conn.request("GET", "/" + path)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def distinct_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def demo_spec(name: str, port: int, downstream: int | None = None) -> ProcessSpec:
    argv = [sys.executable, "-m", "warden.demo.service", "--name", name, "--port", str(port)]
    if downstream is not None:
        argv += ["--downstream", f"http://127.0.0.1:{downstream}"]
    return ProcessSpec(name=name, argv=tuple(argv), stop_timeout_s=3.0)


def python_spec(name: str, code: str, **kwargs: Any) -> ProcessSpec:
    return ProcessSpec(name=name, argv=(sys.executable, "-c", code), **kwargs)


def every_pid(adapter: LocalProcessAdapter) -> list[int]:
    return [pid for s in adapter.statistics().services for pid in s.pids]


@dataclass
class Fleet:
    adapter: LocalProcessAdapter
    ports: dict[str, int]

    def url(self, name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def probe(self, name: str) -> HttpProbe:
        return HttpProbe(self.url(name, "/health"), timeout_s=0.5)

    def healthy(self, name: str) -> Callable[[], bool]:
        return lambda: self.probe(name).check().ok


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    ports = dict(zip(SERVICES, distinct_ports(3), strict=True))
    specs = [
        demo_spec("gateway", ports["gateway"], downstream=ports["orders"]),
        demo_spec("orders", ports["orders"], downstream=ports["payments"]),
        demo_spec("payments", ports["payments"]),
    ]
    adapter = LocalProcessAdapter(specs, tmp_path / "logs")
    try:
        yield Fleet(adapter, ports)
    finally:
        adapter.stop_all()
        for pid in every_pid(adapter):
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)


@pytest.fixture
def make_adapter(tmp_path: Path) -> Iterator[Callable[..., LocalProcessAdapter]]:
    made: list[LocalProcessAdapter] = []

    def make(*specs: ProcessSpec, **kwargs: Any) -> LocalProcessAdapter:
        adapter = LocalProcessAdapter(specs, tmp_path / "logs", **kwargs)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.stop_all()
        for pid in every_pid(adapter):
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)


SLEEPER = "import time; time.sleep(60)"


# -- the demo fleet: crash, detect, restart ----------------------------------------------


def test_fleet_survives_an_external_kill_and_a_restart(fleet: Fleet) -> None:
    adapter = fleet.adapter
    results = adapter.start_all()
    assert all(r.ok for r in results.values()), results
    for name in SERVICES:
        wait_for(fleet.healthy(name), f"{name} healthy")

    status, body = get(fleet.url("gateway", "/checkout"))
    assert status == 200
    assert body["chain"] == ["gateway", "orders", "payments"]
    status, body = get(fleet.url("payments", "/health"))
    old_pid = adapter.pid("payments")
    assert body == {"service": "payments", "status": "ok", "pid": old_pid, "version": "v1"}

    # Chaos: SIGKILL to payments' group, behind the adapter's back.
    assert adapter.kill("payments", signal.SIGKILL)
    wait_for(
        lambda: fleet.probe("payments").check().error == "connection refused",
        "payments probe to report connection refused",
    )
    result = fleet.probe("payments").check()
    assert not result.ok
    assert result.status is None
    # The kernel closes a killed process's sockets a moment before its parent can reap
    # it: on a busy machine the probe can see the refusal first.
    wait_for(lambda: not adapter.running("payments"), "payments reaped")
    assert adapter.pid("payments") is None
    assert adapter.check("start_service", "payments") is False
    assert adapter.running("orders")

    status, body = get(fleet.url("gateway", "/checkout"))
    assert status == 502
    assert body["failed_hop"] == f"orders -> http://127.0.0.1:{fleet.ports['payments']}"
    assert body["error"] == "connection refused"

    restarted = adapter.run("restart_service", "payments", {})
    assert restarted.ok, restarted.detail
    new_pid = restarted.output["pid"]
    assert new_pid != old_pid
    assert restarted.output["previous_pid"] == old_pid
    assert restarted.output["was_running"] is False
    wait_for(fleet.healthy("payments"), "payments healthy again")
    assert adapter.check("restart_service", "payments") is True

    status, body = get(fleet.url("gateway", "/checkout"))
    assert status == 200
    assert body["chain"] == ["gateway", "orders", "payments"]

    stats = adapter.statistics().service("payments")
    assert stats.pid == new_pid
    assert stats.pids == (old_pid, new_pid)
    assert stats.starts == 2
    assert stats.restarts == 1
    assert stats.last_exit_code == -signal.SIGKILL
    assert stats.started_at is not None

    stopped = adapter.stop_all()
    assert all(r.ok for r in stopped.values())
    assert all(r.output["graceful"] for r in stopped.values()), stopped
    assert all(r.output["exit_code"] == 0 for r in stopped.values()), stopped
    assert len(every_pid(adapter)) == 4
    for pid in every_pid(adapter):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_service_output_goes_to_its_log_file(fleet: Fleet) -> None:
    adapter = fleet.adapter
    adapter.start("payments")
    wait_for(fleet.healthy("payments"), "payments healthy")
    adapter.stop("payments")
    log = adapter.log_path("payments").read_text()
    assert "payments: listening on" in log
    assert "payments: GET /health 200" in log
    assert "payments: stopped" in log


# -- idempotence, checks and statistics ---------------------------------------------------


def test_start_is_idempotent(make_adapter: Callable[..., LocalProcessAdapter]) -> None:
    adapter = make_adapter(python_spec("worker", SLEEPER))
    first = adapter.run("start_service", "worker", {})
    second = adapter.run("start_service", "worker", {})
    assert first.ok
    assert second.ok
    assert first.output == {"pid": first.output["pid"], "started": True}
    assert second.output == {"pid": first.output["pid"], "started": False}
    assert "already running" in second.detail
    stats = adapter.statistics().service("worker")
    assert stats.starts == 1
    assert stats.pids == (first.output["pid"],)


def test_stop_is_idempotent(make_adapter: Callable[..., LocalProcessAdapter]) -> None:
    adapter = make_adapter(python_spec("worker", SLEEPER))
    never_started = adapter.run("stop_service", "worker", {})
    assert never_started.ok
    assert "already stopped" in never_started.detail
    pid = adapter.start("worker").output["pid"]
    stopped = adapter.run("stop_service", "worker", {})
    again = adapter.run("stop_service", "worker", {})
    assert stopped.ok
    assert again.ok
    assert stopped.output["pid"] == pid
    assert stopped.output["exit_code"] == -signal.SIGTERM
    assert "already stopped" in again.detail
    assert not adapter.running("worker")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_check_reports_whether_the_effect_holds(
    make_adapter: Callable[..., LocalProcessAdapter],
) -> None:
    adapter = make_adapter(python_spec("worker", SLEEPER))
    assert adapter.check("start_service", "worker") is False
    assert adapter.check("stop_service", "worker") is True
    assert adapter.check("restart_service", "worker") is False

    adapter.start("worker")
    assert adapter.check("start_service", "worker") is True
    assert adapter.check("stop_service", "worker") is False
    # Running, but no restart was run by this adapter: cannot tell.
    assert adapter.check("restart_service", "worker") is None

    before = adapter.pid("worker")
    result = adapter.restart("worker")
    assert result.ok
    assert result.output["previous_pid"] == before
    assert result.output["was_running"] is True
    assert adapter.pid("worker") != before
    assert adapter.check("restart_service", "worker") is True

    adapter.kill("worker")
    wait_for(lambda: not adapter.running("worker"), "worker to die")
    assert adapter.check("restart_service", "worker") is False

    assert adapter.check("scale_out", "worker") is None
    assert adapter.check("start_service", "nope") is None


def test_statistics_use_the_given_clock(make_adapter: Callable[..., LocalProcessAdapter]) -> None:
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    class FixedClock:
        def now(self) -> datetime:
            return at

    adapter = make_adapter(python_spec("worker", SLEEPER), clock=FixedClock())
    before = adapter.statistics().service("worker")
    assert (before.running, before.pid, before.started_at, before.starts) == (False, None, None, 0)
    adapter.start("worker")
    after = adapter.statistics().service("worker")
    assert after.running
    assert after.started_at == at
    assert after.pid == adapter.pid("worker")
    with pytest.raises(KeyError):
        adapter.statistics().service("nope")


def test_context_manager_leaves_nothing_running(tmp_path: Path) -> None:
    with LocalProcessAdapter([python_spec("worker", SLEEPER)], tmp_path) as adapter:
        adapter.start_all()
        pid = adapter.pid("worker")
        assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# -- stopping: escalation and process groups ----------------------------------------------

IGNORES_SIGTERM = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)

SPAWNS_CHILD = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print('child', child.pid, flush=True)\n"
    "{rest}\n"
)


def child_pid(adapter: LocalProcessAdapter, name: str) -> int:
    log = adapter.log_path(name)
    wait_for(lambda: log.exists() and "child " in log.read_text(), "the child's pid")
    return int(log.read_text().split("child ", 1)[1].split()[0])


def test_stop_escalates_to_sigkill(make_adapter: Callable[..., LocalProcessAdapter]) -> None:
    adapter = make_adapter(python_spec("stubborn", IGNORES_SIGTERM, stop_timeout_s=0.3))
    adapter.start("stubborn")
    log = adapter.log_path("stubborn")
    wait_for(lambda: log.exists() and "ready" in log.read_text(), "stubborn to ignore SIGTERM")
    result = adapter.stop("stubborn")
    assert result.ok
    assert result.output["graceful"] is False
    assert result.output["exit_code"] == -signal.SIGKILL
    assert "killed after 0.3 s" in result.detail


def test_stop_all_kills_the_whole_group(make_adapter: Callable[..., LocalProcessAdapter]) -> None:
    adapter = make_adapter(python_spec("parent", SPAWNS_CHILD.format(rest="time.sleep(60)")))
    adapter.start_all()
    child = child_pid(adapter, "parent")
    assert not gone(child)
    adapter.stop_all()
    wait_for(lambda: gone(child), "the child to be killed with its group")


def test_a_dead_leader_leaves_no_orphans(make_adapter: Callable[..., LocalProcessAdapter]) -> None:
    adapter = make_adapter(python_spec("parent", SPAWNS_CHILD.format(rest="sys.exit(3)")))
    adapter.start("parent")
    child = child_pid(adapter, "parent")
    wait_for(lambda: not adapter.running("parent"), "the leader to exit")
    assert adapter.statistics().service("parent").last_exit_code == 3
    wait_for(lambda: gone(child), "the orphaned child to be killed")


# -- refusals ------------------------------------------------------------------------------


def test_unknown_target_lists_the_known_names(
    make_adapter: Callable[..., LocalProcessAdapter],
) -> None:
    adapter = make_adapter(python_spec("alpha", SLEEPER), python_spec("beta", SLEEPER))
    result = adapter.run("restart_service", "gamma", {})
    assert not result.ok
    assert result.detail == "unknown service 'gamma' (known: alpha, beta)"
    assert every_pid(adapter) == []


def test_unknown_action_and_parameters_are_refused(
    make_adapter: Callable[..., LocalProcessAdapter],
) -> None:
    adapter = make_adapter(python_spec("alpha", SLEEPER))
    unknown = adapter.run("scale_out", "alpha", {})
    assert not unknown.ok
    assert "known: restart_service, start_service, stop_service" in unknown.detail
    with_params = adapter.run("start_service", "alpha", {"replicas": 2})
    assert not with_params.ok
    assert "takes no parameters" in with_params.detail
    assert every_pid(adapter) == []


def test_direct_calls_refuse_an_unknown_name(
    make_adapter: Callable[..., LocalProcessAdapter],
) -> None:
    adapter = make_adapter(python_spec("alpha", SLEEPER))
    with pytest.raises(ValidationError, match=r"unknown service 'nope'.*known: alpha"):
        adapter.pid("nope")
    with pytest.raises(ValidationError):
        adapter.kill("nope")


def test_a_program_that_cannot_start_is_reported(
    make_adapter: Callable[..., LocalProcessAdapter], tmp_path: Path
) -> None:
    adapter = make_adapter(ProcessSpec(name="ghost", argv=(str(tmp_path / "no-such-program"),)))
    result = adapter.run("start_service", "ghost", {})
    assert not result.ok
    assert result.detail.startswith("cannot start ghost: No such file or directory")
    assert not adapter.running("ghost")
    assert adapter.kill("ghost") is False


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ("python -m warden.demo.service", "is a string"),
        (b"python", "is a string"),
        ((), "is empty"),
        ([], "is empty"),
        (("python", 3), r"argv\[1\] is int"),
        (("",), r"argv\[0\] is empty"),
        (None, "must be a list"),
    ],
)
def test_argv_must_be_a_non_empty_list_of_strings(argv: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ProcessSpec(name="svc", argv=argv)


def test_a_list_argv_becomes_a_tuple() -> None:
    spec = ProcessSpec(name="svc", argv=["python", "-V"], env={"A": "1"})  # type: ignore[arg-type]
    assert spec.argv == ("python", "-V")
    with pytest.raises(TypeError):
        spec.env["B"] = "2"  # type: ignore[index]


@pytest.mark.parametrize("name", ["", "has space", "../up", "-flag"])
def test_names_must_be_safe_file_names(name: str) -> None:
    with pytest.raises(ConfigError, match="process name"):
        ProcessSpec(name=name, argv=("true",))


def test_bad_env_and_timeout_are_refused() -> None:
    with pytest.raises(ConfigError, match="env must map strings to strings"):
        ProcessSpec(name="svc", argv=("true",), env={"PORT": 8080})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="stop_timeout_s must be a number of seconds"):
        ProcessSpec(name="svc", argv=("true",), stop_timeout_s=-1)


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="declared twice"):
        LocalProcessAdapter([python_spec("a", SLEEPER), python_spec("a", SLEEPER)], tmp_path)


# -- taking over the processes of a Warden that stopped without stopping them --------------

LEFT_BEHIND = """
import os, sys
from warden.execution.adapters import LocalProcessAdapter, ProcessSpec
spec = ProcessSpec(name=sys.argv[2], argv=tuple(sys.argv[3:]))
adapter = LocalProcessAdapter([spec], sys.argv[1])
print(adapter.start(spec.name).output["pid"], flush=True)
os._exit(0)  # Warden dies: nothing is stopped
"""


def start_and_die(log_dir: Path, spec: ProcessSpec) -> int:
    done = subprocess.run(
        [sys.executable, "-c", LEFT_BEHIND, str(log_dir), spec.name, *spec.argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return int(done.stdout.strip())


def test_a_new_adapter_takes_over_what_a_dead_one_left_running(tmp_path: Path) -> None:
    spec = python_spec("worker", SLEEPER)
    orphan = start_and_die(tmp_path / "logs", spec)
    assert not gone(orphan)
    adapter = LocalProcessAdapter([spec], tmp_path / "logs")
    try:
        stats = adapter.statistics().service("worker")
        assert (stats.running, stats.pid, stats.adopted) == (True, orphan, True)
        again = adapter.start("worker")
        assert again.output == {"pid": orphan, "started": False}  # no second copy
        assert adapter.check("start_service", "worker") is True

        restarted = adapter.restart("worker")
        assert restarted.ok and restarted.output["previous_pid"] == orphan
        wait_for(lambda: gone(orphan), "the taken-over process to end")
        assert adapter.check("restart_service", "worker") is True
        assert adapter.statistics().service("worker").adopted is False
    finally:
        adapter.stop_all()
    assert all(gone(pid) for pid in every_pid(adapter))
    assert not (tmp_path / "logs" / "worker.pid").exists()


def test_a_recorded_pid_that_is_another_process_now_is_not_taken_over(tmp_path: Path) -> None:
    spec = python_spec("worker", SLEEPER)
    (tmp_path / "logs").mkdir()
    # pid 1 runs, but not with this start time or argv: a stale record, not our process.
    record = {"pid": 1, "start_ticks": "1", "argv": list(spec.argv)}
    (tmp_path / "logs" / "worker.pid").write_text(json.dumps(record))
    adapter = LocalProcessAdapter([spec], tmp_path / "logs")
    try:
        assert adapter.statistics().service("worker").running is False
        assert not (tmp_path / "logs" / "worker.pid").exists()
        started = adapter.start("worker")
        assert started.output["started"] is True
        assert started.output["pid"] != 1
    finally:
        adapter.stop_all()


def test_an_adopted_process_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    spec = python_spec("stubborn", IGNORES_SIGTERM, stop_timeout_s=0.3)
    orphan = start_and_die(tmp_path / "logs", spec)
    adapter = LocalProcessAdapter([spec], tmp_path / "logs")
    log = adapter.log_path("stubborn")
    wait_for(lambda: log.exists() and "ready" in log.read_text(), "stubborn to ignore SIGTERM")
    stopped = adapter.stop("stubborn")
    assert stopped.ok and stopped.output == {"pid": orphan, "exit_code": None, "graceful": False}
    wait_for(lambda: gone(orphan), "the stubborn process to be killed")
