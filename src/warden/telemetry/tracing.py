"""OpenTelemetry traces of incidents, built from the events the runtime folds. Telemetry.

One trace per incident continues the W3C ``traceparent`` its events carry; spans for the
ingested evidence, the agent's plan, each policy evaluation, approval waits, each action
and the verification take their start and end from the events' times.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from warden.domain import events as ev
from warden.domain.errors import ConfigError
from warden.domain.ids import traceparent_for
from warden.domain.kpis import INCIDENT_STREAM_PREFIX

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer, TracerProvider
    from opentelemetry.util.types import AttributeValue

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SIGNALS_KEPT = 2000
OTLP_EXPORTERS = {
    "http/protobuf": (
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "opentelemetry-exporter-otlp-proto-http",
    ),
    "grpc": (
        "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
        "opentelemetry-exporter-otlp-proto-grpc",
    ),
}
_CLOSING = {
    ev.INCIDENT_RESOLVED: "resolved",
    ev.INCIDENT_ESCALATED: "escalated",
    ev.INCIDENT_ROLLED_BACK: "rolled_back",
}
_PROPAGATOR = TraceContextTextMapPropagator()


def nanos(moment: datetime) -> int:
    """An aware datetime as OpenTelemetry's nanoseconds since the epoch, exactly."""
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


def remote_parent(traceparent: str) -> Context | None:
    """The context a W3C ``traceparent`` names, or None when it is not valid."""
    context = _PROPAGATOR.extract({"traceparent": traceparent})
    span_context = trace.get_current_span(context).get_span_context()
    return context if span_context.is_valid else None


def _link(traceparent: str) -> list[Link]:
    context = remote_parent(traceparent) if traceparent else None
    return [Link(trace.get_current_span(context).get_span_context())] if context else []


@dataclass
class _IncidentTrace:
    """The open spans of one incident and the times its next spans start from."""

    root: Span
    context: Context
    previous_ns: int
    asked_ns: int
    approval: Span | None = None
    actions: dict[int, Span] = field(default_factory=dict)
    verification: Span | None = None

    def open_spans(self) -> list[Span]:
        spans = [self.approval, *self.actions.values(), self.verification]
        return [s for s in spans if s is not None]


class TracingListener:
    """Turns the runtime's events into one OpenTelemetry trace per incident.

    Pass it to ``Runtime.subscribe``. A span can only be exported once it ends, so the
    incident's root span is exported when the incident closes; :meth:`close` ends the
    spans of incidents still open (marked ``warden.incident.unfinished``). The runtime
    refolds the whole log when it starts: pass its start time as ``since`` and spans that
    ended before it (exported by an earlier run) are not exported again.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider,
        *,
        since: datetime | None = None,
        signals_kept: int = SIGNALS_KEPT,
    ) -> None:
        self._tracer: Tracer = tracer_provider.get_tracer("warden")
        self._since = nanos(since) if since is not None else None
        self._signals: OrderedDict[str, ev.Event] = OrderedDict()
        self._signals_kept = signals_kept
        self._incidents: dict[str, _IncidentTrace] = {}
        self._lock = threading.Lock()

    def __call__(self, event: ev.Event) -> None:
        """Trace one event the runtime folded; a failure here never reaches the runtime."""
        try:
            with self._lock:
                if event.stream.startswith(INCIDENT_STREAM_PREFIX):
                    self._incident_event(event)
                elif event.stream != ev.CONTROL_STREAM and event.type != ev.PROBE_SUCCEEDED:
                    self._signals[event.id] = event
                    while len(self._signals) > self._signals_kept:
                        self._signals.popitem(last=False)
        except Exception:  # telemetry must not stop remediation
            log.warning(
                "tracing could not follow event %s (%s)", event.id, event.type, exc_info=True
            )

    def close(self) -> None:
        """End the spans of incidents that are still open, at their last event's time."""
        with self._lock:
            for current in self._incidents.values():
                for span in current.open_spans():
                    span.set_attribute("warden.unfinished", True)
                    self._end(span, current.previous_ns)
                current.root.set_attribute("warden.incident.unfinished", True)
                self._end(current.root, current.previous_ns)
            self._incidents.clear()

    def _end(self, span: Span, at: int) -> None:
        """End (and so export) ``span``, unless it ended before ``since``."""
        if self._since is None or at >= self._since:
            span.end(end_time=at)

    # -- one event at a time ---------------------------------------------------------------

    def _incident_event(self, event: ev.Event) -> None:
        at = nanos(event.moment)
        if event.type == ev.INCIDENT_OPENED:
            if event.stream not in self._incidents:
                self._open(event, at)
            return
        current = self._incidents.get(event.stream)
        if current is None:
            return  # opened before this listener was attached: nothing to continue
        at = max(at, current.previous_ns)
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, current, event, at)
        elif event.type not in _CLOSING:  # any other incident event: a point on the root span
            current.root.add_event(event.type, {"warden.event.id": event.id}, timestamp=at)
        current.previous_ns = at
        if event.type in _CLOSING:
            self._close(current, event, at)
            del self._incidents[event.stream]

    def _span(
        self,
        current: _IncidentTrace,
        name: str,
        start: int,
        attributes: dict[str, AttributeValue],
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        context: Context | None = None,
        links: list[Link] | None = None,
    ) -> Span:
        return self._tracer.start_span(
            name,
            context=context if context is not None else current.context,
            kind=kind,
            attributes=attributes,
            links=links or [],
            start_time=start,
        )

    def _open(self, event: ev.Event, at: int) -> None:
        data = event.data
        incident_id = str(
            data.get("incident_id", event.stream.removeprefix(INCIDENT_STREAM_PREFIX))
        )
        service = str(data.get("service", event.subject))
        first = data.get("first_signal_at")
        first_ns = min(nanos(ev.parse_time(str(first))), at) if first else at
        parent = remote_parent(event.traceparent) or remote_parent(traceparent_for(incident_id))
        root = self._tracer.start_span(
            f"incident {service}",
            context=parent,
            attributes={
                "warden.incident.id": incident_id,
                "warden.service": service,
                "warden.incident.severity": str(data.get("severity", "")),
                "warden.incident.summary": str(data.get("summary", "")),
                "warden.correlation_id": event.correlation_id,
            },
            start_time=first_ns,
        )
        current = _IncidentTrace(root, trace.set_span_in_context(root), at, at)
        self._incidents[event.stream] = current
        evidence = [str(e) for e in data.get("evidence") or []]
        detect = self._span(
            current,
            "detect",
            first_ns,
            {"warden.event.id": event.id, "warden.evidence.count": len(evidence)},
        )
        detect_context = trace.set_span_in_context(detect)
        for event_id in evidence:
            signal = self._signals.get(event_id)
            if signal is not None:
                self._ingest(current, signal, detect_context)
        self._end(detect, at)

    def _ingest(self, current: _IncidentTrace, signal: ev.Event, context: Context) -> None:
        end = nanos(signal.moment)
        latency = signal.data.get("latency_ms")
        start = end - int(float(latency) * 1_000_000) if isinstance(latency, int | float) else end
        attributes: dict[str, AttributeValue] = {
            "warden.event.id": signal.id,
            "warden.event.type": signal.type,
            "warden.event.source": signal.source,
        }
        for key in ("service", "probe", "error", "status", "latency_ms"):
            value = signal.data.get(key)
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                attributes[f"warden.signal.{key}"] = value
        span = self._span(
            current,
            f"ingest {signal.type}",
            start,
            attributes,
            kind=SpanKind.CONSUMER,
            context=context,
            links=_link(signal.traceparent),
        )
        if signal.type == ev.PROBE_FAILED:
            span.set_status(Status(StatusCode.ERROR, str(signal.data.get("error", ""))))
        self._end(span, end)

    def _planned(self, current: _IncidentTrace, event: ev.Event, at: int) -> None:
        plan: dict[str, Any] = event.data.get("plan") or {}
        steps = [f"{s.get('action', '')} {s.get('target', '')}" for s in plan.get("steps", [])]
        span = self._span(
            current,
            "agent.propose",
            current.previous_ns,
            {
                "warden.event.id": event.id,
                "warden.agent": str(plan.get("agent", "")),
                "warden.plan.confidence": float(plan.get("confidence", 0.0)),
                "warden.plan.steps": steps,
                "warden.plan.rationale": str(plan.get("rationale", "")),
                "warden.plan.evidence.count": len(plan.get("evidence", [])),
            },
        )
        self._end(span, at)
        current.asked_ns = at

    def _decided(self, current: _IncidentTrace, event: ev.Event, at: int) -> None:
        decision: dict[str, Any] = event.data.get("decision") or {}
        outcome = str(decision.get("outcome", ""))
        reasons = decision.get("reasons") or []
        span = self._span(
            current,
            "policy.evaluate",
            current.asked_ns,
            {
                "warden.event.id": event.id,
                "warden.decision.outcome": outcome,
                "warden.decision.approvers": int(decision.get("approvers", 0)),
                "warden.policy.bundle_version": str(decision.get("bundle_version", "")),
                "warden.policy.ids": [str(r.get("policy_id", "")) for r in reasons],
                "warden.decision.reasons": [str(r.get("message", "")) for r in reasons],
                "warden.step.index": int(event.data.get("index", -1)),
                "warden.step.hash": str(decision.get("step_hash", "")),
            },
        )
        self._end(span, at)
        if current.approval is not None and outcome != "needs_approval":
            current.approval.set_attribute("warden.approval.outcome", outcome)
            self._end(current.approval, at)
            current.approval = None
        if outcome == "needs_approval" and current.approval is None:
            current.approval = self._span(
                current,
                "approval.wait",
                at,
                {
                    "warden.approvers.needed": int(decision.get("approvers", 0)),
                    "warden.step.hash": str(decision.get("step_hash", "")),
                },
            )

    def _approved(self, current: _IncidentTrace, event: ev.Event, at: int) -> None:
        approver = str(event.data.get("approver", ""))
        if current.approval is not None:
            current.approval.add_event(
                "approval granted", {"warden.approver": approver}, timestamp=at
            )
        current.asked_ns = at

    def _intended(self, current: _IncidentTrace, event: ev.Event, at: int) -> None:
        data = event.data
        index = int(data.get("index", 0))
        action = str(data.get("action", ""))
        current.actions[index] = self._span(
            current,
            f"action {action}",
            at,
            {
                "warden.event.id": event.id,
                "warden.action": action,
                "warden.target": str(data.get("target", event.subject)),
                "warden.step.index": index,
                "warden.step.hash": str(data.get("step_hash", "")),
                "warden.idempotency_key": str(data.get("idempotency_key", "")),
                "warden.action.timeout_s": float(data.get("timeout_s", 0.0)),
            },
            kind=SpanKind.CLIENT,
        )

    def _stepped(self, current: _IncidentTrace, event: ev.Event, at: int) -> None:
        span = current.actions.pop(int(event.data.get("index", 0)), None)
        if span is None:
            return
        duration = event.data.get("duration_ms")
        if isinstance(duration, int | float):
            span.set_attribute("warden.action.duration_ms", float(duration))
        detail = str(event.data.get("detail", ""))
        span.set_attribute("warden.action.detail", detail)
        if event.type == ev.STEP_FAILED:
            span.set_status(Status(StatusCode.ERROR, detail or "step failed"))
        else:
            current.asked_ns = at
        self._end(span, at)

    def _verifying(self, current: _IncidentTrace, event: ev.Event, at: int) -> None:
        current.verification = self._span(
            current, "verify", at, {"warden.probe": str(event.data.get("probe", ""))}
        )

    def _verified(self, current: _IncidentTrace, event: ev.Event, at: int) -> None:
        span, current.verification = current.verification, None
        if span is None:
            return
        if event.type == ev.VERIFICATION_FAILED:
            span.set_status(Status(StatusCode.ERROR, str(event.data.get("reason", ""))))
        self._end(span, at)

    def _close(self, current: _IncidentTrace, event: ev.Event, at: int) -> None:
        for span in current.open_spans():
            span.set_attribute("warden.unfinished", True)
            self._end(span, at)
        state = _CLOSING[event.type]
        reason = str(event.data.get("reason", ""))
        root = current.root
        root.set_attribute("warden.incident.state", state)
        root.set_attribute("warden.incident.close_reason", reason)
        root.add_event(f"incident {state}", {"warden.reason": reason}, timestamp=at)
        if event.type != ev.INCIDENT_RESOLVED:
            root.set_status(Status(StatusCode.ERROR, reason or state))
        self._end(root, at)


_HANDLERS = {
    ev.PLAN_PROPOSED: TracingListener._planned,
    ev.DECISION_RECORDED: TracingListener._decided,
    ev.APPROVAL_GRANTED: TracingListener._approved,
    ev.STEP_INTENDED: TracingListener._intended,
    ev.STEP_SUCCEEDED: TracingListener._stepped,
    ev.STEP_FAILED: TracingListener._stepped,
    ev.VERIFICATION_STARTED: TracingListener._verifying,
    ev.VERIFICATION_PASSED: TracingListener._verified,
    ev.VERIFICATION_FAILED: TracingListener._verified,
}


@dataclass(frozen=True, slots=True)
class TracingSetup:
    """A tracer provider, and whether (and where) it exports spans, in one line."""

    provider: SdkTracerProvider
    exporting: bool
    message: str


def build_tracer_provider(
    otlp_endpoint: str | None = None,
    *,
    protocol: str = "http/protobuf",
    service_name: str = "warden",
) -> TracingSetup:
    """A tracer provider that exports over OTLP when an endpoint is configured.

    The OTLP exporter is an optional package. When an endpoint is given but the package
    is not installed, the provider still works (spans go nowhere) and ``message`` says
    which package to install; nothing crashes.
    """
    if protocol not in OTLP_EXPORTERS:
        known = ", ".join(sorted(OTLP_EXPORTERS))
        raise ConfigError(f"unknown OTLP protocol {protocol!r} (known: {known})")
    provider = SdkTracerProvider(resource=Resource.create({"service.name": service_name}))
    if not otlp_endpoint:
        return TracingSetup(provider, False, "tracing on; no OTLP endpoint, spans not exported")
    module_name, package = OTLP_EXPORTERS[protocol]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        message = (
            f"OTLP endpoint {otlp_endpoint} is configured, but {package} is not installed,"
            f" so spans are not exported; install it (pip install {package}) or unset the"
            " endpoint"
        )
        log.warning(message)
        return TracingSetup(provider, False, message)
    endpoint = otlp_endpoint
    if protocol == "http/protobuf" and urlsplit(endpoint).path in ("", "/"):
        # A base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is: the traces path goes after it.
        endpoint = endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(module.OTLPSpanExporter(endpoint=endpoint)))
    return TracingSetup(provider, True, f"exporting spans over OTLP ({protocol}) to {endpoint}")
