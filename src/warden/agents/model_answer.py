"""Checks a model's chat-completion answer against the action catalog. Decisioning plane, pure.

A model's answer is outside input: it becomes steps only when every call names a catalog
action, a known target and parameters that pass the action's JSON Schema, and the
answer gives a rationale and a confidence within [0, 1]. Anything else raises
:class:`~warden.domain.errors.ValidationError` saying where and why.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from warden.domain.errors import ConfigError, ValidationError
from warden.domain.plans import Step

if TYPE_CHECKING:
    from collections.abc import Set

    from warden.domain.catalog import Catalog

MAX_RATIONALE_CHARS = 4000
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ModelAnswer:
    """What a valid answer holds: the steps, and the model's reasons and confidence."""

    steps: tuple[Step, ...]
    rationale: str
    confidence: float
    expected_outcome: str = ""
    evidence: tuple[str, ...] = ()  # the event ids the model cites


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_object(text: str, where: str) -> dict[str, Any]:
    match = _FENCE.match(text.strip())
    try:
        value = json.loads(match.group(1) if match else text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise ValidationError(
            "is not valid JSON", field=where, fix="answer with one JSON object"
        ) from exc
    if not isinstance(value, dict):
        raise ValidationError(f"expected a JSON object, got {type(value).__name__}", field=where)
    return value


def _content_text(content: Any, where: str) -> str:
    """The text of a message's content: a string, or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        if parts and all(isinstance(p, str) for p in parts):
            return "".join(p for p in parts if isinstance(p, str))
    raise ValidationError(
        "is missing or not text",
        field=where,
        fix='give {"rationale": ..., "confidence": ...} as JSON in the message content',
    )


class AnswerChecker:
    """Turns chat-completion answers into steps, or says why it cannot."""

    def __init__(self, catalog: Catalog, max_steps: int = 5) -> None:
        if max_steps < 1:
            raise ConfigError("model agent: max_steps must be at least 1")
        self.catalog = catalog
        self.max_steps = max_steps
        self._validators: dict[str, Draft202012Validator] = {}
        for name in catalog.names():
            spec = catalog.get(name)
            assert spec is not None
            try:
                Draft202012Validator.check_schema(spec.params_schema)
            except SchemaError as exc:
                raise ConfigError(
                    f"catalog action {name!r}: params_schema is not a valid JSON Schema"
                    f" ({exc.message})"
                ) from exc
            self._validators[name] = Draft202012Validator(spec.params_schema)

    def check(self, response: Any, targets: Set[str]) -> ModelAnswer:
        """The steps, rationale and confidence of a chat-completion answer.

        Args:
            response: The parsed JSON body the endpoint answered with.
            targets: The services a step may act on.

        Raises:
            ValidationError: The answer is malformed, or breaks the catalog's rules.
        """
        if not isinstance(response, dict):
            raise ValidationError("the answer is not a JSON object", field="body")
        choices = response.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ValidationError("no choices in the answer", field="choices")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise ValidationError("no message in the first choice", field="choices[0].message")
        where = "choices[0].message"
        content = f"{where}.content"
        calls = message.get("tool_calls")
        if calls is not None and not isinstance(calls, list):
            raise ValidationError("expected a list", field=f"{where}.tool_calls")
        if calls:
            steps = [self._tool_call(i, call, targets) for i, call in enumerate(calls)]
            meta = _json_object(_content_text(message.get("content"), content), content)
        else:
            meta = _json_object(_content_text(message.get("content"), content), content)
            raw_steps = meta.get("steps")
            if not isinstance(raw_steps, list):
                raise ValidationError(
                    "no tool calls and no steps",
                    field=f"{where}.content.steps",
                    fix="call the catalog's tools, or list steps as {action, target, params}",
                )
            steps = [self._listed_step(i, raw, targets) for i, raw in enumerate(raw_steps)]
        if not steps:
            raise ValidationError("the model proposed no steps", field=f"{where}.tool_calls")
        if len(steps) > self.max_steps:
            raise ValidationError(
                f"{len(steps)} steps, more than the {self.max_steps} allowed", field=where
            )
        return ModelAnswer(
            steps=tuple(steps),
            rationale=_rationale(meta.get("rationale"), f"{where}.content.rationale"),
            confidence=_confidence(meta.get("confidence"), f"{where}.content.confidence"),
            expected_outcome=_optional_text(meta.get("expected_outcome")),
            evidence=_cited(meta.get("evidence"), f"{where}.content.evidence"),
        )

    def _tool_call(self, index: int, call: Any, targets: Set[str]) -> Step:
        where = f"tool_calls[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or call.get("type", "function") != "function":
            raise ValidationError("is not a function call", field=where)
        name = function.get("name")
        arguments = function.get("arguments", {})
        if isinstance(arguments, str):
            arguments = _json_object(arguments or "{}", f"{where}.function.arguments")
        if not isinstance(arguments, dict):
            raise ValidationError("expected a JSON object", field=f"{where}.function.arguments")
        params = dict(arguments)
        target = params.pop("target", None)
        return self._step(where, name, target, params, targets)

    def _listed_step(self, index: int, raw: Any, targets: Set[str]) -> Step:
        where = f"steps[{index}]"
        if not isinstance(raw, dict):
            raise ValidationError("expected {action, target, params}", field=where)
        params = raw.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ValidationError("expected a JSON object", field=f"{where}.params")
        return self._step(where, raw.get("action"), raw.get("target"), params, targets)

    def _step(
        self, where: str, action: Any, target: Any, params: dict[str, Any], targets: Set[str]
    ) -> Step:
        if not isinstance(action, str) or self.catalog.get(action) is None:
            raise ValidationError(
                f"unknown action {_shown(action)}",
                field=where,
                fix=f"use a catalog action: {', '.join(self.catalog.names())}",
            )
        if not isinstance(target, str) or target not in targets:
            known = ", ".join(sorted(targets))
            what = "no target" if target is None else f"unknown target {_shown(target)}"
            raise ValidationError(
                f"{what} for {action}",
                field=where,
                fix=f"target one of the known services: {known}",
            )
        errors = sorted(e.message for e in self._validators[action].iter_errors(params))
        if errors:
            raise ValidationError(
                f"parameters of {action} do not match its schema: {'; '.join(errors)[:300]}",
                field=where,
            )
        return Step(action, target, tuple(sorted(params.items())))


def _rationale(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("missing or empty", field=where, fix="explain why the plan helps")
    text = value.strip()
    return text if len(text) <= MAX_RATIONALE_CHARS else text[: MAX_RATIONALE_CHARS - 3] + "..."


def _confidence(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"expected a number from 0 to 1, got {_shown(value)}", field=where)
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise ValidationError(f"{number:g} is outside [0, 1]", field=where)
    return number


def _cited(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValidationError(
            f"expected a list of event ids, got {_shown(value)}",
            field=where,
            fix='cite ids from "evidence" in the request, e.g. ["ev-1"]',
        )
    return tuple(dict.fromkeys(value))


def _optional_text(value: Any) -> str:
    return value.strip()[:MAX_RATIONALE_CHARS] if isinstance(value, str) else ""


__all__ = ["AnswerChecker", "ModelAnswer"]
