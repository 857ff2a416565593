"""Fault injection and probes for the Chaos Toolkit experiments in chaos/.

Independent of Warden: the standard library only, and nothing of Warden's code. It finds
the fleet from the ``fleet.json`` that ``warden drill --serve`` writes (service URLs),
finds processes the way an operator would (the pid a service reports on ``/health``),
and injects faults with signals and the services' admin routes.

``python chaos/fleetfaults.py env FLEET_JSON`` prints the variables the experiments read.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from typing import Any

__all__ = [
    "corrupt_next_batch",
    "deploy",
    "hang_service",
    "kill_service",
    "pipeline_flowing",
    "quarantine_stuck_batch",
    "resume_service",
    "set_slow",
    "wait_for_steady_state",
]

SHOP = ("gateway", "orders", "payments")


def _fleet(fleet_file: str) -> dict[str, Any]:
    with open(fleet_file, encoding="utf-8") as f:
        fleet: dict[str, Any] = json.load(f)
    return fleet


def _url(fleet_file: str, service: str, path: str) -> str:
    return str(_fleet(fleet_file)["services"][service]) + path


def _get(url: str, timeout: float = 1.0) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except (urllib.error.URLError, OSError, ValueError):
        return 0, {}


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=3.0) as reply:
        answer: dict[str, Any] = json.loads(reply.read() or b"{}")
        return answer


def _pid(fleet_file: str, service: str) -> int:
    status, body = _get(_url(fleet_file, service, "/health"), timeout=2.0)
    if status != 200 or "pid" not in body:
        raise RuntimeError(f"{service} does not answer /health; cannot find its pid")
    return int(body["pid"])


def _signal(fleet_file: str, service: str, sig: signal.Signals) -> dict[str, Any]:
    pid = _pid(fleet_file, service)
    os.kill(pid, sig)
    remember = os.path.join(os.path.dirname(fleet_file), f"chaos-{service}.pid")
    with open(remember, "w", encoding="utf-8") as f:
        f.write(str(pid))
    return {"service": service, "pid": pid, "signal": sig.name}


def kill_service(fleet_file: str, service: str) -> dict[str, Any]:
    """SIGKILL the process serving ``service``: a crash."""
    return _signal(fleet_file, service, signal.SIGKILL)


def hang_service(fleet_file: str, service: str) -> dict[str, Any]:
    """SIGSTOP the process serving ``service``: it holds its port and answers nothing."""
    return _signal(fleet_file, service, signal.SIGSTOP)


def resume_service(fleet_file: str, service: str) -> dict[str, Any]:
    """SIGCONT the process an earlier ``hang_service`` stopped, if it still exists."""
    remember = os.path.join(os.path.dirname(fleet_file), f"chaos-{service}.pid")
    try:
        with open(remember, encoding="utf-8") as f:
            pid = int(f.read())
        os.kill(pid, signal.SIGCONT)
    except (OSError, ValueError):
        return {"service": service, "resumed": False}
    return {"service": service, "pid": pid, "resumed": True}


def set_slow(fleet_file: str, service: str, slow_ms: int) -> dict[str, Any]:
    """Make ``service`` answer every request ``slow_ms`` late (0 ends it)."""
    return _post(_url(fleet_file, service, "/admin/fault"), {"slow_ms": slow_ms})


def deploy(fleet_file: str, service: str, version: str) -> dict[str, Any]:
    """Deploy ``version`` of ``service`` (a version ending in -broken fails checkouts)."""
    url = _url(fleet_file, service, "/admin/deploy")
    return _post(url, {"service": service, "version": version, "by": "chaostoolkit"})


def corrupt_next_batch(fleet_file: str) -> dict[str, Any]:
    """Make the producer write its next batch corrupt."""
    return _post(_url(fleet_file, "producer", "/admin/corrupt"), {})


def quarantine_stuck_batch(fleet_file: str) -> dict[str, Any]:
    """Move aside the batch the processor is stuck on, if any (a rollback)."""
    _, status = _get(_url(fleet_file, "processor", "/status"))
    batch = status.get("stuck_on")
    if not batch:
        return {"quarantined": None}
    url = _url(fleet_file, "processor", "/admin/quarantine")
    return _post(url, {"pipeline": "orders-etl", "batch": batch})


def pipeline_flowing(fleet_file: str) -> bool:
    """The processor is not stuck and the sink received a batch in the last 2 s."""
    _, processor = _get(_url(fleet_file, "processor", "/status"))
    if processor.get("stuck_on") or "batches" not in processor:
        return False
    status, sink = _get(_url(fleet_file, "sink", "/status"))
    age = sink.get("last_batch_age_s")
    return status == 200 and age is not None and age <= 2.0


def _steady(fleet_file: str) -> str:
    for service in (*SHOP, "producer", "processor", "sink"):
        started = time.monotonic()
        status, _ = _get(_url(fleet_file, service, "/health"))
        if status != 200 or time.monotonic() - started > 0.6:
            return f"{service} unhealthy"
    status, _ = _get(str(_fleet(fleet_file)["checkout"]), timeout=2.0)
    if status != 200:
        return f"checkout HTTP {status}"
    return "" if pipeline_flowing(fleet_file) else "pipeline stalled"


def wait_for_steady_state(fleet_file: str, within_s: float, settle_s: float = 0.5) -> bool:
    """Wait ``settle_s`` for the fault to show, then until the steady state is back.

    Returns True once every service answers fast, a checkout passes and the pipeline
    flows, for two polls in a row; False when that does not happen within ``within_s``.
    """
    deadline = time.monotonic() + within_s
    time.sleep(settle_s)  # let the fault show before judging recovery
    good = 0
    while time.monotonic() < deadline:
        good = good + 1 if not _steady(fleet_file) else 0
        if good >= 2:
            return True
        time.sleep(0.25)
    return False


def _env(fleet_file: str) -> str:
    fleet = _fleet(fleet_file)
    lines = [f"export WARDEN_FLEET_FILE={os.path.abspath(fleet_file)}"]
    lines.append(f"export FLEET_CHECKOUT_URL={fleet['checkout']}")
    for service in SHOP:
        lines.append(f"export FLEET_{service.upper()}_HEALTH={fleet['services'][service]}/health")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "env":
        sys.exit("usage: python chaos/fleetfaults.py env .warden-drill/fleet.json")
    print(_env(sys.argv[2]))
