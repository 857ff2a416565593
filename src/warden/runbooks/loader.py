"""Loading a runbook directory: every file checked, every error with its file, line and fix. Shell.

A runbook is refused at load, never at run time, when it names an unknown action, gives a
parameter outside the action's schema, reads a field its event types do not have, or
breaks the runbook format. The set's version is a content hash of its files, as for
policy bundles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import jsonschema

from warden.config_yaml import Document, format_path, read_document
from warden.domain.catalog import Catalog
from warden.domain.errors import ConfigError, WardenError, did_you_mean
from warden.domain.versions import fingerprint
from warden.ingest.registry import SchemaRegistry
from warden.runbooks.expr import compile_expression, compile_template
from warden.runbooks.model import MODES, Runbook, StepTemplate, Trigger

if TYPE_CHECKING:
    from pathlib import Path

    from warden.runbooks.expr import Template

SUFFIXES = (".yaml", ".yml")
CASES_SUFFIX = ".cases.yaml"
"""Files beside runbooks holding their test cases (never loaded as runbooks)."""
MAX_BYTES = 1_000_000
_POSITION = re.compile(r"position (\d+)")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_KEYS = {
    "name", "description", "priority", "mode", "trigger", "condition", "service",
    "throttle", "plan",
}  # fmt: skip
_TRIGGER_KEYS = {"events", "alertnames", "labels"}
_THROTTLE_KEYS = {"once_within", "group_by"}
_PLAN_KEYS = {"steps", "rationale", "confidence", "expected_outcome"}
_STEP_KEYS = {"action", "target", "params"}
EXAMPLE = """\
name: restart-on-oom
trigger:
  events: [warden.alert.firing]
  alertnames: [KubePodOOMKilled]
condition: event.data.labels.namespace == "prod"
throttle: {once_within: 10m, group_by: "{{ event.data.service }}"}
plan:
  steps:
    - action: restart_service
      target: "{{ event.data.service }}"
  rationale: "{{ event.data.service }} was killed for memory"
  confidence: 0.8"""


@dataclass(frozen=True, slots=True)
class RunbookSet:
    """The runbooks of one directory, and the version of the whole set."""

    directory: str
    runbooks: tuple[Runbook, ...]
    version: str

    def get(self, name: str) -> Runbook | None:
        """The runbook called ``name`` (its live one when a candidate shares the name)."""
        named = [r for r in self.runbooks if r.name == name]
        return next((r for r in named if r.mode == "live"), named[0] if named else None)


class _Refused(Exception):
    """One problem at a place in the file (internal: turned into a ConfigError)."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def runbook_files(directory: Path) -> list[Path]:
    """The runbook files of a directory, sorted (cases files excluded)."""
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix in SUFFIXES and not p.name.endswith(CASES_SUFFIX) and p.is_file()
    )


def load_runbooks(
    directory: Path,
    *,
    catalog: Catalog | None = None,
    registry: SchemaRegistry | None = None,
) -> RunbookSet:
    """Load and check every runbook in ``directory``.

    Raises:
        ConfigError: The directory is missing, or a runbook is refused; the message names
            the file, the line and the fix, one line per problem.
    """
    if not directory.is_dir():
        raise ConfigError(
            f"config error: runbooks: {directory} is not a directory; create it or set"
            " runbooks_dir in warden.yaml to the directory holding your runbook files"
        )
    catalog = catalog or Catalog()
    registry = registry or SchemaRegistry()
    texts: dict[str, str] = {}
    runbooks: list[Runbook] = []
    errors: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    for path in runbook_files(directory):
        try:
            raw = path.read_bytes()
        except OSError as exc:
            errors.append(f"config error: {path}: cannot be read: {exc.strerror}")
            continue
        texts[path.name] = raw.decode("utf-8", "replace")
        try:
            runbook = load_runbook(raw, str(path), catalog, registry)
        except WardenError as exc:
            errors.append(str(exc))
            continue
        # One live runbook per name, and beside it at most one candidate in shadow.
        if (runbook.name, runbook.mode) in seen:
            errors.append(
                f"config error: {path}: name {runbook.name!r} is also the name of"
                f" {seen[(runbook.name, runbook.mode)]}; a runbook's name is its identity,"
                " rename one (a candidate of the same name needs mode: shadow)"
            )
            continue
        seen[(runbook.name, runbook.mode)] = str(path)
        runbooks.append(runbook)
    if errors:
        raise ConfigError("\n".join(errors))
    return RunbookSet(str(directory), tuple(runbooks), fingerprint(texts))


def load_runbook(raw: bytes, label: str, catalog: Catalog, registry: SchemaRegistry) -> Runbook:
    """One runbook from its file's bytes; ``label`` names the file in errors.

    Raises:
        ConfigError: ``config error: FILE line N: place: what is wrong; the fix``.
    """
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"config error: {label}: larger than {MAX_BYTES} bytes; split it")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"config error: {label} line {line}: not UTF-8 text (byte {exc.start}:"
            f" {raw[exc.start : exc.start + 1]!r}); save the file as UTF-8"
        ) from None
    try:
        document, problems = read_document(raw, label, {})
    except ConfigError as exc:
        message = str(exc)
        if f"{label} line " in message:
            raise
        # A reader error (a control character) names a position, not a line.
        at = _POSITION.search(message)
        line = text[: int(at.group(1))].count("\n") + 1 if at else 1
        raise ConfigError(
            message.replace(f"config error: {label}:", f"config error: {label} line {line}:", 1)
        ) from None
    if problems:
        raise _error(problems[0].path, problems[0].message, document, label)
    try:
        return _build(
            document.data, label, fingerprint({"runbook": raw.decode()}), catalog, registry
        )
    except _Refused as exc:
        raise _error(exc.path, exc.message, document, label) from None


def _error(
    path: tuple[str | int, ...], message: str, document: Document, label: str
) -> ConfigError:
    line = document.line_of(path) or 1  # a file that is not a mapping: its first line
    where = f"{label} line {line}"
    return ConfigError(f"config error: {where}: {format_path(path) or 'the file'}: {message}")


def _build(
    data: Any, label: str, version: str, catalog: Catalog, registry: SchemaRegistry
) -> Runbook:
    if not isinstance(data, dict):
        raise _Refused((), f"a runbook is a mapping; start from this example:\n{EXAMPLE}")
    _known(data, (), _KEYS)
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _Refused(
            ("name",),
            f"expected a name of lower-case letters, digits and '-' (e.g. restart-on-oom),"
            f" got {name!r}",
        )
    mode = data.get("mode", "live")
    if mode not in MODES:
        raise _Refused(("mode",), f"expected live or shadow, got {mode!r}")
    priority = data.get("priority", 60)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise _Refused(("priority",), f"expected a whole number, got {priority!r}")
    trigger = _trigger(data.get("trigger"), registry)
    schemas = {t: _data_schema(registry, t) for t in sorted(trigger.types)}
    condition = None
    if "condition" in data:
        condition = _checked(("condition",), lambda: compile_expression(data["condition"], schemas))
    service = _template(("service",), data.get("service", "{{ event.subject }}"), schemas)
    if "service" not in data and all("service" in _props(s) for s in schemas.values()):
        service = _template(("service",), "{{ event.data.service }}", schemas)
    group_by, once_within = None, None
    throttle = data.get("throttle")
    if throttle is not None:
        if not isinstance(throttle, dict):
            raise _Refused(("throttle",), "expected {once_within: 5m, group_by: '{{ … }}'}")
        _known(throttle, ("throttle",), _THROTTLE_KEYS)
        once_within = _duration(("throttle", "once_within"), throttle.get("once_within"))
        if "group_by" in throttle:
            group_by = _template(("throttle", "group_by"), throttle["group_by"], schemas)
    plan = data.get("plan")
    if not isinstance(plan, dict):
        raise _Refused(
            ("plan",), "expected a plan: {steps: [...], rationale: ..., confidence: ...}"
        )
    _known(plan, ("plan",), _PLAN_KEYS)
    steps = _steps(plan.get("steps"), schemas, catalog)
    confidence = plan.get("confidence")
    if (
        not isinstance(confidence, int | float)
        or isinstance(confidence, bool)
        or not 0 <= confidence <= 1
    ):
        raise _Refused(
            ("plan", "confidence"), f"expected a number from 0 to 1 (e.g. 0.8), got {confidence!r}"
        )
    rationale = plan.get("rationale")
    if not isinstance(rationale, str) or not rationale.strip():
        raise _Refused(
            ("plan", "rationale"), "expected a text saying why this plan fixes the fault"
        )
    expected = plan.get("expected_outcome")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _Refused(("description",), "expected a text")
    return Runbook(
        name=name,
        version=version,
        path=label,
        trigger=trigger,
        steps=steps,
        rationale=_template(("plan", "rationale"), rationale, schemas),
        confidence=float(confidence),
        service=service,
        condition=condition,
        group_by=group_by,
        once_within=once_within,
        expected_outcome=(
            _template(("plan", "expected_outcome"), str(expected), schemas)
            if expected is not None
            else None
        ),
        priority=priority,
        mode=mode,
        description=description,
    )


def _known(mapping: dict[Any, Any], path: tuple[str | int, ...], keys: set[str]) -> None:
    for key in mapping:
        if key not in keys:
            hint = did_you_mean(str(key), keys)
            raise _Refused(
                (*path, key), f"unknown key {key!r}{hint}; known: {', '.join(sorted(keys))}"
            )


def _trigger(raw: Any, registry: SchemaRegistry) -> Trigger:
    if not isinstance(raw, dict):
        raise _Refused(
            ("trigger",), "expected a trigger: {events: [warden.alert.firing], alertnames: [...]}"
        )
    _known(raw, ("trigger",), _TRIGGER_KEYS)
    types = raw.get("events")
    if isinstance(types, str):
        types = [types]
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        raise _Refused(("trigger", "events"), "expected a list of event types")
    known = registry.types()
    for index, type_ in enumerate(types):
        if type_ not in known:
            hint = did_you_mean(type_, known)
            raise _Refused(
                ("trigger", "events", index),
                f"unknown event type {type_!r}{hint}; known: {', '.join(known)}",
            )
    names = raw.get("alertnames", [])
    if isinstance(names, str):
        names = [names]
    labels = raw.get("labels", {})
    if names or labels:
        for index, type_ in enumerate(types):
            if "alertname" not in _props(_data_schema(registry, type_)):
                raise _Refused(
                    ("trigger", "events", index),
                    f"alertnames and labels match alerts, and {type_} is not an alert event;"
                    " use a condition for other events",
                )
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise _Refused(("trigger", "alertnames"), "expected a list of alert names")
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise _Refused(("trigger", "labels"), "expected a mapping of label name to text value")
    return Trigger(frozenset(types), frozenset(names), tuple(sorted(labels.items())))


def _data_schema(registry: SchemaRegistry, type_: str) -> dict[str, Any]:
    return registry.schema(type_)


def _props(schema: dict[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties")
    return properties if isinstance(properties, dict) else {}


def _checked(path: tuple[str | int, ...], make: Any) -> Any:
    try:
        return make()
    except ConfigError as exc:
        raise _Refused(path, str(exc)) from None


def _template(path: tuple[str | int, ...], raw: Any, schemas: dict[str, Any]) -> Template:
    return _checked(path, lambda: compile_template(raw, schemas))  # type: ignore[no-any-return]


def _duration(path: tuple[str | int, ...], raw: Any) -> timedelta:
    if isinstance(raw, int | float) and not isinstance(raw, bool) and raw > 0:
        return timedelta(seconds=raw)
    match = _DURATION.match(raw) if isinstance(raw, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise _Refused(path, f"expected a duration like 30s, 5m or 1h, got {raw!r}")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def _steps(raw: Any, schemas: dict[str, Any], catalog: Catalog) -> tuple[StepTemplate, ...]:
    if not isinstance(raw, list) or not raw:
        raise _Refused(("plan", "steps"), "expected a list of steps: [{action: …, target: …}]")
    steps = []
    for index, item in enumerate(raw):
        where: tuple[str | int, ...] = ("plan", "steps", index)
        if not isinstance(item, dict):
            raise _Refused(where, "expected a step: {action: restart_service, target: …}")
        _known(item, where, _STEP_KEYS)
        action = item.get("action")
        spec = catalog.get(action) if isinstance(action, str) else None
        if spec is None:
            hint = did_you_mean(str(action), catalog.names())
            raise _Refused(
                (*where, "action"),
                f"unknown action {action!r}{hint}; known: {', '.join(catalog.names())}",
            )
        if "target" not in item:
            raise _Refused(where, "expected a target, e.g. target: '{{ event.data.service }}'")
        target = _template((*where, "target"), item["target"], schemas)
        params = item.get("params", {})
        if not isinstance(params, dict):
            raise _Refused((*where, "params"), "expected a mapping of parameter to value")
        _check_params(params, spec.params_schema, (*where, "params"), spec.name)
        steps.append(
            StepTemplate(
                spec.name,
                target,
                tuple(
                    (str(k), _template((*where, "params", k), v, schemas))
                    for k, v in sorted(params.items())
                ),
            )
        )
    return tuple(steps)


def _check_params(
    params: dict[str, Any], schema: dict[str, Any], where: tuple[str | int, ...], action: str
) -> None:
    properties = _props(schema)
    for key in params:
        if key not in properties and schema.get("additionalProperties") is False:
            known = ", ".join(sorted(properties)) or "none"
            raise _Refused(
                (*where, key), f"{action} has no parameter {key!r} (its parameters: {known})"
            )
    missing = [k for k in schema.get("required", []) if k not in params]
    if missing:
        raise _Refused(where, f"{action} needs the parameter {missing[0]!r}")
    for key, value in params.items():
        if isinstance(value, str) and "{{" in value:
            continue  # rendered per event and checked then, by the catalog at the gate
        try:
            jsonschema.validate(value, properties.get(key, {}))
        except jsonschema.ValidationError as exc:
            raise _Refused((*where, key), f"{action}.{key}: {exc.message}") from None


__all__ = [
    "CASES_SUFFIX",
    "EXAMPLE",
    "RunbookSet",
    "load_runbook",
    "load_runbooks",
    "runbook_files",
]
