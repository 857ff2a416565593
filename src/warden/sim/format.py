"""The scenario format, version 1: pydantic models of the YAML document. Simulation (edge).

A scenario describes one incident as an SRE would: the topology and the resources faults
live in, a starting history, a fault schedule, the signals on a timeline, what each
catalog action does to each target (the response model), and what a good answer is.
The JSON Schema printed by ``warden simulate --schema`` is generated from these models.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The schema as shipped (a test keeps it equal to the models); `warden simulate --schema`.
SCHEMA_FILE = Path(__file__).with_name("scenario.schema.json")
Seconds = Annotated[float, Field(ge=0)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Scalar = str | int | float | bool

SERVICE_KINDS = (
    "stateless", "datastore", "queue", "proxy", "flag_server", "config_server", "load_generator",
)  # fmt: skip
RESOURCE_KINDS = (
    "deployment", "config", "feature_flag", "network_rule", "route", "quota", "credential",
    "scheduled_job",
)  # fmt: skip
PROCESS_FAULTS = ("crash", "hang", "slow", "exit_loop", "error")
FAULT_KINDS = ("change", *PROCESS_FAULTS, "partition", "corruption", "saturation", "load")
PROBE_RESULTS = ("ok", "refused", "timeout", "http", "slow", "flapping")
EFFECTS = ("fixes", "no_effect", "heals_for", "harmful")
DECISIONS = ("act", "act_after_approval", "escalate", "no_action")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Service(_Strict):
    """One service of the topology."""

    name: Name
    kind: Literal[
        "stateless", "datastore", "queue", "proxy", "flag_server", "config_server",
        "load_generator",
    ] = "stateless"  # fmt: skip
    domain: Name = "default"
    tier: Name = "standard"
    depends_on: list[Name] = Field(default_factory=list)
    replicas: Annotated[int, Field(ge=0)] = 1
    version: str = ""
    limits: dict[str, Scalar] = Field(default_factory=dict)
    desired: dict[str, Scalar] = Field(default_factory=dict)


class Revision(_Strict):
    """One past value of a resource field: the starting history (``at`` <= 0, before start)."""

    at: Annotated[float, Field(le=0)]
    field: Name = "value"
    value: Scalar
    by: Name = "unknown"


class Resource(_Strict):
    """A non-service object faults live in, and the service it belongs to."""

    id: Name
    kind: Literal[
        "deployment", "config", "feature_flag", "network_rule", "route", "quota", "credential",
        "scheduled_job",
    ]  # fmt: skip
    owner: Name
    fields: dict[str, Scalar] = Field(default_factory=dict)
    history: list[Revision] = Field(default_factory=list)


class Topology(_Strict):
    """Services and resources."""

    services: Annotated[list[Service], Field(min_length=1)]
    resources: list[Resource] = Field(default_factory=list)


class Effect(_Strict):
    """What a service's health probe answers while a fault is active."""

    service: Name
    probe: Literal["ok", "refused", "timeout", "http", "slow", "flapping"]
    code: Annotated[int, Field(ge=100, le=599)] | None = None
    latency_ms: Annotated[float, Field(gt=0)] | None = None
    period_s: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Effect:
        if self.probe == "http" and self.code is None:
            raise ValueError("probe 'http' needs a code (e.g. code: 503)")
        if self.probe == "slow" and self.latency_ms is None:
            raise ValueError("probe 'slow' needs latency_ms (e.g. latency_ms: 2500)")
        if self.probe == "flapping" and self.period_s is None:
            raise ValueError("probe 'flapping' needs period_s (e.g. period_s: 20)")
        return self


class Rearm(_Strict):
    """How a fault comes back after it was cleared by something that did not fix it."""

    after_restart_s: Annotated[float, Field(gt=0)] | None = None
    every_s: Annotated[float, Field(gt=0)] | None = None
    times: Annotated[int, Field(ge=1)] | None = None


class Fault(_Strict):
    """One timed fault: a change to an object, or a process fault on a service."""

    id: Name
    at: Seconds
    kind: Literal[
        "change", "crash", "hang", "slow", "exit_loop", "error", "partition", "corruption",
        "saturation", "load",
    ]  # fmt: skip
    target: Name
    field: str = ""
    old: Scalar | None = Field(default=None, alias="from")
    new: Scalar | None = Field(default=None, alias="to")
    by: Name = "unknown"
    # None: a process fault fails its own service's probe; [] says "no probe notices".
    effects: list[Effect] | None = None
    rearm: Rearm | None = None
    duration_s: Annotated[float, Field(gt=0)] | None = None
    root_cause: bool = True
    latency_ms: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _change_complete(self) -> Fault:
        if self.kind == "change" and (not self.field or self.new is None):
            raise ValueError("a change needs field and to (and from, the value it replaced)")
        return self


class AlertSignal(_Strict):
    """One alert as Alertmanager delivers it: raw labels and annotations."""

    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    fingerprint: str = ""
    receiver: str = "warden"


class MetricSignal(_Strict):
    """A metric series: ``value`` while the fault is active (or always), then ``recovered``."""

    service: Name
    name: Name
    value: float
    recovered: float | None = None
    unit: str = ""


class ChangeSignal(_Strict):
    """A deploy or another change seen by Warden at one time."""

    service: Name
    version: Name
    previous_version: str = ""
    by: str = ""


class ProbeSignal(_Strict):
    """A probe answer forced at one time (overrides the faults' effects until ``until``)."""

    service: Name
    probe: Literal["ok", "refused", "timeout", "http", "slow", "flapping"]
    code: int | None = None
    latency_ms: float | None = None


class LogSignal(_Strict):
    """A log line of a service."""

    service: Name
    line: Name


class BatchSignal(_Strict):
    """A pipeline batch that failed."""

    service: Name
    pipeline: Name
    batch: Name
    reason: Name
    last_good_checkpoint: str = ""


class Signal(_Strict):
    """One signal on the timeline; ``every_s`` repeats it until ``until``.

    ``fault`` ties it to a fault: it is sent only while that fault is active, and an alert
    tied to a fault resolves when the fault clears.
    """

    at: Seconds
    every_s: Annotated[float, Field(gt=0)] | None = None
    until: Seconds | None = None
    fault: str | None = None
    alert: AlertSignal | None = None
    metric: MetricSignal | None = None
    change: ChangeSignal | None = None
    probe: ProbeSignal | None = None
    log: LogSignal | None = None
    batch: BatchSignal | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Signal:
        kinds = [
            k for k in ("alert", "metric", "change", "probe", "log", "batch") if getattr(self, k)
        ]
        if len(kinds) != 1:
            raise ValueError(
                "a signal holds exactly one of alert, metric, change, probe, log, batch"
                f" (found {', '.join(kinds) or 'none'})"
            )
        return self


class Response(_Strict):
    """What one catalog action on one target does to the faults."""

    action: Name
    target: Name
    params: dict[str, Any] | None = None
    effect: Literal["fixes", "no_effect", "heals_for", "harmful"]
    faults: list[Name] = Field(default_factory=list)
    heals_s: Annotated[float, Field(gt=0)] | None = None
    harm: list[Effect] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> Response:
        if self.effect == "heals_for" and self.heals_s is None:
            raise ValueError("effect 'heals_for' needs heals_s (seconds until the fault relapses)")
        if self.effect == "harmful" and not self.harm:
            raise ValueError("effect 'harmful' needs harm: the effects it causes")
        return self


class ActionRef(_Strict):
    """An action on a target, with the parameters that must match (a subset)."""

    action: Name
    target: Name
    params: dict[str, Any] = Field(default_factory=dict)


class Expect(_Strict):
    """What a good SRE would do, and what must never happen."""

    decision: Literal["act", "act_after_approval", "escalate", "no_action"]
    actions: list[ActionRef] = Field(default_factory=list)
    ordered: bool = True
    alternatives: list[list[ActionRef]] = Field(default_factory=list)
    must_fix: list[Name] | None = None
    forbidden: list[Name] = Field(default_factory=list)
    no_state_change: bool = False
    escalation_facts: list[Name] = Field(default_factory=list)
    within_s: Annotated[float, Field(gt=0)] = 900.0


class Control(_Strict):
    """An operator control at one time: the kill switch, or an autonomy change."""

    at: Seconds
    kill_switch: Literal["engage", "release"] | None = None
    autonomy: Literal["observe", "recommend", "supervised", "autonomous"] | None = None
    by: Name = "operator"


class Settings(_Strict):
    """How the simulated Warden is configured for this scenario."""

    probe_interval_s: Annotated[float, Field(gt=0)] = 5.0
    tick_s: Annotated[float, Field(gt=0)] = 1.0
    failure_threshold: Annotated[int, Field(ge=1)] = 3
    verification_timeout_s: Annotated[float, Field(gt=0)] = 60.0
    environment: Name = "production"
    agent_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    controls: list[Control] = Field(default_factory=list)


class PhaseTimes(_Strict):
    """A log-normal duration: half the draws are below ``median_s``; ``spread`` is its sigma."""

    median_s: Annotated[float, Field(gt=0, le=7 * 86400)]
    spread: Annotated[float, Field(ge=0, le=3)] = 0.5


class OnCallTimes(_Strict):
    """The person on call's response times; what is left out keeps the value in force."""

    alert_delay: PhaseTimes | None = None
    acknowledge: PhaseTimes | None = None
    diagnose: PhaseTimes | None = None
    act: PhaseTimes | None = None
    right_first: Annotated[float, Field(ge=0, le=1)] | None = None
    evidence_factor: Annotated[float, Field(gt=0, le=1)] | None = None


class BaselineHints(_Strict):
    """How hard the incident is for a person on call (scales the baseline's diagnosis).

    ``on_call`` sets this incident's response times (over the rota's, and the defaults).
    """

    difficulty: Annotated[float, Field(gt=0)] = 1.0
    action_s: Annotated[float, Field(gt=0)] = 120.0
    on_call: OnCallTimes | None = None


class Rota(OnCallTimes):
    """A baseline file (``warden simulate --baseline FILE``): response times, by fault class.

    The top-level times apply to every fault class; ``fault_classes`` changes some of
    them for one class (the classes are the scenarios' ``fault_class``).
    """

    version: Literal[1]
    fault_classes: dict[Name, OnCallTimes] = Field(default_factory=dict)


class Scenario(_Strict):
    """One incident, version 1 of the format."""

    version: Literal[1]
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100)]
    title: Name
    description: str = ""
    fault_class: Name
    tags: list[Name] = Field(default_factory=list)
    source: str = ""
    duration_s: Annotated[float, Field(gt=0, le=7 * 86400)] = 900.0
    settings: Settings = Field(default_factory=Settings)
    topology: Topology
    faults: list[Fault] = Field(default_factory=list)
    signals: list[Signal] = Field(default_factory=list)
    responses: list[Response] = Field(default_factory=list)
    expect: Expect
    baseline: BaselineHints = Field(default_factory=BaselineHints)

    def service_names(self) -> list[str]:
        """Every service name, in declaration order."""
        return [s.name for s in self.topology.services]

    @functools.cached_property
    def _resources(self) -> dict[str, Resource]:
        found: dict[str, Resource] = {}
        for r in self.topology.resources:
            found.setdefault(r.id, r)  # the first of a repeated id, as a scan finds it
        return found

    def resource(self, resource_id: str) -> Resource | None:
        """The resource with this id, if declared."""
        return self._resources.get(resource_id)

    def owner_of(self, target: str) -> str:
        """The service a target is or belongs to."""
        found = self.resource(target)
        return found.owner if found is not None else target

    def root_causes(self) -> list[str]:
        """The faults every RIGHT answer must fix."""
        if self.expect.must_fix is not None:
            return list(self.expect.must_fix)
        return [f.id for f in self.faults if f.root_cause]


def rota_json_schema() -> dict[str, Any]:
    """The JSON Schema of a baseline file (``warden simulate --baseline-schema``)."""
    schema = Rota.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://warden.dev/schemas/on-call-baseline-v1.json"
    return schema


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the format (what ``warden simulate --schema`` prints)."""
    schema = Scenario.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://warden.dev/schemas/scenario-v1.json"
    return schema
