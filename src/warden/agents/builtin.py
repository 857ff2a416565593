"""The built-in agents with their thresholds from settings, and third-party agents. Decisioning.

Third-party agents are found through the ``warden.agents`` entry-point group: an entry
point names an agent, or a class or factory called with the agent's settings section.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from warden.agents.anomaly import AnomalyAgent
from warden.agents.backlog import BacklogAgent
from warden.agents.bad_deploy import BadDeployAgent
from warden.agents.capacity import CapacityAgent
from warden.agents.change import ChangeAgent
from warden.agents.dependency import FailingDependencyAgent
from warden.agents.drift import DriftAgent
from warden.agents.escalation import EscalationAgent
from warden.agents.pipeline import PipelineCorruptionAgent
from warden.agents.service_down import ServiceDownAgent
from warden.domain.errors import ConfigError

if TYPE_CHECKING:
    from warden.agents.protocol import Agent

ENTRY_POINT_GROUP = "warden.agents"


@dataclass(frozen=True, slots=True)
class _Option:
    """One setting of an agent: its type and the range it must fall in."""

    kind: str  # "whole", "number", "flag", "text" or "choice"
    low: float | None = None  # inclusive
    above: float | None = None  # exclusive
    high: float | None = None  # inclusive
    choices: tuple[str, ...] = ()

    def check(self, where: str, value: Any) -> Any:
        """The value if it fits, else a :class:`ConfigError` that says what to write."""
        if self.kind == "flag":
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: expected true or false, got {value!r}")
            return value
        if self.kind in ("text", "choice"):
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}: expected a non-empty text, got {value!r}")
            if self.choices and value not in self.choices:
                raise ConfigError(f"{where}: {value!r} is not one of {', '.join(self.choices)}")
            return value
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if self.kind == "whole" and not (number and float(value).is_integer()):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        if not number:
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if (
            (self.low is not None and value < self.low)
            or (self.above is not None and value <= self.above)
            or (self.high is not None and value > self.high)
        ):
            raise ConfigError(f"{where}: {value!r} is out of range; use {self._range()}")
        return int(value) if self.kind == "whole" else float(value)

    def _range(self) -> str:
        bounds = []
        if self.low is not None:
            bounds.append(f"at least {self.low:g}")
        if self.above is not None:
            bounds.append(f"above {self.above:g}")
        if self.high is not None:
            bounds.append(f"at most {self.high:g}")
        return "a value " + " and ".join(bounds)


_COMMON = {"enabled": _Option("flag"), "priority": _Option("whole")}
_AT_LEAST_ONE = _Option("whole", low=1)
_SECONDS = _Option("number", above=0)

# Cause-specific agents first: on one service only one incident is open at a time, so
# when two agents see the same service in one tick, the more specific diagnosis opens it.
_BUILTINS: dict[str, tuple[Callable[..., Agent], dict[str, _Option]]] = {
    "bad-deploy": (
        BadDeployAgent,
        {
            "error_rate_threshold": _Option("number", above=0, high=1),
            "baseline_factor": _Option("number", low=1),
            "window_s": _SECONDS,
            "min_samples": _AT_LEAST_ONE,
            "baseline_samples": _AT_LEAST_ONE,
            "metric": _Option("text"),
        },
    ),
    "change": (
        ChangeAgent,
        {
            "window_s": _SECONDS,
            "relapse_lookback_s": _SECONDS,
            "relapse_window_s": _Option("number", low=0),
            "failure_threshold": _AT_LEAST_ONE,
            "min_samples": _AT_LEAST_ONE,
        },
    ),
    "capacity": (
        CapacityAgent,
        {
            "failure_threshold": _AT_LEAST_ONE,
            "min_samples": _AT_LEAST_ONE,
            "quota_factor": _Option("number", above=1),
        },
    ),
    "pipeline-corruption": (PipelineCorruptionAgent, {"max_batches": _AT_LEAST_ONE}),
    "backlog": (
        BacklogAgent,
        {
            "threshold": _Option("number", low=0),
            "min_increases": _AT_LEAST_ONE,
            "max_scale_factor": _Option("number", above=1),
            "metric": _Option("text"),
            "consumers_metric": _Option("text"),
        },
    ),
    "failing-dependency": (
        FailingDependencyAgent,
        {
            "failure_threshold": _AT_LEAST_ONE,
            "min_outage_s": _Option("number", low=0),
            "isolation": _Option("choice", choices=("circuit", "drain")),
            "restart_in_cascade": _Option("flag"),
            "recovered_for_s": _Option("number", low=0),
            "fresh_s": _Option("number", low=0),
        },
    ),
    "drift": (DriftAgent, {"grace_s": _Option("number", low=0)}),
    "service-down": (
        ServiceDownAgent,
        {"failure_threshold": _AT_LEAST_ONE, "relapse_window_s": _Option("number", low=0)},
    ),
    # Last: a metric shift is a symptom; a cause-specific diagnosis opens first.
    "anomaly": (
        AnomalyAgent,
        {
            "min_samples": _Option("whole", low=3),
            "sustain": _AT_LEAST_ONE,
            "k": _Option("number", above=0),
        },
    ),
}
ESCALATION = "escalation"
BUILTIN_NAMES = (*_BUILTINS, ESCALATION)


def _key(name: str) -> str:
    """Settings may spell agent names with ``_`` or ``-``."""
    return name.replace("_", "-")


def _sections(settings: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise ConfigError(
            f"agents: expected a mapping of agent names to settings, got {settings!r}"
        )
    found: dict[str, dict[str, Any]] = {}
    for name, body in settings.items():
        where = f"agents.{name}"
        if body is None:
            body = {}
        elif isinstance(body, bool):
            body = {"enabled": body}
        elif not isinstance(body, Mapping):
            raise ConfigError(f"{where}: expected a mapping of settings (or true/false)")
        key = _key(str(name))
        if key in found:
            raise ConfigError(f"{where}: the agent {key!r} is configured twice")
        found[key] = dict(body)
    return found


def _enabled(name: str, section: Mapping[str, Any]) -> bool:
    return bool(_COMMON["enabled"].check(f"agents.{name}.enabled", section.get("enabled", True)))


def _options(name: str, section: Mapping[str, Any], known: Mapping[str, _Option]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    allowed = {**known, "priority": _COMMON["priority"]}
    for key, value in section.items():
        if key == "enabled":
            continue
        option = allowed.get(key)
        if option is None:
            names = ", ".join(sorted({*allowed, "enabled"}))
            raise ConfigError(f"agents.{name}: unknown setting {key!r} (known: {names})")
        options[key] = option.check(f"agents.{name}.{key}", value)
    return options


def _build(name: str, section: Mapping[str, Any]) -> Agent:
    make, known = _BUILTINS[name]
    options = _options(name, section, known)
    try:
        return make(**options)
    except ValueError as exc:
        raise ConfigError(f"agents.{name}: {exc}") from exc


def not_an_agent(candidate: Any) -> str:
    """What ``candidate`` lacks to be an agent ("" when it is one)."""
    name = getattr(candidate, "name", None)
    if not isinstance(name, str) or not name:
        return "it has no name (a non-empty str)"
    handles = getattr(candidate, "handles", None)
    if not isinstance(handles, set | frozenset) or not all(isinstance(k, str) for k in handles):
        return f"{name}: handles must be a frozenset of incident kinds"
    priority = getattr(candidate, "priority", None)
    if not isinstance(priority, int) or isinstance(priority, bool):
        return f"{name}: priority must be an int"
    for method in ("detect", "propose"):
        if not callable(getattr(candidate, method, None)):
            return f"{name}: it has no {method}() method"
    return ""


def _entry_points(
    entry_points: Iterable[metadata.EntryPoint] | None,
) -> list[metadata.EntryPoint]:
    found = metadata.entry_points(group=ENTRY_POINT_GROUP) if entry_points is None else entry_points
    return sorted(found, key=lambda p: p.name)


def discover_agents(
    settings: Mapping[str, Any] | None = None,
    *,
    entry_points: Iterable[metadata.EntryPoint] | None = None,
) -> list[Agent]:
    """Third-party agents registered in the ``warden.agents`` entry-point group.

    An entry point may name an agent object, or a class or factory that is called with
    the agent's settings section (under the entry point's name) as keyword arguments.

    Args:
        settings: Agent name to settings section; ``enabled: false`` skips an agent.
        entry_points: The entry points to load (default: those installed), sorted by name.

    Returns:
        The agents, in entry-point name order.

    Raises:
        ConfigError: An entry point cannot be loaded, its factory refuses the settings, or
            what it gives is not an agent.
    """
    sections = _sections(settings)
    agents: list[Agent] = []
    for point in _entry_points(entry_points):
        name = _key(point.name)
        where = f"agent entry point {point.name!r} ({point.value}) in {ENTRY_POINT_GROUP}"
        section = dict(sections.get(name, {}))
        if not _enabled(name, section):
            continue
        section.pop("enabled", None)
        try:
            loaded = point.load()
        except Exception as exc:  # a broken plugin is a configuration problem, reported as such
            raise ConfigError(f"{where} cannot be loaded: {type(exc).__name__}: {exc}") from exc
        if not isinstance(loaded, type) and not not_an_agent(loaded):
            if section:
                raise ConfigError(
                    f"{where} is an agent object, which takes no settings; remove agents.{name}"
                )
            agent = loaded
        elif callable(loaded):
            try:
                agent = loaded(**section)
            except Exception as exc:  # the plugin's own validation, e.g. a bad threshold
                raise ConfigError(
                    f"{where}: building the agent with settings {section} failed:"
                    f" {type(exc).__name__}: {exc}"
                ) from exc
        else:
            agent = loaded
        problem = not_an_agent(agent)
        if problem:
            raise ConfigError(f"{where} did not give an agent: {problem}")
        agents.append(agent)
    return agents


def builtin_agents(
    settings: Mapping[str, Any] | None = None,
    *,
    entry_points: Iterable[metadata.EntryPoint] | None = None,
) -> list[Agent]:
    """Every built-in agent, configured, then third-party agents, then the escalation agent.

    Args:
        settings: Agent name (``bad-deploy`` or ``bad_deploy``) to its settings, e.g.
            ``{"bad-deploy": {"error_rate_threshold": 0.1}, "drift": {"enabled": False}}``.
            Every agent also takes ``enabled`` and ``priority``.
        entry_points: Third-party entry points to load (default: those installed in the
            ``warden.agents`` group; pass ``()`` for built-ins only).

    Returns:
        The agents in detection order: cause-specific built-ins, ``service-down``,
        third-party agents, and last the escalation agent, which summarizes for the others.

    Raises:
        ConfigError: A setting is unknown or out of range, an agent is unknown, two agents
            share a name, or a third-party agent cannot be loaded.
    """
    sections = _sections(settings)
    points = _entry_points(entry_points)
    installed = {_key(p.name) for p in points}
    for name in sorted(sections):
        if name not in BUILTIN_NAMES and name not in installed:
            raise ConfigError(
                f"agents.{name}: unknown agent (built-in: {', '.join(BUILTIN_NAMES)};"
                f" installed: {', '.join(sorted(installed)) or 'none'})"
            )
    agents = [
        _build(name, sections.get(name, {}))
        for name in _BUILTINS
        if _enabled(name, sections.get(name, {}))
    ]
    agents.extend(discover_agents(settings, entry_points=points))
    seen: set[str] = set()
    for agent in agents:
        if agent.name in seen:
            raise ConfigError(
                f"two agents are called {agent.name!r}; an agent's name is its identity in"
                " policy and audit, so it must be unique"
            )
        seen.add(agent.name)
    escalation = sections.get(ESCALATION, {})
    if _enabled(ESCALATION, escalation):
        options = _options(ESCALATION, escalation, {})
        agents.append(EscalationAgent(peers=tuple(agents), **options))
    return agents


def check_settings(settings: Mapping[str, Any] | None) -> None:
    """Check settings as `builtin_agents` would, building no agent and loading no plugin.

    Built-in agents' settings are checked in full; a third-party agent's section only for
    its name (an installed ``warden.agents`` entry point) and ``enabled``.

    Raises:
        ConfigError: Naming ``agents.settings.NAME.KEY`` and the fix.
    """
    try:
        sections = _sections(settings)
        for name, section in sections.items():
            _enabled(name, section)
            if name in _BUILTINS:
                _options(name, section, _BUILTINS[name][1])
            elif name == ESCALATION:
                _options(name, section, {})
        others = sorted(set(sections) - set(BUILTIN_NAMES))
        installed = {_key(p.name) for p in _entry_points(None)} if others else set()
        for name in others:
            if name not in installed:
                raise ConfigError(
                    f"agents.{name}: unknown agent (built-in: {', '.join(BUILTIN_NAMES)};"
                    f" installed: {', '.join(sorted(installed)) or 'none'})"
                )
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("agents.", "agents.settings.", 1)) from None


__all__ = [
    "BUILTIN_NAMES",
    "ENTRY_POINT_GROUP",
    "builtin_agents",
    "check_settings",
    "discover_agents",
    "not_an_agent",
]
