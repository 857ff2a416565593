"""A candidate's record in the log: shadow proposals, comparison, evidence. Runtime (shell).

What `warden shadow`, `warden promote` and ``/api/versions`` read: the lifecycle stream
(versions, promotions, evaluations), the shadow stream (candidates' would-be plans) and
the incidents the live side handled in the meantime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from warden.domain import events as ev
from warden.domain import incident as incident_fold
from warden.domain import promotion as pr
from warden.domain import versions as vs
from warden.domain.plan_compare import plan_keys

if TYPE_CHECKING:
    from collections.abc import Iterable

    from warden.domain.incident import Incident
    from warden.ports import EventStore

CANDIDATE_TYPES = frozenset({ev.RUNBOOK_SHADOWED, ev.AGENT_SHADOWED})


LIFECYCLE_STREAMS = (ev.LIFECYCLE_STREAM, ev.CANDIDATES_STREAM)
"""Where the lifecycle is folded from: versions, promotions, rollbacks, and evaluations."""


def lifecycle_events(store: EventStore) -> list[ev.Event]:
    """The events of :data:`LIFECYCLE_STREAMS`, in log order."""
    found = [e for s in LIFECYCLE_STREAMS for e in store.read_stream(s)]
    return sorted(found, key=lambda e: e.position)


def lifecycle_of(store: EventStore) -> vs.Lifecycle:
    """The lifecycle the log holds now."""
    return vs.fold(lifecycle_events(store))


def shadow_records(store: EventStore) -> list[dict[str, Any]]:
    """Every candidate agent's or runbook's shadow record, in log order."""
    return [e.data for e in store.read_stream(ev.SHADOW_STREAM) if e.type in CANDIDATE_TYPES]


def incidents_of(store: EventStore) -> dict[str, Incident]:
    """Every incident in the log, by id."""
    return incident_fold.fold_all(
        e for s in store.streams("incident-") for e in store.read_stream(s)
    )


def _kind_of(record: dict[str, Any]) -> str:
    return str(record.get("kind") or "runbook")


def _name_of(record: dict[str, Any]) -> str:
    return str(record.get("name") or record.get("runbook", ""))


def candidates(records: Iterable[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Each (kind, name, version) that proposed in shadow, sorted."""
    return sorted({(_kind_of(r), _name_of(r), str(r.get("version", ""))) for r in records})


def compare_candidate(
    records: Iterable[dict[str, Any]],
    incidents: Iterable[Incident],
    kind: str,
    name: str,
    version: str,
    since: str = "",
) -> list[pr.Comparison]:
    """The candidate's proposals against the live incidents in its scope, per incident.

    The scope: incidents the live version of the same name planned (opened at or after
    ``since``, when the candidate was first loaded), and any incident it was asked about.
    """
    proposals = [
        pr.Proposal(
            service=str(r.get("service", "")),
            time=str(r.get("event_time", "")),
            evidence=(str(r.get("event_id", "")),),
            steps=plan_keys(r.get("plan")),
            incident_id=str(r.get("incident_id", "")),
        )
        for r in records
        if _kind_of(r) == kind and _name_of(r) == name and str(r.get("version", "")) == version
    ]
    asked = {p.incident_id for p in proposals if p.incident_id}
    live = []
    for incident in incidents:
        plan = incident.plan
        planned_by_live = plan is not None and plan.agent == name and plan.agent_version != version
        if not (planned_by_live and incident.opened_at >= since) and incident.id not in asked:
            continue
        live.append(
            pr.LiveIncident(
                incident_id=incident.id,
                service=incident.service,
                opened_at=incident.first_signal_at,
                evidence=incident.evidence_ids,
                steps=plan_keys(plan.to_dict()) if plan is not None else (),
            )
        )
    return pr.compare(proposals, sorted(live, key=lambda i: i.incident_id))


def evidence_for(
    store: EventStore, kind: str, name: str, version: str
) -> tuple[pr.Evidence, list[str]]:
    """The evidence for a promotion of that version, and the actions its plans use."""
    lifecycle = lifecycle_of(store)
    if kind == "bundle":
        return _bundle_evidence(store, lifecycle, name, version)
    records = [
        r
        for r in shadow_records(store)
        if _kind_of(r) == kind and _name_of(r) == name and str(r.get("version", "")) == version
    ]
    since = lifecycle.track(kind, name).first_loaded(version)
    comparisons = compare_candidate(
        records, incidents_of(store).values(), kind, name, version, since
    )
    proposals = sum(1 for r in records if r.get("plan"))
    actions = sorted({s[0] for r in records for s in plan_keys(r.get("plan"))})
    evidence = pr.Evidence(
        kind=kind,
        name=name,
        version=version,
        shadow_proposals=proposals,
        compared=pr.tally(comparisons),
        evaluation=lifecycle.evaluation(kind, name, version),
    )
    return evidence, actions


def _bundle_evidence(
    store: EventStore, lifecycle: vs.Lifecycle, name: str, version: str
) -> tuple[pr.Evidence, list[str]]:
    """A candidate bundle's record: every step it decided beside the live one."""
    decided = [
        e.data
        for e in store.read_stream(ev.SHADOW_STREAM)
        if e.type == ev.SHADOW_DECIDED and (e.data.get("shadow") or {}).get("bundle") == version
    ]
    agree = sum(1 for d in decided if d.get("agree"))
    evidence = pr.Evidence(
        kind="bundle",
        name=name,
        version=version,
        shadow_proposals=len(decided),
        compared={pr.SAME: agree, pr.DIFFERENT: len(decided) - agree},
        evaluation=lifecycle.evaluation("bundle", name, version),
    )
    return evidence, sorted({str(d.get("action", "")) for d in decided})


def versions_table(lifecycle: vs.Lifecycle) -> list[dict[str, Any]]:
    """Every known version with its stage, for `warden versions` and ``/api/versions``."""
    rows = []
    for (kind, name), track in sorted(lifecycle.tracks.items()):
        shown = [track.live, *track.shadow, *track.retired, *track.rolled_back]
        if track.canary is not None:
            shown.append(track.canary.version)
        for version in dict.fromkeys(v for v in shown if v):
            row: dict[str, Any] = {
                "kind": kind,
                "name": name,
                "version": version,
                "stage": track.stage_of(version),
                "loaded": version in track.loaded,
                "since": track.first_loaded(version),
            }
            if version == track.live and track.stage:
                row["autonomy"] = track.stage
            canary = track.canary
            if canary is not None and version == canary.version:
                row["canary"] = {
                    "fraction": canary.fraction,
                    "services": list(canary.services),
                    "previous": canary.previous,
                }
            rows.append(row)
    return rows


def candidate_comparisons(store: EventStore) -> list[dict[str, Any]]:
    """Each candidate agent or runbook: its counts per verdict and every comparison."""
    records = shadow_records(store)
    if not records:
        return []
    lifecycle = lifecycle_of(store)
    incidents = incidents_of(store).values()
    found = []
    for kind, name, version in candidates(records):
        since = lifecycle.track(kind, name).first_loaded(version)
        compared = compare_candidate(records, incidents, kind, name, version, since)
        found.append(
            {
                "kind": kind,
                "name": name,
                "version": version,
                "counts": pr.tally(compared),
                "incidents": [c.to_dict() for c in compared],
            }
        )
    return found


def choose_candidate(track: vs.Track, to: str, given: str | None) -> str:
    """The version a promotion to ``to`` means: ``given``, else the only candidate.

    Raises:
        ValueError: No candidate, or several, with what to do.
    """
    if given:
        return given
    if track.canary is not None and to != "canary":
        return track.canary.version
    if len(track.shadow) == 1:
        return track.shadow[0]
    if not track.shadow:
        if to != "canary" and track.live:
            return track.live  # a change of autonomy for the version already live
        raise ValueError(f"no candidate of {track.kind} {track.name} runs in shadow")
    raise ValueError(
        f"{len(track.shadow)} candidates of {track.kind} {track.name} run in shadow"
        f" ({', '.join(track.shadow)}); name one with --version"
    )


__all__ = [
    "CANDIDATE_TYPES",
    "LIFECYCLE_STREAMS",
    "candidate_comparisons",
    "candidates",
    "choose_candidate",
    "compare_candidate",
    "evidence_for",
    "incidents_of",
    "lifecycle_events",
    "lifecycle_of",
    "shadow_records",
    "versions_table",
]
