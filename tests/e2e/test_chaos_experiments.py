"""The Chaos Toolkit experiments of chaos/, run by `chaos run` against a fleet Warden runs.

An independent tool injects each fault and judges the steady state before and after;
the test reads its journals. They are kept under .artifacts/chaos/ for CI to upload.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.builders import processes_marked
from warden.runtime import load_incidents
from warden.store.location import open_event_store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHAOS_DIR = ROOT / "chaos"
ARTIFACTS = ROOT / ".artifacts" / "chaos"
CHAOS = Path(sys.executable).parent / "chaos"
# The bank outage goes last: Warden lifts its circuit after the experiment, unobserved.
EXPERIMENTS = ("kill", "hang", "slow", "bad-version", "corrupt-batch", "dependency")


def wait_ready(fleet_file: Path, server: subprocess.Popen[str], deadline_s: float) -> dict:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if server.poll() is not None:
            pytest.fail(f"warden drill --serve ended early:\n{server.communicate()[0]}")
        if fleet_file.exists():
            try:
                fleet = json.loads(fleet_file.read_text())
            except ValueError:
                fleet = {}
            if fleet.get("ready"):
                return fleet
        time.sleep(0.2)
    pytest.fail(f"the drill fleet was not ready within {deadline_s:g} s")


def chaos_env(fleet_file: Path, fleet: dict) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(CHAOS_DIR), "WARDEN_FLEET_FILE": str(fleet_file)}
    env["FLEET_CHECKOUT_URL"] = fleet["checkout"]
    for service in ("gateway", "orders", "payments"):
        env[f"FLEET_{service.upper()}_HEALTH"] = fleet["services"][service] + "/health"
    return env


@pytest.mark.timeout(300)
def test_every_experiment_finds_the_steady_state_restored(tmp_path: Path) -> None:
    assert CHAOS.exists(), "the chaos command is missing: make .venv/.installed (it is in the lock)"
    assert sorted(p.stem for p in CHAOS_DIR.glob("*.json")) == sorted(EXPERIMENTS)
    state = tmp_path / "drill"
    server = subprocess.Popen(
        [sys.executable, "-m", "warden.cli", "drill", "--serve", "300", "--state-dir", str(state)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    # Chaos Toolkit writes chaostoolkit.log and journal.json into its working directory
    # unless told where: every run here names both, and none lands in the tree.
    strays = [ROOT / "chaostoolkit.log", CHAOS_DIR / "chaostoolkit.log", CHAOS_DIR / "journal.json"]
    before = {p for p in strays if p.exists()}
    print(f"\nChaos Toolkit journals: {ARTIFACTS}/")
    try:
        fleet = wait_ready(state / "fleet.json", server, 60.0)
        env = chaos_env(state / "fleet.json", fleet)
        for name in EXPERIMENTS:
            journal = ARTIFACTS / f"{name}.journal.json"
            run = subprocess.run(
                [str(CHAOS), "--no-version-check", "--log-file", str(ARTIFACTS / f"{name}.log"),
                 "run", "--rollback-strategy", "always", "--journal-path", str(journal),
                 str(CHAOS_DIR / f"{name}.json")],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90, check=False,
            )  # fmt: skip
            assert journal.exists(), run.stdout + run.stderr
            result = json.loads(journal.read_text())
            after = result["steady_states"]["after"]
            assert result["status"] == "completed", (name, run.stderr[-2000:])
            assert result["steady_states"]["before"]["steady_state_met"] is True, name
            assert after is not None and after["steady_state_met"] is True, name
            assert run.returncode == 0, (name, run.stderr[-2000:])
            print(f"{name}: {result['status']}, steady state restored, {result['duration']:.1f} s")
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=60)
    assert server.returncode == 0, out
    assert {p for p in strays if p.exists()} == before
    assert processes_marked(state) == []
    # What Warden did, from its own history: the faults were healed by Warden's actions.
    store = open_event_store(state)
    try:
        incidents = list(load_incidents(store).values())
    finally:
        store.close()
    summary = [
        {"service": i.service, "state": i.state.value, "mttr_s": i.recovery_s} for i in incidents
    ]
    (ARTIFACTS / "incidents.json").write_text(json.dumps(summary, indent=2))
    resolved = {i.service for i in incidents if i.state.value == "resolved"}
    assert {"payments", "orders", "gateway", "processor"} <= resolved, summary
