"""The executor: runs allowed steps and compensations, intent before, result after. Action plane.

It refuses any step that the control plane did not allow for its exact hash, writes the
intent (with the step's idempotency key and attempt number) before touching anything,
runs the adapter under the action's timeout, and records the outcome, saying whether a
failure is worth retrying. After a crash, :meth:`Executor.reconcile` settles an intent
that has no result through the adapter's check, and never repeats a non-idempotent step
whose outcome cannot be established.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from warden.domain import events as ev
from warden.domain.errors import ConcurrencyConflict, PermanentError, PolicyDenied, TemporaryError
from warden.domain.ids import derived_id, incident_stream
from warden.domain.incident import SIDE_EVENTS
from warden.ports import ActionChecker, ActionResult

if TYPE_CHECKING:
    from collections.abc import Mapping

    from warden.domain.catalog import Catalog
    from warden.domain.control import Controls
    from warden.domain.incident import Incident
    from warden.ports import ActionAdapter, Clock, EventStore


@dataclass(frozen=True, slots=True)
class StepRun:
    """What one run of a step left in the store."""

    intent: ev.Event
    result: ev.Event
    ok: bool


@dataclass(frozen=True, slots=True)
class Reconciled:
    """How an intent without a result was settled after a restart."""

    events: tuple[ev.Event, ...]
    settled: bool  # False: the outcome is unknown and the step must not be repeated
    how: str


Answer = tuple[ActionResult, "bool | None"]


def _call(adapter: ActionAdapter, action: str, target: str, params: dict[str, Any]) -> Answer:
    """Run the adapter in the calling thread; it bounds the action by its own timeout.

    A local process is stopped by signalling its process group, an HTTP call gives up
    after its route's timeout: no thread is left running an action nobody waits for.
    Returns the result and whether a failure may be retried (None: it is unknown whether
    the action had an effect).
    """
    try:
        result = adapter.run(action, target, params)
    except TemporaryError as exc:
        return ActionResult(False, str(exc), {"retry_after_s": exc.delay}), True
    except PermanentError as exc:
        return ActionResult(False, str(exc), {}), False
    except Exception as exc:  # an adapter's crash is a failed step, never a dead runtime
        return ActionResult(False, f"adapter error: {exc}", {}), None
    if result.ok:
        return result, False
    retryable = result.output.get("retryable")
    return result, bool(retryable) if retryable is not None else None


@dataclass(frozen=True, slots=True)
class Intent:
    """A stored intent, with what its worker needs to act on it and record the result."""

    incident: Incident
    event: ev.Event  # the stored intent
    compensation: bool
    index: int
    attempt: int
    action: str
    target: str
    params: dict[str, Any]
    key: str
    idempotent: bool

    @property
    def version(self) -> int:
        """The incident stream's version right after the intent."""
        return self.incident.version + 1


class Executor:
    """Runs allowed steps and compensations through the adapter registered for each action."""

    def __init__(
        self,
        store: EventStore,
        catalog: Catalog,
        adapters: Mapping[str, ActionAdapter],
        clock: Clock,
        worker: str = "",
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.adapters = adapters
        self.clock = clock
        self.worker = worker or uuid.uuid4().hex[:12]

    def can_run(self, action: str) -> bool:
        """True when the action is in the catalog and an adapter runs it."""
        return self.catalog.get(action) is not None and action in self.adapters

    def runnable(self) -> frozenset[str]:
        """Every action :meth:`can_run`: those in the catalog that an adapter runs."""
        return self.catalog.known(self.adapters)

    def _event(
        self, incident: Incident, type_: str, data: dict[str, Any], key: str, target: str
    ) -> ev.Event:
        return ev.derived_event(
            type_,
            incident_stream(incident.id),
            data,
            ev.format_time(self.clock.now()),
            key=key,
            subject=target,
            correlation_id=incident.correlation_id,
            traceparent=incident.traceparent,
        )

    def claimed(self, intent: Intent, stored: ev.Event) -> Intent:
        """``intent`` with its event as the store returned it; only its own worker acts on it.

        Intent ids are derived, so a second worker's append of the same intent is an
        idempotent no-op that returns the first worker's event: then it must not act.

        Raises:
            ConcurrencyConflict: the stored intent is another worker's.
        """
        if stored.data.get("worker") != self.worker:
            stream = incident_stream(intent.incident.id)
            raise ConcurrencyConflict(stream, intent.incident.version, intent.version)
        return replace(intent, event=stored)

    def _store(self, intent: Intent) -> Intent:
        """Append the intent on its own (the runtime writes it with the decision and leases)."""
        stream = incident_stream(intent.incident.id)
        version = intent.incident.version
        (stored,) = self.store.append(stream, [intent.event], expected_version=version)
        return self.claimed(intent, stored)

    def run_next_step(self, incident: Incident, controls: Controls) -> StepRun:
        """Run the incident's next step; raises :class:`PolicyDenied` if it is not allowed."""
        return self.perform(self.intend_step(incident, controls))

    def intend_step(self, incident: Incident, controls: Controls) -> Intent:
        """Store the intent of the incident's next step, for :meth:`perform` to act on.

        Raises :class:`PolicyDenied` as :meth:`step_intent` does.
        """
        return self._store(self.step_intent(incident, controls))

    def step_intent(self, incident: Incident, controls: Controls) -> Intent:
        """The intent of the incident's next step, not stored yet.

        The caller appends :attr:`Intent.event` after ``incident``'s last event and acts
        only on what :meth:`claimed` returns (invariant 3: the intent is durable first).

        Raises :class:`PolicyDenied` when the step was not allowed for its exact hash, when
        the kill switch is engaged, or when no adapter runs the action.
        """
        if incident.plan is None or incident.next_step >= len(incident.step_hashes):
            raise PolicyDenied(f"incident {incident.id} has no step left to run")
        index = incident.next_step
        hash_ = incident.step_hashes[index]
        step = incident.plan.steps[index]
        if not incident.allowed(hash_):
            raise PolicyDenied(f"step {index} of incident {incident.id} was not allowed")
        if controls.kill_switch:
            raise PolicyDenied("kill switch engaged", ("guardrail:kill-switch",))
        spec = self.catalog.get(step.action)
        adapter = self.adapters.get(step.action)
        if spec is None or adapter is None:
            raise PolicyDenied(f"no adapter runs {step.action!r}")
        attempt = incident.attempts(index) + 1
        key = derived_id("idempotency", incident.id, hash_)
        intent = self._event(
            incident,
            ev.STEP_INTENDED,
            {
                "index": index,
                "attempt": attempt,
                "step_hash": hash_,
                "idempotency_key": key,
                "action": step.action,
                "target": step.target,
                "params": dict(step.params),
                "idempotent": spec.idempotent,
                "timeout_s": spec.timeout_s,
                "worker": self.worker,
            },
            f"{index}:{attempt}",
            step.target,
        )
        return Intent(
            incident, intent, False, index, attempt, step.action, step.target,
            dict(step.params), key, spec.idempotent,
        )  # fmt: skip

    def run_compensation(self, incident: Incident, index: int, controls: Controls) -> StepRun:
        """Undo completed step ``index`` with its catalog compensation."""
        return self.perform(self.intend_compensation(incident, index, controls))

    def intend_compensation(self, incident: Incident, index: int, controls: Controls) -> Intent:
        """Store the intent to undo completed step ``index``, for :meth:`perform`.

        Raises :class:`PolicyDenied` as :meth:`compensation_intent` does.
        """
        return self._store(self.compensation_intent(incident, index, controls))

    def compensation_intent(self, incident: Incident, index: int, controls: Controls) -> Intent:
        """The intent to undo completed step ``index``, not stored yet (as :meth:`step_intent`).

        Raises :class:`PolicyDenied` while the kill switch is engaged (it holds every side
        effect, compensations included), and when the step cannot be undone.
        """
        assert incident.plan is not None
        step = incident.plan.steps[index]
        spec = self.catalog.get(step.action)
        undo = self.catalog.get(spec.compensation) if spec and spec.compensation else None
        adapter = self.adapters.get(undo.name) if undo else None
        if undo is None or adapter is None:
            raise PolicyDenied(f"step {index} ({step.action}) has no runnable compensation")
        if controls.kill_switch:
            raise PolicyDenied("kill switch engaged", ("guardrail:kill-switch",))
        missing = spec.missing_undo(incident.output_of(index)) if spec else ()
        if missing:
            raise PolicyDenied(
                f"step {index} ({step.action}) cannot be undone: its result did not report"
                f" undo_params {', '.join(missing)}"
            )
        # The step's own output may say how to undo it (e.g. the replica count before).
        params = dict(step.params)
        params.update(incident.output_of(index).get("undo_params") or {})
        key = derived_id("compensation", incident.id, incident.step_hashes[index])
        intent = self._event(
            incident,
            ev.COMPENSATION_INTENDED,
            {
                "index": index,
                "action": undo.name,
                "target": step.target,
                "params": params,
                "idempotency_key": key,
                "idempotent": undo.idempotent,
                "worker": self.worker,
            },
            str(index),
            step.target,
        )
        return Intent(
            incident, intent, True, index, 0, undo.name, step.target, params, key, undo.idempotent
        )

    def perform(self, intent: Intent) -> StepRun:
        """Act on a stored intent and record its result; safe to call from a worker thread.

        The result is appended after the intent; notes appended to the incident meanwhile
        do not stop it, a result already recorded for the intent (settled by another
        worker after a takeover) does.
        """
        adapter = self.adapters[intent.action]
        started = time.monotonic()
        params = {**intent.params, "idempotency_key": intent.key}
        result, retryable = _call(adapter, intent.action, intent.target, params)
        duration = round((time.monotonic() - started) * 1000, 1)
        incident = intent.incident
        if intent.compensation:
            outcome = self._event(
                incident,
                ev.COMPENSATION_SUCCEEDED if result.ok else ev.COMPENSATION_FAILED,
                {
                    "index": intent.index,
                    "action": intent.action,
                    "detail": result.detail,
                    "duration_ms": duration,
                },
                str(intent.index),
                intent.target,
            )
        else:
            if retryable is None:
                # Unknown effect: only an idempotent action may safely run again.
                retryable = intent.idempotent
            outcome = self._event(
                incident,
                ev.STEP_SUCCEEDED if result.ok else ev.STEP_FAILED,
                {
                    "index": intent.index,
                    "attempt": intent.attempt,
                    "step_hash": incident.step_hashes[intent.index],
                    "idempotency_key": intent.key,
                    "detail": result.detail,
                    "output": result.output,
                    "retryable": retryable and not result.ok,
                    "duration_ms": duration,
                },
                f"{intent.index}:{intent.attempt}",
                intent.target,
            )
        return StepRun(intent.event, self._record(intent, outcome), result.ok)

    def _record(self, intent: Intent, outcome: ev.Event) -> ev.Event:
        """Append a result after its intent, past any note appended meanwhile."""
        stream = incident_stream(intent.incident.id)
        version = intent.version
        while True:
            try:
                (stored,) = self.store.append(stream, [outcome], expected_version=version)
                return stored
            except ConcurrencyConflict:
                later = self.store.read_stream(stream, version)
                if any(e.type not in SIDE_EVENTS for e in later):
                    raise
                version += len(later)

    def reconcile(self, incident: Incident) -> Reconciled:
        """Settle a step or compensation intended before a crash, through the adapter's check.

        A confirmed effect becomes a success, a confirmed absence a (retryable when
        idempotent) failure; when the check cannot tell, an idempotent action is marked
        failed and retryable, and a non-idempotent one is left unsettled so the caller
        escalates instead of repeating it.
        """
        assert incident.plan is not None
        flight = incident.in_flight
        compensation = incident.compensation_in_flight
        if flight is not None:
            index, attempt = flight
            step = incident.plan.steps[index]
            action, target = step.action, step.target
        elif compensation is not None:
            index, attempt = compensation, 0
            step = incident.plan.steps[index]
            spec = self.catalog.get(step.action)
            action, target = (spec.compensation or "") if spec else "", step.target
        else:
            return Reconciled((), True, "nothing in flight")
        spec = self.catalog.get(action)
        adapter = self.adapters.get(action)
        verdict: bool | None = None
        if isinstance(adapter, ActionChecker):
            key_kind = "compensation" if compensation is not None else "idempotency"
            params = {
                **dict(step.params),
                "idempotency_key": derived_id(key_kind, incident.id, incident.step_hashes[index]),
            }
            try:
                verdict = adapter.check(action, target, params)
            except Exception:  # a failing check tells nothing
                verdict = None
        idempotent = spec.idempotent if spec else False
        if verdict is None:
            how = "check could not tell"
        else:
            how = "check confirmed the effect" if verdict else "check found no effect"
        if verdict is None and not idempotent:
            return Reconciled((), False, f"{action} on {target}: {how}; not repeated")
        ok = bool(verdict)
        stream = incident_stream(incident.id)
        if compensation is not None:
            type_ = ev.COMPENSATION_SUCCEEDED if ok else ev.COMPENSATION_FAILED
            data: dict[str, Any] = {"index": index, "action": action, "detail": how}
            key = str(index)
        else:
            type_ = ev.STEP_SUCCEEDED if ok else ev.STEP_FAILED
            data = {
                "index": index,
                "attempt": attempt,
                "step_hash": incident.step_hashes[index],
                "detail": f"reconciled after restart: {how}",
                "output": {},
                "retryable": not ok and idempotent,
                "reconciled": True,
                "duration_ms": 0.0,
            }
            key = f"{index}:{attempt}"
        event = self._event(incident, type_, data, key, target)
        (stored,) = self.store.append(stream, [event], expected_version=incident.version)
        return Reconciled((stored,), True, how)
