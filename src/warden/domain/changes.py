"""The change timeline: deploys and recorded changes to the objects services run with. Pure core.

Folded from ``warden.deploy.completed`` and ``warden.change.recorded`` events. A change
keeps the value it replaced (sent, or the last one recorded for the same field), so a
revert knows what to put back; a first record of a field is the starting state, not a
change. Agents correlate changes with symptoms by time and by topology.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from warden.domain import events as ev
from warden.domain.identity_memo import by_identity

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

CHANGE_RECORDED = "warden.change.recorded"
CHANGE_TYPES = frozenset({ev.DEPLOY_COMPLETED, CHANGE_RECORDED})
KINDS = (
    "deployment",
    "config",
    "feature_flag",
    "network_rule",
    "route",
    "scaling",
    "quota",
    "credential",
    "scheduled_job",
    "other",
)
VERSION_FIELDS = frozenset({"image", "version", "revision"})
REPLICA_FIELDS = frozenset({"replicas", "replica_count"})
KEPT = 200


@dataclass(frozen=True, slots=True)
class Change:
    """One field of one object taking a new value, and the value it replaced."""

    time: str
    service: str  # the service the object belongs to
    resource: str
    kind: str
    field: str
    value: str
    previous: str | None  # None: the first record of this field (a starting state)
    by: str
    event_id: str

    @property
    def is_change(self) -> bool:
        """False for a first record, which says what the field holds, not that it moved."""
        return self.previous is not None and self.previous != self.value

    @property
    def is_deploy(self) -> bool:
        """A new version of the service went live."""
        return self.kind == "deployment" and self.field in VERSION_FIELDS

    @property
    def is_scaling(self) -> bool:
        """The replica count of the service changed."""
        return self.kind in ("deployment", "scaling") and self.field in REPLICA_FIELDS

    def describe(self) -> str:
        """One line a human reads: what changed, from what to what, by whom, when."""
        who = f" by {self.by}" if self.by else ""
        return (
            f"{self.resource} {self.field} {self.previous} -> {self.value}{who} at {self.time}"
            f" (event {self.event_id})"
        )


@dataclass(frozen=True, slots=True)
class Changes:
    """The kept changes, oldest first, and the latest value of every recorded field."""

    changes: tuple[Change, ...] = ()
    latest: tuple[tuple[tuple[str, str], str], ...] = ()  # ((resource, field), value)
    kinds: tuple[tuple[str, tuple[str, str]], ...] = ()  # (resource, (kind, service))

    def value_of(self, resource: str, field: str) -> str | None:
        """The latest recorded value of a field (None when never recorded)."""
        return dict(self.latest).get((resource, field))

    def resources_of(self, service: str, kind: str) -> tuple[str, ...]:
        """The objects of one kind that belong to ``service``, sorted."""
        return tuple(sorted(r for r, (k, s) in self.kinds if k == kind and s == service))

    def fields_of(self, resource: str) -> tuple[tuple[str, str], ...]:
        """Every recorded field of an object with its latest value, sorted by field."""
        return tuple(sorted((f, v) for (r, f), v in self.latest if r == resource))

    def about(self, services: Iterable[str]) -> tuple[Change, ...]:
        """The real changes (not first records) to objects of ``services``, oldest first."""
        index, place = _by_service(self.changes)
        wanted = set(services)
        if len(wanted) == 1:
            return index.get(next(iter(wanted)), ())
        found = sorted((c for s in wanted for c in index.get(s, ())), key=lambda c: place[id(c)])
        return tuple(found)


@by_identity(maxsize=1024)
def _by_service(
    changes: tuple[Change, ...],
) -> tuple[Mapping[str, tuple[Change, ...]], Mapping[int, int]]:
    """The real changes of each service, oldest first, and each one's place in the timeline.

    Places are keyed by identity: the timeline is kept alive beside the answer.
    """
    index: dict[str, list[Change]] = {}
    for change in changes:
        if change.is_change:
            index.setdefault(change.service, []).append(change)
    place = {id(change): n for n, change in enumerate(changes)}
    return {service: tuple(found) for service, found in index.items()}, place


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _change(event: ev.Event, latest: dict[tuple[str, str], str]) -> Change:
    data = event.data
    service = str(data.get("service") or event.subject)
    if event.type == ev.DEPLOY_COMPLETED:
        resource, kind, field = f"deployment/{service}", "deployment", "version"
        value = _text(data["version"])
        sent = data.get("previous_version")
    else:
        resource, kind, field = str(data["resource"]), str(data["kind"]), str(data["field"])
        value = _text(data["value"])
        sent = data.get("previous")
    known = latest.get((resource, field))
    previous = _text(sent) if sent is not None else known
    return Change(
        event.time,
        service,
        resource,
        kind if kind in KINDS else "other",
        field,
        value,
        previous,
        str(data.get("by", "")),
        event.id,
    )


def observe(changes: Changes, event: ev.Event) -> Changes:
    """Fold one deploy or change event into the timeline."""
    if event.type not in CHANGE_TYPES:
        return changes
    latest = dict(changes.latest)
    change = _change(event, latest)
    latest[(change.resource, change.field)] = change.value
    kinds = dict(changes.kinds)
    kinds[change.resource] = (change.kind, change.service)
    return replace(
        changes,
        changes=(*changes.changes, change)[-KEPT:],
        latest=tuple(sorted(latest.items())),
        kinds=tuple(sorted(kinds.items())),
    )


__all__ = ["CHANGE_RECORDED", "CHANGE_TYPES", "KINDS", "Change", "Changes", "observe"]
