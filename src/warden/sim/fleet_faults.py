"""Fault templates of the fleet: each makes one fault instance on fleet services. Simulation.

A template takes a :class:`Spot` (the service, its same-domain callers, its deployed and
last good versions, the time) and returns the parts of a scenario: faults, signals, the
response model and what a good answer is, written after the library's scenarios of the
same class. Every fault kind of the format is drawn by one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from warden.sim.format import Service


@dataclass(frozen=True, slots=True)
class Spot:
    """Where an instance lands: its service and the neighbours a template may need."""

    service: Service
    callers: tuple[str, ...]  # same-domain services that depend on it
    version: str  # the deployment's current image
    previous: str  # the last good one before it
    n: int  # the instance number
    at: float  # its first fault


def _alert(
    at: float, fault: str, name: str, service: str, summary: str, severity: str = "page"
) -> dict[str, Any]:
    return {
        "at": at,
        "fault": fault,
        "alert": {
            "labels": {"alertname": name, "service": service, "severity": severity},
            "annotations": {"summary": summary},
        },
    }


def _crash(s: Spot) -> dict[str, Any]:
    svc, fid = s.service.name, f"crash-{s.n}"
    return {
        "fault_class": "process_crash",
        "faults": [{"id": fid, "at": s.at, "kind": "crash", "target": svc}],
        "responses": [
            {"action": "restart_service", "target": svc, "effect": "fixes", "faults": [fid]},
            {"action": "start_service", "target": svc, "effect": "fixes", "faults": [fid]},
        ],
        "expect": {
            "decision": "act",
            "actions": [{"action": "restart_service", "target": svc}],
            "alternatives": [[{"action": "start_service", "target": svc}]],
            "forbidden": ["stop_service", "rollback_deploy", *[f"*:{c}" for c in s.callers]],
            "within_s": 600,
        },
    }


def _hang(s: Spot) -> dict[str, Any]:
    svc, fid = s.service.name, f"hang-{s.n}"
    return {
        "fault_class": "hang",
        "faults": [{"id": fid, "at": s.at, "kind": "hang", "target": svc}],
        "signals": [_alert(s.at + 120, fid, "ProbeTimeout", svc, f"{svc} stopped answering")],
        "responses": [
            {"action": "restart_service", "target": svc, "effect": "fixes", "faults": [fid]}
        ],
        "expect": {
            "decision": "act",
            "actions": [{"action": "restart_service", "target": svc}],
            "forbidden": ["stop_service", *[f"*:{c}" for c in s.callers]],
            "within_s": 600,
        },
    }


def _latency(s: Spot) -> dict[str, Any]:
    svc, fid = s.service.name, f"slow-{s.n}"
    return {
        "fault_class": "latency",
        "faults": [{"id": fid, "at": s.at, "kind": "slow", "target": svc, "latency_ms": 2500}],
        "signals": [
            {
                "at": s.at,
                "every_s": 30,
                "until": s.at + 1800,
                "fault": fid,
                "metric": {
                    "service": svc,
                    "name": "latency_p99_ms",
                    "value": 2500,
                    "recovered": 120,
                    "unit": "ms",
                },
            }
        ],
        "responses": [
            {"action": "restart_service", "target": svc, "effect": "fixes", "faults": [fid]}
        ],
        "expect": {
            "decision": "act",
            "actions": [{"action": "restart_service", "target": svc}],
            "forbidden": ["stop_service", *[f"*:{c}" for c in s.callers]],
            "within_s": 900,
        },
        "baseline": {"difficulty": 1.2},
    }


def _bad_deploy(s: Spot) -> dict[str, Any]:
    svc, fid = s.service.name, f"release-{s.n}"
    bad = f"{s.version}-r{s.n}"
    return {
        "fault_class": "bad_deploy",
        "faults": [
            {
                "id": fid,
                "at": s.at,
                "kind": "change",
                "target": f"deployment/{svc}",
                "field": "image",
                "from": s.version,
                "to": bad,
                "by": "ci",
                "effects": [],  # health still answers: the errors show in the metrics
            }
        ],
        "signals": [
            {
                "at": s.at + 10,
                "every_s": 15,
                "until": s.at + 1800,
                "fault": fid,
                "metric": {"service": svc, "name": "error_rate", "value": 0.25, "recovered": 0.005},
            },
            _alert(s.at + 120, fid, "HighErrorRate", svc, f"{svc} 5xx ratio 25% over 5m"),
        ],
        "responses": [
            {
                "action": "rollback_deploy",
                "target": svc,
                "params": {"version": s.version},
                "effect": "fixes",
                "faults": [fid],
            },
            {"action": "restart_service", "target": svc, "effect": "no_effect"},
        ],
        "expect": {
            "decision": "act",
            "actions": [
                {"action": "rollback_deploy", "target": svc, "params": {"version": s.version}}
            ],
            "forbidden": ["stop_service", *[f"*:{c}" for c in s.callers]],
            "within_s": 600,
        },
        "baseline": {"difficulty": 0.6, "action_s": 300},
    }


def _exit_loop(s: Spot) -> dict[str, Any]:
    svc, fid = s.service.name, f"exits-{s.n}"
    bad = f"{s.version}-r{s.n}"
    return {
        "fault_class": "crash_loop_release",
        "faults": [
            {
                "id": fid,
                "at": s.at,
                "kind": "exit_loop",
                "target": svc,
                "rearm": {"after_restart_s": 10},
            }
        ],
        "signals": [
            {
                "at": s.at,
                "fault": fid,
                "change": {
                    "service": svc,
                    "version": bad,
                    "previous_version": s.version,
                    "by": "ci",
                },
            },
            {
                "at": s.at + 2,
                "every_s": 30,
                "until": s.at + 1800,
                "fault": fid,
                "log": {
                    "service": svc,
                    "line": "KeyError: 'UPSTREAM_TOKEN'; exiting with status 1",
                },
            },
        ],
        "responses": [
            {
                "action": "rollback_deploy",
                "target": svc,
                "params": {"version": s.version},
                "effect": "fixes",
                "faults": [fid],
            }
        ],
        "expect": {
            "decision": "act",
            "actions": [
                {"action": "rollback_deploy", "target": svc, "params": {"version": s.version}}
            ],
            "forbidden": ["stop_service"],
            "within_s": 600,
        },
    }


def _bad_config(s: Spot) -> dict[str, Any]:
    svc, fid = s.service.name, f"config-{s.n}"
    return {
        "fault_class": "crash_loop_config",
        "faults": [
            {
                "id": fid,
                "at": s.at,
                "kind": "change",
                "target": f"config/{svc}",
                "field": "db_pool_size",
                "from": 20,
                "to": 0,
                "by": "bob",
                "effects": [{"service": svc, "probe": "refused"}],
                "rearm": {"after_restart_s": 15},
            }
        ],
        "signals": [
            {
                "at": s.at + 2,
                "every_s": 30,
                "until": s.at + 1800,
                "fault": fid,
                "log": {"service": svc, "line": "FATAL config: db_pool_size must be positive"},
            },
            _alert(s.at + 90, fid, "KubePodCrashLooping", svc, f"{svc} restarts 4 times / 5m"),
        ],
        "responses": [
            {
                "action": "restore_config",
                "target": f"config/{svc}",
                "effect": "fixes",
                "faults": [fid],
            }
        ],
        "expect": {
            "decision": "act",
            "actions": [{"action": "restore_config", "target": f"config/{svc}"}],
            "forbidden": ["stop_service", *[f"*:{c}" for c in s.callers]],
            "within_s": 600,
        },
        "baseline": {"difficulty": 0.8},
    }


def _flag(s: Spot) -> dict[str, Any]:
    svc, fid = s.service.name, f"flag-{s.n}"
    flag = f"feature_flag/{svc}-new-path"
    return {
        "fault_class": "config_change",
        "faults": [
            {
                "id": fid,
                "at": s.at,
                "kind": "change",
                "target": flag,
                "field": "enabled",
                "from": False,
                "to": True,
                "by": "carol",
                "effects": [{"service": svc, "probe": "http", "code": 500}],
            }
        ],
        "signals": [_alert(s.at + 120, fid, "HighErrorRate", svc, f"{svc} 5xx ratio 12%")],
        "responses": [
            {"action": "restore_flag", "target": flag, "effect": "fixes", "faults": [fid]},
            {"action": "restart_service", "target": svc, "effect": "no_effect"},
        ],
        "expect": {
            "decision": "act",
            "actions": [{"action": "restore_flag", "target": flag}],
            "forbidden": ["stop_service", "rollback_deploy", *[f"*:{c}" for c in s.callers]],
            "within_s": 600,
        },
    }


def _datastore(s: Spot) -> dict[str, Any]:
    svc, fid = s.service.name, f"db-{s.n}"
    effects: list[dict[str, Any]] = [{"service": svc, "probe": "refused"}]
    effects += [{"service": c, "probe": "http", "code": 503} for c in s.callers]
    return {
        "fault_class": "datastore_down",
        "faults": [{"id": fid, "at": s.at, "kind": "error", "target": svc, "effects": effects}],
        "signals": [_alert(s.at + 90, fid, "DatastoreDown", svc, f"{svc} is down")],
        "responses": [
            {"action": "restart_service", "target": svc, "effect": "fixes", "faults": [fid]},
            *[{"action": "restart_service", "target": c, "effect": "no_effect"} for c in s.callers],
        ],
        "expect": {
            "decision": "act",
            "actions": [{"action": "restart_service", "target": svc}],
            "forbidden": ["stop_service", *[f"restart_service:{c}" for c in s.callers]],
            "within_s": 600,
        },
        "baseline": {"difficulty": 1.0, "action_s": 300},
    }


def _partition(s: Spot) -> dict[str, Any]:
    svc, fid = s.service.name, f"partition-{s.n}"
    return {
        "fault_class": "partition",
        "faults": [
            {
                "id": fid,
                "at": s.at,
                "kind": "partition",
                "target": svc,
                "duration_s": 900,
                "effects": [{"service": svc, "probe": "timeout"}],
            }
        ],
        "signals": [
            _alert(s.at + 60, fid, "ZoneUnreachable", svc, f"{svc}: zone b unreachable (partition)")
        ],
        "responses": [
            {
                "action": "restart_service",
                "target": svc,
                "effect": "harmful",
                "harm": [{"service": svc, "probe": "refused"}],
            }
        ],
        "expect": {
            "decision": "escalate",
            "escalation_facts": [svc],
            "forbidden": [f"restart_service:{svc}", "stop_service"],
            "must_fix": [],
            "within_s": 600,
        },
        "baseline": {"difficulty": 1.2},
    }


def _corruption(s: Spot) -> dict[str, Any]:
    svc, fid = s.service.name, f"batch-{s.n}"
    pipeline, batch = f"{svc}-pipeline", f"b-{s.n:05d}"
    return {
        "fault_class": "data_corruption",
        "faults": [{"id": fid, "at": s.at, "kind": "corruption", "target": svc}],
        "signals": [
            {
                "at": s.at + 5,
                "every_s": 60,
                "until": s.at + 1800,
                "fault": fid,
                "batch": {
                    "service": svc,
                    "pipeline": pipeline,
                    "batch": batch,
                    "reason": "schema violation: column amount is not a number",
                    "last_good_checkpoint": f"cp-{s.n:05d}",
                },
            }
        ],
        "responses": [
            {
                "action": "quarantine_batch",
                "target": svc,
                "params": {"pipeline": pipeline, "batch": batch},
                "effect": "fixes",
                "faults": [fid],
            },
            {"action": "restart_service", "target": svc, "effect": "no_effect"},
        ],
        "expect": {
            "decision": "act",
            "actions": [
                {
                    "action": "quarantine_batch",
                    "target": svc,
                    "params": {"pipeline": pipeline, "batch": batch},
                }
            ],
            "forbidden": ["stop_service", "release_batch"],
            "within_s": 600,
        },
    }


def _backlog(s: Spot) -> dict[str, Any]:
    svc, fid = s.service.name, f"backlog-{s.n}"
    return {
        "fault_class": "backlog",
        "faults": [{"id": fid, "at": s.at, "kind": "saturation", "target": svc, "effects": []}],
        "signals": [
            {
                "at": s.at + 15 * k,
                "every_s": 15,
                "until": s.at + 15 * k + 14,
                "fault": fid,
                "metric": {
                    "service": svc,
                    "name": "backlog",
                    "value": 400 * (k + 1),
                    "recovered": 40,
                },
            }
            for k in range(8)
        ]
        + [
            {
                "at": s.at + 120,
                "every_s": 15,
                "until": s.at + 1800,
                "fault": fid,
                "metric": {"service": svc, "name": "backlog", "value": 4000, "recovered": 40},
            },
            {
                "at": s.at,
                "every_s": 60,
                "until": s.at + 1800,
                "fault": fid,
                "metric": {
                    "service": svc,
                    "name": "consumers",
                    "value": s.service.replicas,
                    "recovered": s.service.replicas,
                },
            },
            _alert(s.at + 180, fid, "QueueBacklogGrowing", svc, f"{svc} backlog grows"),
        ],
        "responses": [
            {"action": "scale_consumers", "target": svc, "effect": "fixes", "faults": [fid]},
            {"action": "restart_service", "target": svc, "effect": "no_effect"},
        ],
        "expect": {
            "decision": "act",
            "actions": [{"action": "scale_consumers", "target": svc}],
            "forbidden": ["stop_service"],
            "within_s": 900,
        },
    }


def _load(s: Spot) -> dict[str, Any]:
    svc, fid = s.service.name, f"load-{s.n}"
    return {
        "fault_class": "control_no_fault",
        "faults": [
            {
                "id": fid,
                "at": s.at,
                "kind": "load",
                "target": svc,
                "duration_s": 600,
                "root_cause": False,
            }
        ],
        "signals": [
            {
                "at": s.at,
                "every_s": 30,
                "until": s.at + 600,
                "fault": fid,
                "metric": {
                    "service": svc,
                    "name": "request_rate",
                    "value": 3100,
                    "recovered": 1000,
                },
            },
            _alert(s.at + 60, fid, "TrafficSpike", svc, f"{svc} request rate 3x", "info"),
        ],
        "expect": {"decision": "no_action", "no_state_change": True, "within_s": 900},
    }


# (template, roles it fits, weight)
TEMPLATES: tuple[tuple[Callable[[Spot], dict[str, Any]], tuple[str, ...], int], ...] = (
    (_crash, ("api", "worker", "gateway", "etl"), 20),
    (_hang, ("api", "worker", "etl"), 10),
    (_latency, ("api", "gateway"), 8),
    (_bad_deploy, ("api", "gateway", "worker"), 14),
    (_exit_loop, ("api", "worker"), 6),
    (_bad_config, ("api", "worker", "etl"), 6),
    (_flag, ("api",), 4),
    (_datastore, ("db",), 6),
    (_partition, ("api", "worker"), 4),
    (_corruption, ("etl",), 8),
    (_backlog, ("worker",), 8),
    (_load, ("gateway", "api"), 6),
)


ROLES = frozenset(r for _, roles, _ in TEMPLATES for r in roles)
DATASTORE = _datastore  # its callers are part of the instance

__all__ = ["DATASTORE", "ROLES", "TEMPLATES", "Spot"]
