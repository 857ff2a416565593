"""Assembly: builds a running Warden from a configuration. Runtime (shell).

One place constructs the store, the planes and the loop, so the CLI, the demo and the
tests all run the same wiring.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from warden.agents.alerts import AlertAgent
from warden.agents.builtin import builtin_agents
from warden.agents.model import DEFAULT_MAX_AUTONOMY, ModelAgent, model_agent_from_config
from warden.audit.checkpointer import Checkpointer
from warden.audit.projector import AuditProjector
from warden.audit.state import open_audit
from warden.domain.catalog import Catalog
from warden.domain.errors import ConfigError, SourceStopped
from warden.execution.adapters.process import LocalProcessAdapter, ProcessSpec
from warden.execution.adapters.process_supervision import child_environment
from warden.execution.adapters.registry import build_adapters
from warden.execution.executor import Executor
from warden.governance.bundles import BundleWatcher
from warden.governance.entities import cedar_entities
from warden.governance.gate import DecisionGate
from warden.governance.policy import BUILTIN_BUNDLE
from warden.ingest.gate import IngestGate
from warden.ingest.originals import OriginalsStore
from warden.ingest.pipeline import Pipeline
from warden.ingest.probes import CommandProbe, HttpProbe, Probe, TcpProbe, tcp_address
from warden.ingest.registry import SchemaRegistry
from warden.ingest.sources import Source, create_source
from warden.ports import ActionAdapter, Clock, EventStore, Leases, SystemClock
from warden.runbooks.loader import load_runbooks
from warden.runbooks.watch import RunbookWatcher, attach, runbook_versions
from warden.runtime import Runtime, RuntimeSettings
from warden.runtime.lifecycle import LifecycleController
from warden.runtime.probing import ProbeLoop
from warden.store.location import open_event_store, open_leases, remember
from warden.store.private import private_dir

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from warden.agents.protocol import Agent
    from warden.audit.log import AuditLog
    from warden.config import ServiceConfig, WardenConfig


CHECKPOINT_EVERY_S = 10.0


@dataclass
class Warden:
    """A wired Warden: its store, processes, loop and audit log."""

    config: WardenConfig
    store: EventStore
    processes: LocalProcessAdapter
    runtime: Runtime
    probes: ProbeLoop
    audit: AuditProjector
    audit_log: AuditLog
    checkpointer: Checkpointer
    sources: list[Source] = field(default_factory=list)
    _stop_sources: threading.Event = field(default_factory=threading.Event)
    _source_threads: list[threading.Thread] = field(default_factory=list)
    source_failures: list[str] = field(default_factory=list)
    runbooks: RunbookWatcher | None = None  # set when runbooks_dir is configured
    lifecycle: LifecycleController | None = None  # versions, shadow, canary, rollback

    def start(self, startup_grace_s: float = 10.0) -> None:
        """Start the managed services, the probes and the connectors.

        Probing waits until the managed services answer (at most ``startup_grace_s``), so
        a service that is merely starting is not mistaken for a failed one.
        """
        self.processes.start_all()
        managed = [s.name for s in self.config.services if s.managed]
        deadline = time.monotonic() + startup_grace_s
        while managed and time.monotonic() < deadline:
            probes = self.runtime.probes
            managed = [n for n in managed if n in probes and not probes[n].check().ok]
            if managed:
                time.sleep(0.1)
        self.probes.start()
        pipeline = Pipeline(self.runtime.ingest)
        for source in self.sources:
            thread = threading.Thread(
                target=self._run_source,
                args=(source, pipeline),
                name=f"source-{source.name}",
                daemon=True,
            )
            thread.start()
            self._source_threads.append(thread)

    def _run_source(self, source: Source, pipeline: Pipeline) -> None:
        try:
            source.run(pipeline, self._stop_sources)
        except Exception as exc:  # any fault: the loop must stop and say why, not run deaf
            self.source_failures.append(f"source {source.name} stopped: {exc}")

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Run the reconcile loop until ``should_stop``; always cleans up.

        Raises:
            SourceStopped: a connector failed (could not listen, lost its input); the
                loop stopped with it, so no input goes unheard while Warden looks alive.
        """
        try:
            self.start()
            self.runtime.run(lambda: bool(self.source_failures) or should_stop())
        finally:
            self.close()
        if self.source_failures:
            raise SourceStopped(self.source_failures[0])

    def close(self) -> None:
        """Stop connectors, probes and processes, catch the audit log up, sign a checkpoint."""
        self._stop_sources.set()
        for thread in self._source_threads:
            thread.join(timeout=10)
        self.runtime.close()
        self.probes.stop()
        self.processes.stop_all()
        self.runtime.tail()
        self.audit.catch_up()
        self.checkpointer.checkpoint()
        if self.runtime.leases is not None:
            self.runtime.leases.close()
        if self.runtime.ingest.originals is not None:
            self.runtime.ingest.originals.close()
        self.store.close()


def _sources(config: WardenConfig) -> list[Source]:
    """The connectors named in the configuration; a secret comes from ``token_env``."""
    made = []
    for name, options in sorted(config.sources.items()):
        kwargs = dict(options)
        env_name = kwargs.pop("token_env", None)
        if env_name is not None:
            token = os.environ.get(str(env_name), "")
            if not token:
                raise ConfigError(
                    f"config error: sources.{name}.token_env: ${env_name} is not set;"
                    " export the token (or name senders: see examples/warden.yaml)"
                )
            kwargs["token"] = token
        if name == "webhook":
            kwargs.setdefault("alert_routing", config.fleet_alert_routing)
        made.append(create_source(name, kwargs))
    return made


PROCESS_ACTIONS = ("restart_service", "start_service", "stop_service")


def _adapters(
    config: WardenConfig,
    catalog: Catalog,
    processes: LocalProcessAdapter,
    override: ActionAdapter | None,
) -> dict[str, ActionAdapter]:
    """Which adapter runs each catalog action: one override for all, or processes plus config."""
    if override is not None:
        return dict.fromkeys(catalog.names(), override)
    runners: dict[str, ActionAdapter] = dict.fromkeys(PROCESS_ACTIONS, processes)
    if config.adapters.get("actions"):
        configured = build_adapters(config.adapters)
        unknown = sorted(set(configured) - set(catalog.names()))
        if unknown:
            raise ConfigError(
                f"config error: actions: {', '.join(unknown)} not in the catalog"
                f" (known: {', '.join(catalog.names())})"
            )
        runners.update(dict(configured))
    return runners


def health_probe(service: ServiceConfig, config: WardenConfig) -> Probe:
    """The probe of a service's ``health:``: an HTTP GET, a TCP connect or a check command.

    A check command gets what a managed process gets: ``PATH``, ``HOME``, ``LANG`` and the
    service's own ``env:``, and runs in its ``cwd``.
    """
    timeout_s = config.probe.timeout_s
    if service.health_command:
        return CommandProbe(
            service.health_command,
            service.health_timeout_s or timeout_s,
            env=child_environment(dict(service.env)),
            cwd=service.cwd,
        )
    if service.health_url.startswith("tcp://"):
        host, port = tcp_address(service.health_url)
        return TcpProbe(host, port, timeout_s)
    return HttpProbe(
        service.health_url,
        timeout_s=timeout_s,
        latency_threshold_ms=config.probe.latency_threshold_ms,
    )


def _unmanaged(
    config: WardenConfig, runners: Mapping[str, ActionAdapter], processes: LocalProcessAdapter
) -> frozenset[str]:
    """Services no agent may plan to restart: ``managed: false``, restarted as local processes.

    A ``restart_service`` routed to an adapter of its own (``actions:``, or one adapter for
    every action as simulations use) restarts any service, managed or not.
    """
    if runners.get("restart_service") is not processes:
        return frozenset()
    return frozenset(s.name for s in config.services if not s.managed)


def default_agents(config: WardenConfig, catalog: Catalog | None = None) -> list[Agent]:
    """The built-in agents and installed third-party ones, configured.

    ``catalog`` is what the model agent may propose from (the built-in one by default).
    """
    settings: dict[str, Any] = {k: dict(v) for k, v in config.agent_settings.items()}
    service_down = settings.setdefault("service-down", {})
    service_down.setdefault("failure_threshold", config.failure_threshold)
    service_down.setdefault("relapse_window_s", config.relapse_window_s)
    for name in ("change", "capacity"):
        section = settings.setdefault(name, {})
        if section.get("enabled", True) is not False:
            section.setdefault("failure_threshold", config.failure_threshold)
    agents: list[Agent] = [AlertAgent(), *builtin_agents(settings)]
    catalog = catalog or Catalog()
    model = model_agent_from_config(config.model, catalog) if config.model else None
    if model is not None:
        # After the rule agents (it may take seconds), before the escalation agent (last).
        agents.insert(len(agents) - 1, model)
    return agents


ACTION_WORKERS = 4  # steps and compensations acted on at once, off the loop


def ingest_gate(
    store: EventStore,
    registry: SchemaRegistry,
    clock: Clock,
    config: WardenConfig | None,
    state_dir: Path | None = None,
) -> IngestGate:
    """The one quality gate every way in shares (run, ingest, quarantine replay).

    `warden run`'s webhook and sources, `warden ingest`, and quarantine replay from the CLI,
    the API and the console all pass it. With a configuration it redacts the configured
    ``redact.fields`` and keeps the sealed originals when ``redact.keep_original`` says so;
    without one, the built-in redaction.
    """
    if config is None:
        return IngestGate(store, registry, clock)
    originals = (
        OriginalsStore(state_dir or config.state_dir, config.redact_key_path)
        if config.redact_keep_original
        else None
    )
    return IngestGate(
        store, registry, clock, redact_fields=config.redact_fields, originals=originals
    )


def build(
    config: WardenConfig,
    clock: Clock | None = None,
    *,
    adapter: ActionAdapter | None = None,
    probes: Mapping[str, Probe] | None = None,
    agents: Sequence[Agent] | None = None,
    action_workers: int | None = None,
    store: EventStore | None = None,
    leases: Leases | None = None,
    registry: SchemaRegistry | None = None,
) -> Warden:
    """Wire every plane from ``config``.

    ``adapter`` and ``probes`` replace the local-process adapter and the HTTP probes,
    for simulations and tests that drive targets Warden cannot run itself; such a run
    acts in the loop's own thread (deterministic order on a manual clock) unless
    ``action_workers`` says otherwise. A live run acts on ``ACTION_WORKERS`` threads.
    ``store`` and ``leases`` (given together, e.g. a :class:`MemoryEventStore` and
    ``MemoryLeases(store.log.leases)``) replace the log the configuration names.
    ``registry`` is a schema registry already built (a simulation shares one).
    """
    if (store is None) != (leases is None):
        raise ValueError("build: give both store and leases, or neither")
    clock = clock or SystemClock()
    state = private_dir(config.state_dir)
    catalog = Catalog()
    policies = BundleWatcher(config.policy_dir or BUILTIN_BUNDLE)
    processes = LocalProcessAdapter(
        [
            ProcessSpec(
                name=s.name,
                argv=s.argv,
                cwd=s.cwd,
                env=dict(s.env),
                log_path=state / "logs" / f"{s.name}.log",
                stop_timeout_s=s.stop_timeout_s,
            )
            for s in config.services
            if s.managed
        ],
        state / "logs",
    )
    # Adapters first: a configuration mistake must fail before any file is opened.
    runners = _adapters(config, catalog, processes, adapter)
    sources = _sources(config)
    # Commands given --state-dir find a shared log through the pointer this leaves.
    remember(state, config.store_dsn, config.store_schema)
    if store is None or leases is None:
        store = open_event_store(state, dsn=config.store_dsn, schema=config.store_schema)
        leases = open_leases(state, dsn=config.store_dsn, schema=config.store_schema, store=store)
    topology = config.topology
    executor = Executor(store, catalog, runners, clock)
    if probes is None:
        probes = {s.name: health_probe(s, config) for s in config.services}
    log, signer = open_audit(state, key_path=config.audit.key_path)
    publisher = None
    if config.audit.publish_dsn:
        # Imported only here: psycopg takes some 20 MiB that a Warden without it never needs.
        from warden.audit.publish import CheckpointPublisher

        publisher = CheckpointPublisher(config.audit.publish_dsn, config.audit.publish_schema)
    checkpointer = Checkpointer(log, signer, config.audit.witnesses, publisher)
    projector = AuditProjector(store, log)
    last_signed = [time.monotonic()]

    def audit_after_tick() -> None:
        # Audit every tick; sign a checkpoint on a schedule so verifiers see progress.
        projector.catch_up()
        if time.monotonic() - last_signed[0] >= CHECKPOINT_EVERY_S:
            checkpointer.checkpoint()
            last_signed[0] = time.monotonic()

    chosen = list(agents) if agents is not None else default_agents(config, catalog)
    # Candidates named in agents.shadow propose beside the live agents, never acting.
    unknown = sorted(set(config.shadow_agents) - {a.name for a in chosen})
    if unknown:
        raise ConfigError(
            f"config error: agents.shadow: unknown agent {unknown[0]!r}; known:"
            f" {', '.join(sorted(a.name for a in chosen))}"
        )
    candidates = [a for a in chosen if a.name in config.shadow_agents]
    chosen = [a for a in chosen if a.name not in config.shadow_agents]
    registry = registry or SchemaRegistry()
    runbooks = (
        load_runbooks(config.runbooks_dir, catalog=catalog, registry=registry)
        if config.runbooks_dir is not None
        else None
    )
    # Every agent is a principal; unless configured otherwise it is in the "builtin" group,
    # and a runbook in the "runbooks" group.
    groups = (
        {a.name: ("builtin",) for a in chosen}
        | {r.name: ("runbooks",) for r in (runbooks.runbooks if runbooks else ())}
        | dict(config.agent_groups)
    )
    # A model agent acts through people unless the configuration caps it otherwise, a
    # candidate too once promoted.
    caps = {
        a.name: DEFAULT_MAX_AUTONOMY for a in (*chosen, *candidates) if isinstance(a, ModelAgent)
    }
    agent_caps = tuple(sorted((caps | dict(config.agent_caps)).items()))
    entities = cedar_entities(topology, groups, dict(agent_caps))
    shadow_policies = (
        BundleWatcher(config.shadow_policy_dir) if config.shadow_policy_dir is not None else None
    )
    shadow = (
        DecisionGate(shadow_policies.current, catalog, config.guardrails, entities)
        if shadow_policies is not None
        else None
    )
    runtime = Runtime(
        store=store,
        ingest=ingest_gate(store, registry, clock, config, state),
        agents=chosen,
        gate=DecisionGate(
            policies.current,
            catalog,
            config.guardrails,
            entities,
        ),
        executor=executor,
        probes=probes,
        clock=clock,
        settings=RuntimeSettings(
            environment=config.environment,
            autonomy=config.autonomy,
            verification_timeout_s=config.verification_timeout_s,
            approvals=config.approvals,
            freezes=config.freezes,
            autonomy_rules=config.autonomy_rules,
            agent_caps=agent_caps,
            desired={s.name: dict(s.desired) for s in config.services if s.desired},
            limits={s.name: dict(s.limits) for s in config.services if s.limits},
            lease_ttl_s=config.lease_ttl_s,
            unmanaged=_unmanaged(config, runners, processes),
            failure_threshold=config.failure_threshold,
            relapse_window_s=config.relapse_window_s,
            repage_after_s=config.repage_after_s,
            minor_alert_wait_s=config.minor_alert_wait_s,
            action_workers=(
                action_workers
                if action_workers is not None
                else (0 if adapter is not None else ACTION_WORKERS)
            ),
        ),
        catalog=catalog,
        topology=topology,
        policies=policies,
        leases=leases,
        after_tick=audit_after_tick,
        shadow=shadow,
        shadow_policies=shadow_policies,
    )
    watcher = (
        RunbookWatcher(
            runtime, config.runbooks_dir, catalog=catalog, registry=registry, initial=runbooks
        )
        if config.runbooks_dir is not None
        else None
    )
    lifecycle = LifecycleController(
        runtime,
        config.promotion,
        runbooks=runbook_versions(watcher),
        shadow_agents=candidates,
        model_settings=config.model,
        keep_dir=config.state_dir / "versions",
    )
    if watcher is not None:
        attach(watcher, lifecycle)
    loop = ProbeLoop(
        runtime,
        probes,
        config.probe.interval_s,
        config.probe.jitter,
        # Only a shared log has other workers to share probing with; the embedded one is
        # spared a write per probe.
        leases=leases if config.store_dsn else None,
        holder=executor.worker,
    )
    return Warden(
        config, store, processes, runtime, loop, projector, log, checkpointer, sources,
        runbooks=watcher, lifecycle=lifecycle,
    )  # fmt: skip
