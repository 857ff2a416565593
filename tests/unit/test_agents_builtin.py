"""builtin_agents: every built-in configured from settings, plus third-party entry points."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint
from typing import TYPE_CHECKING, Any

import pytest

from warden.agents.alerts import AlertAgent
from warden.agents.anomaly import AnomalyAgent
from warden.agents.backlog import BacklogAgent
from warden.agents.bad_deploy import BadDeployAgent
from warden.agents.builtin import BUILTIN_NAMES, ENTRY_POINT_GROUP, builtin_agents, discover_agents
from warden.agents.capacity import CapacityAgent
from warden.agents.change import ChangeAgent
from warden.agents.dependency import FailingDependencyAgent
from warden.agents.drift import DriftAgent
from warden.agents.escalation import EscalationAgent
from warden.agents.pipeline import PipelineCorruptionAgent
from warden.agents.service_down import ServiceDownAgent
from warden.domain.errors import ConfigError

if TYPE_CHECKING:
    from warden.agents.protocol import Detection
    from warden.domain.incident import Incident
    from warden.domain.plans import Plan
    from warden.domain.world import World


@dataclass(frozen=True)
class CanaryAgent:
    """A third-party agent, as a plugin would ship one."""

    threshold: int = 5
    name: str = "canary"
    handles: frozenset[str] = frozenset({"canary_failed"})
    priority: int = 70

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError("threshold must be at least 1")

    def detect(self, world: World) -> list[Detection]:
        return []

    def propose(self, incident: Incident, world: World) -> Plan | None:
        return None


CANARY = CanaryAgent(threshold=9)
NOT_AN_AGENT = object()
IMPOSTOR = CanaryAgent(name="drift")


def point(name: str, attr: str, module: str = __name__) -> EntryPoint:
    return EntryPoint(name=name, value=f"{module}:{attr}", group=ENTRY_POINT_GROUP)


def by_name(agents: list[Any]) -> dict[str, Any]:
    return {a.name: a for a in agents}


def test_defaults_build_every_builtin_in_detection_order() -> None:
    agents = builtin_agents(entry_points=())
    assert [a.name for a in agents] == [
        "bad-deploy",
        "change",
        "capacity",
        "pipeline-corruption",
        "backlog",
        "failing-dependency",
        "drift",
        "service-down",
        "anomaly",
        "escalation",
    ]
    assert [type(a) for a in agents] == [
        BadDeployAgent,
        ChangeAgent,
        CapacityAgent,
        PipelineCorruptionAgent,
        BacklogAgent,
        FailingDependencyAgent,
        DriftAgent,
        ServiceDownAgent,
        AnomalyAgent,
        EscalationAgent,
    ]
    escalation = agents[-1]
    assert isinstance(escalation, EscalationAgent)
    assert escalation.peers == tuple(agents[:-1])
    assert len(BUILTIN_NAMES) == len(agents)


def test_each_agent_handles_its_own_kind() -> None:
    handles = {a.name: a.handles for a in builtin_agents(entry_points=())}
    assert handles == {
        "change": {
            "change",
            "service_down",
            "alert",
            "capacity",
            "failing_dependency",
        },
        "capacity": {"capacity", "service_down", "alert"},
        "bad-deploy": {"bad_deploy"},
        "pipeline-corruption": {"pipeline_corruption"},
        "backlog": {"backlog_growth"},
        "failing-dependency": {"failing_dependency", "dependency_recovered"},
        "drift": {"drift"},
        "service-down": {"service_down"},
        "anomaly": {"error_rate_high", "latency_high", "saturation_high"},
        "escalation": {"*"},
    }


def test_settings_set_thresholds_either_spelling() -> None:
    agents = by_name(
        builtin_agents(
            {
                "bad_deploy": {"error_rate_threshold": 0.1, "window_s": 600, "min_samples": 3},
                "backlog": {"threshold": 5000, "max_scale_factor": 1.5},
                "failing-dependency": {"isolation": "drain", "restart_in_cascade": False},
                "drift": {"grace_s": 0, "priority": 99},
                "service-down": {"failure_threshold": 5},
                "pipeline_corruption": None,
            },
            entry_points=(),
        )
    )
    assert agents["bad-deploy"] == BadDeployAgent(
        error_rate_threshold=0.1, window_s=600.0, min_samples=3
    )
    assert agents["backlog"] == BacklogAgent(threshold=5000.0, max_scale_factor=1.5)
    assert agents["failing-dependency"].isolation == "drain"
    assert agents["failing-dependency"].restart_in_cascade is False
    assert agents["drift"].priority == 99
    assert agents["service-down"].failure_threshold == 5
    assert isinstance(agents["bad-deploy"].window_s, float)
    assert isinstance(agents["service-down"].failure_threshold, int)


def test_agents_can_be_disabled() -> None:
    names = [
        a.name
        for a in builtin_agents({"drift": False, "backlog": {"enabled": False}}, entry_points=())
    ]
    assert "drift" not in names
    assert "backlog" not in names
    assert names[-1] == "escalation"
    assert "escalation" not in [
        a.name for a in builtin_agents({"escalation": False}, entry_points=())
    ]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"chaos-monkey": {}},
            r"agents\.chaos-monkey: unknown agent \(built-in: bad-deploy, change, capacity,",
        ),
        (
            {"drift": {"grace": 3}},
            r"agents\.drift: unknown setting 'grace' \(known: enabled, grace_s, priority\)",
        ),
        (
            {"bad-deploy": {"window_s": "15m"}},
            r"agents\.bad-deploy\.window_s: expected a number, got '15m'",
        ),
        (
            {"bad-deploy": {"window_s": 0}},
            r"agents\.bad-deploy\.window_s: 0 is out of range; use a value above 0",
        ),
        ({"bad-deploy": {"error_rate_threshold": 5}}, r"use a value above 0 and at most 1"),
        (
            {"backlog": {"min_increases": 2.5}},
            r"agents\.backlog\.min_increases: expected a whole number, got 2\.5",
        ),
        ({"backlog": {"threshold": True}}, r"expected a number, got True"),
        ({"backlog": {"max_scale_factor": 1}}, r"use a value above 1"),
        ({"failing-dependency": {"isolation": "reboot"}}, r"'reboot' is not one of circuit, drain"),
        (
            {"failing-dependency": {"restart_in_cascade": "yes"}},
            r"expected true or false, got 'yes'",
        ),
        ({"drift": {"enabled": "no"}}, r"agents\.drift\.enabled: expected true or false"),
        ({"drift": [1]}, r"agents\.drift: expected a mapping of settings"),
        ({"bad_deploy": {}, "bad-deploy": {}}, r"configured twice"),
        ({"escalation": {"peers": []}}, r"agents\.escalation: unknown setting 'peers'"),
    ],
)
def test_bad_settings_are_clear_config_errors(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        builtin_agents(settings, entry_points=())


def test_settings_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="expected a mapping of agent names"):
        builtin_agents(["drift"], entry_points=())  # type: ignore[arg-type]


def test_third_party_agents_come_from_entry_points() -> None:
    points = [point("canary", "CanaryAgent"), point("ready-made", "CANARY")]
    with pytest.raises(ConfigError, match="two agents are called 'canary'"):
        builtin_agents(entry_points=points)
    agents = builtin_agents({"canary": {"threshold": 3}}, entry_points=points[:1])
    names = [a.name for a in agents]
    assert names[-2:] == ["canary", "escalation"]
    canary = by_name(agents)["canary"]
    assert canary == CanaryAgent(threshold=3)
    escalation = agents[-1]
    assert isinstance(escalation, EscalationAgent)
    assert canary in escalation.peers


def test_an_agent_object_entry_point_is_used_as_is() -> None:
    (agent,) = discover_agents(entry_points=[point("ready-made", "CANARY")])
    assert agent is CANARY
    with pytest.raises(ConfigError, match="agent object, which takes no settings"):
        discover_agents(
            {"ready-made": {"threshold": 2}}, entry_points=[point("ready-made", "CANARY")]
        )


def test_a_disabled_entry_point_is_not_even_loaded() -> None:
    broken = point("broken", "Nothing", module="no_such_module_for_warden")
    assert discover_agents({"broken": {"enabled": False}}, entry_points=[broken]) == []


@pytest.mark.parametrize(
    ("entry", "settings", "message"),
    [
        (
            point("broken", "X", module="no_such_module_for_warden"),
            {},
            r"'broken' \(no_such_module_for_warden:X\) in warden\.agents cannot be loaded: ModuleNotFoundError",
        ),
        (point("thing", "NOT_AN_AGENT"), {}, r"did not give an agent: it has no name"),
        (
            point("canary", "CanaryAgent"),
            {"canary": {"threshold": 0}},
            r"building the agent with settings \{'threshold': 0\} failed: ValueError: threshold must be at least 1",
        ),
        (point("canary", "CanaryAgent"), {"canary": {"colour": "red"}}, r"failed: TypeError"),
        (point("impostor", "IMPOSTOR"), {}, r"two agents are called 'drift'"),
    ],
)
def test_broken_plugins_are_config_errors(
    entry: EntryPoint, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        builtin_agents(settings, entry_points=[entry])


def test_installed_entry_points_are_discovered_by_default() -> None:
    # Nothing in this environment registers warden.agents: the built-ins alone.
    assert [a.name for a in builtin_agents()][: len(BUILTIN_NAMES) - 1] == list(BUILTIN_NAMES[:-1])


def test_every_builtin_agent_declares_the_evidence_its_action_needs() -> None:
    for agent in [AlertAgent(), *builtin_agents(entry_points=())]:
        if agent.name == "escalation":
            continue  # it never acts
        needed = getattr(agent, "evidence_needed", ())
        assert needed and all(isinstance(n, str) and n for n in needed), agent.name
