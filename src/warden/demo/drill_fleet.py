"""The drill fleet: the demo chain, an outside bank, a small pipeline, and its config. Edge (demo).

``gateway -> orders -> payments -> bank`` serve checkouts; ``producer -> processor ->
sink`` move batches over files. Warden runs all but ``bank``, an outside dependency the
drill runs itself (Warden watches it, cannot restart it). Services report deploys, error
rates and failed batches to Warden's webhook; Warden's deploy, circuit and batch actions
reach the services' admin routes through the HTTP adapter.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from warden.demo import free_port
from warden.demo.report import TOKEN_ENV
from warden.governance.policy import BUILTIN_BUNDLE

__all__ = [
    "CHAIN",
    "DRILL_TOKEN_ENV",
    "FLEET_FILE",
    "MANAGED",
    "MARKER_ENV",
    "PIPELINE_STAGES",
    "DrillFleet",
]

CHAIN = ("gateway", "orders", "payments")
PIPELINE_STAGES = ("producer", "processor", "sink")
MANAGED = (*CHAIN, *PIPELINE_STAGES)
DRILL_TOKEN_ENV = "WARDEN_DRILL_TOKEN"
"""Warden's variable holding the token the fleet reports with (set by the drill)."""
MARKER_ENV = "WARDEN_DEMO_STATE"
"""Set in every fleet process's environment to the state directory (as `warden demo` does)."""
FLEET_FILE = "fleet.json"
"""Written beside the state: every URL an outside tool needs to inject and judge."""

_REPORTED = [
    "warden.deploy.completed",
    "warden.metric.sampled",
    "warden.pipeline.batch_failed",
    "warden.pipeline.batch_recovered",
]

# Medium-risk actions (rollback, circuit, quarantine, replay) run without approval here:
# the drill fleet is disposable. Everything else is the built-in bundle's.
_DRILL_AUTONOMY = """// Drill bundle: built-in safety rules, autonomy for the drill fleet.
@id("drill-autonomous")
@outcome("allow")
@message("drill fleet: low- and medium-risk actions run autonomously at confidence 70% or more")
permit (principal, action, resource)
when {
  context.autonomy == "autonomous" &&
  (context.risk == "low" || context.risk == "medium") &&
  context.confidence_pct >= 70
};

@id("drill-low-confidence-approval")
@outcome("needs_approval")
@approvers("1")
@message("an agent less than 70% sure: a human confirms")
permit (principal, action, resource)
when { context.autonomy == "autonomous" && context.risk != "high" && context.confidence_pct < 70 };

@id("supervised-approval")
@outcome("needs_approval")
@approvers("1")
@message("supervised mode: every action waits for one human approval")
permit (principal, action, resource)
when { context.autonomy == "supervised" && context.risk != "high" };

@id("high-risk-two-approvers")
@outcome("needs_approval")
@approvers("2")
@message("high-risk action needs two approvers")
permit (principal, action, resource)
when {
  (context.autonomy == "supervised" || context.autonomy == "autonomous") &&
  context.risk == "high"
};
"""

# The schema names the process actions only, so the cases use restart_service; the
# rules read the step's risk from the context.
_DRILL_TESTS = """# The drill bundle's cases: `warden policy test .warden-drill/drill-policies`.
defaults:
  principal: service-down
  context: {environment: drill, autonomy: autonomous, risk: medium, confidence_pct: 85}
cases:
  - name: a confident medium-risk step runs on its own in the drill fleet
    action: restart_service
    resource: orders
    expect: allow
    policies: [drill-autonomous]
  - name: an unsure agent still asks a person
    action: restart_service
    resource: gateway
    context: {risk: low, confidence_pct: 60}
    expect: needs_approval(1)
  - name: the restart-storm rule of the built-in bundle still holds
    action: restart_service
    resource: orders
    context: {risk: low, recent_actions_on_target: 3}
    expect: deny
    policies: [restart-storm, drill-autonomous]
  - name: high-risk steps still need two people
    action: stop_service
    resource: orders
    context: {risk: high}
    expect: needs_approval(2)
  - name: supervised drills wait for an approval
    action: restart_service
    resource: orders
    context: {autonomy: supervised}
    expect: needs_approval(1)
    policies: [supervised-approval]
"""


@dataclass(frozen=True)
class DrillFleet:
    """Ports, URLs and files of one drill fleet under ``state_dir``."""

    state_dir: Path
    ports: dict[str, int]
    webhook_port: int
    token: str

    @classmethod
    def create(cls, state_dir: Path) -> DrillFleet:
        """A fleet on free ports with a fresh report token."""
        names = (*MANAGED, "bank")
        return cls(
            state_dir=state_dir.resolve(),
            ports={n: free_port() for n in names},
            webhook_port=free_port(),
            token=secrets.token_urlsafe(24),
        )

    @classmethod
    def from_file(cls, path: Path) -> DrillFleet:
        """The fleet a ``fleet.json`` describes (written by a running drill fleet)."""
        found = json.loads(path.read_text())
        ports = {name: int(url.rsplit(":", 1)[1]) for name, url in found["services"].items()}
        return cls(Path(found["state_dir"]), ports, webhook_port=0, token="")

    def url(self, name: str, path: str = "") -> str:
        """The base URL of a service, with ``path``."""
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    @property
    def report_url(self) -> str:
        """Warden's webhook endpoint for the fleet's reports."""
        return f"http://127.0.0.1:{self.webhook_port}/v1/events"

    @property
    def pipeline_dir(self) -> Path:
        """Where the pipeline's batches live."""
        return self.state_dir / "pipeline"

    def _service_argv(self, name: str) -> list[str]:
        argv = [sys.executable, "-m", "warden.demo.service", "--name", name]
        argv += ["--port", str(self.ports[name]), "--report", self.report_url]
        argv += ["--version-file", str(self.state_dir / "versions" / name)]
        downstream = {"gateway": "orders", "orders": "payments", "payments": "bank"}[name]
        argv += ["--downstream", self.url(downstream), "--downstream-timeout", "0.5"]
        argv += ["--downstream-name", downstream]
        return argv

    def _stage_argv(self, role: str) -> list[str]:
        argv = [sys.executable, "-m", "warden.demo.pipeline", "--role", role]
        argv += ["--dir", str(self.pipeline_dir), "--port", str(self.ports[role])]
        return [*argv, "--report", self.report_url]

    def config(self, autonomy: str, policy_dir: Path | None) -> dict[str, Any]:
        """The ``warden.yaml`` of this fleet, as a mapping."""
        # The marker lets a check prove no process of the fleet outlives the drill.
        env = {TOKEN_ENV: "${" + DRILL_TOKEN_ENV + "}", MARKER_ENV: str(self.state_dir)}
        depends = {"gateway": ["orders"], "orders": ["payments"], "payments": ["bank"]}
        services: list[dict[str, Any]] = [
            {
                "name": name,
                "domain": "pipeline" if name in PIPELINE_STAGES else "shop",
                "health": self.url(name, "/health"),
                "argv": self._service_argv(name) if name in CHAIN else self._stage_argv(name),
                "env": env,
                "depends_on": depends.get(name, []),
                # The demo processes stop at once on SIGTERM; one that does not is hung.
                "stop_timeout_s": 1,
            }
            for name in MANAGED
        ]
        services.append(
            {"name": "bank", "domain": "outside", "health": self.url("bank", "/health")}
        )
        raw: dict[str, Any] = {
            "environment": "drill",
            "autonomy": autonomy,
            "state_dir": str(self.state_dir),
            "failure_threshold": 3,
            "verification_timeout_s": 15,
            # Nobody answers a drill's approval requests: they expire and escalate.
            "approvals": {"timeout_s": 8, "fallback": "escalate"},
            "probe": {
                "interval_s": 0.5,
                "timeout_s": 1.0,
                "jitter": 0.1,
                "latency_threshold_ms": 400,
            },
            "audit": {
                "key_path": str(self.state_dir.parent / f"{self.state_dir.name}-keys" / "audit.key")
            },
            "agents": {
                "settings": {
                    # Longer than a hung service's restart takes (three probes of
                    # 1 s, then a 1 s stop timeout): a short outage is left to the restart.
                    "failing-dependency": {"min_outage_s": 10, "recovered_for_s": 2},
                    "bad-deploy": {"window_s": 300},
                }
            },
            "services": services,
            "sources": {
                "webhook": {
                    "host": "127.0.0.1",
                    "port": self.webhook_port,
                    "senders": {
                        "fleet": {
                            "scheme": "bearer",
                            "secret_env": DRILL_TOKEN_ENV,
                            "allow_types": _REPORTED,
                        }
                    },
                }
            },
            "actions": self._actions(),
        }
        if policy_dir is not None:
            raw["policy_dir"] = str(policy_dir)
        return raw

    def _actions(self) -> dict[str, Any]:
        def post(service: str, path: str, body: dict[str, str]) -> dict[str, Any]:
            return {
                "adapter": "http",
                "method": "POST",
                "url": self.url(service, path),
                "body": body,
                "timeout_s": 5,
            }

        circuit = "/admin/circuit"
        return {
            "rollback_deploy": post(
                "orders",
                "/admin/deploy",
                {"service": "{target}", "version": "{version}", "by": "warden"},
            ),
            "deploy_version": post(
                "orders",
                "/admin/deploy",
                {"service": "{target}", "version": "{version}", "by": "warden"},
            ),
            "open_circuit": post("payments", circuit, {"dependency": "{target}", "state": "open"}),
            "close_circuit": post(
                "payments", circuit, {"dependency": "{target}", "state": "closed"}
            ),
            "quarantine_batch": post(
                "processor",
                "/admin/quarantine",
                {"service": "{target}", "pipeline": "{pipeline}", "batch": "{batch}"},
            ),
            "release_batch": post(
                "processor",
                "/admin/release",
                {"service": "{target}", "pipeline": "{pipeline}", "batch": "{batch}"},
            ),
            "replay_from_checkpoint": post(
                "processor",
                "/admin/replay",
                {"service": "{target}", "pipeline": "{pipeline}", "checkpoint": "{checkpoint}"},
            ),
        }

    def write(self, autonomy: str, builtin_policies: bool) -> Path:
        """Write ``warden.yaml``, the drill bundle and ``fleet.json``; returns the config path."""
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.state_dir / "versions").mkdir(exist_ok=True)
        policy_dir = None
        if not builtin_policies:
            policy_dir = self.state_dir / "drill-policies"
            policy_dir.mkdir(exist_ok=True)
            for name in ("safety.cedar", "warden.cedarschema"):
                shutil.copyfile(BUILTIN_BUNDLE / name, policy_dir / name)
            (policy_dir / "autonomy.cedar").write_text(_DRILL_AUTONOMY)
            (policy_dir / "drill.tests.yaml").write_text(_DRILL_TESTS)
        path = self.state_dir / "warden.yaml"
        header = "# The drill fleet's configuration, written by `warden drill`.\n"
        path.write_text(header + yaml.safe_dump(self.config(autonomy, policy_dir), sort_keys=False))
        fleet = {
            "state_dir": str(self.state_dir),
            "config": str(path),
            "checkout": self.url("gateway", "/checkout"),
            "services": {n: self.url(n) for n in self.ports},
            "pipeline_status": self.url("sink", "/status"),
            "pid": os.getpid(),
            "ready": False,
        }
        (self.state_dir / FLEET_FILE).write_text(json.dumps(fleet, indent=2))
        return path

    def mark_ready(self) -> None:
        """Say in ``fleet.json`` that the fleet holds its steady state under Warden."""
        path = self.state_dir / FLEET_FILE
        fleet = json.loads(path.read_text())
        fleet["ready"] = True
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(fleet, indent=2))
        os.replace(temp, path)

    def start_bank(self) -> subprocess.Popen[bytes]:
        """Start the outside dependency (not Warden's to run); its output goes to the logs."""
        logs = self.state_dir / "logs"
        logs.mkdir(exist_ok=True, mode=0o700)
        with (logs / "bank.log").open("ab") as log:
            argv = [sys.executable, "-m", "warden.demo.service", "--name", "bank"]
            argv += ["--port", str(self.ports["bank"])]
            return subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={"PATH": os.environ.get("PATH", "")},
            )
