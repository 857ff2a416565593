"""Cedar entities from the topology and the agents' groups. Control plane."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import cedarpy

if TYPE_CHECKING:
    from collections.abc import Mapping

    from warden.domain.topology import Topology


def cedar_entities(
    topology: Topology,
    agent_groups: Mapping[str, tuple[str, ...]],
    agent_caps: Mapping[str, str] | None = None,
) -> Any:
    """A pre-parsed Cedar entity set: services in their domains, agents in their groups."""
    caps = agent_caps or {}
    entities: list[dict[str, Any]] = []
    for domain in sorted({n.domain for n in topology.services.values()}):
        entities.append({"uid": {"type": "Domain", "id": domain}, "attrs": {}, "parents": []})
    for node in topology.services.values():
        entities.append(
            {
                "uid": {"type": "Service", "id": node.name},
                "attrs": {"domain": node.domain, "tier": node.tier},
                "parents": [{"type": "Domain", "id": node.domain}],
            }
        )
    groups = sorted({g for gs in agent_groups.values() for g in gs})
    for group in groups:
        entities.append({"uid": {"type": "AgentGroup", "id": group}, "attrs": {}, "parents": []})
    for agent in sorted({*agent_groups, *caps}):
        member_of = agent_groups.get(agent, ())
        entities.append(
            {
                "uid": {"type": "Agent", "id": agent},
                "attrs": {"max_autonomy": caps.get(agent, "autonomous")},
                "parents": [{"type": "AgentGroup", "id": g} for g in member_of],
            }
        )
    return cedarpy.Entities.from_json_str(json.dumps(entities))
