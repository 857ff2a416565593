"""SIGKILL at random points of multi-step remediations, 200 times.

After every restart nothing accepted is lost and no non-idempotent step ran twice; in the
end every incident is closed and the audit log verifies.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from warden.audit.log import AuditLog
from warden.audit.state import AuditPaths, trusted_verifiers
from warden.governance.policy import BUILTIN_BUNDLE
from warden.runtime import load_incidents
from warden.store.location import sqlite_path
from warden.store.sqlite import SQLiteEventStore

# 200 kills at about a second each, plus a settling run per scenario.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

CHILD = Path(__file__).with_name("crash_child.py")
KILLS = int(os.environ.get("WARDEN_CRASH_KILLS", "200"))
KILLS_PER_SCENARIO = 10
NON_IDEMPOTENT = {"restart_service"}


def spawn(state: Path, timeout: float = 30.0, *, errors: bool = False) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(state), "--timeout", str(timeout)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if errors else subprocess.DEVNULL,
    )


def check_after_restart(state: Path) -> None:
    ledger = state / "ledger.jsonl"
    entries = (
        [json.loads(line) for line in ledger.read_text().splitlines()] if ledger.exists() else []
    )
    keys = Counter(e["key"] for e in entries if e["action"] in NON_IDEMPOTENT)
    repeated = [k for k, n in keys.items() if n > 1]
    assert not repeated, f"a non-idempotent step ran twice: {repeated}"
    accepted_log = state / "accepted.log"
    accepted = set(accepted_log.read_text().split()) if accepted_log.exists() else set()
    store = SQLiteEventStore(sqlite_path(state / "warden"))
    try:
        stored = {e.id for e in store.read_all()}
    finally:
        store.close()
    assert accepted <= stored, f"accepted events lost: {sorted(accepted - stored)[:5]}"


def settle(state: Path) -> Counter[str]:
    child = spawn(state, timeout=40.0, errors=True)
    try:
        _, err = child.communicate(timeout=90)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, err.decode()[-2000:]
    check_after_restart(state)
    store = SQLiteEventStore(sqlite_path(state / "warden"))
    try:
        incidents = load_incidents(store)
        history = store.read_all()
    finally:
        store.close()
    assert incidents, "the scenario opened no incident"
    seen: Counter[str] = Counter(i.state.value for i in incidents.values())
    seen["reconciled after restart"] += sum(1 for e in history if e.data.get("reconciled"))
    seen["unknown outcome escalated"] += sum(
        1 for i in incidents.values() if "outcome unknown after restart" in i.close_reason
    )
    for incident in incidents.values():
        assert incident.state.value in ("resolved", "rolled_back", "escalated"), incident
    paths = AuditPaths.for_state(state / "warden")
    AuditLog(paths.log).verify(trusted_verifiers(paths))
    return seen


def test_sigkill_at_random_points_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("WARDEN_CRASH_SEED", "20261125")))
    kills = 0
    scenario = 0
    seen: Counter[str] = Counter()
    while kills < KILLS:
        state = tmp_path / f"s{scenario}"
        (state / "health").mkdir(parents=True)
        (state / "policies").mkdir()
        shutil.copy(BUILTIN_BUNDLE / "warden.cedarschema", state / "policies")
        (state / "policies" / "allow.cedar").write_text(
            '@id("crash-test-allows") @message("the crash test allows every step")\n'
            "permit (principal, action, resource);\n"
        )
        for name in ("payments", "orders"):
            (state / "health" / name).write_text("down" if rng.random() < 0.8 else "ok")
        if all((state / "health" / n).read_text() == "ok" for n in ("payments", "orders")):
            (state / "health" / "payments").write_text("down")
        for _ in range(KILLS_PER_SCENARIO):
            child = spawn(state)
            try:
                time.sleep(rng.uniform(0.3, 1.2))  # imports take ~0.3 s; then any point of work
            finally:
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=30)
            kills += 1
            check_after_restart(state)
            if rng.random() < 0.3:  # a new fault arrives while Warden is down
                (state / "health" / rng.choice(["payments", "orders"])).write_text("down")
        seen += settle(state)
        scenario += 1
    assert kills >= KILLS
    print(f"{kills} kills over {scenario} scenarios: {dict(seen)}")
    # The kills must land inside remediations, or the test proves nothing.
    if KILLS >= 100:
        assert seen["reconciled after restart"] + seen["unknown outcome escalated"] > 0
