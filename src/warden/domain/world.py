"""What agents see: the observed state of the system at one moment. Pure core (domain)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from warden.domain.changes import Changes
from warden.domain.signals import Signals

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from warden.domain.health import Health
    from warden.domain.isolation import Isolation
    from warden.domain.relapse import Remedy


@dataclass(frozen=True, slots=True)
class World:
    """Health and signals of every service, the declared topology, the time of observation.

    ``isolated`` holds the services Warden isolated (circuit opened, drained) and has not
    let back in yet. ``unmanaged`` holds the services Warden watches but cannot restart
    (``managed: false`` with no adapter of its own for ``restart_service``). ``changes`` is
    the change timeline (deploys, configuration, flags, network, routes, scaling);
    ``remedies`` the remediation steps that succeeded lately.
    """

    now: datetime
    health: Mapping[str, Health] = field(default_factory=dict)
    depends_on: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    signals: Mapping[str, Signals] = field(default_factory=dict)
    limits: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    isolated: Mapping[str, Isolation] = field(default_factory=dict)
    unmanaged: frozenset[str] = frozenset()
    changes: Changes = field(default_factory=Changes)
    remedies: tuple[Remedy, ...] = ()

    def signals_of(self, service: str) -> Signals:
        """The signals of one service (empty when none arrived)."""
        return self.signals.get(service) or _no_signals(service)

    def restartable(self, service: str) -> bool:
        """Whether Warden can restart ``service`` (it runs it, or an adapter restarts it)."""
        return service not in self.unmanaged

    def limit(self, service: str, name: str) -> str | None:
        """A declared limit or desired value of a service (e.g. max_consumers), if any."""
        return dict(self.limits.get(service, ())).get(name)


@lru_cache(maxsize=4096)
def _no_signals(service: str) -> Signals:
    """The empty signals of a service, one object per name.

    Agents ask for every service's signals each round; the very same (immutable) object
    each time lets what is remembered by identity (:mod:`identity_memo`) answer at once,
    where a fresh empty one per call was asked afresh and crowded out other answers.
    """
    return Signals(service)
