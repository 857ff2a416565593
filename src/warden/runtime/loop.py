"""The reconcile loop that wires the four planes together. Runtime (shell).

Each tick reads the new events from the store and folds them (health, controls,
incidents), lets agents detect faults and open incidents, then moves every open incident
one step: plan, decide, execute, verify, close. The runtime's own appends come back
through the same tail, so live operation and replay fold the very same history.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from warden.domain import (
    changes,
    control,
    drift,
    health,
    incident,
    isolation,
    joining,
    relapse,
    users,
)
from warden.domain import events as ev
from warden.domain import lifecycle as lc
from warden.domain import signals as sig
from warden.domain.catalog import Catalog
from warden.domain.errors import ConcurrencyConflict, WardenError
from warden.domain.ids import incident_stream, service_stream
from warden.domain.kpis import INCIDENT_STREAM_PREFIX
from warden.domain.plain_json import printable
from warden.domain.topology import Topology
from warden.domain.world import World
from warden.execution.workers import ActionWorkers
from warden.governance.context import ActionRecord
from warden.ports import AppendCounter, GroupedFlush, UuidIds
from warden.remediation import Folded, Interpreter, RuntimeSettings, backoff_s
from warden.remediation.planning import Planner
from warden.runtime.snapshots import DEFAULT_SNAPSHOT_EVERY, FoldSnapshots

if TYPE_CHECKING:
    from warden.agents.protocol import Agent, Detection
    from warden.domain.incident import Incident
    from warden.execution.executor import Executor
    from warden.governance.bundles import BundleWatcher
    from warden.governance.gate import DecisionGate
    from warden.ingest.gate import IngestGate
    from warden.ingest.probes import Probe, ProbeResult
    from warden.ports import Clock, EventStore, IdSource, Leases

HISTORY_KEPT = timedelta(hours=1)
TRACEPARENTS_KEPT = 4096
UNFOLDABLE = (WardenError, LookupError, TypeError, ValueError, AttributeError, RecursionError)
"""What folding a malformed stored record raises; the record is skipped, not fatal."""
log = logging.getLogger(__name__)

EventListener = Callable[[ev.Event], None]


class Runtime:
    """Drives incidents from detection to a terminal state.

    Each round asks the pure lifecycle (:mod:`warden.domain.lifecycle`) what every open
    incident needs next, and the :class:`~warden.remediation.Interpreter` carries it out.
    """

    def __init__(
        self,
        store: EventStore,
        ingest: IngestGate,
        agents: Sequence[Agent],
        gate: DecisionGate,
        executor: Executor,
        probes: Mapping[str, Probe],
        clock: Clock,
        settings: RuntimeSettings,
        *,
        catalog: Catalog | None = None,
        topology: Topology | None = None,
        policies: BundleWatcher | None = None,
        leases: Leases | None = None,
        after_tick: Callable[[], None] | None = None,
        shadow: DecisionGate | None = None,
        shadow_policies: BundleWatcher | None = None,
        ids: IdSource | None = None,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
    ) -> None:
        self.store = store
        self.ingest = ingest
        self.agents = list(agents)
        self.gate = gate
        self.shadow = shadow
        self.shadow_policies = shadow_policies
        self.executor = executor
        self.probes = dict(probes)
        self.clock = clock
        self.settings = settings
        self.catalog = catalog or Catalog()
        self.topology = topology or Topology()
        self.policies = policies
        self.leases = leases
        self.after_tick = after_tick
        self._resolutions: list[ev.Event] = []
        # The W3C traceparent of recent inputs that carried one, by event id: an incident
        # they are evidence of continues their trace.
        self._traceparents: OrderedDict[str, str] = OrderedDict()
        # Configured autonomy rules come first; audited changes in the log override them.
        self._state = Folded(controls=control.Controls(autonomy=settings.autonomy_rules))
        # Start-up folds from the newest snapshot; listeners see only the events after it.
        self._snapshots = FoldSnapshots(store, self._state, snapshot_every)
        self._state = self._snapshots.resume()
        # A store that counts its appends lets a round skip reading back what nobody wrote.
        self._counter = store if isinstance(store, AppendCounter) else None
        self._read_at = -1  # the count when the log was last read
        # A store whose commits can share one flush: a round's appends do.
        self._grouped = store if isinstance(store, GroupedFlush) else None
        # The incidents not closed yet: a round looks at these only, however long the
        # history of closed ones grows.
        self._not_closed = {k for k, i in self._state.incidents.items() if not i.state.terminal}
        # Each open incident's version when a round last moved it: one that others wrote to
        # since (a plan, a worker's result, an approval) is moved first in the next round.
        self._moved_at: dict[str, int] = {}
        # Incidents opened since a round's walk last looked (another thread's plan stored
        # mid-round): the walk moves them next, before the incidents it had yet to move.
        self._arrived: list[str] = []
        self._depends_on: tuple[Topology, dict[str, tuple[str, ...]]] | None = None
        self._listeners: list[EventListener] = []
        # Called each round after folding, before agents detect (e.g. runbook hot reload).
        self.tick_hooks: list[Callable[[], None]] = []
        self.planner = Planner(
            self.agents,
            failure_threshold=settings.failure_threshold,
            relapse_window_s=settings.relapse_window_s,
        )
        self.workers = ActionWorkers(executor, settings.action_workers)
        self.interpreter = Interpreter(
            store=store,
            gate=gate,
            shadow=lambda: self.shadow,
            executor=executor,
            workers=self.workers,
            leases=leases,
            planner=self.planner,
            settings=lambda: self.settings,
            clock=clock,
            catalog=self.catalog,
            topology=self.topology,
            state=lambda: self._state,
            world=self.world,
            probe=self._probe_for_verification,
            has_probe=lambda service: service in self.probes,
        )
        self._last_probe_ok: dict[str, bool] = {}
        self._probe_lock = threading.Lock()
        self._last_policy_poll = 0.0
        # What agents may read of the configuration: limits, and desired state as desired.*.
        limits: dict[str, dict[str, str]] = {s: dict(v) for s, v in settings.limits.items()}
        for service, fields in settings.desired.items():
            for name, value in fields.items():
                limits.setdefault(service, {})[f"desired.{name}"] = value
        self._limits = {s: tuple(sorted(v.items())) for s, v in limits.items()}
        self.ids = ids or UuidIds()
        # Each observed field with the event that showed its value: the causes of drift.
        self._observed: dict[tuple[str, str], drift.Observation] = {}
        self.subscribe(lambda event: drift.observe(self._observed, event))

    # -- observation -------------------------------------------------------------------

    def subscribe(self, listener: EventListener) -> None:
        """Call ``listener`` with every event the runtime folds, in log order."""
        self._listeners.append(listener)

    @property
    def incidents(self) -> dict[str, Incident]:
        """Every incident seen so far, by id."""
        return dict(self._state.incidents)

    @property
    def controls(self) -> control.Controls:
        """The kill switches, autonomy levels and policy version in force."""
        return self._state.controls

    def open_incidents(self) -> list[Incident]:
        """The incidents not in a terminal state, by id."""
        incidents = self._state.incidents
        return [incidents[i] for i in sorted(self._not_closed)]

    def next_due(self) -> datetime | None:
        """When the next round is due with no input arrived; None: only input moves on.

        The first timer after now of an open incident: the lifecycle's
        (:func:`warden.domain.lifecycle.next_due`) or a lease's. A loop driven by input
        (the simulator) sleeps until then instead of polling.
        """
        now = self.clock.now()
        incidents = self._state.incidents
        due = lc.next_due(
            (incidents[i] for i in self._not_closed),
            self.settings.lifecycle,
            now,
            incidents,
            self.catalog,
        )
        leases = self.interpreter.next_due(now.timestamp())
        if leases is not None:
            moment = datetime.fromtimestamp(leases, UTC)
            due = moment if due is None else min(due, moment)
        return due

    def _depends(self) -> dict[str, tuple[str, ...]]:
        """Each service's dependencies, built once per topology."""
        cached = self._depends_on
        if cached is None or cached[0] is not self.topology:
            depends = {n.name: n.depends_on for n in self.topology.services.values()}
            cached = self._depends_on = (self.topology, depends)
        return dict(cached[1])

    def world(self) -> World:
        """What agents see now."""
        return World(
            now=self.clock.now(),
            health=dict(self._state.health),
            depends_on=self._depends(),
            signals=dict(self._state.signals),
            limits=self._limits,
            isolated=dict(self._state.isolated),
            unmanaged=self.settings.unmanaged,
            changes=self._state.changes,
            remedies=self._state.remedies,
        )

    def detect_drift(self) -> None:
        """Compare desired with observed state; record drifts that appeared or went away."""
        if not self.settings.desired:
            return
        observed = drift.values(self._observed)
        for change in drift.changes(self.settings.desired, observed, self._state.open_drift):
            # The drift is dated and named by the observation that revealed it, so replay,
            # ticking at other moments, derives the same event (and the same incident).
            cause = self._observed[(change.service, change.field)]
            type_ = ev.DRIFT_DETECTED if change.appeared else ev.DRIFT_RESOLVED
            event = ev.derived_event(
                type_,
                service_stream(change.service),
                {
                    "service": change.service,
                    "field": change.field,
                    "desired": change.desired,
                    "observed": change.observed,
                },
                cause.time,
                key=f"{change.field}:{change.observed}:{cause.event_id}",
                subject=change.service,
            )
            self.store.append(service_stream(change.service), [event])

    def record_probe(self, service: str, probe: str, result: ProbeResult, purpose: str) -> None:
        """Store a probe result through the quality gates.

        Failures are always stored; a success only when it changes what is known (the
        first after failures) or when it verifies a remediation, so a healthy fleet does
        not flood the log.
        """
        with self._probe_lock:
            previous = self._last_probe_ok.get(service)
            self._last_probe_ok[service] = result.ok
        if result.ok and previous is True and purpose == "watch":
            return
        now = ev.format_time(self.clock.now())
        data: dict[str, Any] = {
            "service": service,
            "probe": probe,
            "latency_ms": round(result.latency_ms, 2),
            "status": result.status,
            "purpose": purpose,
        }
        if not result.ok:
            data["error"] = result.error
            data["kind"] = result.kind or health.failure_kind(result.error, result.status)
        if result.exit_code is not None:
            data["exit_code"] = result.exit_code
        event_id = self.ids.new_id()
        raw = ev.Event(
            id=event_id,
            source=f"warden://probe/{service}",
            type=ev.PROBE_SUCCEEDED if result.ok else ev.PROBE_FAILED,
            time=now,
            data=data,
            subject=service,
            correlation_id=event_id,
        ).to_cloudevent()
        self.ingest.admit(raw, service_stream(service), f"probe:{service}")

    # -- the loop ----------------------------------------------------------------------

    def tail(self) -> list[ev.Event]:
        """Fold every event appended since the last call; returns them."""
        if self._counter is not None:
            self._read_at = self._counter.appended()  # before the read: a later append shows
        fresh = self.store.read_all(self._state.position)
        for event in fresh:
            try:
                self._fold(event)
            except UNFOLDABLE as exc:
                # A record the gates would refuse (a damaged or older store) is skipped,
                # the same way in replay, rather than stopping every later tick.
                log.warning(
                    "event %r at %d not folded: %s", event.id, event.position, printable(str(exc))
                )
            self._state.position = event.position
            for listener in self._listeners:
                try:
                    listener(event)
                except UNFOLDABLE as exc:
                    reason = printable(str(exc))
                    log.warning("event %r at %d not shown: %s", event.id, event.position, reason)
        return fresh

    def _tail_if_appended(self) -> list[ev.Event]:
        """:meth:`tail`, unless nothing was appended through the store since the last one.

        Within a round, what the runtime writes itself is read back at once; what other
        processes append waits for the next round's first tail.
        """
        if self._counter is not None and self._counter.appended() == self._read_at:
            return []
        return self.tail()

    def _fold(self, event: ev.Event) -> None:
        state = self._state
        if event.type in changes.CHANGE_TYPES:
            state.changes = changes.observe(state.changes, event)
        if event.traceparent and not event.stream.startswith(INCIDENT_STREAM_PREFIX):
            self._traceparents[event.id] = event.traceparent
            if len(self._traceparents) > TRACEPARENTS_KEPT:
                self._traceparents.popitem(last=False)
        if event.type in (ev.PROBE_FAILED, ev.PROBE_SUCCEEDED):
            service = str(event.data.get("service", event.subject))
            current = state.health.get(service) or health.Health(service)
            state.health[service] = health.observe(current, event)
        elif event.stream == ev.CONTROL_STREAM:
            state.controls = control.observe(state.controls, event)
        elif event.stream == ev.USERS_STREAM:
            state.users = users.observe(state.users, event)
        elif event.type in sig.SIGNAL_TYPES:
            if event.type == ev.ALERT_RESOLVED:
                self._resolutions.append(event)
            service = sig.service_of(event)
            # Built only when the service has none yet, not as a default on every event.
            current_signals = state.signals.get(service) or sig.Signals(service)
            state.signals[service] = sig.observe(current_signals, event)
            if event.type == ev.DRIFT_DETECTED:
                drifted = (service, str(event.data["field"]))
                state.open_drift[drifted] = str(event.data["observed"])
            elif event.type == ev.DRIFT_RESOLVED:
                state.open_drift.pop((service, str(event.data["field"])), None)
        elif event.type == ev.STATE_OBSERVED:
            drift.observe_report(state.reported, event)
        elif event.type in incident.INCIDENT_EVENT_TYPES:
            key = event.stream.removeprefix("incident-")
            folded = incident.apply(state.incidents.get(key), event)
            state.incidents[key] = folded
            if folded.state.terminal:
                self._not_closed.discard(key)
                self._moved_at.pop(key, None)
            elif key not in self._not_closed:
                self._not_closed.add(key)
                self._arrived.append(key)
            for release in lc.closing_commands(folded):
                assert isinstance(release, lc.ReleaseLeases)
                self.interpreter.release(release)
            if folded.plan is not None and event.type in (
                ev.STEP_SUCCEEDED,
                ev.COMPENSATION_SUCCEEDED,
            ):
                step = folded.plan.steps[int(event.data["index"])]
                if event.type == ev.STEP_SUCCEEDED:
                    done = relapse.Remedy(
                        event.time, step.action, step.target, folded.service, folded.id
                    )
                    state.remedies = relapse.remember(state.remedies, done)
                state.isolated = (
                    isolation.after_step(state.isolated, step, event.time, folded.id)
                    if event.type == ev.STEP_SUCCEEDED
                    else isolation.after_undo(state.isolated, step)
                )
            if event.type == ev.STEP_INTENDED:
                state.actions.append(
                    ActionRecord(event.moment, str(event.data["action"]), str(event.data["target"]))
                )
                while state.actions and event.moment - state.actions[0].at > HISTORY_KEPT:
                    state.actions.popleft()

    def tick(self) -> int:
        """One round: fold, detect, move each open incident one step. Returns events added."""
        added = len(self.tail())
        self._apply_resolutions()
        if not self._resolutions:  # an alert resolution not yet acted on is in no snapshot
            self._snapshots.keep_if_due(self._state)
        self._reload_policies()
        for hook in self.tick_hooks:
            hook()
        self.detect_drift()
        added += len(self._tail_if_appended())
        # One view of the world for every detector: nothing they open is folded until the
        # tail below, so each would be shown the very same state.
        world = self.world()
        # The round's appends share one disk flush (an intent is flushed before its action):
        # the incidents a burst of matches opens, too, rather than a flush each.
        with self._one_flush():
            for agent in self.agents:
                for detection in agent.detect(world):
                    self._open(detection, agent.name)
            added += len(self._tail_if_appended())
            added += self._walk(self._news_first(self._not_closed))
        self.planner.forget_closed(self._state.incidents)
        if self.after_tick is not None:
            self.after_tick()
        return added

    def _one_flush(self) -> contextlib.AbstractContextManager[None]:
        if self._grouped is not None:
            return self._grouped.one_flush()
        return contextlib.nullcontext()

    def _news_first(self, incident_ids: set[str]) -> list[str]:
        """``incident_ids`` in the order a round moves them: news first, each part by id.

        An incident written to since a round last moved it (newly planned, a worker's
        result, an approval) has work waiting; the others mostly check a clock and wait.
        Moving the first ones first keeps a fresh decision from queueing behind the rest.
        """
        incidents, moved_at = self._state.incidents, self._moved_at
        news = [k for k in incident_ids if moved_at.get(k) != incidents[k].version]
        if not news:
            return sorted(incident_ids)
        first = set(news)
        return sorted(news) + sorted(k for k in incident_ids if k not in first)

    def _walk(self, incident_ids: list[str]) -> int:
        """Move each of ``incident_ids`` one step, in order; returns the events added.

        Incidents another thread stored meanwhile are moved in this round too, next and on
        a fresh view: a plan stored mid-round waits neither for the next round nor for
        the incidents this one had yet to move.
        """
        added = 0
        self._arrived.clear()  # those open now are among ``incident_ids``
        view = None  # built for the first incident that does more than wait as before
        incidents = self._state.incidents
        queue, seen = deque(incident_ids), set(incident_ids)
        ending = False
        while True:
            if not queue and not ending:
                ending = True  # once: a stream of new incidents does not hold the round
                added += len(self._tail_if_appended())  # what was stored while this walked
            if self._arrived:
                arrived = sorted(k for k in self._arrived if k not in seen)
                self._arrived.clear()
                if arrived:
                    seen.update(arrived)
                    queue.extendleft(reversed(arrived))
                    view = None  # the arrivals need a fresh view
            if not queue:
                return added
            incident_id = queue.popleft()
            current = incidents[incident_id]
            # Closed by a tail earlier in this round, or waiting on what has not changed.
            if current.state.terminal or self.interpreter.waits(current):
                continue
            if view is None:
                view = self.interpreter.view(self._not_closed)
            # Another worker may move this incident first; the tail then shows how.
            acted = True
            with contextlib.suppress(ConcurrencyConflict):
                acted = self.interpreter.advance(current, view)
            if acted:
                added += len(self._tail_if_appended())
                current = incidents[incident_id]
                if current.state.terminal:
                    continue
            # What it wrote itself is no news; what others write from now on is.
            self._moved_at[incident_id] = current.version

    def _apply_resolutions(self) -> None:
        """A resolved alert closes its incident once all its evidence cleared, else notes it."""
        pending, self._resolutions = self._resolutions, []
        for event in pending:
            said = joining.on_alert_resolved(
                event, self._state.incidents.values(), self.world(), self.clock.now()
            )
            if said is not None:
                self.store.append(said.stream, list(said.events), said.expected_version)
                self.tail()

    def _open(self, detection: Detection, detected_by: str) -> None:
        source = next((t for e in detection.evidence if (t := self._traceparents.get(e, ""))), "")
        opening = self.planner.open(
            detection,
            detected_by,
            self._state.incidents,
            self.clock.now(),
            self._decided_again,
            source_traceparent=source,
            repage_after_s=self.settings.repage_after_s,
        )
        if opening is None:
            return
        self.store.append(opening.stream, list(opening.events), opening.expected_version)
        self.tail()  # the next detection of this round sees the incident open
        # The fix of an earlier incident did not hold: it is a failure, not a resolution.
        # Only the service's own incidents can have relapsed: the planner's index by
        # service spares a scan of every incident ever opened.
        earlier = relapse.relapsed(
            self.planner.of_service(self._state.incidents, detection.service),
            detection.service,
            detection.first_signal_at,
            self.settings.relapse_window_s,
            detection.kind,
        )
        if earlier is not None:
            reason = (
                f"{detection.service} failed again at {detection.first_signal_at},"
                f" {self.settings.relapse_window_s:g} s or less after this incident was"
                f" resolved: the remediation did not hold ({detection.summary})"
            )
            said = lc.incident_event(
                earlier, ev.INCIDENT_RELAPSED, {"reason": reason}, self.clock.now()
            )
            with contextlib.suppress(ConcurrencyConflict):
                self.store.append(incident_stream(earlier.id), [said], earlier.version)

    def _decided_again(self, closed: Incident) -> str:
        # Only an incident a control denied asks for the (costlier) view.
        if not lc.denied_by_control(closed):
            return ""
        return lc.decided_again(closed, self.interpreter.view())

    def _probe_for_verification(self, service: str) -> None:
        probe = self.probes.get(service)
        if probe is not None:
            self.record_probe(service, repr(probe), probe.check(), "verification")

    def close(self) -> None:
        """Stop asking slow agents, and wait for the actions under way."""
        self.planner.close_agents()
        self.workers.close()

    def close_agents(self) -> None:
        """Stop asking slow agents; answers still on their way are dropped."""
        self.planner.close_agents()

    def run(self, should_stop: Callable[[], bool], period_s: float = 0.1) -> None:
        """Tick until ``should_stop`` says so."""
        while not should_stop():
            started = time.monotonic()
            self.tick()
            time.sleep(max(0.0, period_s - (time.monotonic() - started)))

    # -- policy bundle -----------------------------------------------------------------

    def _reload_policies(self) -> None:
        if self.policies is None:
            return
        now = time.monotonic()
        first = self._last_policy_poll == 0.0
        if not first and now - self._last_policy_poll < self.settings.policy_poll_s:
            return
        self._last_policy_poll = now
        self._reload_shadow()
        reload = self.policies.poll()
        when = ev.format_time(self.clock.now())
        if reload is not None and reload.bundle is None:
            rejected = ev.derived_event(
                ev.POLICY_REJECTED,
                ev.CONTROL_STREAM,
                {"error": reload.error, "serving": self.gate.bundle.version},
                when,
                key=f"{reload.error}:{when}",
            )
            self.store.append(ev.CONTROL_STREAM, [rejected])
            return
        if reload is not None and reload.bundle is not None:
            self.gate.bundle = reload.bundle
        version = self.gate.bundle.version
        if self._state.controls.policy_version != version:
            loaded = ev.derived_event(
                ev.POLICY_LOADED,
                ev.CONTROL_STREAM,
                {"version": version, "directory": str(self.gate.bundle.directory)},
                when,
                key=f"{version}:{when}",
            )
            self.store.append(ev.CONTROL_STREAM, [loaded])
        self.tail()

    def _reload_shadow(self) -> None:
        """A changed shadow bundle decides from now on; a broken one leaves the old in place."""
        if self.shadow_policies is None or self.shadow is None:
            return
        reload = self.shadow_policies.poll()
        if reload is None:
            return
        if reload.bundle is None:
            log.warning("shadow bundle refused, the previous one keeps deciding: %s", reload.error)
            return
        self.shadow.bundle = reload.bundle


def load_incidents(store: EventStore) -> dict[str, Incident]:
    """Every incident in the store, folded from its stream, by id."""
    return incident.fold_all(e for s in store.streams("incident-") for e in store.read_stream(s))


__all__ = ["EventListener", "Runtime", "RuntimeSettings", "backoff_s", "load_incidents"]
