"""Warden's configuration file (``warden.yaml``), parsed into frozen settings. Shell.

Every mistake is reported with its line, its place in the file and what to write instead;
the schema is :mod:`warden.config_schema` (``warden config schema`` prints it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warden.audit.settings import AuditSettings, parse_audit
from warden.config_yaml import Document, Problem
from warden.domain.control import AutonomyRule
from warden.domain.errors import ConfigError, did_you_mean
from warden.domain.events import parse_time
from warden.domain.kpis import KpiSettings, Prices, Retention
from warden.domain.promotion import CanarySettings, PromotionPolicy, Thresholds
from warden.domain.topology import ServiceNode, Topology
from warden.governance.approvals import ApprovalSettings
from warden.governance.context import FreezeWindow
from warden.governance.gate import Guardrails, RateLimit
from warden.ingest.alert_routing import AlertRouting, AlertRule
from warden.ingest.sources import BUILTIN_SOURCES, discover_sources

if TYPE_CHECKING:
    from collections.abc import Mapping

    from warden.config_schema import (
        AlertsSection,
        GuardrailsSection,
        KpisSection,
        PricesSection,
        PromotionSection,
        PromotionThresholds,
        RateLimitSection,
        WardenFile,
    )


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """One service Warden watches and, when ``managed``, runs as a local process."""

    name: str
    health_url: str  # http(s)://... or tcp://host:port; "" when health_command checks it
    argv: tuple[str, ...] = ()
    cwd: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    depends_on: tuple[str, ...] = ()
    managed: bool = True
    domain: str = "default"
    tier: str = "standard"
    desired: tuple[tuple[str, str], ...] = ()
    limits: tuple[tuple[str, str], ...] = ()
    health_command: tuple[str, ...] = ()  # a check command: exit code 0 is healthy
    health_timeout_s: float | None = None  # its own timeout (default: probe.timeout_s)
    stop_timeout_s: float = 5.0


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
    # Runbooks (YAML remediation rules, hot reloaded) run as agents; see docs/runbooks.md.
    runbooks_dir: Path | None = None
    # The shared event log: a PostgreSQL DSN ("" keeps the embedded SQLite file).
    store_dsn: str = ""
    store_schema: str = "warden"
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    failure_threshold: int = 3
    relapse_window_s: float = 1800.0  # a failure this soon after a fix is a relapse
    guardrails: Guardrails = field(default_factory=Guardrails)
    verification_timeout_s: float = 15.0
    approvals: ApprovalSettings = field(default_factory=ApprovalSettings)
    freezes: tuple[FreezeWindow, ...] = ()
    agent_groups: tuple[tuple[str, tuple[str, ...]], ...] = (("service-down", ("builtin",)),)
    agent_caps: tuple[tuple[str, str], ...] = ()
    lease_ttl_s: float = 30.0
    # Connectors feeding events in (format: ingest/sources.py; e.g. webhook, nats, jsonl).
    sources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Outgoing notifications (format: runtime/notifications.py); empty means none.
    notifications: Mapping[str, Any] = field(default_factory=dict)
    # The optional model adapter agent (format: agents/model.py); empty means off.
    model: Mapping[str, Any] = field(default_factory=dict)
    # Keys of ingested event data redacted before they are stored (secrets always are).
    redact_fields: tuple[str, ...] = ()
    # Keep what redaction replaced, sealed, for admins (ingest/originals.py); and its key.
    redact_keep_original: bool = False
    redact_key_path: Path | None = None
    # Settings per built-in or third-party agent (format: agents/builtin.py).
    agent_settings: Mapping[str, Any] = field(default_factory=dict)
    # Adapters for actions beyond local processes (format: execution/adapters/registry.py).
    adapters: Mapping[str, Any] = field(default_factory=dict)
    # The audit signing key, witnesses and publication store (format: audit/settings.py).
    audit: AuditSettings = field(default_factory=AuditSettings)
    # The HTTP API and web console `warden run` serves; port 0 leaves them off.
    api_host: str = "127.0.0.1"
    api_port: int = 0
    # How Alertmanager alerts name services (the fleet is added by alert_routing_for_fleet).
    alert_routing: AlertRouting = field(default_factory=AlertRouting)
    # A human is paged once per incident, then again this often while it lasts.
    repage_after_s: float = 1800.0
    # A warning or info alert with nothing else pages only once it fired this long.
    minor_alert_wait_s: float = 900.0
    # What an action, an approval asked and a minute of a paged human cost (kpis.prices).
    kpi_prices: Prices | None = None
    # What the live /metrics keeps (kpis.retain_days, kpis.retain_closed_incidents).
    kpi_retention: Retention = field(default_factory=Retention)
    # Promotion on evidence and the canary (promotion:; see docs/agent-lifecycle.md).
    promotion: PromotionPolicy = field(default_factory=PromotionPolicy)
    # Agents that propose in shadow beside the live ones (agents.shadow).
    shadow_agents: tuple[str, ...] = ()

    @property
    def fleet_alert_routing(self) -> AlertRouting:
        """The alert rules knowing the fleet: unknown names pass, namespaces default to domains."""
        return self.alert_routing.with_fleet({s.name: s.domain for s in self.services})

    @property
    def topology(self) -> Topology:
        """The services as a topology (domains, tiers, dependencies)."""
        return Topology.of(
            ServiceNode(s.name, s.domain, s.tier, s.depends_on) for s in self.services
        )

    @property
    def kpi_settings(self) -> KpiSettings:
        """What the KPIs need from this file: relapse window, prices, the services."""
        return KpiSettings(
            relapse_window_s=self.relapse_window_s,
            prices=self.kpi_prices,
            services=tuple(s.name for s in self.services),
        )

    def service(self, name: str) -> ServiceConfig:
        """The service called ``name``."""
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)


def parse_config(raw: Any, base: Path) -> WardenConfig:
    """Build the configuration from parsed YAML; ``base`` resolves relative paths.

    ``${VAR}`` and ``${VAR:-default}`` in string values are replaced from the environment
    (not under ``actions:``, whose HTTP header secrets are read at call time).

    Raises:
        ConfigError: Listing every mistake, one per line, with its path and the fix.
    """
    from warden.config_yaml import check_data

    data, problems = check_data(raw, os.environ)
    return _checked(Document(data), problems, "", base)


def load_config(path: Path) -> WardenConfig:
    """Read and check a ``warden.yaml`` file; errors name its lines (see `parse_config`)."""
    from warden.config_yaml import read_document

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config error: cannot read {path}: {exc.strerror}") from exc
    document, problems = read_document(raw, str(path), os.environ)
    return _checked(document, problems, str(path), path.parent)


def _checked(document: Document, problems: list[Problem], label: str, base: Path) -> WardenConfig:
    # pydantic is imported on first use: commands that read no configuration skip its cost.
    from pydantic import ValidationError

    from warden.config_errors import config_error, schema_problems
    from warden.config_schema import WardenFile

    data = document.data
    if not isinstance(data, dict):
        problems.insert(
            0, Problem((), "the configuration must be a mapping with at least 'services'")
        )
        raise config_error(problems, document, label)
    problems.extend(_cross_problems(data))
    try:
        checked = WardenFile.model_validate(data)
    except ValidationError as exc:
        known = {p.path for p in problems}
        problems.extend(p for p in schema_problems(exc, data, WardenFile) if p.path not in known)
    if problems:
        problems.sort(key=lambda p: document.line_of(p.path) or 0)
        raise config_error(problems, document, label)
    return _settings(checked, data, base)


def _cross_problems(data: dict[str, Any]) -> list[Problem]:
    """What one section cannot see alone: service names, dependencies, source names."""
    problems: list[Problem] = []
    services = data.get("services")
    services = services if isinstance(services, list) else []
    names = [s.get("name") if isinstance(s, dict) else None for s in services]
    graph: dict[str, list[str]] = {}
    for index, service in enumerate(services):
        if not isinstance(service, dict) or not isinstance(service.get("name"), str):
            continue
        name = service["name"]
        if names.count(name) > 1 and names.index(name) != index:
            problems.append(
                Problem(("services", index, "name"), f"the name {name!r} is used twice")
            )
        depends = service.get("depends_on")
        if not isinstance(depends, list):
            continue
        graph[name] = [d for d in depends if isinstance(d, str)]
        for position, dep in enumerate(depends):
            where = ("services", index, "depends_on", position)
            if dep == name:
                problems.append(Problem(where, f"{name!r} depends on itself; remove it"))
            elif isinstance(dep, str) and dep not in names:
                known = list(dict.fromkeys(n for n in names if isinstance(n, str)))
                hint = did_you_mean(dep, known)
                problems.append(
                    Problem(where, f"unknown service {dep!r}{hint} (known: {', '.join(known)})")
                )
    cycle = _cycle(graph)
    if cycle:
        index = names.index(cycle[0])
        problems.append(
            Problem(
                ("services", index, "depends_on"),
                f"dependency cycle {' -> '.join(cycle)}; break it",
            )
        )
    problems.extend(_source_problems(data.get("sources")))
    known = list(dict.fromkeys(n for n in names if isinstance(n, str)))
    problems.extend(_alert_problems(data.get("alerts"), known))
    return problems


def _unknown_service(where: tuple[Any, ...], name: Any, known: list[str]) -> Problem | None:
    if not isinstance(name, str) or name in known:
        return None
    hint = did_you_mean(name, known)
    return Problem(where, f"unknown service {name!r}{hint} (known: {', '.join(known)})")


def _alert_problems(alerts: Any, known: list[str]) -> list[Problem]:
    """Services named by alert rules must be in the fleet."""
    if not isinstance(alerts, dict):
        return []
    found: list[Problem | None] = []
    namespaces = alerts.get("namespaces")
    for namespace, services in (namespaces if isinstance(namespaces, dict) else {}).items():
        for i, name in enumerate(services if isinstance(services, list) else []):
            found.append(_unknown_service(("alerts", "namespaces", namespace, i), name, known))
    rules = alerts.get("rules")
    for r, rule in enumerate(rules if isinstance(rules, list) else []):
        services = rule.get("services") if isinstance(rule, dict) else None
        for i, name in enumerate(services if isinstance(services, list) else []):
            found.append(_unknown_service(("alerts", "rules", r, "services", i), name, known))
    return [p for p in found if p is not None]


def _cycle(graph: Mapping[str, list[str]]) -> list[str]:
    """One dependency cycle (first node repeated at the end), or [] (self-loops aside)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    trail: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        trail.append(node)
        for dep in graph.get(node, []):
            if dep == node:
                continue
            if state.get(dep) == 1:
                return [*trail[trail.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        trail.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def _source_problems(sources: Any) -> list[Problem]:
    if not isinstance(sources, dict):
        return []
    others = [n for n in sources if n not in BUILTIN_SOURCES]
    if not others:
        return []
    known = sorted(discover_sources())  # reads entry points: only when a name needs it
    problems = []
    for name in others:
        if name not in known:
            hint = did_you_mean(str(name), known)
            problems.append(
                Problem(
                    ("sources", name),
                    f"unknown source {name!r}{hint}; known: {', '.join(known)}"
                    " (a package adds one through the warden.sources entry point)",
                )
            )
    return problems


def _scalars(raw: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    body = raw or {}
    return tuple(
        sorted((str(k), str(v).lower() if isinstance(v, bool) else str(v)) for k, v in body.items())
    )


def _settings(checked: WardenFile, raw: dict[str, Any], base: Path) -> WardenConfig:
    """The frozen settings of a checked file; free-form sections are kept as given."""
    from warden.config_schema import AutonomySection, HealthCommand

    services = tuple(
        ServiceConfig(
            name=s.name,
            health_url=s.health if isinstance(s.health, str) else "",
            health_command=(
                tuple(str(a) for a in s.health.command)
                if isinstance(s.health, HealthCommand)
                else ()
            ),
            health_timeout_s=s.health.timeout_s if isinstance(s.health, HealthCommand) else None,
            argv=tuple(str(a) for a in s.argv or ()),
            cwd=str((base / s.cwd).resolve()) if s.cwd else None,
            env=tuple(sorted((str(k), str(v)) for k, v in (s.env or {}).items())),
            depends_on=tuple(s.depends_on),
            managed=s.managed if s.managed is not None else bool(s.argv),
            domain=s.domain,
            tier=s.tier,
            desired=_scalars(s.desired),
            limits=_scalars(s.limits),
            stop_timeout_s=s.stop_timeout_s,
        )
        for s in checked.services
    )
    autonomy: str = "autonomous"
    rules: tuple[AutonomyRule, ...] = ()
    if isinstance(checked.autonomy, AutonomySection):
        autonomy = checked.autonomy.default
        rules = tuple(
            AutonomyRule(r.environment, r.domain, r.level) for r in checked.autonomy.rules or ()
        )
    elif checked.autonomy is not None:
        autonomy = checked.autonomy
    probe = checked.probe
    agents = checked.agents
    groups: dict[str, tuple[str, ...]] = {"service-down": ("builtin",)}
    groups.update((a, tuple(g)) for a, g in ((agents and agents.groups) or {}).items())
    approvals = checked.approvals
    store = checked.store
    settings = raw.get("agents") or {}
    return WardenConfig(
        services=services,
        state_dir=base / checked.state_dir,
        environment=checked.environment,
        autonomy=autonomy,
        autonomy_rules=rules,
        policy_dir=(base / checked.policy_dir) if checked.policy_dir else None,
        shadow_policy_dir=(base / checked.shadow_policy_dir) if checked.shadow_policy_dir else None,
        runbooks_dir=(base / checked.runbooks_dir) if checked.runbooks_dir else None,
        store_dsn=store.postgres.strip() if store else "",
        store_schema=store.schema_ if store else "warden",
        probe=ProbeConfig(
            probe.interval_s, probe.timeout_s, probe.jitter, probe.latency_threshold_ms
        )
        if probe
        else ProbeConfig(),
        failure_threshold=checked.failure_threshold,
        relapse_window_s=checked.relapse_window_s,
        guardrails=_guardrails(checked.guardrails),
        verification_timeout_s=checked.verification_timeout_s,
        approvals=ApprovalSettings(
            timeout_s=approvals.timeout_s,
            fallback=approvals.fallback,
            approvers={k: tuple(v) for k, v in (approvals.approvers or {}).items()},
        )
        if approvals
        else ApprovalSettings(),
        freezes=tuple(
            FreezeWindow(parse_time(f.start), parse_time(f.end), tuple(f.domains), f.reason)
            for f in checked.change_freezes or ()
        ),
        agent_groups=tuple(sorted(groups.items())),
        agent_caps=tuple(sorted(((agents and agents.max_autonomy) or {}).items())),
        agent_settings=dict(settings.get("settings") or {}),
        lease_ttl_s=checked.lease_ttl_s,
        adapters={k: raw[k] for k in ("actions", "nats") if raw.get(k) is not None},
        model=dict(raw["model"]) if raw.get("model") is not None else {},
        sources={str(name): dict(o or {}) for name, o in (raw.get("sources") or {}).items()},
        notifications=dict(raw.get("notifications") or {}),
        redact_fields=tuple(checked.redact.fields) if checked.redact else (),
        redact_keep_original=bool(checked.redact and checked.redact.keep_original),
        redact_key_path=(
            base / Path(checked.redact.key_path).expanduser()
            if checked.redact and checked.redact.key_path
            else None
        ),
        audit=parse_audit(raw.get("audit") or {}, base),
        api_host=checked.api.host if checked.api else "127.0.0.1",
        api_port=checked.api.port if checked.api else 0,
        alert_routing=_alert_routing(checked.alerts),
        repage_after_s=checked.escalation.repage_after_s if checked.escalation else 1800.0,
        minor_alert_wait_s=(checked.escalation.minor_alert_wait_s if checked.escalation else 900.0),
        kpi_prices=_prices(checked.kpis.prices if checked.kpis else None),
        kpi_retention=_retention(checked.kpis),
        promotion=_promotion(checked.promotion),
        shadow_agents=tuple((agents and agents.shadow) or ()),
    )


def _promotion(section: PromotionSection | None) -> PromotionPolicy:
    if section is None:
        return PromotionPolicy()

    def thresholds(given: PromotionThresholds | None) -> Thresholds:
        if given is None:
            return Thresholds()
        return Thresholds(given.min_shadow_proposals, given.min_agreement_pct, given.max_wrong)

    canary = section.canary
    return PromotionPolicy(
        default=thresholds(section.default),
        classes=tuple(sorted((k, thresholds(v)) for k, v in (section.classes or {}).items())),
        canary=CanarySettings(canary.fraction, tuple(canary.services or ()), canary.min_outcomes)
        if canary
        else CanarySettings(),
    )


def _retention(section: KpisSection | None) -> Retention:
    if section is None:
        return Retention()
    return Retention(section.retain_days * 24, section.retain_closed_incidents)


def _prices(section: PricesSection | None) -> Prices | None:
    if section is None:
        return None
    return Prices(section.action, section.approval, section.page_minute)


def _alert_routing(section: AlertsSection | None) -> AlertRouting:
    if section is None:
        return AlertRouting()
    return AlertRouting(
        service_labels=tuple(section.service_labels),
        namespace_label=section.namespace_label,
        namespaces=tuple(sorted((k, tuple(v)) for k, v in (section.namespaces or {}).items())),
        rules=tuple(
            AlertRule(tuple(sorted(r.match.items())), tuple(r.services))
            for r in section.rules or ()
        ),
    )


def _guardrails(section: GuardrailsSection | None) -> Guardrails:
    base = Guardrails()
    if section is None:
        return base
    limits = section.rate_limits

    def limit(given: RateLimitSection | bool | None, default: RateLimit | None) -> RateLimit | None:
        if given is None:
            return default
        if given is False or given is True:
            return None
        return RateLimit(given.count, given.window_s)

    return Guardrails(
        confidence_floor=section.confidence_floor,
        max_blast_radius_pct=int(section.max_blast_radius_pct),
        per_target=limit(limits.per_target if limits else None, base.per_target),
        per_action=limit(limits.per_action if limits else None, base.per_action),
        total=limit(limits.total if limits else None, base.total),
    )
