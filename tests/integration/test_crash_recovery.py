"""SIGKILL at random points of multi-step remediations, 100 times.

After every restart nothing accepted is lost and no non-idempotent step ran twice; in the
end every incident is closed and the audit log verifies. The campaign itself lives in
``tests/reliability/kills.py``; ``make reliability`` runs it with 1,000 kills.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from tests.reliability.kills import campaign

if TYPE_CHECKING:
    from pathlib import Path

# 100 kills at about two seconds each (start-up, then a random point), plus settling runs.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

KILLS = int(os.environ.get("WARDEN_CRASH_KILLS", "100"))


def test_sigkill_at_random_points_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    result = campaign(KILLS, int(os.environ.get("WARDEN_CRASH_SEED", "20261125")), tmp_path)
    print(result.counts)
    assert result.passed, "\n".join(result.failures)
    assert result.counts["kills"] >= KILLS
    assert result.counts["audit verified"] == result.counts["scenarios"]
