"""What agents see: the observed state of the system at one moment. Pure core (domain)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from warden.domain.health import Health


@dataclass(frozen=True, slots=True)
class World:
    """Health of every service, the declared topology, and the time of observation."""

    now: datetime
    health: Mapping[str, Health] = field(default_factory=dict)
    depends_on: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
