"""The short reliability campaign, as ``make test`` runs it: zero losses, repeats, crashes.

``make reliability`` runs the same parts at full size (1,000 kills, a million fuzzed
inputs, minutes of overload, 1,000 slow clients, 10,000 tamperings).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from tests.reliability.__main__ import SHORT
from tests.reliability.campaign import PARTS, run_part

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SEED = int(os.environ.get("WARDEN_RELIABILITY_SEED", "20261202"))


@pytest.mark.parametrize("part", [p for p in PARTS if p != "kills"])
def test_short_campaign_part_loses_nothing(part: str, tmp_path: Path) -> None:
    # The kills part runs at 200 in tests/integration/test_crash_recovery.py.
    from rich.console import Console

    results = run_part(part, SHORT, SEED, tmp_path, 1, Console(stderr=True))
    for result in results:
        print(result.part, result.counts)
        if "skipped" in result.counts:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"{result.part} skipped under CI=true: {result.counts['skipped']}")
            pytest.skip(f"{result.part}: {result.counts['skipped']}")
        assert result.passed, f"{result.part}:\n" + "\n".join(result.failures)
