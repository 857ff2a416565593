"""Promotion earned by evidence: thresholds per action class, and the candidate's record. Pure core.

A candidate (a runbook, agent or bundle version) is compared with the live one on live
events (its shadow proposals), and scored on the scenario library and replayed history
(``warden.candidate.evaluated``). :func:`unmet` lists every threshold the evidence does
not meet; a promotion goes ahead only when that list is empty. :func:`compare` sorts the
shadow proposals against the live incidents: same plan, different plan, a plan where the
live one had none, none where the live one had one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from warden.domain import plan_compare
from warden.domain.plan_compare import DIFFERENT, ONLY_LIVE, SAME, compare_steps

if TYPE_CHECKING:
    from collections.abc import Iterable

    from warden.domain.versions import Evaluation

ONLY_SHADOW = plan_compare.ONLY_CANDIDATE
VERDICTS = (SAME, DIFFERENT, ONLY_SHADOW, ONLY_LIVE)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What a candidate must show before it acts: per action class, or by default."""

    min_shadow_proposals: int = 20
    min_agreement_pct: float = 90.0
    max_wrong: int = 0

    def stricter(self, other: Thresholds) -> Thresholds:
        """The stricter of the two on every count."""
        return Thresholds(
            max(self.min_shadow_proposals, other.min_shadow_proposals),
            max(self.min_agreement_pct, other.min_agreement_pct),
            min(self.max_wrong, other.max_wrong),
        )


@dataclass(frozen=True, slots=True)
class CanarySettings:
    """Where a version promoted to canary acts first, and what rolls it back."""

    fraction: float = 0.1
    services: tuple[str, ...] = ()
    min_outcomes: int = 1  # canary remediations closed before its success rate is compared


@dataclass(frozen=True, slots=True)
class PromotionPolicy:
    """The ``promotion:`` section of warden.yaml."""

    default: Thresholds = Thresholds()
    classes: tuple[tuple[str, Thresholds], ...] = ()  # by action name or risk class
    canary: CanarySettings = CanarySettings()

    def for_actions(self, actions: Iterable[tuple[str, str]]) -> Thresholds:
        """The thresholds for a candidate whose plans use ``actions`` ((name, risk) pairs).

        Each action takes its own class (by name, else by risk, else the default); the
        candidate must meet the strictest of them.
        """
        by_class = dict(self.classes)
        chosen: Thresholds | None = None
        for name, risk in sorted(set(actions)):
            found = by_class.get(name) or by_class.get(risk) or self.default
            chosen = found if chosen is None else chosen.stricter(found)
        return chosen or self.default


@dataclass(frozen=True, slots=True)
class Evidence:
    """What is known of a candidate version when its promotion is asked for."""

    kind: str
    name: str
    version: str
    shadow_proposals: int
    compared: dict[str, int]  # per verdict of :func:`compare`
    evaluation: Evaluation | None

    @property
    def agreement_pct(self) -> float | None:
        """Agreement with humans when the history had any, else with the live version."""
        if self.evaluation is not None and self.evaluation.human_agreement_pct is not None:
            return round(self.evaluation.human_agreement_pct, 2)
        total = sum(self.compared.values())
        return round(100 * self.compared.get(SAME, 0) / total, 2) if total else None

    def to_dict(self) -> dict[str, Any]:
        """As attached to the promotion event."""
        found = self.evaluation
        return {
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "shadow_proposals": self.shadow_proposals,
            "compared": dict(sorted(self.compared.items())),
            "agreement_pct": self.agreement_pct,
            "agreement_with": (
                "humans" if found is not None and found.human_agreement_pct is not None else "live"
            ),
            "library": None
            if found is None
            else {
                "right": found.right,
                "miss": found.miss,
                "wrong": found.wrong,
                "total": found.total,
            },
            "evaluated_at": found.at if found is not None else "",
        }


def unmet(thresholds: Thresholds, evidence: Evidence) -> list[str]:
    """Every threshold ``evidence`` falls short of, each said plainly ([] to promote)."""
    missing = []
    if evidence.shadow_proposals < thresholds.min_shadow_proposals:
        missing.append(
            f"shadow proposals: {evidence.shadow_proposals}, at least"
            f" {thresholds.min_shadow_proposals} needed"
        )
    agreement = evidence.agreement_pct
    if agreement is None:
        missing.append(
            f"agreement: nothing to compare yet, at least {thresholds.min_agreement_pct:g}% needed"
        )
    elif agreement < thresholds.min_agreement_pct:
        missing.append(
            f"agreement: {agreement:g}%, at least {thresholds.min_agreement_pct:g}% needed"
        )
    found = evidence.evaluation
    if found is None or found.total == 0:
        missing.append(
            f"scenario library: no evaluation of version {evidence.version}"
            " (run `warden evaluate` on it with --record)"
        )
    elif found.wrong > thresholds.max_wrong:
        missing.append(
            f"scenario library: {found.wrong} WRONG of {found.total}, at most"
            f" {thresholds.max_wrong} allowed"
        )
    return missing


@dataclass(frozen=True, slots=True)
class Proposal:
    """A shadow candidate's would-be plan (or its silence) on one live event or incident."""

    service: str
    time: str
    evidence: tuple[str, ...]  # the event ids it answered
    steps: tuple[tuple[str, str, str], ...]  # (action, target, params as text); () none
    incident_id: str = ""  # the live incident, when it was asked about one


@dataclass(frozen=True, slots=True)
class LiveIncident:
    """What the live side did with an incident: its plan's steps (() when none)."""

    incident_id: str
    service: str
    opened_at: str
    evidence: tuple[str, ...]
    steps: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True, slots=True)
class Comparison:
    """One incident (or event) as the live side and the candidate saw it."""

    verdict: str
    service: str
    time: str
    incident_id: str
    live: tuple[tuple[str, str, str], ...]
    shadow: tuple[tuple[str, str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "verdict": self.verdict,
            "service": self.service,
            "time": self.time,
            "incident_id": self.incident_id,
            "live": [list(s) for s in self.live],
            "shadow": [list(s) for s in self.shadow],
        }


def compare(proposals: Iterable[Proposal], incidents: Iterable[LiveIncident]) -> list[Comparison]:
    """Sort each proposal against the live incident of the same evidence or id.

    ``incidents`` are those in the candidate's scope (what the live version it stands
    beside planned); one with no proposal is a plan where the candidate had none.
    """
    live = list(incidents)
    by_id = {i.incident_id: i for i in live}
    by_evidence = {e: i for i in live for e in i.evidence}
    matched: set[str] = set()
    out = []
    for proposal in proposals:
        found = by_id.get(proposal.incident_id) or next(
            (by_evidence[e] for e in proposal.evidence if e in by_evidence), None
        )
        if found is not None:
            matched.add(found.incident_id)
        verdict = compare_steps(found.steps if found is not None else (), proposal.steps)
        if verdict == plan_compare.NEITHER:
            continue
        if verdict == ONLY_SHADOW:
            about = found.incident_id if found is not None else ""
            shadow = proposal.steps
            out.append(Comparison(verdict, proposal.service, proposal.time, about, (), shadow))
            continue
        assert found is not None
        out.append(
            Comparison(
                verdict,
                found.service,
                proposal.time,
                found.incident_id,
                found.steps,
                proposal.steps,
            )
        )
    for incident in live:
        if incident.incident_id not in matched and incident.steps:
            out.append(
                Comparison(
                    ONLY_LIVE,
                    incident.service,
                    incident.opened_at,
                    incident.incident_id,
                    incident.steps,
                    (),
                )
            )
    return sorted(out, key=lambda c: (c.time, c.incident_id, c.verdict))


def tally(comparisons: Iterable[Comparison]) -> dict[str, int]:
    """How many comparisons gave each verdict (every verdict listed, 0 when none)."""
    counts = dict.fromkeys(VERDICTS, 0)
    for comparison in comparisons:
        counts[comparison.verdict] += 1
    return counts


__all__ = [
    "DIFFERENT",
    "ONLY_LIVE",
    "ONLY_SHADOW",
    "SAME",
    "VERDICTS",
    "CanarySettings",
    "Comparison",
    "Evidence",
    "LiveIncident",
    "PromotionPolicy",
    "Proposal",
    "Thresholds",
    "compare",
    "tally",
    "unmet",
]
