"""Agreement of a candidate with history: its proposals against what happened and what people did.

Pure counting over small records (no store, no clock): each past incident the candidate
had a say in is one comparison, agree or differ (steps compared as `warden shadow`
compares them, by :mod:`warden.domain.plan_compare`), and the ones people decided on
(approved, rejected, acted by hand) give the agreement with humans. See
docs/evaluation.md. App layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.domain.events import parse_time
from warden.domain.plan_compare import same_steps

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from warden.domain.incident import Incident

APPROVED = "approved"
REJECTED = "rejected"
BY_HAND = "by hand"
NONE = "none"
HUMAN = (APPROVED, REJECTED, BY_HAND)
WINDOW_S = 600.0  # how far apart a past incident and a candidate's proposal may open


@dataclass(frozen=True, slots=True)
class Past:
    """One recorded incident: its plan's steps and what people did about it."""

    incident_id: str
    service: str
    opened_at: str
    steps: tuple[str, ...]
    human: str  # APPROVED, REJECTED, BY_HAND or NONE
    owned: bool = False  # planned by the live version of the candidate (same name)


@dataclass(frozen=True, slots=True)
class Proposal:
    """What the candidate put forward in the replay: the steps it would have acted on."""

    incident_id: str
    service: str
    opened_at: str
    steps: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Comparison:
    """One past incident (or a proposal where nothing was recorded) and the verdict."""

    incident_id: str
    service: str
    recorded: tuple[str, ...]
    human: str
    candidate: tuple[str, ...]
    agree: bool


@dataclass(frozen=True, slots=True)
class Agreement:
    """The counts, and every comparison they come from."""

    comparisons: tuple[Comparison, ...]

    @property
    def agree(self) -> int:
        """Comparisons where the candidate did what happened (or what people wanted)."""
        return sum(1 for c in self.comparisons if c.agree)

    @property
    def differ(self) -> int:
        """Comparisons where it did otherwise."""
        return len(self.comparisons) - self.agree

    @property
    def total(self) -> int:
        """Comparisons made."""
        return len(self.comparisons)

    @property
    def human_agreement(self) -> float | None:
        """Percent of the comparisons people decided on where it agreed; None without any."""
        decided = [c for c in self.comparisons if c.human in HUMAN]
        if not decided:
            return None
        return round(100.0 * sum(1 for c in decided if c.agree) / len(decided), 1)

    def to_dict(self) -> dict[str, int | float | None]:
        """The counts as the ``history`` part of ``warden.candidate.evaluated``."""
        return {
            "agree": self.agree,
            "differ": self.differ,
            "total": self.total,
            "human_agreement": self.human_agreement,
        }


def human_decision(incident: Incident) -> str:
    """What people did about a recorded incident.

    A rejection outweighs an approval (someone said no); a page with no step of Warden's
    succeeding means people acted by hand.
    """
    if incident.rejections:
        return REJECTED
    if incident.approvals:
        return APPROVED
    if incident.pages and not incident.succeeded:
        return BY_HAND
    return NONE


def agrees(recorded: Sequence[str], human: str, candidate: Sequence[str]) -> bool:
    """Whether the candidate's steps agree with the record of one incident.

    Approved: it proposes the steps people approved. Rejected: it does not propose the
    steps people rejected. By hand: it proposes something (people had to act; the record
    does not say what they did). Otherwise: it proposes what Warden did (nothing for
    nothing).
    """
    if human == REJECTED:
        return not same_steps(recorded, candidate)
    if human == BY_HAND:
        return bool(candidate)
    return same_steps(recorded, candidate)  # approved, or Warden alone


def _apart(a: str, b: str) -> float:
    return abs((parse_time(a) - parse_time(b)).total_seconds())


def _match(proposal: Proposal, past: Sequence[Past], window_s: float) -> Past | None:
    """The past incident a proposal is about: the same id, else the closest on its service."""
    same = next((p for p in past if p.incident_id == proposal.incident_id), None)
    if same is not None:
        return same
    near = [
        p
        for p in past
        if p.service == proposal.service
        and p.opened_at
        and proposal.opened_at
        and _apart(p.opened_at, proposal.opened_at) <= window_s
    ]
    return min(near, key=lambda p: _apart(p.opened_at, proposal.opened_at), default=None)


def count(
    past: Iterable[Past], proposals: Iterable[Proposal], window_s: float = WINDOW_S
) -> Agreement:
    """Compare the candidate's proposals with the past incidents they are about.

    Counted: every past incident the candidate proposed for, and every one its live
    version planned (the candidate replaces it there, so proposing nothing is a verdict
    too). A proposal about no past incident is compared with what happened: nothing.
    """
    recorded = list(past)
    by_past: dict[str, list[str]] = {}
    unmatched: list[Proposal] = []
    for proposal in proposals:
        found = _match(proposal, recorded, window_s)
        if found is None:
            unmatched.append(proposal)
        else:
            seen = by_past.setdefault(found.incident_id, [])
            seen.extend(s for s in proposal.steps if s not in seen)  # a repeat counts once
    out = []
    for p in recorded:
        if p.incident_id not in by_past and not p.owned:
            continue
        said = tuple(by_past.get(p.incident_id, ()))
        out.append(
            Comparison(
                p.incident_id, p.service, p.steps, p.human, said, agrees(p.steps, p.human, said)
            )
        )
    for u in unmatched:
        out.append(
            Comparison(u.incident_id, u.service, (), NONE, u.steps, agrees((), NONE, u.steps))
        )
    return Agreement(tuple(out))


__all__ = [
    "APPROVED",
    "BY_HAND",
    "HUMAN",
    "NONE",
    "REJECTED",
    "Agreement",
    "Comparison",
    "Past",
    "Proposal",
    "agrees",
    "count",
    "human_decision",
]
