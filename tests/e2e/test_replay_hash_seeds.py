"""`warden replay` of one state gives the same answer under every PYTHONHASHSEED.

The state is decided by several policies at once (their order once followed the process),
and each replay runs in a fresh interpreter with its own hash seed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.builders import recorded_outage
from warden.governance.policy import BUILTIN_BUNDLE

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

SEEDS = range(10)
# Both match every restart beside the built-in autonomous-low-risk: three reasons to order.
EXTRA_POLICIES = """
@id("restarts-are-routine") @message("a restart is routine")
permit (principal, action == Action::"restart_service", resource);
@id("any-low-risk-step") @message("low risk")
permit (principal, action, resource) when { context.risk == "low" };
"""


def replay_with_seed(seed: int, state: Path, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": str(seed), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "warden.cli", "replay", "-s", str(state), "-c", str(config)],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        check=False,
    )  # fmt: skip


@pytest.mark.timeout(600)
def test_replay_gives_one_answer_under_every_hash_seed(tmp_path: Path) -> None:
    bundle = tmp_path / "policies"
    shutil.copytree(BUILTIN_BUNDLE, bundle)
    (bundle / "extra.cedar").write_text(EXTRA_POLICIES)
    config = recorded_outage(tmp_path, f"policy_dir: {bundle}\n")
    answers = {}
    for seed in SEEDS:
        result = replay_with_seed(seed, tmp_path / "state", config)
        answers[seed] = (result.returncode, result.stdout)
        assert result.returncode == 0, f"PYTHONHASHSEED={seed}:\n{result.stdout}{result.stderr}"
    assert len(set(answers.values())) == 1, answers
    assert "same decisions as recorded" in answers[0][1]
