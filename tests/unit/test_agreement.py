"""Counting a candidate's agreement with history: what people did, matching, the counts."""

from __future__ import annotations

import pytest

from warden.domain.incident import Incident, State
from warden.replay.agreement import (
    APPROVED,
    BY_HAND,
    NONE,
    REJECTED,
    Past,
    Proposal,
    agrees,
    count,
    human_decision,
)

RESTART = ("restart_service(payments)",)
ROLLBACK = ("rollback_deploy(payments: version=v41)",)


def incident(**fields: object) -> Incident:
    base: dict[str, object] = {
        "id": "i1",
        "service": "payments",
        "state": State.RESOLVED,
        "opened_at": "2026-01-05T09:00:00.000000Z",
        "first_signal_at": "2026-01-05T09:00:00.000000Z",
        "summary": "payments down",
    }
    return Incident(**{**base, **fields})  # type: ignore[arg-type]


def test_what_people_did_comes_from_the_folded_incident() -> None:
    approved = incident(approvals=(("h", "alice"),), succeeded=(0,))
    assert human_decision(approved) == APPROVED
    rejected = incident(approvals=(("h", "alice"),), rejections=((("approver", "bob"),),))
    assert human_decision(rejected) == REJECTED  # a no outweighs a yes
    paged = incident(state=State.ESCALATED, pages=("2026-01-05T09:01:00.000000Z",))
    assert human_decision(paged) == BY_HAND
    acted = incident(pages=("2026-01-05T09:01:00.000000Z",), succeeded=(0,))
    assert human_decision(acted) == NONE  # paged, but Warden's step did the work
    assert human_decision(incident()) == NONE


@pytest.mark.parametrize(
    ("recorded", "human", "candidate", "expected"),
    [
        (RESTART, APPROVED, RESTART, True),
        (RESTART, APPROVED, ROLLBACK, False),
        (RESTART, APPROVED, (), False),
        (RESTART, REJECTED, RESTART, False),
        (RESTART, REJECTED, ROLLBACK, True),
        (RESTART, REJECTED, (), True),
        ((), BY_HAND, ROLLBACK, True),
        ((), BY_HAND, (), False),
        (RESTART, NONE, RESTART, True),
        ((), NONE, RESTART, False),
        ((), NONE, (), True),
    ],
)
def test_one_incident_agrees_or_differs(
    recorded: tuple[str, ...], human: str, candidate: tuple[str, ...], expected: bool
) -> None:
    assert agrees(recorded, human, candidate) is expected


def past(incident_id: str, opened: str, human: str, *, owned: bool = False) -> Past:
    return Past(incident_id, "payments", f"2026-01-05T{opened}.000000Z", RESTART, human, owned)


def proposal(incident_id: str, opened: str, steps: tuple[str, ...] = RESTART) -> Proposal:
    return Proposal(incident_id, "payments", f"2026-01-05T{opened}.000000Z", steps)


def test_counts_and_agreement_with_people() -> None:
    history = [
        past("a", "09:00:00", APPROVED),
        past("b", "10:00:00", REJECTED),
        past("c", "11:00:00", NONE),  # the candidate said nothing here, and does not own it
    ]
    proposals = [
        proposal("x", "09:00:30"),  # about a: 30 s apart on the same service
        proposal("y", "10:00:10"),  # about b: proposes what bob rejected
        proposal("z", "13:00:00"),  # about nothing recorded: acting where nothing was done
    ]
    result = count(history, proposals)
    assert [(c.incident_id, c.agree) for c in result.comparisons] == [
        ("a", True),
        ("b", False),
        ("z", False),
    ]
    assert (result.agree, result.differ, result.total) == (1, 2, 3)
    assert result.human_agreement == 50.0
    assert result.to_dict() == {"agree": 1, "differ": 2, "total": 3, "human_agreement": 50.0}


def test_the_same_incident_id_matches_before_the_window_and_repeats_count_once() -> None:
    history = [past("a", "09:00:00", APPROVED), past("b", "09:05:00", APPROVED)]
    # Same id as b though closer in time to a; and a runbook firing twice on one incident.
    result = count(history, [proposal("b", "09:00:00"), proposal("b", "09:00:01")])
    (only,) = result.comparisons
    assert (only.incident_id, only.candidate, only.agree) == ("b", RESTART, True)


def test_what_the_live_version_planned_is_counted_even_when_the_candidate_is_silent() -> None:
    result = count([past("a", "09:00:00", APPROVED, owned=True)], [])
    (only,) = result.comparisons
    assert (only.candidate, only.agree) == ((), False)
    assert result.human_agreement == 0.0


def test_no_decision_by_people_gives_no_agreement_share() -> None:
    result = count([past("a", "09:00:00", NONE)], [proposal("x", "09:00:01")])
    assert (result.agree, result.total, result.human_agreement) == (1, 1, None)
    assert count([], []).to_dict() == {"agree": 0, "differ": 0, "total": 0, "human_agreement": None}


def test_a_proposal_outside_the_window_is_about_nothing_recorded() -> None:
    result = count([past("a", "09:00:00", APPROVED)], [proposal("x", "09:20:00")], window_s=600)
    assert [(c.incident_id, c.human, c.agree) for c in result.comparisons] == [("x", NONE, False)]
