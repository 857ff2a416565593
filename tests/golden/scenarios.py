"""The scenarios recorded as golden histories: each drives a real Warden on a manual clock.

A scenario brings its fault in as the connectors would (probe results, signals, human
approvals and controls), with scripted targets instead of real processes, and checks that
it ended where it says; the recording is what the store then holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tests.golden.history import Golden, capture, configure
from tests.integration.harness import Harness
from warden.assembly import build
from warden.domain import events as ev
from warden.testing import CountingIds, ManualClock, RecordingAdapter, ScriptedProbe

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TICK_S = 0.1
HEALTH = '"http://127.0.0.1:9/health"'

# The demo's fleet (warden demo), watched rather than run: gateway -> orders -> payments.
DEMO = f"""environment: demo
autonomy: autonomous
failure_threshold: 3
verification_timeout_s: 10
services:
  - {{name: gateway, health: {HEALTH}, managed: false, depends_on: [orders]}}
  - {{name: orders, health: {HEALTH}, managed: false, depends_on: [payments]}}
  - {{name: payments, health: {HEALTH}, managed: false}}
"""

# One service per kind of fault the built-in agents handle.
FLEET = f"""environment: staging
autonomy: autonomous
verification_timeout_s: 5
services:
  - {{name: payments, domain: payments, health: {HEALTH}, managed: false}}
  - {{name: orders, domain: shop, health: {HEALTH}, managed: false, depends_on: [payments]}}
  - {{name: gateway, domain: edge, health: {HEALTH}, managed: false, depends_on: [orders]}}
  - {{name: etl, domain: data, health: {HEALTH}, managed: false}}
  - {{name: queue, domain: data, health: {HEALTH}, managed: false,
     limits: {{max_consumers: "6"}}}}
  - {{name: inventory, domain: shop, health: {HEALTH}, managed: false,
     desired: {{replicas: "3", running: "true"}}}}
"""


class Live(Harness):
    """The harness ticking every 0.1 s of its clock, as the live loop (and replay) does.

    A recording that skipped ticks would decide later than Warden does, and replay, which
    ticks through every gap, would rightly decide otherwise.
    """

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass, a round every 0.1 s."""
        for _ in range(round(seconds / TICK_S)):
            self.clock.advance(TICK_S)
            self.tick()

    def fail(self, service: str, times: int = 3) -> None:
        """``times`` failed probes of ``service``, a second apart."""
        self.probes[service].healthy = False
        for _ in range(times):
            self.wait(1)
            self.observe(service)

    def settle(self, rounds: int = 12) -> None:
        """Half a second per round."""
        self.wait(rounds * 0.5)


@dataclass(frozen=True)
class Scenario:
    """A named run: its configuration and what happens in it."""

    name: str
    about: str
    config: str
    drive: Callable[[Live], None]
    extra_policies: dict[str, str] = field(default_factory=dict)

    def record(self, directory: Path) -> Golden:
        """Run the scenario from scratch in ``directory`` and keep what replay needs."""
        config = configure(directory, self.config, self.extra_policies)
        clock = ManualClock(START)
        probes = {s.name: ScriptedProbe() for s in config.services}
        adapter = RecordingAdapter(probes)
        warden = build(config, clock, adapter=adapter, probes=probes)
        warden.runtime.ids = CountingIds(self.name)
        h = Live(warden, clock, probes, adapter)
        try:
            for name in probes:
                h.observe(name)
            h.tick()
            self.drive(h)
            history = warden.store.read_all()
        finally:
            warden.close()
        return capture(self.name, self.about, self.config, history, self.extra_policies)


def ended(h: Live, service: str, *states: str) -> None:
    """The incidents of ``service``, oldest first, ended in ``states``."""
    found = sorted(h.incidents(service), key=lambda i: i.opened_at)
    got = [i.state.value for i in found]
    assert got == list(states), f"{service}: {got} (wanted {list(states)})"


def approve_pending(h: Live, service: str, who: str = "alice") -> None:
    (waiting,) = [i for i in h.incidents(service) if i.state.value == "awaiting_approval"]
    h.approve(waiting, who)


def sample(h: Live, service: str, metric: str, value: float, after_s: float = 10) -> None:
    h.wait(after_s)
    h.ingest(ev.METRIC_SAMPLED, service, metric=metric, value=value)


# -- the scenarios ---------------------------------------------------------------------


def demo(h: Live) -> None:
    h.fail("payments")
    h.settle()
    ended(h, "payments", "resolved")


def bad_deploy(h: Live) -> None:
    h.ingest(ev.DEPLOY_COMPLETED, "payments", version="v1")
    for rate in (0.01, 0.012, 0.009):
        sample(h, "payments", "error_rate", rate)
    h.wait(10)
    h.ingest(ev.DEPLOY_COMPLETED, "payments", version="v2", previous_version="v1")
    for rate in (0.2, 0.22, 0.21):
        sample(h, "payments", "error_rate", rate)
    h.settle()
    approve_pending(h, "payments")
    h.settle(rounds=3)
    sample(h, "payments", "error_rate", 0.012, after_s=1)  # within verification_timeout_s
    h.settle()
    ended(h, "payments", "resolved")


def failing_dependency(h: Live) -> None:
    h.adapter.script["restart_service"] = ["fail"]  # the restart does not help
    h.fail("payments")
    h.settle()
    h.fail("payments", times=2)
    h.wait(30)
    h.settle()
    approve_pending(h, "orders")
    h.settle()
    # payments recovers; once it has answered for a while, the circuit closes again.
    h.probes["payments"].healthy = True
    for _ in range(7):
        h.wait(5)
        h.observe("payments")
    h.settle()
    ended(h, "orders", "resolved")
    ended(h, "payments", "escalated", "resolved")


def pipeline_corruption(h: Live) -> None:
    h.wait(5)
    h.ingest(
        ev.BATCH_FAILED,
        "etl",
        pipeline="orders-etl",
        batch="b-0042",
        reason="checksum mismatch",
        last_good_checkpoint="cp-0041",
    )
    h.settle()
    approve_pending(h, "etl")
    h.settle()
    approve_pending(h, "etl")
    h.settle()
    h.settle()
    ended(h, "etl", "resolved")


def backlog_growth(h: Live) -> None:
    sample(h, "queue", "consumers", 2)
    for backlog in (800, 1000, 1300, 1700):
        sample(h, "queue", "backlog", backlog)
    h.settle()
    approve_pending(h, "queue")
    h.settle(rounds=3)
    sample(h, "queue", "backlog", 1500, after_s=1)  # within verification_timeout_s
    sample(h, "queue", "backlog", 1100, after_s=1)
    h.settle(rounds=2)
    ended(h, "queue", "resolved")


def escalation(h: Live) -> None:
    sample(h, "queue", "consumers", 6)  # already at its max_consumers
    for backlog in (800, 1000, 1300, 1700):
        sample(h, "queue", "backlog", backlog)
    h.settle()
    ended(h, "queue", "escalated")


def drift(h: Live) -> None:
    # inventory should run and does not: started, autonomously (low risk).
    h.fail("inventory", times=1)
    h.wait(31)
    h.settle()
    ended(h, "inventory", "resolved")
    # then its replicas drift: reconciled after approval (medium risk).
    h.wait(5)
    h.ingest(ev.STATE_OBSERVED, "inventory", fields={"replicas": 2})
    h.wait(60)
    h.settle()
    approve_pending(h, "inventory")
    h.settle(rounds=3)
    h.ingest(ev.STATE_OBSERVED, "inventory", fields={"replicas": 3})
    h.settle(rounds=2)
    ended(h, "inventory", "resolved", "resolved")


def approvals(h: Live) -> None:
    h.control(ev.AUTONOMY_CHANGED, level="supervised", by="alice", environment="*", domain="*")
    h.fail("payments")
    h.settle()
    approve_pending(h, "payments", "bob")
    h.settle()
    ended(h, "payments", "resolved")
    # Nobody approves the next one: the approval expires into the fallback.
    h.fail("orders")
    h.settle()
    h.wait(120)
    h.settle()
    ended(h, "orders", "escalated")


def kill_switch(h: Live) -> None:
    h.control(ev.KILL_SWITCH_ENGAGED, by="alice", reason="drill", domain="")
    h.fail("payments")
    h.settle()
    ended(h, "payments", "escalated")
    h.probes["payments"].healthy = True  # someone restarts it by hand
    h.observe("payments")
    h.wait(10)
    h.control(ev.KILL_SWITCH_RELEASED, by="alice", reason="", domain="")
    h.wait(10)
    h.fail("payments")
    h.settle()
    ended(h, "payments", "escalated", "resolved")


APPROVAL_TIMEOUT = "approvals: {timeout_s: 60, fallback: escalate}\n"

SCENARIOS = (
    Scenario("demo", "the demo: payments crashes, is restarted and verified", DEMO, demo),
    Scenario("bad_deploy", "a bad deploy rolled back after approval", FLEET, bad_deploy),
    Scenario(
        "failing_dependency",
        "a restart that does not help: the dependency is isolated, then let back in",
        FLEET + "agents: {settings: {failing-dependency: {min_outage_s: 30}}}\n",
        failing_dependency,
    ),
    Scenario(
        "pipeline_corruption",
        "a corrupt batch quarantined and replayed, each step approved",
        FLEET,
        pipeline_corruption,
    ),
    Scenario("backlog_growth", "a growing backlog gets more consumers", FLEET, backlog_growth),
    Scenario("escalation", "a backlog at its cap goes to a human", FLEET, escalation),
    Scenario("drift", "a stopped service started, drifted replicas reconciled", FLEET, drift),
    Scenario(
        "approvals",
        "supervised: one restart approved, one approval left to expire",
        DEMO + APPROVAL_TIMEOUT,
        approvals,
    ),
    Scenario(
        "kill_switch",
        "a kill switch stops a restart; released, the next one runs",
        DEMO,
        kill_switch,
    ),
)
