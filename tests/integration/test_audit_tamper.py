"""Tamper campaign: random tamperings of log, checkpoints and event store, all detected.

Runs a seeded few hundred in CI; ``python bench/tamper.py --trials 10000`` runs more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from warden.testing.tamper import TAMPERINGS, campaign

if TYPE_CHECKING:
    from pathlib import Path


def test_every_random_tampering_is_detected(tmp_path: Path) -> None:
    trials = 15 * len(TAMPERINGS)
    result = campaign(tmp_path, trials, seed=20261202)
    assert result.missed == []
    assert result.detected == result.trials == trials
    assert set(result.by_kind) == set(TAMPERINGS)
