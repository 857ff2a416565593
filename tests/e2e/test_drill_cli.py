"""`warden drill` as a user runs it: real faults in real processes, judged and timed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from tests.builders import processes_marked

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

WARDEN = [sys.executable, "-m", "warden.cli"]


def drill(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [*WARDEN, "drill", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=240, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


@pytest.mark.timeout(300)
def test_kill_and_corrupt_batch_are_remediated_on_real_processes(tmp_path: Path) -> None:
    out = tmp_path / "drills.json"
    result = drill("--only", "kill", "--only", "corrupt-batch", "--json", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 drills passed" in result.stdout
    results = {r["fault"]: r for r in json.loads(out.read_text())}
    assert sorted(results) == ["corrupt-batch", "kill"]

    kill = results["kill"]
    assert kill["passed"] and kill["outcome"] == "remediated"
    assert kill["target"] == "payments"
    assert kill["injected"].startswith("SIGKILL sent to payments (pid ")
    assert kill["actions"] == ["restart_service payments"]
    assert kill["probe_mttr_s"] is not None and kill["probe_mttr_s"] > 0
    assert kill["warden_mttr_s"] and kill["detected_s"] is not None

    batch = results["corrupt-batch"]
    assert batch["passed"] and batch["outcome"] == "remediated"
    assert batch["actions"][0] == "quarantine_batch processor"
    assert "replay_from_checkpoint processor" in batch["actions"]
    assert batch["probe_mttr_s"] is not None and batch["warden_mttr_s"]
    # The corrupt batch was moved aside, not deleted, and the pipeline went on past it.
    quarantined = list((tmp_path / ".warden-drill" / "pipeline" / "quarantine").glob("*.json"))
    assert len(quarantined) == 1
    assert b"garbage" in quarantined[0].read_bytes()

    assert processes_marked(tmp_path / ".warden-drill") == []


@pytest.mark.timeout(300)
def test_a_bad_version_under_supervised_autonomy_waits_for_a_human(tmp_path: Path) -> None:
    out = tmp_path / "drills.json"
    result = drill(
        "--only", "bad-version", "--autonomy", "supervised", "--json", str(out), cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [bad] = json.loads(out.read_text())
    assert bad["expected"] == "approval"
    assert bad["outcome"] == "approval requested"
    # Nothing was rolled back without the approval; the drill undid its own deploy.
    assert not any(a.startswith("rollback_deploy") for a in bad["actions"])
    assert processes_marked(tmp_path / ".warden-drill") == []


def test_an_unknown_fault_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    result = drill("--only", "meteor", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown fault 'meteor'" in result.stdout
    assert "kill, hang, slow, bad-version, corrupt-batch, dependency" in result.stdout
    assert not (tmp_path / ".warden-drill").exists()


@pytest.mark.timeout(300)
def test_drill_attaches_to_a_served_fleet_and_reads_warden_s_store(tmp_path: Path) -> None:
    state = tmp_path / "fleet"
    served = subprocess.Popen(
        [*WARDEN, "drill", "--serve", "120", "--state-dir", str(state)], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        end = time.monotonic() + 60
        while not (state / "fleet.json").exists() or not json.loads(
            (state / "fleet.json").read_text() or "{}"
        ).get("ready"):
            assert served.poll() is None, served.communicate()[0]
            assert time.monotonic() < end, "the served fleet never got ready"
            time.sleep(0.2)
        out = tmp_path / "attached.json"
        result = drill(
            "--attach",
            "--only",
            "kill",
            "--state-dir",
            str(state),
            "--json",
            str(out),
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        [kill] = json.loads(out.read_text())
        assert kill["outcome"] == "remediated"
        # Read from the served Warden's store: its incident and MTTR.
        assert kill["actions"] == ["restart_service payments"] and kill["warden_mttr_s"]
    finally:
        served.send_signal(signal.SIGTERM)
        served.communicate(timeout=60)
    assert served.returncode == 0
    assert processes_marked(state) == []

    gone = drill("--attach", "--only", "kill", "--state-dir", str(state), cwd=tmp_path)
    assert gone.returncode == 2
    assert "is not running" in gone.stdout
