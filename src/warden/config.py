"""Warden's configuration file (``warden.yaml``), parsed into frozen settings. Shell.

Every mistake is reported with its place in the file and what to write instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from warden.domain.control import AUTONOMY_LEVELS, AutonomyRule
from warden.domain.errors import ConfigError
from warden.domain.events import parse_time
from warden.domain.topology import ServiceNode, Topology
from warden.governance.approvals import FALLBACKS, ApprovalSettings
from warden.governance.context import FreezeWindow
from warden.governance.gate import Guardrails, RateLimit

if TYPE_CHECKING:
    from collections.abc import Mapping


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
    domain: str = "default"
    tier: str = "standard"
    desired: tuple[tuple[str, str], ...] = ()
    limits: tuple[tuple[str, str], ...] = ()


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
    autonomy_rules: tuple[AutonomyRule, ...] = ()
    policy_dir: Path | None = None
    # A candidate bundle decided alongside the live one; recorded, never acted on.
    shadow_policy_dir: Path | None = None
    # The shared event log: a PostgreSQL DSN ("" keeps the embedded SQLite file).
    store_dsn: str = ""
    store_schema: str = "warden"
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    failure_threshold: int = 3
    guardrails: Guardrails = field(default_factory=Guardrails)
    verification_timeout_s: float = 15.0
    approvals: ApprovalSettings = field(default_factory=ApprovalSettings)
    freezes: tuple[FreezeWindow, ...] = ()
    agent_groups: tuple[tuple[str, tuple[str, ...]], ...] = (("service-down", ("builtin",)),)
    agent_caps: tuple[tuple[str, str], ...] = ()
    lease_ttl_s: float = 30.0
    # Connectors feeding events in (format: ingest/sources.py; e.g. webhook, nats, jsonl).
    sources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The optional model adapter agent (format: agents/model.py); empty means off.
    model: Mapping[str, Any] = field(default_factory=dict)
    # Keys of ingested event data redacted before they are stored (secrets always are).
    redact_fields: tuple[str, ...] = ()
    # Settings per built-in or third-party agent (format: agents/builtin.py).
    agent_settings: Mapping[str, Any] = field(default_factory=dict)
    # Adapters for actions beyond local processes (format: execution/adapters/registry.py).
    adapters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def topology(self) -> Topology:
        """The services as a topology (domains, tiers, dependencies)."""
        return Topology.of(
            ServiceNode(s.name, s.domain, s.tier, s.depends_on) for s in self.services
        )

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
    _check_keys(
        where,
        raw,
        {
            "name",
            "health",
            "argv",
            "cwd",
            "env",
            "depends_on",
            "managed",
            "domain",
            "tier",
            "desired",
            "limits",
        },
    )
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
        domain=str(raw.get("domain", "default")),
        tier=str(raw.get("tier", "standard")),
        desired=_scalars(f"{where}.desired", raw.get("desired")),
        limits=_scalars(f"{where}.limits", raw.get("limits")),
    )


def _scalars(where: str, raw: Any) -> tuple[tuple[str, str], ...]:
    body = _mapping(where, raw)
    out = []
    for key, value in body.items():
        if isinstance(value, dict | list) or value is None:
            raise ConfigError(f"{where}.{key}: expected a single value (text, number or bool)")
        out.append((str(key), str(value).lower() if isinstance(value, bool) else str(value)))
    return tuple(sorted(out))


def _mapping(where: str, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    return raw


def _redact_fields(raw: Any) -> tuple[str, ...]:
    section = _mapping("redact", raw)
    _check_keys("redact", section, {"fields", "keep_original"})
    if section.get("keep_original", False) is not False:
        raise ConfigError(
            "redact.keep_original: only false is supported; redacted values are not kept"
        )
    fields = section.get("fields", [])
    if not isinstance(fields, list) or not all(isinstance(f, str) and f for f in fields):
        raise ConfigError("redact.fields: expected a list of key names, e.g. [email, ssn]")
    return tuple(fields)


def _rate_limit(where: str, raw: Any, default: RateLimit | None) -> RateLimit | None:
    if raw is None:
        return default
    if raw is False:
        return None
    body = _mapping(where, raw)
    _check_keys(where, body, {"count", "window_s"})
    count = body.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ConfigError(f"{where}.count: expected a whole number >= 1, got {count!r}")
    return RateLimit(count, _number(f"{where}.window_s", body.get("window_s", 600), 1))


def _guardrails(raw: Any) -> Guardrails:
    body = _mapping("guardrails", raw)
    _check_keys("guardrails", body, {"confidence_floor", "max_blast_radius_pct", "rate_limits"})
    limits = _mapping("guardrails.rate_limits", body.get("rate_limits"))
    _check_keys("guardrails.rate_limits", limits, {"per_target", "per_action", "total"})
    base = Guardrails()
    return Guardrails(
        confidence_floor=_number(
            "guardrails.confidence_floor", body.get("confidence_floor", 0.6), 0.0, 1.0
        ),
        max_blast_radius_pct=int(
            _number(
                "guardrails.max_blast_radius_pct", body.get("max_blast_radius_pct", 100), 1, 100
            )
        ),
        per_target=_rate_limit(
            "guardrails.rate_limits.per_target", limits.get("per_target"), base.per_target
        ),
        per_action=_rate_limit(
            "guardrails.rate_limits.per_action", limits.get("per_action"), base.per_action
        ),
        total=_rate_limit("guardrails.rate_limits.total", limits.get("total"), base.total),
    )


def _autonomy(raw: Any) -> tuple[str, tuple[AutonomyRule, ...]]:
    if raw is None or isinstance(raw, str):
        level = raw or "autonomous"
        if level not in AUTONOMY_LEVELS:
            raise ConfigError(f"autonomy: {level!r} is not one of {', '.join(AUTONOMY_LEVELS)}")
        return level, ()
    body = _mapping("autonomy", raw)
    _check_keys("autonomy", body, {"default", "rules"})
    default, _ = _autonomy(body.get("default", "autonomous"))
    rules = []
    for i, rule in enumerate(body.get("rules") or []):
        where = f"autonomy.rules[{i}]"
        entry = _mapping(where, rule)
        _check_keys(where, entry, {"environment", "domain", "level"})
        wanted = entry.get("level")
        if wanted not in AUTONOMY_LEVELS:
            raise ConfigError(
                f"{where}.level: {wanted!r} is not one of {', '.join(AUTONOMY_LEVELS)}"
            )
        rules.append(
            AutonomyRule(
                str(entry.get("environment", "*")), str(entry.get("domain", "*")), str(wanted)
            )
        )
    return default, tuple(rules)


def _approvals(raw: Any) -> ApprovalSettings:
    body = _mapping("approvals", raw)
    _check_keys("approvals", body, {"timeout_s", "fallback", "approvers"})
    fallback = body.get("fallback", "escalate")
    if fallback not in FALLBACKS:
        raise ConfigError(f"approvals.fallback: {fallback!r} is not one of {', '.join(FALLBACKS)}")
    people = _mapping("approvals.approvers", body.get("approvers"))
    approvers: dict[str, tuple[str, ...]] = {}
    for name, roles in people.items():
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ConfigError(f"approvals.approvers.{name}: expected a list of roles, e.g. [sre]")
        approvers[str(name)] = tuple(roles)
    return ApprovalSettings(
        timeout_s=_number("approvals.timeout_s", body.get("timeout_s", 900), 1),
        fallback=fallback,
        approvers=approvers,
    )


def _freezes(raw: Any) -> tuple[FreezeWindow, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError("change_freezes: expected a list of {start, end, domains, reason}")
    windows = []
    for i, item in enumerate(raw):
        where = f"change_freezes[{i}]"
        entry = _mapping(where, item)
        _check_keys(where, entry, {"start", "end", "domains", "reason"})
        try:
            start, end = parse_time(str(entry["start"])), parse_time(str(entry["end"]))
        except (KeyError, ValueError) as exc:
            raise ConfigError(
                f"{where}: start and end must be RFC 3339 times with an offset ({exc})"
            ) from exc
        if end <= start:
            raise ConfigError(f"{where}: end must be after start")
        domains = entry.get("domains", ["*"])
        if not isinstance(domains, list):
            raise ConfigError(f"{where}.domains: expected a list of domains")
        windows.append(
            FreezeWindow(start, end, tuple(map(str, domains)), str(entry.get("reason", "")))
        )
    return tuple(windows)


def _agent_caps(raw: Any) -> tuple[tuple[str, str], ...]:
    caps = _mapping("agents.max_autonomy", _mapping("agents", raw).get("max_autonomy"))
    for agent, level in caps.items():
        if level not in AUTONOMY_LEVELS:
            raise ConfigError(
                f"agents.max_autonomy.{agent}: {level!r} is not one of {', '.join(AUTONOMY_LEVELS)}"
            )
    return tuple(sorted((str(a), str(v)) for a, v in caps.items()))


def _agent_groups(raw: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    body = _mapping("agents", raw)
    _check_keys("agents", body, {"groups", "max_autonomy", "settings"})
    groups = _mapping("agents.groups", body.get("groups"))
    found: dict[str, tuple[str, ...]] = {"service-down": ("builtin",)}
    for agent, member_of in groups.items():
        if not isinstance(member_of, list):
            raise ConfigError(f"agents.groups.{agent}: expected a list of group names")
        found[str(agent)] = tuple(map(str, member_of))
    return tuple(sorted(found.items()))


def _store(raw: Any) -> tuple[str, str]:
    """The ``store`` section: ``{postgres: DSN, schema: NAME}``; absent means embedded."""
    if raw is None:
        return "", "warden"
    if not isinstance(raw, dict):
        raise ConfigError(
            "store: expected a mapping like {postgres: 'postgresql://warden@db:5432/warden'}"
        )
    _check_keys("store", raw, {"postgres", "schema"})
    dsn = raw.get("postgres")
    if not isinstance(dsn, str) or not dsn.strip():
        raise ConfigError(
            "store.postgres: give the PostgreSQL DSN, e.g. 'postgresql://warden@db:5432/warden'"
            " (the password from PGPASSWORD or ~/.pgpass)"
        )
    schema = raw.get("schema", "warden")
    if not isinstance(schema, str) or not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
        raise ConfigError(
            f"store.schema: {schema!r} is not a plain lower-case name (letters, digits, _)"
        )
    return dsn.strip(), schema


def parse_config(raw: Any, base: Path) -> WardenConfig:
    """Build the configuration from parsed YAML; ``base`` resolves relative paths."""
    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a mapping with at least 'services'")
    _check_keys(
        "config",
        raw,
        {
            "services", "state_dir", "environment", "autonomy", "policy_dir",
            "shadow_policy_dir", "store", "probe",
            "failure_threshold", "guardrails", "verification_timeout_s", "approvals",
            "change_freezes", "agents", "lease_ttl_s", "actions", "nats", "sources", "model",
            "redact",
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
    autonomy, autonomy_rules = _autonomy(raw.get("autonomy"))
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
    shadow = raw.get("shadow_policy_dir")
    dsn, schema = _store(raw.get("store"))
    return WardenConfig(
        services=services,
        state_dir=(base / str(raw.get("state_dir", ".warden"))),
        environment=str(raw.get("environment", "development")),
        autonomy=autonomy,
        autonomy_rules=autonomy_rules,
        policy_dir=(base / str(policy_dir)) if policy_dir else None,
        shadow_policy_dir=(base / str(shadow)) if shadow else None,
        store_dsn=dsn,
        store_schema=schema,
        probe=probe,
        failure_threshold=threshold,
        guardrails=_guardrails(raw.get("guardrails")),
        verification_timeout_s=_number(
            "verification_timeout_s", raw.get("verification_timeout_s", 15.0), 0.1
        ),
        approvals=_approvals(raw.get("approvals")),
        freezes=_freezes(raw.get("change_freezes")),
        agent_groups=_agent_groups(raw.get("agents")),
        agent_caps=_agent_caps(raw.get("agents")),
        agent_settings=_mapping(
            "agents.settings", _mapping("agents", raw.get("agents")).get("settings")
        ),
        lease_ttl_s=_number("lease_ttl_s", raw.get("lease_ttl_s", 30), 0.5),
        adapters={k: raw[k] for k in ("actions", "nats") if raw.get(k) is not None},
        model=_mapping("model", raw.get("model")) if raw.get("model") is not None else {},
        sources={
            str(name): _mapping(f"sources.{name}", options)
            for name, options in _mapping("sources", raw.get("sources")).items()
        },
        redact_fields=_redact_fields(raw.get("redact")),
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
