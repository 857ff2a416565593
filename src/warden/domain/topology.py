"""The declared topology: services, their domains and dependencies; blast radius. Pure core."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


@dataclass(frozen=True, slots=True)
class ServiceNode:
    """One service as the topology declares it."""

    name: str
    domain: str = "default"
    tier: str = "standard"
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Topology:
    """Every service, by name."""

    services: dict[str, ServiceNode] = field(default_factory=dict)

    @classmethod
    def of(cls, nodes: Iterable[ServiceNode]) -> Topology:
        """Build from nodes."""
        return cls({n.name: n for n in nodes})

    def domain_of(self, service: str) -> str:
        """The domain of a service ("default" when unknown)."""
        node = self.services.get(service)
        return node.domain if node else "default"

    def blast_radius(self, targets: Iterable[str]) -> tuple[frozenset[str], int]:
        """Services a plan acts on, and their share of the fleet.

        The share is a whole percentage rounded up, never down, so a cap is never passed
        by rounding.
        """
        affected = frozenset(targets)
        fleet = max(len(self.services), len(affected), 1)
        return affected, math.ceil(100 * len(affected) / fleet)
