"""Cases beside runbooks (``*.cases.yaml``): an event and a world in, a plan or none out. Shell.

A case file::

    cases:
      - name: an OOM kill in production restarts the service
        event: {type: warden.alert.firing, subject: api, data: {...}}
        world: {healthy: false}               # optional: the world variable, as the runbook sees it
        history: [{type: ..., data: ...}]     # optional: earlier events (throttling)
        context: {environment: production}    # optional: what the policy decides with
        expect:
          runbook: restart-on-oom             # or `plan: none` for no plan at all
          steps: [{action: restart_service, target: api}]
          decision: allow                     # optional: allow, deny, needs_approval(N)

Each case runs the runbooks as the runtime does (trigger, condition, throttle, template)
and, when ``decision`` is given, the plan's first step through the real policy bundle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import yaml

from warden.domain import events as ev
from warden.domain.catalog import Catalog
from warden.domain.decisions import outcome_label
from warden.domain.errors import ConfigError
from warden.domain.world import World
from warden.governance.policy import BUILTIN_BUNDLE, PolicyBundle, PolicyRequest
from warden.governance.policy_tests import DEFAULT_CONTEXT
from warden.runbooks.expr import WORLD_SCHEMA
from warden.runbooks.loader import CASES_SUFFIX
from warden.runbooks.model import Verdict, evaluate, world_variable

if TYPE_CHECKING:
    from pathlib import Path

    from warden.domain.plans import Plan
    from warden.runbooks.loader import RunbookSet

_EXPECT = re.compile(r"^(allow|deny|needs_approval)(?:\((\d+)\))?$")
_CASE_KEYS = {"name", "event", "world", "history", "context", "expect"}
_BASE_TIME = "2026-01-01T00:00:00.000000Z"


@dataclass(frozen=True, slots=True)
class Case:
    """One case: what goes in and what must come out."""

    file: str
    name: str
    event: ev.Event
    history: tuple[ev.Event, ...]
    world: dict[str, Any]
    context: dict[str, Any]
    expect: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CaseResult:
    """What the runbooks made of a case, and whether that was expected."""

    case: Case
    verdicts: tuple[Verdict, ...]
    plan: Plan | None
    decision: str
    passed: bool
    why: str


def case_files(directory: Path) -> list[Path]:
    """The ``*.cases.yaml`` files of a runbook directory."""
    return sorted(directory.glob(f"*{CASES_SUFFIX}"))


def _event(raw: Any, where: str, index: int) -> ev.Event:
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise ConfigError(f"{where}: expected an event with a type and data")
    data = raw.get("data", {})
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: data must be a mapping")
    subject = str(raw.get("subject") or data.get("service") or "")
    return ev.Event(
        id=str(raw.get("id") or f"case-event-{index}"),
        source=str(raw.get("source") or "warden://case"),
        type=raw["type"],
        time=str(raw.get("time") or _BASE_TIME),
        data=data,
        subject=subject,
    )


def load_cases(path: Path) -> list[Case]:
    """Read one case file; every mistake names the file and the case."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"config error: {path}: cannot be read: {exc}") from None
    items = raw.get("cases") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise ConfigError(f"config error: {path}: expected `cases:` with a list of cases")
    cases = []
    for index, item in enumerate(items):
        where = f"config error: {path}: cases[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a mapping with name, event and expect")
        unknown = sorted(set(item) - _CASE_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known: {sorted(_CASE_KEYS)}")
        name = str(item.get("name") or f"case {index}")
        where = f"config error: {path}: case {name!r}"
        expect = item.get("expect")
        if not isinstance(expect, dict):
            raise ConfigError(f"{where}: expected `expect:` (plan: none, or runbook and steps)")
        decision = expect.get("decision")
        if decision is not None and not _EXPECT.match(str(decision)):
            raise ConfigError(
                f"{where}: decision {decision!r} is not allow, deny or needs_approval(N)"
            )
        world = item.get("world") or {}
        known = WORLD_SCHEMA["properties"]
        if not isinstance(world, dict) or any(k not in known for k in world):
            raise ConfigError(f"{where}: world keys are among {', '.join(sorted(known))}")
        history = item.get("history") or []
        if not isinstance(history, list):
            raise ConfigError(f"{where}: history must be a list of events")
        context = item.get("context") or {}
        if not isinstance(context, dict):
            raise ConfigError(f"{where}: context must be a mapping")
        cases.append(
            Case(
                file=str(path),
                name=name,
                event=_event(item.get("event"), f"{where}: event", len(history)),
                history=tuple(
                    _event(h, f"{where}: history[{i}]", i) for i, h in enumerate(history)
                ),
                world=world,
                context=context,
                expect=expect,
            )
        )
    return cases


# What is known of a service nobody has seen: healthy, no version, no changes (the time
# of observation is read by no world variable).
_UNSEEN = World(now=datetime(1970, 1, 1, tzinfo=UTC))


def _world(case: Case) -> Any:
    def variable(service: str) -> dict[str, Any]:
        return world_variable(_UNSEEN, service) | case.world

    return variable


def run_case(
    runbooks: RunbookSet,
    case: Case,
    bundle: PolicyBundle | None = None,
    catalog: Catalog | None = None,
) -> CaseResult:
    """Run every runbook on the case's history then its event; compare with ``expect``."""
    fired: dict[tuple[str, str], str] = {}

    def last_fired(runbook: str, key: str) -> str:
        return fired.get((runbook, key), "")

    verdicts: list[Verdict] = []
    for event in (*case.history, case.event):
        verdicts = []
        for runbook in runbooks.runbooks:
            verdict = evaluate(runbook, event, _world(case), last_fired)
            if verdict.matched:
                fired[(runbook.name, verdict.key)] = event.time
            verdicts.append(verdict)
    matched = sorted(
        (v for v in verdicts if v.matched and v.plan is not None),
        key=lambda v: (
            -_priority(runbooks, v.runbook),
            -(v.plan.confidence if v.plan else 0),
            v.runbook,
        ),
    )
    plan = matched[0].plan if matched else None
    problems = _compare(case.expect, plan)
    decision = ""
    wanted = case.expect.get("decision")
    if plan is not None and wanted is not None:
        decision = _decide(plan, case.context, bundle, catalog or Catalog())
        if decision != str(wanted) and not (
            "(" not in str(wanted) and decision.split("(")[0] == wanted
        ):
            problems.append(f"expected decision {wanted}, got {decision}")
    return CaseResult(case, tuple(verdicts), plan, decision, not problems, "; ".join(problems))


def _priority(runbooks: RunbookSet, name: str) -> int:
    runbook = runbooks.get(name)
    return runbook.priority if runbook is not None else 0


def _compare(expect: dict[str, Any], plan: Plan | None) -> list[str]:
    if expect.get("plan", "some") in (None, "none", False):
        return [] if plan is None else [f"expected no plan, got one from {plan.agent}"]
    if plan is None:
        return ["expected a plan, no runbook proposed one"]
    problems = []
    if "runbook" in expect and expect["runbook"] != plan.agent:
        problems.append(f"expected runbook {expect['runbook']}, got {plan.agent}")
    if "steps" in expect:
        got = [s.to_dict() for s in plan.steps]
        want = [
            {"action": s.get("action"), "target": s.get("target"), "params": s.get("params") or {}}
            for s in expect["steps"]
            if isinstance(s, dict)
        ]
        if got != want:
            problems.append(f"expected steps {want}, got {got}")
    if "confidence" in expect and expect["confidence"] != plan.confidence:
        problems.append(f"expected confidence {expect['confidence']}, got {plan.confidence}")
    return problems


def _decide(
    plan: Plan, context: dict[str, Any], bundle: PolicyBundle | None, catalog: Catalog
) -> str:
    bundle = bundle or PolicyBundle(BUILTIN_BUNDLE)
    step = plan.steps[0]
    spec = catalog.get(step.action)
    request_context = {
        **DEFAULT_CONTEXT,
        "risk": spec.risk.value if spec is not None else "high",
        "idempotent": bool(spec.idempotent) if spec is not None else False,
        "confidence_pct": round(plan.confidence * 100),
        **context,
    }
    verdict = bundle.evaluate(PolicyRequest(plan.agent, step.action, step.target, request_context))
    return outcome_label(verdict.outcome.value, verdict.approvers)


__all__ = ["Case", "CaseResult", "case_files", "load_cases", "run_case"]
