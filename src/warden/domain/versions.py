"""Versions of what decides, and which one acts where, folded from the lifecycle stream. Pure core.

Every agent, runbook, policy bundle and model setting has a version (its name and a
content hash). What is loaded, promoted and rolled back are events in the ``lifecycle``
stream; :func:`observe` folds them into a :class:`Lifecycle` that says, per kind and
name, which version is live, which runs in shadow, which is in canary (on which
services) and which are retired but kept loaded for a rollback. :func:`role` tells one
loaded version whether it acts, shadows or idles for a service.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

from warden.domain import events as ev

KINDS = ("agent", "runbook", "bundle", "model")
STAGES = ("supervised", "autonomous", "canary")
"""What a promotion moves a version to (a candidate starts in shadow)."""
LIVE, SHADOW, IDLE = "live", "shadow", "idle"


def fingerprint(texts: dict[str, str]) -> str:
    """A short content hash of named texts, names included (bundles, runbooks, code)."""
    digest = hashlib.sha256()
    for file_name in sorted(texts):
        digest.update(file_name.encode() + b"\0" + texts[file_name].encode() + b"\0")
    return digest.hexdigest()[:16]


def content_version(*parts: str) -> str:
    """A short content hash of ``parts`` (settings, a set of versions)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:16]


def in_canary(service: str, fraction: float, services: tuple[str, ...]) -> bool:
    """Whether ``service`` is in a canary of ``fraction`` of the fleet or named ``services``.

    The share is taken by a hash of the name, so the same services are chosen on every
    host and in every process, whatever the order of a set or the hash seed.
    """
    if service in services:
        return True
    if fraction <= 0:
        return False
    bucket = int(hashlib.sha256(service.encode()).hexdigest()[:8], 16) / 0x1_0000_0000
    return bucket < fraction


@dataclass(frozen=True, slots=True)
class Canary:
    """A version acting first on some services while the rest keep the previous one."""

    version: str
    previous: str
    fraction: float
    services: tuple[str, ...]
    since: str

    def covers(self, service: str) -> bool:
        """Whether the canary version acts for ``service``."""
        return in_canary(service, self.fraction, self.services)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A candidate's score on the scenario library and on replayed history."""

    right: int
    miss: int
    wrong: int
    total: int
    agree: int
    differ: int
    compared: int
    human_agreement_pct: float | None  # 0..100; None when no human acted in the history
    at: str

    @classmethod
    def from_data(cls, data: dict[str, Any], at: str) -> Evaluation:
        """Read the data of a ``warden.candidate.evaluated`` event."""
        library = data.get("library") or {}
        history = data.get("history") or {}
        human = history.get("human_agreement")
        return cls(
            right=int(library.get("right", 0)),
            miss=int(library.get("miss", 0)),
            wrong=int(library.get("wrong", 0)),
            total=int(library.get("total", 0)),
            agree=int(history.get("agree", 0)),
            differ=int(history.get("differ", 0)),
            compared=int(history.get("total", 0)),
            human_agreement_pct=None if human is None else float(human),
            at=at,
        )


@dataclass(frozen=True, slots=True)
class Track:
    """One agent, runbook, bundle or model setting: its versions and which one acts."""

    kind: str
    name: str
    live: str = ""
    stage: str = ""  # "" as configured; supervised or autonomous after a promotion
    canary: Canary | None = None
    shadow: tuple[str, ...] = ()
    retired: tuple[str, ...] = ()  # earlier live versions, oldest first
    rolled_back: tuple[str, ...] = ()
    loaded: tuple[str, ...] = ()
    pinned: bool = False  # the live version was chosen by a promotion or a rollback
    since: tuple[tuple[str, str], ...] = ()  # (version, when first loaded)

    @property
    def key(self) -> tuple[str, str]:
        """(kind, name)."""
        return (self.kind, self.name)

    def first_loaded(self, version: str) -> str:
        """When ``version`` was first loaded ("" unknown)."""
        return next((t for v, t in self.since if v == version), "")

    def acting(self, service: str) -> str:
        """The version that acts for ``service``."""
        if self.canary is not None and self.canary.covers(service):
            return self.canary.version
        return self.live

    def role(self, version: str, service: str) -> str:
        """Whether ``version`` acts (live), proposes beside (shadow) or idles for ``service``."""
        if version == self.acting(service):
            return LIVE
        if version in self.shadow:
            return SHADOW
        return IDLE

    def previous(self) -> str:
        """The version a rollback restores ("" when there is none)."""
        if self.canary is not None:
            return self.canary.previous
        kept = [v for v in self.retired if v != self.live and v not in self.rolled_back]
        return kept[-1] if kept else ""

    def stage_of(self, version: str) -> str:
        """live, canary, shadow, retired or rolled back, as listed by `warden versions`."""
        if self.canary is not None and version == self.canary.version:
            return "canary"
        if version == self.live:
            return "live"
        if version in self.rolled_back:
            return "rolled back"
        if version in self.shadow:
            return "shadow"
        return "retired"


def _retire(retired: tuple[str, ...], version: str) -> tuple[str, ...]:
    if not version:
        return retired
    return (*(v for v in retired if v != version), version)


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """Every track by (kind, name), and the latest evaluation of each candidate version."""

    tracks: dict[tuple[str, str], Track] = field(default_factory=dict)
    evaluations: dict[tuple[str, str, str], Evaluation] = field(default_factory=dict)
    position: int = 0

    def track(self, kind: str, name: str) -> Track:
        """The track of ``kind`` ``name`` (an empty one when never seen)."""
        return self.tracks.get((kind, name)) or Track(kind, name)

    def evaluation(self, kind: str, name: str, version: str) -> Evaluation | None:
        """The latest evaluation of that exact version, or None.

        A bundle is known by its version alone (``NAME@hash`` names it already).
        """
        found = self.evaluations.get((kind, name, version))
        if found is None and kind == "bundle":
            found = next(
                (e for (k, _, v), e in self.evaluations.items() if k == kind and v == version),
                None,
            )
        return found


def observe(lifecycle: Lifecycle, event: ev.Event) -> Lifecycle:
    """Fold one lifecycle event (other events leave ``lifecycle`` as it is)."""
    data = event.data
    if event.type == ev.CANDIDATE_EVALUATED:
        scored = (
            str(data.get("kind", "")),
            str(data.get("name", "")),
            str(data.get("version", "")),
        )
        evaluations = {**lifecycle.evaluations, scored: Evaluation.from_data(data, event.time)}
        return replace(lifecycle, evaluations=evaluations, position=event.position)
    if event.type not in (ev.VERSIONS_LOADED, ev.VERSION_PROMOTED, ev.VERSION_ROLLED_BACK):
        return lifecycle
    tracks = dict(lifecycle.tracks)
    if event.type == ev.VERSIONS_LOADED:
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for entry in data.get("versions") or []:
            grouped.setdefault((str(entry["kind"]), str(entry["name"])), []).append(entry)
        for key, entries in sorted(grouped.items()):
            tracks[key] = _loaded(lifecycle.track(*key), entries, event.time)
    else:
        key = (str(data["kind"]), str(data["name"]))
        current = lifecycle.track(*key)
        if event.type == ev.VERSION_PROMOTED:
            tracks[key] = _promoted(current, data, event.time)
        else:
            tracks[key] = _rolled_back(current, data)
    return replace(lifecycle, tracks=tracks, position=event.position)


def _loaded(track: Track, entries: list[dict[str, Any]], when: str) -> Track:
    loaded = tuple(sorted({str(e["version"]) for e in entries}))
    since = track.since + tuple((v, when) for v in loaded if not track.first_loaded(v))
    live_files = sorted(str(e["version"]) for e in entries if e.get("mode", LIVE) == LIVE)
    live, retired = track.live, track.retired
    # A promotion or rollback holds across restarts; new files (an edit) replace it.
    edited = [v for v in live_files if not track.first_loaded(v)]
    chosen = track.pinned and track.live in loaded and not edited
    if not chosen and live_files and live != live_files[0]:
        retired = _retire(retired, live)
        live = live_files[0]
    canary = track.canary if track.canary is not None and track.canary.version in loaded else None
    shadow = tuple(
        str(e["version"])
        for e in entries
        if e.get("mode") == SHADOW
        and str(e["version"]) not in (live, *track.rolled_back, *track.retired)
        and (canary is None or str(e["version"]) != canary.version)
    )
    retired = tuple(v for v in retired if v != live)
    return replace(
        track,
        live=live,
        shadow=shadow,
        retired=retired,
        loaded=loaded,
        canary=canary,
        pinned=chosen,
        since=since,
    )


def _promoted(track: Track, data: dict[str, Any], when: str) -> Track:
    version = str(data["version"])
    shadow = tuple(v for v in track.shadow if v != version)
    rolled_back = tuple(v for v in track.rolled_back if v != version)
    if data.get("to") == "canary":
        canary = Canary(
            version=version,
            previous=track.live,
            fraction=float(data.get("fraction", 0.0)),
            services=tuple(str(s) for s in data.get("services") or ()),
            since=when,
        )
        return replace(track, canary=canary, shadow=shadow, rolled_back=rolled_back)
    retired = _retire(track.retired, track.live) if track.live != version else track.retired
    return replace(
        track,
        live=version,
        stage=str(data.get("to", "")),
        canary=None,
        shadow=shadow,
        retired=tuple(v for v in retired if v != version),
        rolled_back=rolled_back,
        pinned=True,
    )


def _rolled_back(track: Track, data: dict[str, Any]) -> Track:
    version = str(data["version"])
    restored = str(data.get("restored", ""))
    rolled_back = (*(v for v in track.rolled_back if v != version), version)
    if track.canary is not None and track.canary.version == version:
        return replace(track, canary=None, rolled_back=rolled_back)
    return replace(
        track,
        live=restored,  # "" when the version rolled back was the first to act
        stage="",
        canary=None,
        retired=tuple(v for v in _retire(track.retired, version) if v != restored),
        shadow=tuple(v for v in track.shadow if v != version),
        rolled_back=rolled_back,
        pinned=True,
    )


def fold(events: list[ev.Event] | tuple[ev.Event, ...]) -> Lifecycle:
    """The lifecycle a history of lifecycle events gives."""
    lifecycle = Lifecycle()
    for event in events:
        lifecycle = observe(lifecycle, event)
    return lifecycle


__all__ = [
    "IDLE",
    "KINDS",
    "LIVE",
    "SHADOW",
    "STAGES",
    "Canary",
    "Evaluation",
    "Lifecycle",
    "Track",
    "content_version",
    "fingerprint",
    "fold",
    "in_canary",
    "observe",
]
