"""Loading scenario files: YAML to a checked :class:`Scenario`, or precise errors. Simulation.

Every problem names the file, the path in the document (``faults[2].at``), what was
expected and the fix; cross-references (a fault on an unknown service, a response to an
unknown fault) are checked after the shape.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pydantic
import yaml

from warden.domain.catalog import Catalog
from warden.domain.errors import ConfigError
from warden.sim.format import Rota, Scenario

if TYPE_CHECKING:
    from pathlib import Path

# Actions a RIGHT answer may need that the catalog does not offer yet; a response or an
# expectation may name them, nothing can run them. Empty: every such action is in the
# catalog now (restore_config, restore_flag, ..., suspend_job).
PROPOSED_ACTIONS: tuple[str, ...] = ()

_FIXES = {
    "missing": "add it",
    "extra_forbidden": "remove it, or check its spelling against `warden simulate --schema`",
    "literal_error": "use one of the values listed",
    "greater_than_equal": "use a larger value",
    "less_than_equal": "use a smaller value",
    "greater_than": "use a larger value",
    "float_parsing": "write a number",
    "float_type": "write a number",
    "int_parsing": "write a whole number",
    "int_type": "write a whole number",
    "string_type": "quote the value",
    "list_type": "write a list (- item, or [a, b])",
    "dict_type": "write a mapping (key: value)",
    "model_type": "write a mapping (key: value)",
    "too_short": "add at least one item",
    "string_pattern_mismatch": "use lower case letters, digits, '.', '_' and '-'",
    "value_error": "see the format in docs/scenarios.md",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a scenario file."""

    file: str
    path: str
    expected: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path or '(document)'}: {self.expected}; fix: {self.fix}"


class ScenarioError(ConfigError):
    """A scenario file does not load; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def dotted(loc: tuple[int | str, ...]) -> str:
    """A pydantic location as a document path: ``faults[2].at``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif text:
            text += f".{part}"
        else:
            text = str(part)
    return text


def _shape_problems(file: str, exc: pydantic.ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        # Union members add their type name to the location; a reader wants the field.
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))
        kind = error["type"]
        message = str(error["msg"]).removeprefix("Value error, ")
        if kind == "missing":
            message = "a required field is missing"
        elif kind == "extra_forbidden":
            message = "unknown field"
        elif "input" in error and kind not in ("value_error",):
            message = f"{message} (got {error['input']!r:.60})"
        problems.append(
            Problem(file, dotted(loc), message, _FIXES.get(kind, "see docs/scenarios.md"))
        )
    return problems


def _reference_problems(file: str, scenario: Scenario) -> list[Problem]:
    """Names that must refer to something declared."""
    problems: list[Problem] = []
    services = scenario.service_names()
    known = set(services)
    resources = {r.id for r in scenario.topology.resources}
    targets = known | resources
    faults = [f.id for f in scenario.faults]
    actions = set(Catalog().names()) | set(PROPOSED_ACTIONS)

    def need(ok: bool, path: str, expected: str, fix: str) -> None:
        if not ok:
            problems.append(Problem(file, path, expected, fix))

    def service(name: str, path: str) -> None:
        need(name in known, path, f"unknown service {name!r}", f"use one of {', '.join(services)}")

    for what, names in (("service", services), ("resource", sorted(resources)), ("fault", faults)):
        dupes = sorted({n for n in names if names.count(n) > 1})
        need(
            not dupes,
            what + "s",
            f"{what} names repeat: {', '.join(dupes)}",
            "give each a unique name",
        )
    for i, svc in enumerate(scenario.topology.services):
        for j, dep in enumerate(svc.depends_on):
            service(dep, f"topology.services[{i}].depends_on[{j}]")
    for i, res in enumerate(scenario.topology.resources):
        service(res.owner, f"topology.resources[{i}].owner")
    for i, fault in enumerate(scenario.faults):
        need(
            fault.target in targets,
            f"faults[{i}].target",
            f"unknown target {fault.target!r}",
            "name a service or a resource declared under topology",
        )
        need(
            fault.at < scenario.duration_s,
            f"faults[{i}].at",
            f"{fault.at:g} s is after the end of the scenario ({scenario.duration_s:g} s)",
            "move it earlier or raise duration_s",
        )
        for j, effect in enumerate(fault.effects or ()):
            service(effect.service, f"faults[{i}].effects[{j}].service")
    for i, signal in enumerate(scenario.signals):
        if signal.fault is not None:
            need(
                signal.fault in faults,
                f"signals[{i}].fault",
                f"unknown fault {signal.fault!r}",
                f"use one of {', '.join(faults) or '(no faults declared)'}",
            )
        body = signal.metric or signal.change or signal.probe or signal.log or signal.batch
        if body is not None:
            service(body.service, f"signals[{i}].{_kind(signal)}.service")
        if signal.alert is not None:
            labels = signal.alert.labels
            need(
                "alertname" in labels,
                f"signals[{i}].alert.labels",
                "no alertname label",
                "add alertname: as Alertmanager sends it",
            )
            need(
                any(k in labels for k in ("service", "job", "instance")),
                f"signals[{i}].alert.labels",
                "no service, job or instance label",
                "add a service label naming the service it is about",
            )
        if signal.until is not None:
            need(
                signal.until >= signal.at,
                f"signals[{i}].until",
                "until is before at",
                "make until later than at",
            )
    for i, response in enumerate(scenario.responses):
        need(
            response.action in actions,
            f"responses[{i}].action",
            f"unknown action {response.action!r}",
            f"use one of {', '.join(sorted(actions))}",
        )
        need(
            response.target in targets,
            f"responses[{i}].target",
            f"unknown target {response.target!r}",
            "name a declared service or resource",
        )
        for j, fault_id in enumerate(response.faults):
            need(
                fault_id in faults,
                f"responses[{i}].faults[{j}]",
                f"unknown fault {fault_id!r}",
                f"use one of {', '.join(faults) or '(no faults declared)'}",
            )
        for j, effect in enumerate(response.harm):
            service(effect.service, f"responses[{i}].harm[{j}].service")
    expect = scenario.expect
    refs = [("expect.actions", expect.actions)] + [
        (f"expect.alternatives[{k}]", alt) for k, alt in enumerate(expect.alternatives)
    ]
    for where, items in refs:
        for j, ref in enumerate(items):
            need(
                ref.action in actions,
                f"{where}[{j}].action",
                f"unknown action {ref.action!r}",
                f"use one of {', '.join(sorted(actions))}",
            )
            need(
                ref.target in targets,
                f"{where}[{j}].target",
                f"unknown target {ref.target!r}",
                "name a declared service or resource",
            )
    for j, fault_id in enumerate(expect.must_fix or ()):
        need(
            fault_id in faults,
            f"expect.must_fix[{j}]",
            f"unknown fault {fault_id!r}",
            f"use one of {', '.join(faults) or '(no faults declared)'}",
        )
    for j, pattern in enumerate(expect.forbidden):
        action = pattern.split(":", 1)[0]
        need(
            any(fnmatch.fnmatchcase(a, action) for a in actions),
            f"expect.forbidden[{j}]",
            f"pattern {pattern!r} matches no action",
            "write action or action:target, globs allowed (restart_service:db-*)",
        )
    if expect.decision in ("act", "act_after_approval"):
        need(
            bool(expect.actions or expect.alternatives),
            "expect.actions",
            f"decision {expect.decision} names no action",
            "list the actions a RIGHT answer takes",
        )
    if expect.decision == "no_action":
        need(
            not expect.actions,
            "expect.actions",
            "decision no_action lists actions",
            "remove them, or change the decision",
        )
    return problems


def _kind(signal: Any) -> str:
    return next(k for k in ("metric", "change", "probe", "log", "batch") if getattr(signal, k))


def parse(text: str, file: str = "<scenario>") -> Scenario:
    """A scenario from YAML text; raises :class:`ScenarioError` with every problem found."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(
            [Problem(file, where, f"not valid YAML: {problem}", "fix the YAML syntax there")]
        ) from None
    if not isinstance(raw, dict):
        raise ScenarioError(
            [Problem(file, "", "the document is not a mapping", "start with `version: 1`")]
        )
    if raw.get("version") != 1:
        raise ScenarioError(
            [
                Problem(
                    file,
                    "version",
                    f"unsupported version {raw.get('version')!r}, this Warden reads version 1",
                    "write `version: 1` (see `warden simulate --schema`)",
                )
            ]
        )
    try:
        scenario = Scenario.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise ScenarioError(_shape_problems(file, exc)) from None
    problems = _reference_problems(file, scenario)
    if problems:
        raise ScenarioError(problems)
    return scenario


def load(path: Path) -> Scenario:
    """Read and check one scenario file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ScenarioError(
            [Problem(str(path), "", f"cannot read the file: {reason}", "check the path")]
        ) from None
    return parse(text, str(path))


def load_rota(path: Path) -> Rota:
    """Read and check a baseline file (on-call response times by fault class).

    Raises:
        ScenarioError: every problem, with the file, the path in it, and the fix.
    """
    file = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ScenarioError(
            [Problem(file, "", f"cannot read the file: {reason}", "check the path")]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise ScenarioError(
            [Problem(file, where, "not valid YAML", "fix the YAML syntax there")]
        ) from None
    if not isinstance(raw, dict):
        raise ScenarioError(
            [Problem(file, "", "the document is not a mapping", "start with `version: 1`")]
        )
    try:
        return Rota.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise ScenarioError(_shape_problems(file, exc)) from None


def find(path: Path) -> list[Path]:
    """The scenario files at ``path``: the file itself, or every *.yaml below a directory."""
    if path.is_dir():
        found = sorted([*path.rglob("*.yaml"), *path.rglob("*.yml")])
        if not found:
            raise ScenarioError(
                [Problem(str(path), "", "no *.yaml scenario in this directory", "check the path")]
            )
        return found
    if not path.exists():
        raise ScenarioError([Problem(str(path), "", "no such file or directory", "check the path")])
    return [path]
