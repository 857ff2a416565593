"""Runbooks in a running Warden: wired as agents, hot reloaded, shadow plans recorded. Shell.

A changed directory is loaded whole or not at all: a broken file keeps the previous set
running and is recorded (``warden.runbooks.rejected``) with its file, line and fix. Each
set that starts serving is recorded with its version (``warden.runbooks.loaded``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any

from warden.domain import events as ev
from warden.domain.errors import ConfigError
from warden.runbooks.loader import RunbookSet, load_runbooks, runbook_files
from warden.runbooks.model import RunbookAgent
from warden.runtime.lifecycle import LifecycleController, RunbookVersion

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from warden.domain.catalog import Catalog
    from warden.ingest.registry import SchemaRegistry
    from warden.runbooks.model import Runbook, Verdict
    from warden.runtime.loop import Runtime

log = logging.getLogger(__name__)


def _stamp(directory: Path) -> str:
    digest = hashlib.sha256()
    try:
        for path in runbook_files(directory):
            info = path.stat()
            digest.update(f"{path.name}\0{info.st_mtime_ns}\0{info.st_size}\0".encode())
    except OSError as exc:
        digest.update(str(exc).encode())
    return digest.hexdigest()


class RunbookWatcher:
    """Keeps a runtime's runbook agents in step with a directory."""

    def __init__(
        self,
        runtime: Runtime,
        directory: Path,
        *,
        catalog: Catalog | None = None,
        registry: SchemaRegistry | None = None,
        poll_s: float | None = None,
        initial: RunbookSet | None = None,
    ) -> None:
        self.runtime = runtime
        self.directory = directory
        self.catalog = catalog or runtime.catalog
        self.registry = registry
        # As often as the policy bundle is looked at, unless told otherwise.
        self.poll_s = poll_s if poll_s is not None else runtime.settings.policy_poll_s
        self.current = initial or load_runbooks(directory, catalog=self.catalog, registry=registry)
        self._stamp = _stamp(directory)
        self._last_poll = time.monotonic()
        self.agents: list[RunbookAgent] = []
        # Set by the lifecycle: which version acts for a service, and how a shadow plan
        # is recorded (decided by the live policy); see warden.runtime.lifecycle.
        self.role: Callable[[Runbook, str], str] | None = None
        self.record_shadow: Callable[[RunbookAgent, Verdict, ev.Event], None] | None = None
        self._install(self.current)
        self._recall_throttles()
        runtime.subscribe(self._observe)
        runtime.tick_hooks.append(self.on_tick)

    # -- wiring ------------------------------------------------------------------------

    def _install(self, runbooks: RunbookSet) -> None:
        """Replace the runtime's runbook agents; throttles carry over by runbook name."""
        fired = {(a.name, a.runbook.mode): a.fired for a in self.agents}
        agents = [
            RunbookAgent(
                r,
                world=self.runtime.world,
                fired=dict(fired.get((r.name, r.mode), {})),
                role=self._role,
            )
            for r in runbooks.runbooks
        ]
        old = {id(a) for a in self.agents}
        kept = [a for a in self.runtime.agents if id(a) not in old]
        # Before the escalation agent (last), which summarizes what nobody could plan.
        at = len(kept) - 1 if kept and kept[-1].name == "escalation" else len(kept)
        self.runtime.agents[:] = [*kept[:at], *agents, *kept[at:]]
        self.agents = agents
        self._record(
            ev.RUNBOOKS_LOADED,
            {
                "version": runbooks.version,
                "directory": runbooks.directory,
                "runbooks": {r.name: r.version for r in runbooks.runbooks if r.mode != "shadow"},
            }
            | self._candidates(runbooks),
            key=runbooks.version,
        )

    @staticmethod
    def _candidates(runbooks: RunbookSet) -> dict[str, object]:
        shadow = {r.name: r.version for r in runbooks.runbooks if r.mode == "shadow"}
        return {"shadow": shadow} if shadow else {}

    def _role(self, runbook: Runbook, service: str) -> str:
        return runbook.mode if self.role is None else self.role(runbook, service)

    def _recall_throttles(self) -> None:
        """Throttles from the incidents runbooks opened: the history, not this process."""
        kinds = {a.runbook.kind: a for a in self.agents}
        for incident in self.runtime.incidents.values():
            agent = kinds.get(incident.kind)
            if agent is None:
                continue
            opened = next(iter(self.runtime.store.read_stream(f"incident-{incident.id}")), None)
            if opened is not None:
                agent.observe(opened)

    def _observe(self, event: ev.Event) -> None:
        for agent in self.agents:
            agent.observe(event)

    def _record(
        self, type_: str, data: dict[str, object], key: str, stream: str = ev.RUNBOOKS_STREAM
    ) -> None:
        when = ev.format_time(self.runtime.clock.now())
        event = ev.derived_event(type_, stream, data, when, key=key)
        self.runtime.store.append(stream, [event])

    # -- each round --------------------------------------------------------------------

    def on_tick(self) -> None:
        """Record shadow runbooks' plans, and reload the directory when it changed."""
        for agent in self.agents:
            for verdict, event in agent.take_shadowed():
                if self.record_shadow is not None:
                    self.record_shadow(agent, verdict, event)
                    continue
                plan = verdict.plan.to_dict() if verdict.plan is not None else None
                self._record(
                    ev.RUNBOOK_SHADOWED,
                    shadowed(agent, verdict, event, plan),
                    key=f"{agent.name}:{agent.version}:{event.id}",
                    stream=ev.SHADOW_STREAM,
                )
        now = time.monotonic()
        if now - self._last_poll >= self.poll_s:
            self._last_poll = now
            self.poll()

    def poll(self) -> bool:
        """Reload if the files changed; True when a new set serves."""
        stamp = _stamp(self.directory)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            candidate = load_runbooks(self.directory, catalog=self.catalog, registry=self.registry)
        except (ConfigError, OSError) as exc:
            log.warning("runbooks refused, the previous set keeps running: %s", exc)
            self._record(
                ev.RUNBOOKS_REJECTED,
                {"error": str(exc), "serving": self.current.version},
                key=f"{stamp}",
            )
            return False
        if candidate.version == self.current.version:
            return False
        self.current = candidate
        self._install(candidate)
        return True


def shadowed(
    agent: RunbookAgent, verdict: Verdict, event: ev.Event, plan: dict[str, Any] | None
) -> dict[str, Any]:
    """The data of a shadow runbook's ``warden.runbook.shadowed`` record."""
    return {
        "kind": "runbook",
        "name": agent.name,
        "runbook": agent.name,
        "version": agent.version,
        "event_id": event.id,
        "event_time": event.time,
        "service": verdict.service,
        "group_key": verdict.key,
        "plan": plan,
    }


def attach(watcher: RunbookWatcher, controller: LifecycleController) -> None:
    """Let ``controller`` say which runbook version acts, and record shadow plans."""

    def role(runbook: Runbook, service: str) -> str:
        return controller.runbook_role(runbook.name, runbook.version, runbook.mode, service)

    def record(agent: RunbookAgent, verdict: Verdict, event: ev.Event) -> None:
        plan = verdict.plan
        data = shadowed(agent, verdict, event, plan.to_dict() if plan is not None else None)
        controller.record_runbook_shadow(data, plan, agent.runbook.kind, event)

    watcher.role = role
    watcher.record_shadow = record


def runbook_versions(watcher: RunbookWatcher | None) -> Callable[[], list[RunbookVersion]]:
    """What the lifecycle controller lists of the watcher's runbooks (none without one)."""
    if watcher is None:
        return list
    return lambda: [RunbookVersion(a.name, a.version, a.runbook.mode, a) for a in watcher.agents]


__all__ = ["RunbookWatcher", "attach", "runbook_versions", "shadowed"]
