"""Warden's configuration file (``warden.yaml``), parsed into frozen settings. Shell.

Every mistake is reported with its place in the file and what to write instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from warden.domain.errors import ConfigError

AUTONOMY_LEVELS = ("observe", "recommend", "supervised", "autonomous")


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """One service Warden watches and, when ``managed``, runs as a local process."""

    name: str
    health_url: str
    argv: tuple[str, ...] = ()
    cwd: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    depends_on: tuple[str, ...] = ()
    managed: bool = True


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    """How often and how patiently services are probed."""

    interval_s: float = 1.0
    timeout_s: float = 0.5
    jitter: float = 0.1
    latency_threshold_ms: float | None = None


@dataclass(frozen=True, slots=True)
class WardenConfig:
    """Everything ``warden run`` needs."""

    services: tuple[ServiceConfig, ...]
    state_dir: Path = Path(".warden")
    environment: str = "development"
    autonomy: str = "autonomous"
    policy_dir: Path | None = None
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    failure_threshold: int = 3
    confidence_floor: float = 0.6
    verification_timeout_s: float = 15.0
    approval_timeout_s: float = 900.0
    change_freeze: bool = False

    def service(self, name: str) -> ServiceConfig:
        """The service called ``name``."""
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)


def _check_keys(where: str, raw: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )


def _number(where: str, value: Any, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{where}: {value} is out of range; use a value {bound}")
    return float(value)


def _service(index: int, raw: Any, base: Path) -> ServiceConfig:
    where = f"services[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with name, health and argv")
    _check_keys(where, raw, {"name", "health", "argv", "cwd", "env", "depends_on", "managed"})
    name = raw.get("name")
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"{where}.name: use letters, digits, - and _ (got {name!r})")
    health = raw.get("health")
    if not isinstance(health, str) or not health.startswith(("http://", "https://")):
        raise ConfigError(f"{where}.health: an http(s) URL of the health endpoint is required")
    argv = raw.get("argv", [])
    if isinstance(argv, str):
        raise ConfigError(
            f"{where}.argv: give a list of arguments, not a shell string"
            f" (e.g. [python, -m, myservice] instead of {argv!r})"
        )
    if not isinstance(argv, list) or not all(isinstance(a, str | int | float) for a in argv):
        raise ConfigError(f"{where}.argv: expected a list of strings")
    managed = raw.get("managed", bool(argv))
    if managed and not argv:
        raise ConfigError(f"{where}: a managed service needs argv (or set managed: false)")
    env = raw.get("env", {})
    if not isinstance(env, dict):
        raise ConfigError(f"{where}.env: expected a mapping of variable names to values")
    depends = raw.get("depends_on", [])
    if not isinstance(depends, list):
        raise ConfigError(f"{where}.depends_on: expected a list of service names")
    cwd = raw.get("cwd")
    return ServiceConfig(
        name=name,
        health_url=health,
        argv=tuple(str(a) for a in argv),
        cwd=str((base / cwd).resolve()) if cwd else None,
        env=tuple(sorted((str(k), str(v)) for k, v in env.items())),
        depends_on=tuple(str(d) for d in depends),
        managed=bool(managed),
    )


def parse_config(raw: Any, base: Path) -> WardenConfig:
    """Build the configuration from parsed YAML; ``base`` resolves relative paths."""
    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a mapping with at least 'services'")
    _check_keys(
        "config",
        raw,
        {
            "services", "state_dir", "environment", "autonomy", "policy_dir", "probe",
            "failure_threshold", "confidence_floor", "verification_timeout_s",
            "approval_timeout_s", "change_freeze",
        },
    )  # fmt: skip
    services_raw = raw.get("services")
    if not isinstance(services_raw, list) or not services_raw:
        raise ConfigError("services: list at least one service to watch")
    services = tuple(_service(i, s, base) for i, s in enumerate(services_raw))
    names = [s.name for s in services]
    for service in services:
        if names.count(service.name) > 1:
            raise ConfigError(f"services: the name {service.name!r} is used twice")
        for dep in service.depends_on:
            if dep not in names:
                raise ConfigError(
                    f"services.{service.name}.depends_on: unknown service {dep!r}"
                    f" (known: {', '.join(names)})"
                )
    autonomy = raw.get("autonomy", "autonomous")
    if autonomy not in AUTONOMY_LEVELS:
        raise ConfigError(f"autonomy: {autonomy!r} is not one of {', '.join(AUTONOMY_LEVELS)}")
    probe_raw = raw.get("probe", {}) or {}
    if not isinstance(probe_raw, dict):
        raise ConfigError("probe: expected a mapping")
    _check_keys("probe", probe_raw, {"interval_s", "timeout_s", "jitter", "latency_threshold_ms"})
    latency = probe_raw.get("latency_threshold_ms")
    probe = ProbeConfig(
        interval_s=_number("probe.interval_s", probe_raw.get("interval_s", 1.0), 0.05),
        timeout_s=_number("probe.timeout_s", probe_raw.get("timeout_s", 0.5), 0.01),
        jitter=_number("probe.jitter", probe_raw.get("jitter", 0.1), 0.0, 0.5),
        latency_threshold_ms=None if latency is None else _number("probe.latency", latency, 1),
    )
    threshold = raw.get("failure_threshold", 3)
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
        raise ConfigError(f"failure_threshold: expected a whole number >= 1, got {threshold!r}")
    policy_dir = raw.get("policy_dir")
    return WardenConfig(
        services=services,
        state_dir=(base / str(raw.get("state_dir", ".warden"))),
        environment=str(raw.get("environment", "development")),
        autonomy=autonomy,
        policy_dir=(base / str(policy_dir)) if policy_dir else None,
        probe=probe,
        failure_threshold=threshold,
        confidence_floor=_number("confidence_floor", raw.get("confidence_floor", 0.6), 0.0, 1.0),
        verification_timeout_s=_number(
            "verification_timeout_s", raw.get("verification_timeout_s", 15.0), 0.1
        ),
        approval_timeout_s=_number("approval_timeout_s", raw.get("approval_timeout_s", 900), 1),
        change_freeze=bool(raw.get("change_freeze", False)),
    )


def load_config(path: Path) -> WardenConfig:
    """Read and check a ``warden.yaml`` file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return parse_config(raw, path.parent)
    except ConfigError as exc:
        raise ConfigError(f"config error: {path}: {exc}") from exc
