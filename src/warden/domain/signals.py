"""Signals beyond health that agents reason about, folded from ingested events. Pure core.

Deploys (which version runs, which ran before), sampled metrics (error rate, backlog,
consumers, latency), failed pipeline batches with their last good checkpoint, and drift
between desired and observed state.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from warden.domain import events as ev

KEPT = 50
# Samples kept per metric: enough for a baseline (warden.domain.baseline) to outlast a
# shift of half an hour at one sample every 15 s.
SAMPLES_KEPT = 160


@dataclass(frozen=True, slots=True)
class Deploy:
    """One version going live."""

    time: str
    version: str
    event_id: str


@dataclass(frozen=True, slots=True)
class Sample:
    """One metric value at one time."""

    time: str
    value: float
    event_id: str


@dataclass(frozen=True, slots=True)
class FailedBatch:
    """A pipeline batch that failed validation or processing."""

    time: str
    pipeline: str
    batch: str
    reason: str
    last_good_checkpoint: str
    event_id: str


@dataclass(frozen=True, slots=True)
class Drift:
    """A field whose observed value differs from the desired one."""

    field: str
    desired: str
    observed: str
    since: str
    event_id: str


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert firing at its source (e.g. Prometheus Alertmanager)."""

    fingerprint: str
    alertname: str
    severity: str
    summary: str
    started_at: str
    event_id: str
    labels: tuple[tuple[str, str], ...] = ()  # as the source sent them, sorted
    services: tuple[str, ...] = ()  # every service it maps to, when more than one
    unmapped: bool = False  # no rule named a service: it is kept under its own name


@dataclass(frozen=True, slots=True)
class Signals:
    """Everything known about one service besides its health probe."""

    service: str
    deploys: tuple[Deploy, ...] = ()
    metrics: tuple[tuple[str, tuple[Sample, ...]], ...] = ()
    failed_batches: tuple[FailedBatch, ...] = ()
    drift: tuple[Drift, ...] = ()
    alerts: tuple[Alert, ...] = ()

    def series(self, metric: str) -> tuple[Sample, ...]:
        """The kept samples of one metric, oldest first."""
        for name, samples in self.metrics:
            if name == metric:
                return samples
        return ()

    def latest(self, metric: str) -> float | None:
        """The latest value of a metric, if any."""
        samples = self.series(metric)
        return samples[-1].value if samples else None

    @property
    def version(self) -> str:
        """The version running now ("" when no deploy was seen)."""
        return self.deploys[-1].version if self.deploys else ""

    @property
    def previous_version(self) -> str:
        """The version that ran before the current one ("" when unknown)."""
        return self.deploys[-2].version if len(self.deploys) > 1 else ""


SIGNAL_TYPES = frozenset(
    {ev.DEPLOY_COMPLETED, ev.METRIC_SAMPLED, ev.BATCH_FAILED, ev.BATCH_RECOVERED,
     ev.DRIFT_DETECTED, ev.DRIFT_RESOLVED, ev.ALERT_FIRING, ev.ALERT_RESOLVED}
)  # fmt: skip


# The slot setters of Sample and Signals, in field order, bound once: the one signal folded
# per event builds both through them, half the cost of a frozen dataclass __init__ (one
# object.__setattr__ per field). A field added to either breaks this unpacking at import;
# test_signals_fold fails if a field is missed or moved.
_new = object.__new__
_set_sample_time, _set_sample_value, _set_sample_event_id = (
    vars(Sample)[f.name].__set__ for f in fields(Sample)
)
(
    _set_service,
    _set_deploys,
    _set_metrics,
    _set_failed_batches,
    _set_drift,
    _set_alerts,
) = (vars(Signals)[f.name].__set__ for f in fields(Signals))


def _sampled(signals: Signals, name: str, event: ev.Event) -> Signals:
    """``signals`` with one more sample of metric ``name``, its other fields carried."""
    sample: Sample = _new(Sample)
    _set_sample_time(sample, event.time)
    _set_sample_value(sample, float(event.data["value"]))
    _set_sample_event_id(sample, event.id)
    metrics = signals.metrics
    # The series' latest samples are sliced before the new one is added, and the two
    # tuples joined (not unpacked, which builds a list first): a series is copied twice
    # per sample, not three times.
    if len(metrics) == 1 and metrics[0][0] == name:
        # A service with one metric (the common case): no other series to sort among.
        metrics = ((name, metrics[0][1][1 - SAMPLES_KEPT :] + (sample,)),)  # noqa: RUF005
    else:
        others = [pair for pair in metrics if pair[0] != name]
        others.append((name, signals.series(name)[1 - SAMPLES_KEPT :] + (sample,)))  # noqa: RUF005
        others.sort()
        metrics = tuple(others)
    out: Signals = _new(Signals)
    _set_service(out, signals.service)
    _set_deploys(out, signals.deploys)
    _set_metrics(out, metrics)
    _set_failed_batches(out, signals.failed_batches)
    _set_drift(out, signals.drift)
    _set_alerts(out, signals.alerts)
    return out


def service_of(event: ev.Event) -> str:
    """The service a signal event is about."""
    return str(event.data.get("service") or event.subject)


def observe(signals: Signals, event: ev.Event) -> Signals:
    """Fold one signal event into a service's signals."""
    data = event.data
    if event.type == ev.DEPLOY_COMPLETED:
        deploy = Deploy(event.time, str(data["version"]), event.id)
        return replace(signals, deploys=(*signals.deploys, deploy)[-KEPT:])
    if event.type == ev.METRIC_SAMPLED:
        return _sampled(signals, str(data["metric"]), event)
    if event.type == ev.BATCH_FAILED:
        batch = FailedBatch(
            event.time,
            str(data["pipeline"]),
            str(data["batch"]),
            str(data.get("reason", "")),
            str(data.get("last_good_checkpoint", "")),
            event.id,
        )
        return replace(signals, failed_batches=(*signals.failed_batches, batch)[-KEPT:])
    if event.type == ev.BATCH_RECOVERED:
        done = (str(data["pipeline"]), str(data["batch"]))
        kept = tuple(b for b in signals.failed_batches if (b.pipeline, b.batch) != done)
        return replace(signals, failed_batches=kept)
    if event.type == ev.DRIFT_DETECTED:
        field = str(data["field"])
        drift = Drift(field, str(data["desired"]), str(data["observed"]), event.time, event.id)
        kept_drift = tuple(d for d in signals.drift if d.field != field)
        return replace(signals, drift=(*kept_drift, drift))
    if event.type == ev.ALERT_FIRING:
        notes = data.get("annotations") or {}
        labels = data.get("labels") or {}
        alert = Alert(
            str(data["fingerprint"]),
            str(data["alertname"]),
            str(labels.get("severity", "")),
            str(notes.get("summary") or notes.get("description") or ""),
            str(data.get("starts_at", event.time)),
            event.id,
            tuple(sorted((str(k), str(v)) for k, v in labels.items())),
            tuple(str(s) for s in data.get("services") or ()),
            data.get("unmapped") is True,
        )
        kept_alerts = tuple(a for a in signals.alerts if a.fingerprint != alert.fingerprint)
        return replace(signals, alerts=(*kept_alerts, alert))
    if event.type == ev.ALERT_RESOLVED:
        gone = str(data["fingerprint"])
        return replace(signals, alerts=tuple(a for a in signals.alerts if a.fingerprint != gone))
    if event.type == ev.DRIFT_RESOLVED:
        field = str(data["field"])
        return replace(signals, drift=tuple(d for d in signals.drift if d.field != field))
    return signals
