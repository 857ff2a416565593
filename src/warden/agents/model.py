"""Optional model adapter agent: asks an OpenAI-compatible chat endpoint for a plan. Decisioning.

Off unless a ``model:`` section configures it (:func:`model_agent_from_config`). It opens no
incidents; for an incident other agents opened it sends the action catalog as tools and the
incident's context, redacted first (DESIGN.md invariant 6), and checks the answer like any
other plan. It never raises into the runtime: any failure is no plan, with the reason kept.

Determinism: the same incident and world give byte-for-byte the same request body (sorted
keys), but a model's answer is not deterministic, even at temperature 0. Replay therefore
never asks the model again: it folds the plans recorded in ``warden.plan.proposed`` events.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from warden.agents.model_answer import AnswerChecker
from warden.agents.model_endpoint import ChatEndpoint, Shared, chat_completions_url
from warden.agents.model_evidence import check_evidence
from warden.agents.model_prompt import (
    SYSTEM_PROMPT,
    catalog_tools,
    evidence_of,
    incident_context,
    known_targets,
)
from warden.domain.catalog import Catalog
from warden.domain.errors import ConfigError, ValidationError, WardenError
from warden.domain.plans import Plan
from warden.domain.redact import DEFAULT_SETTINGS, RedactionSettings, redact, redact_text
from warden.domain.versions import content_version

if TYPE_CHECKING:
    from warden.agents.protocol import Detection
    from warden.domain.incident import Incident
    from warden.domain.world import World

log = logging.getLogger(__name__)

DEFAULT_API_KEY_ENV = "WARDEN_MODEL_API_KEY"
DEFAULT_NAME = "model-advisor"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_STEPS = 5
_KEY_PLACEHOLDER = "[REDACTED:api_key]"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
# What a model's word is worth to the gate: under the default bundle's 70% for acting
# alone, so a model claiming certainty never skips an approval it would otherwise need.
CONFIDENCE_CEILING = 0.69
# The highest autonomy a model agent acts at unless agents.max_autonomy names it.
DEFAULT_MAX_AUTONOMY = "supervised"


@dataclass(frozen=True, slots=True)
class ModelAgentStatistics:
    """What the agent has done since it started, and why it last proposed nothing."""

    requests: int = 0
    plans: int = 0
    failures: int = 0  # the endpoint could not be reached or did not answer 200 with JSON
    rejections: int = 0  # the endpoint answered, but the answer did not make a valid plan
    redactions: Mapping[str, int] = field(default_factory=dict)
    last_rejection: str = ""


class ModelAgent:
    """Proposes plans for open incidents by asking an OpenAI-compatible chat endpoint.

    The API key is read from the environment variable ``api_key_env`` at each request and
    is kept nowhere else: not on the object, not in its repr, logs or reasons. Without the
    variable the request carries no ``Authorization`` header (local endpoints need none).
    """

    def __init__(
        self,
        endpoint_url: str,
        model: str,
        catalog: Catalog,
        *,
        api_key_env: str = DEFAULT_API_KEY_ENV,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        name: str = DEFAULT_NAME,
        max_steps: int = DEFAULT_MAX_STEPS,
        redaction: RedactionSettings = DEFAULT_SETTINGS,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ConfigError("model agent: name the model to ask (e.g. gpt-4o-mini)")
        if _ENV_NAME.fullmatch(api_key_env) is None:
            raise ConfigError(
                f"model agent: api_key_env must be an environment variable name, got"
                f" {api_key_env!r}"
            )
        if _AGENT_NAME.fullmatch(name) is None:
            raise ConfigError(f"model agent: {name!r} is not a valid agent name")
        self._endpoint = ChatEndpoint(chat_completions_url(endpoint_url), float(timeout_s))
        self._model = model.strip()
        self._catalog = catalog
        self._api_key_env = api_key_env
        self._name = name
        self._redaction = redaction
        self._checker = AnswerChecker(catalog, max_steps)
        self._tools = catalog_tools(catalog)
        self._prompt = SYSTEM_PROMPT.format(max_steps=max_steps)
        # The runtime asks from worker threads (it is slow): counts change one at a time.
        self._stats = Shared(ModelAgentStatistics())

    @property
    def settings_version(self) -> str:
        """A content hash of the model settings that shape its plans (never the key)."""
        endpoint = self._endpoint
        return content_version(
            endpoint.url, str(endpoint.timeout_s), self._model, self._prompt, repr(self._redaction)
        )

    @property
    def name(self) -> str:
        """The agent's identity: the principal its plans are decided for."""
        return self._name

    @property
    def endpoint_url(self) -> str:
        """The full chat-completions URL the agent posts to."""
        return self._endpoint.url

    @property
    def model(self) -> str:
        """The model the endpoint is asked to use."""
        return self._model

    def __repr__(self) -> str:
        return (
            f"ModelAgent(name={self._name!r}, endpoint={self._endpoint.url!r},"
            f" model={self._model!r}, api_key_env={self._api_key_env!r},"
            f" timeout_s={self._endpoint.timeout_s:g})"
        )

    def statistics(self) -> ModelAgentStatistics:
        """Counts of requests, plans, failures and rejections, and the last reason."""
        return self._stats.get()

    @property
    def last_rejection(self) -> str:
        """Why the latest request that gave no plan gave none ("" when none failed)."""
        return self._stats.get().last_rejection

    @property
    def handles(self) -> frozenset[str]:
        """Any incident kind: the model is asked whenever it is configured."""
        return frozenset({"*"})

    @property
    def priority(self) -> int:
        """Below every rule agent: a rule that knows the fault wins over the model."""
        return 10

    @property
    def slow(self) -> bool:
        """Asked off the runtime loop's thread: an answer can take up to ``timeout_s``."""
        return True

    def detect(self, world: World) -> list[Detection]:
        """Nothing: the model only proposes plans for incidents other agents opened."""
        return []

    def build_request(self, incident: Incident, world: World) -> dict[str, Any]:
        """The chat-completions request for an incident; its context is redacted."""
        return self._request(incident, world)[0]

    def request_body(self, incident: Incident, world: World) -> bytes:
        """The exact bytes posted for an incident: the same incident and world, the same bytes."""
        return _encode(self.build_request(incident, world))

    def _request(self, incident: Incident, world: World) -> tuple[dict[str, Any], dict[str, int]]:
        keep = {n for n in known_targets(world) if _SAFE_NAME.fullmatch(n) and "@" not in n}
        keep.update(self._catalog.names())
        # Event ids (32 hex digits) look random, but they are Warden's own: kept, so the
        # model can cite them as evidence.
        keep.update(i for i in evidence_of(incident, world) if _SAFE_NAME.fullmatch(i))
        redaction = redact(incident_context(incident, world), self._redaction, keep=keep)
        body = {
            "model": self._model,
            "messages": [
                {"role": "system", "content": self._prompt},
                {"role": "user", "content": _encode(redaction.value).decode("utf-8")},
            ],
            "tools": self._tools,
            "tool_choice": "auto",
            "temperature": 0,
        }
        return body, dict(redaction.counts)

    def propose(self, incident: Incident, world: World) -> Plan | None:
        """A checked plan from the model, or None with the reason in :attr:`last_rejection`."""
        try:
            return self._propose(incident, world)
        except Exception as exc:  # never raise into the runtime
            self._refuse(incident, f"internal error ({type(exc).__name__})", failed=True)
            return None

    def _propose(self, incident: Incident, world: World) -> Plan | None:
        targets = known_targets(world)
        if not targets:
            self._refuse(incident, "no known services to act on", failed=False)
            return None
        request, counts = self._request(incident, world)
        api_key = os.environ.get(self._api_key_env) or None
        self._count(requests=1, redacted=counts)
        try:
            response = self._endpoint.post_json(_encode(request), api_key)
        except WardenError as exc:
            self._refuse(incident, f"endpoint: {exc}", failed=True, api_key=api_key)
            return None
        try:
            answer = self._checker.check(response, targets)
            evidence = check_evidence(answer.steps, answer.evidence, incident, world)
        except ValidationError as exc:
            self._refuse(incident, f"answer rejected: {exc}", failed=False)
            return None
        keep = targets | set(self._catalog.names())
        rationale = redact_text(answer.rationale, self._redaction, keep=keep)
        confidence = min(answer.confidence, CONFIDENCE_CEILING)
        if confidence < answer.confidence:
            rationale += f" (the model's own confidence, {answer.confidence:.2f}, is capped)"
        plan = Plan(
            agent=self._name,
            steps=answer.steps,
            rationale=rationale,
            evidence=evidence,
            confidence=confidence,
            expected_outcome=redact_text(answer.expected_outcome, self._redaction, keep=keep),
        )
        self._count(plans=1)
        return plan

    def _count(
        self, *, requests: int = 0, plans: int = 0, redacted: Mapping[str, int] | None = None
    ) -> None:

        def counted(stats: ModelAgentStatistics) -> ModelAgentStatistics:
            redactions = Counter(stats.redactions)
            redactions.update(redacted or {})
            return replace(
                stats,
                requests=stats.requests + requests,
                plans=stats.plans + plans,
                redactions=dict(sorted(redactions.items())),
            )

        self._stats.update(counted)

    def _refuse(
        self, incident: Incident, reason: str, *, failed: bool, api_key: str | None = None
    ) -> None:
        key = api_key or os.environ.get(self._api_key_env)
        if key and len(key) >= 4:
            reason = reason.replace(key, _KEY_PLACEHOLDER)
        if not failed:  # the reason quotes the model's answer: outside text, redact it
            reason = redact_text(reason, self._redaction, keep=self._catalog.names())
        reason = reason[:500]
        self._stats.update(
            lambda stats: replace(
                stats,
                failures=stats.failures + int(failed),
                rejections=stats.rejections + int(not failed),
                last_rejection=reason,
            )
        )
        log.warning("%s proposed no plan for incident %s: %s", self._name, incident.id, reason)


def _encode(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# -- configuration -------------------------------------------------------------------------

_KNOWN_KEYS = frozenset(
    {"endpoint", "model", "api_key_env", "timeout_s", "name", "max_steps", "enabled", "redact"}
)


def _number(where: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{where}: {value} is out of range; use a value between {low} and {high}")
    return float(value)


def _flag(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _redaction(raw: Any) -> RedactionSettings:
    if raw is None:
        return DEFAULT_SETTINGS
    if not isinstance(raw, Mapping):
        raise ConfigError("model.redact: expected a mapping, e.g. {ip_addresses: false}")
    known = {"ip_addresses", "phone_numbers"}
    for key in raw:
        if key not in known:
            raise ConfigError(
                f"model.redact: unknown key {key!r} (known: {', '.join(sorted(known))})"
            )
    return RedactionSettings(
        ip_addresses=_flag("model.redact.ip_addresses", raw.get("ip_addresses", True)),
        phone_numbers=_flag("model.redact.phone_numbers", raw.get("phone_numbers", True)),
    )


def model_agent_from_config(
    raw: Mapping[str, Any] | None, catalog: Catalog | None = None
) -> ModelAgent | None:
    """The model agent a configuration asks for, or None when it has no ``model:`` section.

    ``raw`` is the ``model:`` section as documented below, or a whole parsed configuration
    file, of which only the ``model`` section is read::

        model:
          endpoint: https://api.example.com/v1   # or http://127.0.0.1:8000 (required)
          model: gpt-4o-mini                     # (required)
          api_key_env: WARDEN_MODEL_API_KEY      # where the key is read from; never the key
          timeout_s: 10                          # the whole request, 0.1 to 300
          name: model-advisor                    # the agent's identity for policies
          max_steps: 5                           # 1 to 20
          enabled: true                          # false keeps the section but turns it off
          redact: {ip_addresses: true, phone_numbers: true}

    Raises:
        ConfigError: The section is malformed; the message says which key and how to fix it.
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError("the configuration must be a mapping")
    if _is_section(raw):
        section: Any = raw
    elif "model" not in raw:
        return None
    else:
        section = raw["model"]
    if section is None:
        raise ConfigError(
            "model: the section is empty; give at least endpoint and model, or remove it"
            " to keep the model agent off"
        )
    options = check_model_section(section)
    enabled = options.pop("enabled")
    try:
        agent = ModelAgent(catalog=catalog if catalog is not None else Catalog(), **options)
    except ConfigError as exc:
        raise ConfigError(f"model: {exc}") from exc
    return agent if enabled else None


def _is_section(raw: Mapping[str, Any]) -> bool:
    """Whether ``raw`` is a ``model:`` section itself rather than a file holding one.

    A section names its endpoint, or holds the model's name (text) beside other keys of a
    section; in a file, ``model`` is the section (a mapping).
    """
    others = set(map(str, raw)) - {"model"}
    return "endpoint" in raw or (
        isinstance(raw.get("model"), str) and bool(others) and others <= _KNOWN_KEYS
    )


def check_model_section(section: Any) -> dict[str, Any]:
    """Check a ``model:`` section (format in `model_agent_from_config`), making no agent.

    Returns:
        ``enabled`` and the keyword arguments of :class:`ModelAgent` but the catalog.

    Raises:
        ConfigError: Naming ``model.KEY`` and the fix.
    """
    if not isinstance(section, Mapping):
        raise ConfigError("model: expected a mapping with endpoint and model")
    for key in sorted(map(str, section)):
        if key not in _KNOWN_KEYS and re.search(r"key|token|secret|password", key, re.I):
            raise ConfigError(
                f"model.{key}: never put the API key in the configuration file; export it in"
                f" the environment variable named by model.api_key_env"
                f" (default {DEFAULT_API_KEY_ENV})"
            )
        if key not in _KNOWN_KEYS:
            raise ConfigError(
                f"model: unknown key {key!r} (known: {', '.join(sorted(_KNOWN_KEYS))})"
            )
    endpoint = section.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise ConfigError(
            "model.endpoint: the URL of an OpenAI-compatible endpoint is required"
            " (e.g. http://127.0.0.1:8000/v1)"
        )
    model = section.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ConfigError("model.model: name the model to ask, e.g. model: gpt-4o-mini")
    api_key_env = section.get("api_key_env", DEFAULT_API_KEY_ENV)
    if not isinstance(api_key_env, str) or _ENV_NAME.fullmatch(api_key_env) is None:
        raise ConfigError(
            f"model.api_key_env: expected the name of an environment variable such as"
            f" {DEFAULT_API_KEY_ENV}, got {api_key_env!r}"
        )
    name = section.get("name", DEFAULT_NAME)
    if not isinstance(name, str) or _AGENT_NAME.fullmatch(name) is None:
        raise ConfigError(f"model.name: use letters, digits, '.', '-' and '_' (got {name!r})")
    max_steps = section.get("max_steps", DEFAULT_MAX_STEPS)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or not 1 <= max_steps <= 20:
        raise ConfigError(
            f"model.max_steps: expected a whole number from 1 to 20, got {max_steps!r}"
        )
    timeout_s = _number("model.timeout_s", section.get("timeout_s", DEFAULT_TIMEOUT_S), 0.1, 300)
    enabled = _flag("model.enabled", section.get("enabled", True))
    redaction = _redaction(section.get("redact"))
    try:
        chat_completions_url(endpoint)
    except ConfigError as exc:
        raise ConfigError(f"model.endpoint: {exc}") from exc
    return {
        "endpoint_url": endpoint,
        "model": model,
        "api_key_env": api_key_env,
        "timeout_s": timeout_s,
        "name": name,
        "max_steps": max_steps,
        "redaction": redaction,
        "enabled": enabled,
    }


__all__ = [
    "CONFIDENCE_CEILING",
    "DEFAULT_API_KEY_ENV",
    "DEFAULT_MAX_AUTONOMY",
    "ModelAgent",
    "ModelAgentStatistics",
    "check_model_section",
    "model_agent_from_config",
]
