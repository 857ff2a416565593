"""The faults `warden drill` injects into real processes, and how each is undone. Edge (demo).

Each fault names the service it hits, what Warden is expected to do (the actions it may
take), the bound it must recover within, and the drill's own way back (used when policy
makes Warden ask a human first, and to end an outside outage).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from warden.demo.drill_fleet import CHAIN

if TYPE_CHECKING:
    from collections.abc import Callable

    from warden.demo.drill_fleet import DrillFleet

__all__ = ["FAULTS", "SLOW_MS", "Fault", "post_json", "service_pid"]

SLOW_MS = 1500
"""How late a slow service answers: past the probe's timeout, so Warden sees it time out.

A service slower than ``latency_threshold_ms`` but within the timeout is restarted only
after an approval: the service-down agent is 60% sure then, under the 70% autonomy needs.
"""


def post_json(url: str, body: dict[str, Any], timeout_s: float = 3.0) -> dict[str, Any]:
    """POST a JSON body and return the JSON answer."""
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as reply:
        answer: dict[str, Any] = json.loads(reply.read() or b"{}")
        return answer


def service_pid(fleet: DrillFleet, name: str) -> int:
    """The pid a service reports on ``/health`` (found the way an outside tool would)."""
    with urllib.request.urlopen(fleet.url(name, "/health"), timeout=2.0) as reply:
        return int(json.loads(reply.read())["pid"])


@dataclass(frozen=True)
class Fault:
    """One kind of fault: how to inject it, what Warden may do about it, how long it has.

    ``undo`` is the drill's own repair, run after every drill so the next starts clean:
    it ends an outside outage once Warden has contained it, and repairs what Warden
    rightly left to a human.
    """

    name: str
    description: str
    bound_s: float
    action: str  # the action that remediates it (its risk decides whether policy asks)
    targets: tuple[str, ...]  # rotated over repeats
    allowed: Callable[[str], frozenset[tuple[str, str]]]
    inject: Callable[[DrillFleet, str], str]
    undo: Callable[[DrillFleet, str], None]

    def target(self, round_: int) -> str:
        """The service hit in repeat ``round_`` (0-based)."""
        return self.targets[round_ % len(self.targets)]


def _restart_only(target: str) -> frozenset[tuple[str, str]]:
    return frozenset({("restart_service", target)})


def _kill(fleet: DrillFleet, target: str) -> str:
    pid = service_pid(fleet, target)
    os.kill(pid, signal.SIGKILL)
    return f"SIGKILL sent to {target} (pid {pid})"


_STOPPED: dict[tuple[str, str], int] = {}  # (state dir, service) -> pid sent SIGSTOP


def _stop(fleet: DrillFleet, target: str) -> int:
    pid = service_pid(fleet, target)
    _STOPPED[(str(fleet.state_dir), target)] = pid
    os.kill(pid, signal.SIGSTOP)
    return pid


def _resume(fleet: DrillFleet, target: str) -> None:
    """SIGCONT what the drill stopped, if it still exists (Warden may have replaced it)."""
    pid = _STOPPED.pop((str(fleet.state_dir), target), None)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def _hang(fleet: DrillFleet, target: str) -> str:
    pid = _stop(fleet, target)
    return f"SIGSTOP sent to {target} (pid {pid}): it holds its port and answers nothing"


def _slow(fleet: DrillFleet, target: str) -> str:
    post_json(fleet.url(target, "/admin/fault"), {"slow_ms": SLOW_MS})
    return f"{target} answers every request {SLOW_MS} ms late (Warden's probe waits 1 s)"


def _bad_version(fleet: DrillFleet, target: str) -> str:
    post_json(fleet.url(target, "/admin/deploy"), {"version": "v2-broken", "by": "drill"})
    return f"{target} v2-broken deployed: every checkout it serves fails"


def _corrupt(fleet: DrillFleet, target: str) -> str:
    answer = post_json(fleet.url("producer", "/admin/corrupt"), {})
    return f"producer writes {answer.get('batch', 'its next batch')} corrupt; {target} stops on it"


def _outage(fleet: DrillFleet, target: str) -> str:
    pid = _stop(fleet, target)
    return f"{target} (outside, not Warden's to run) stops answering: pid {pid} stopped"


def _no_undo(fleet: DrillFleet, target: str) -> None:
    """Warden's own restart is the only way back; nothing to undo by hand."""


def _undo_version(fleet: DrillFleet, target: str) -> None:
    post_json(fleet.url(target, "/admin/deploy"), {"version": "v1", "by": "drill"})


def _undo_slow(fleet: DrillFleet, target: str) -> None:
    post_json(fleet.url(target, "/admin/fault"), {"slow_ms": 0})


def _undo_corrupt(fleet: DrillFleet, target: str) -> None:
    status = json.loads(urllib.request.urlopen(fleet.url(target, "/status"), timeout=2).read())
    if status.get("stuck_on"):
        body = {"pipeline": "orders-etl", "batch": status["stuck_on"]}
        post_json(fleet.url(target, "/admin/quarantine"), body)


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault(
            "kill",
            "SIGKILL a service's process: a crash",
            20.0,
            "restart_service",
            ("payments", "orders", "gateway"),
            _restart_only,
            _kill,
            _no_undo,
        ),
        Fault(
            "hang",
            "SIGSTOP a service: it keeps its port and answers nothing",
            25.0,
            "restart_service",
            ("orders", "gateway", "payments"),
            _restart_only,
            _hang,
            _resume,
        ),
        Fault(
            "slow",
            f"a service answers every request {SLOW_MS} ms late (Warden's probe waits 1 s)",
            20.0,
            "restart_service",
            ("gateway", "payments", "orders"),
            _restart_only,
            _slow,
            _undo_slow,
        ),
        Fault(
            "bad-version",
            "deploy a version of orders that fails every checkout",
            30.0,
            "rollback_deploy",
            ("orders",),
            lambda t: frozenset({("rollback_deploy", t)}),
            _bad_version,
            _undo_version,
        ),
        Fault(
            "corrupt-batch",
            "the producer writes one corrupt batch; the processor stops on it",
            30.0,
            "quarantine_batch",
            ("processor",),
            lambda t: frozenset({("quarantine_batch", t), ("replay_from_checkpoint", t)}),
            _corrupt,
            _undo_corrupt,
        ),
        Fault(
            "dependency",
            "bank, the outside dependency of payments, stops answering (Warden cannot restart"
            " it); the drill ends the outage once checkouts pass again",
            40.0,
            "open_circuit",
            ("bank",),
            # Isolating the dependency is the cure; its service-down incident may try a
            # restart, which the process adapter refuses (bank is not Warden's to run).
            lambda t: frozenset(
                {("open_circuit", t), ("close_circuit", t), ("restart_service", t)}
            ),
            _outage,
            _resume,
        ),
    )
}

assert all(set(f.targets) <= {*CHAIN, "processor", "bank"} for f in FAULTS.values())
