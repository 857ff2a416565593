"""SIGKILL of a Warden process at random points of multi-step remediations.

Each scenario runs ``tests/integration/crash_child.py`` (the real runtime, store, policy
engine and audit log in a process of its own; its targets record every side effect,
fsync'd, in a ledger) and kills it over and over, a new fault sometimes arriving while it
is down. After every kill: no accepted event is missing from the store and no
non-idempotent step ran twice. After each scenario an unkilled run settles it: every
incident closed, and the audit log verifies.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from warden.audit.log import AuditLog
from warden.audit.state import AuditPaths, trusted_verifiers
from warden.domain.errors import WardenError
from warden.governance.policy import BUILTIN_BUNDLE
from warden.runtime import load_incidents
from warden.store.location import sqlite_path
from warden.store.sqlite import SQLiteEventStore

from .common import Result

if TYPE_CHECKING:
    from collections.abc import Callable

CHILD = Path(__file__).parent.parent / "integration" / "crash_child.py"
KILLS_PER_SCENARIO = 10
NON_IDEMPOTENT = {"restart_service"}
SERVICES = ("payments", "orders")


def spawn(state: Path, timeout: float = 30.0, *, errors: bool = False) -> subprocess.Popen[bytes]:
    """Start the crash child on ``state``."""
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(state), "--timeout", str(timeout)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if errors else subprocess.DEVNULL,
    )


def wait_until_started(state: Path, child: subprocess.Popen[bytes], limit_s: float = 60.0) -> None:
    """Wait until the child says it has built its runtime (or has exited, or time is up)."""
    deadline = time.monotonic() + limit_s
    while not (state / "started").exists() and child.poll() is None:
        if time.monotonic() > deadline:
            return
        time.sleep(0.01)


def losses_after_restart(state: Path) -> list[str]:
    """What a kill broke: non-idempotent steps run twice, accepted events missing."""
    found = []
    ledger = state / "ledger.jsonl"
    entries = (
        [json.loads(line) for line in ledger.read_text().splitlines()] if ledger.exists() else []
    )
    keys = Counter(e["key"] for e in entries if e["action"] in NON_IDEMPOTENT)
    repeated = sorted(k for k, n in keys.items() if n > 1)
    if repeated:
        found.append(f"{state.name}: a non-idempotent step ran twice: {repeated[:3]}")
    accepted_log = state / "accepted.log"
    accepted = set(accepted_log.read_text().split()) if accepted_log.exists() else set()
    store = SQLiteEventStore(sqlite_path(state / "warden"))
    try:
        stored = {e.id for e in store.read_all()}
    finally:
        store.close()
    if not accepted <= stored:
        found.append(f"{state.name}: accepted events lost: {sorted(accepted - stored)[:5]}")
    return found


def settle(state: Path, result: Result) -> Counter[str]:
    """Run unkilled until every incident closes; count how they ended."""
    child = spawn(state, timeout=40.0, errors=True)
    try:
        _, err = child.communicate(timeout=90)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    seen: Counter[str] = Counter()
    if child.returncode != 0:
        result.fail(
            f"{state.name}: the settling run exited {child.returncode}: {err.decode()[-600:]}"
        )
    for loss in losses_after_restart(state):
        result.fail(loss)
    store = SQLiteEventStore(sqlite_path(state / "warden"))
    try:
        incidents = load_incidents(store)
        history = store.read_all()
    finally:
        store.close()
    if not incidents:
        result.fail(f"{state.name}: the scenario opened no incident")
    seen.update(i.state.value for i in incidents.values())
    seen["reconciled after restart"] += sum(1 for e in history if e.data.get("reconciled"))
    seen["unknown outcome escalated"] += sum(
        1 for i in incidents.values() if "outcome unknown after restart" in i.close_reason
    )
    for incident in incidents.values():
        # Relapsed: closed, its fix did not hold when the fault came back (a new one follows).
        if incident.state.value not in ("resolved", "rolled_back", "escalated", "relapsed"):
            result.fail(f"{state.name}: incident {incident.id} left {incident.state.value}")
    paths = AuditPaths.for_state(state / "warden")
    try:
        AuditLog(paths.log).verify(trusted_verifiers(paths))
    except WardenError as exc:
        result.fail(f"{state.name}: audit verify failed: {exc}")
    else:
        seen["audit verified"] += 1
    return seen


def _scenario(state: Path, rng: random.Random) -> None:
    (state / "health").mkdir(parents=True)
    (state / "policies").mkdir()
    shutil.copy(BUILTIN_BUNDLE / "warden.cedarschema", state / "policies")
    (state / "policies" / "allow.cedar").write_text(
        '@id("crash-test-allows") @message("the crash test allows every step")\n'
        "permit (principal, action, resource);\n"
    )
    for name in SERVICES:
        (state / "health" / name).write_text("down" if rng.random() < 0.8 else "ok")
    if all((state / "health" / n).read_text() == "ok" for n in SERVICES):
        (state / "health" / "payments").write_text("down")


def campaign(
    kills: int, seed: int, workdir: Path, progress: Callable[[int], None] | None = None
) -> Result:
    """``kills`` SIGKILLs over as many scenarios as it takes."""
    result = Result("SIGKILL of a running Warden")
    rng = random.Random(seed)
    done = 0
    scenarios = 0
    seen: Counter[str] = Counter()
    while done < kills:
        state = workdir / f"s{scenarios}"
        _scenario(state, rng)
        for _ in range(min(KILLS_PER_SCENARIO, kills - done)):
            (state / "started").unlink(missing_ok=True)
            child = spawn(state)
            try:
                # Start-up takes 0.3 s on an idle machine and seconds on a loaded one; the
                # kill lands at a random point of the work that follows it.
                wait_until_started(state, child)
                time.sleep(rng.uniform(0.0, 1.0))
            finally:
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=30)
            done += 1
            for loss in losses_after_restart(state):
                result.fail(loss)
            if rng.random() < 0.3:  # a new fault arrives while Warden is down
                (state / "health" / rng.choice(SERVICES)).write_text("down")
            if progress is not None:
                progress(1)
        seen += settle(state, result)
        scenarios += 1
    result.counts.update({"kills": done, "scenarios": scenarios, **dict(sorted(seen.items()))})
    result.counts.setdefault("failures", 0)
    # The kills must land inside remediations, or the campaign proves nothing.
    if kills >= 100 and seen["reconciled after restart"] + seen["unknown outcome escalated"] == 0:
        result.fail("no kill landed inside a remediation (nothing was reconciled)")
    return result
