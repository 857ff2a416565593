"""A Warden on a manual clock with scripted targets: real store, gate, Cedar and audit."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

from tests.builders import Person, register
from warden.assembly import Warden, build
from warden.config import ServiceConfig, WardenConfig
from warden.domain import events as ev
from warden.domain.ids import derived_id
from warden.domain.incident import State
from warden.governance.policy import BUILTIN_BUNDLE
from warden.operations import approve, control
from warden.testing import ManualClock, RecordingAdapter, ScriptedProbe

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from warden.domain.incident import Incident

SERVICES = (
    ServiceConfig("payments", "http://127.0.0.1:9/health", managed=False, domain="payments"),
    ServiceConfig(
        "orders", "http://127.0.0.1:9/health", managed=False, domain="shop",
        depends_on=("payments",),
    ),
    ServiceConfig(
        "gateway", "http://127.0.0.1:9/health", managed=False, domain="edge",
        depends_on=("orders",),
    ),
)  # fmt: skip


@dataclass
class Harness:
    warden: Warden
    clock: ManualClock
    probes: dict[str, ScriptedProbe]
    adapter: RecordingAdapter
    people: dict[str, Person] = field(default_factory=dict)

    def observe(self, service: str) -> None:
        probe = self.probes[service]
        self.warden.runtime.record_probe(service, "scripted", probe.check(), "watch")

    def fail(self, service: str, times: int = 3) -> None:
        self.probes[service].healthy = False
        for _ in range(times):
            self.clock.advance(1)
            self.observe(service)

    def tick(self, rounds: int = 1) -> None:
        for _ in range(rounds):
            self.warden.runtime.tick()

    def settle(self, rounds: int = 12) -> None:
        for _ in range(rounds):
            self.clock.advance(0.5)
            self.tick()

    def settle_until(self, done: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
        """Tick, in real time too, until ``done``: for answers from other threads."""
        deadline = time.monotonic() + timeout_s
        while not done():
            assert time.monotonic() < deadline, f"timed out after {timeout_s} s: {what}"
            self.clock.advance(0.05)
            self.tick()
            time.sleep(0.01)

    def incidents(self, service: str | None = None) -> list[Incident]:
        found = self.warden.runtime.incidents.values()
        return [i for i in found if service is None or i.service == service]

    def person(self, name: str, role: str = "approver") -> Person:
        """``name``, registered in the log on first use (with an admin to add them)."""
        if name not in self.people:
            # Keys follow from the name: a recorded history is the same every time.
            self.people[name] = register(
                self.warden.store, name, role, self.clock.now(), seed="harness"
            )
        return self.people[name]

    def approve(self, incident: Incident, who: str, decision: str = "approve") -> ev.Event:
        """A signed approval by ``who`` (registered as an approver on first use)."""
        return approve(
            self.warden.store,
            incident.id,
            self.person(who).key,
            when=self.clock.now(),
            decision=decision,
            settings=self.warden.config.approvals,
            nonce=derived_id("nonce", incident.id, who, decision, str(self.clock.now())),
        )

    def control(self, type_: str, **data: str) -> None:
        control(self.warden.store, type_, data, self.clock.now())

    def ingest(self, type_: str, service: str, **data: Any) -> ev.Event:
        """Send one signal through the quality gates, as a connector would."""
        raw = ev.Event(
            id=f"{type_}-{service}-{len(self.warden.store.read_all())}",
            source="test://connector",
            type=type_,
            time=ev.format_time(self.clock.now()),
            data={"service": service, **data},
            subject=service,
        ).to_cloudevent()
        admission = self.warden.runtime.ingest.admit(raw, f"service-{service}", "test")
        assert admission.event is not None, admission.reason
        return admission.event

    def events(self, type_: str) -> list[ev.Event]:
        return [e for e in self.warden.store.read_all() if e.type == type_]

    def close(self) -> None:
        self.warden.close()


def policy_bundle(tmp_path: Path, name: str, policy: str, *, exist_ok: bool = False) -> None:
    """``tmp_path/policies``: the built-in schema and one file ``name`` of Cedar ``policy``."""
    policies = tmp_path / "policies"
    policies.mkdir(exist_ok=exist_ok)
    shutil.copy(BUILTIN_BUNDLE / "warden.cedarschema", policies / "warden.cedarschema")
    (policies / name).write_text(policy)


def permissive_bundle(tmp_path: Path) -> None:
    """A bundle that allows every catalog action, for tests about the executor."""
    policy_bundle(
        tmp_path,
        "allow.cedar",
        '@id("test-allow-all") @message("tests of the executor allow everything")\n'
        "permit (principal, action, resource);\n",
        exist_ok=True,
    )


def two_sre_bundle(tmp_path: Path) -> None:
    """A bundle asking two approvers holding the role sre for every step."""
    policy_bundle(
        tmp_path,
        "two.cedar",
        '@id("two-sre") @outcome("needs_approval") @approvers("2") @approver_roles("sre")\n'
        '@message("two SREs confirm every restart")\n'
        "permit (principal, action, resource);\n",
    )


def make_harness(
    tmp_path: Path,
    *,
    agents: list[Any] | None = None,
    services: Any = None,
    adapter: RecordingAdapter | None = None,
    action_workers: int | None = None,
    store: Any = None,
    leases: Any = None,
    **overrides: Any,
) -> Harness:
    clock = ManualClock(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    policy_dir = tmp_path / "policies"
    if not policy_dir.exists():
        shutil.copytree(BUILTIN_BUNDLE, policy_dir)
    config = WardenConfig(
        services=services or SERVICES,
        state_dir=tmp_path / "state",
        environment="staging",
        policy_dir=policy_dir,
        verification_timeout_s=5,
    )
    config = replace(config, **overrides)
    probes = {s.name: ScriptedProbe() for s in config.services}
    if adapter is None:
        adapter = RecordingAdapter(probes)
    adapter.probes = probes
    warden = build(
        config, clock, adapter=adapter, probes=probes, agents=agents,
        action_workers=action_workers, store=store, leases=leases,
    )  # fmt: skip
    harness = Harness(warden, clock, probes, adapter)
    for name in probes:
        harness.observe(name)
    harness.tick()
    return harness


# -- random live histories: moves a property test draws, and the loop that plays them --

MOVE_SERVICES = ("payments", "orders", "gateway")
MOVES = st.one_of(
    st.tuples(st.just("fail"), st.sampled_from(MOVE_SERVICES)),
    st.tuples(st.just("heal"), st.sampled_from(MOVE_SERVICES)),
    st.tuples(st.just("deploy"), st.sampled_from(MOVE_SERVICES)),
    st.tuples(st.just("errors"), st.sampled_from(MOVE_SERVICES), st.sampled_from([0.01, 0.3])),
    st.tuples(st.just("bad_deploy"), st.sampled_from(MOVE_SERVICES)),
    st.tuples(st.just("approve"), st.sampled_from(["alice", "bob"])),
    st.tuples(st.just("wait"), st.integers(1, 40)),
)


def live(h: Harness, moves: list[tuple[Any, ...]]) -> None:
    """Drive the live runtime as the real loop would: a round every 0.1 s of its clock."""
    versions: dict[str, int] = {}

    def run(seconds: float) -> None:
        for _ in range(round(seconds / 0.1)):
            h.clock.advance(0.1)
            h.tick()

    for move in moves:
        kind = move[0]
        if kind in ("fail", "heal"):
            h.probes[move[1]].healthy = kind == "heal"
            for _ in range(3 if kind == "fail" else 1):  # the threshold is 3 in a row
                run(0.5)
                h.observe(move[1])
        elif kind == "deploy":
            versions[move[1]] = versions.get(move[1], 0) + 1
            h.ingest(ev.DEPLOY_COMPLETED, move[1], version=f"v{versions[move[1]]}")
        elif kind == "bad_deploy":  # a new version, and errors right after it
            for _ in range(2):
                versions[move[1]] = versions.get(move[1], 0) + 1
                h.ingest(ev.DEPLOY_COMPLETED, move[1], version=f"v{versions[move[1]]}")
                run(2.0)
            for _ in range(3):
                run(2.0)
                h.ingest(ev.METRIC_SAMPLED, move[1], metric="error_rate", value=0.3)
        elif kind == "errors":
            for _ in range(3):  # a bad deploy shows in 3 samples in a row
                run(2.0)
                h.ingest(ev.METRIC_SAMPLED, move[1], metric="error_rate", value=move[2])
        elif kind == "approve":
            waiting = [i for i in h.incidents() if i.state is State.AWAITING_APPROVAL]
            if waiting:
                h.approve(waiting[0], move[1])
        else:
            run(move[1])
            continue
        run(1.0)
    run(10.0)
