"""``verification.READS`` names all a check reads: a round may skip a wait on that."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from warden.domain import events as ev
from warden.domain.catalog import BUILTIN_ACTIONS
from warden.domain.health import Health
from warden.domain.signals import Drift, FailedBatch, Sample, Signals
from warden.domain.verification import READS, UNKNOWN_READS, check
from warden.domain.world import World

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
BEFORE, AFTER = ev.format_time(START - timedelta(seconds=30)), ev.format_time(START)

HEALTHS = [
    None,
    Health("s", last_success_at=AFTER, last_seen_at=AFTER),
    Health("s", last_success_at=BEFORE, last_seen_at=BEFORE),
    Health("s", consecutive_failures=2, last_error="refused", last_seen_at=AFTER),
]
SIGNALS = [
    None,
    Signals("s", metrics=(("error_rate", (Sample(AFTER, 0.01, "e1"),)),)),
    Signals("s", metrics=(("error_rate", (Sample(AFTER, 0.5, "e1"),)),)),
    Signals("s", metrics=(("error_rate", (Sample(BEFORE, 0.01, "e1"),)),)),
    Signals("s", metrics=(("backlog", (Sample(AFTER, 9, "b1"), Sample(AFTER, 3, "b2"))),)),
    Signals("s", failed_batches=(FailedBatch(AFTER, "p", "b", "bad", "", "f1"),)),
    Signals("s", drift=(Drift("replicas", "3", "1", AFTER, "d1"),)),
]
SECONDS = [0.0, 1.0, 4.9, 5.0, 14.9, 15.0, 60.0, 3600.0]
KINDS = sorted({*READS, *(spec.verification for spec in BUILTIN_ACTIONS), "unheard_of"})


def passes(kind: str, health: Health | None, signals: Signals | None, after_s: float) -> bool:
    world = World(
        now=START + timedelta(seconds=after_s),
        health={"s": health} if health is not None else {},
        signals={"s": signals} if signals is not None else {},
    )
    return check(kind, "s", world, START).passed


@pytest.mark.parametrize("kind", KINDS)
def test_a_check_answers_the_same_while_what_it_reads_stays(kind: str) -> None:
    reads = READS.get(kind, UNKNOWN_READS)

    # Time alone changes an answer only at the end of the quiet period, if it has one.
    def period(after_s: float) -> bool:
        return bool(reads.quiet_s) and after_s >= reads.quiet_s

    for health in HEALTHS:
        for signals in SIGNALS:
            for after_s in SECONDS:
                answer = passes(kind, health, signals, after_s)
                for other_s in [s for s in SECONDS if period(s) == period(after_s)]:
                    assert passes(kind, health, signals, other_s) == answer, (kind, other_s)
                if not reads.health:
                    for other_health in HEALTHS:
                        assert passes(kind, other_health, signals, after_s) == answer, kind
                if not reads.signals:
                    for other_signals in SIGNALS:
                        assert passes(kind, health, other_signals, after_s) == answer, kind


def test_every_kind_of_the_catalog_says_what_it_reads() -> None:
    assert {spec.verification for spec in BUILTIN_ACTIONS} <= set(READS)


def test_reads_are_not_vacuous() -> None:
    """The worlds above tell health and signals apart: each flag is needed somewhere."""
    health_matters = {
        k for k in READS for s in SIGNALS for t in SECONDS
        if len({passes(k, h, s, t) for h in HEALTHS}) > 1
    }  # fmt: skip
    signals_matter = {
        k for k in READS for h in HEALTHS for t in SECONDS
        if len({passes(k, h, s, t) for s in SIGNALS}) > 1
    }  # fmt: skip
    assert health_matters == {k for k, r in READS.items() if r.health}
    assert signals_matter == {k for k, r in READS.items() if r.signals}
