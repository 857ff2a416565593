"""Safety invariants of the control plane under random operations (hypothesis).

Random failures, recoveries, approvals (by anyone, including the proposing agent, twice),
kill-switch flips and the passing of time are thrown at a real runtime, store and Cedar
bundle. Whatever happens: no step runs without an allow for its exact hash, no approval
counts twice or comes from the proposer, the kill switch and rate limits always win.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from warden.domain import events as ev
from warden.domain.control import Controls, observe
from warden.domain.errors import ValidationError
from warden.domain.incident import State
from warden.governance.approvals import ApprovalSettings
from warden.governance.gate import Guardrails, RateLimit

from .harness import make_harness

SERVICES = ("payments", "orders", "gateway")
PEOPLE = ("alice", "bob", "service-down")
LIMIT = RateLimit(2, 120)

operations = st.lists(
    st.one_of(
        st.tuples(st.just("fail"), st.sampled_from(SERVICES)),
        st.tuples(st.just("heal"), st.sampled_from(SERVICES)),
        st.tuples(st.just("approve"), st.sampled_from(PEOPLE)),
        st.tuples(st.just("kill"), st.booleans()),
        st.tuples(st.just("autonomy"), st.sampled_from(["supervised", "autonomous"])),
        st.tuples(st.just("wait"), st.sampled_from([1, 30, 90])),
        st.tuples(st.just("tick"), st.integers(1, 4)),
    ),
    min_size=5,
    max_size=30,
)


def run(h: Any, op: tuple[str, Any]) -> None:
    kind, arg = op
    if kind == "fail":
        h.fail(arg)
    elif kind == "heal":
        h.probes[arg].healthy = True
        h.observe(arg)
    elif kind == "approve":
        waiting = [i for i in h.incidents() if i.state is State.AWAITING_APPROVAL]
        for incident in waiting[:1]:
            # A refusal by the state machine is exactly what is being tested.
            with contextlib.suppress(ValidationError):
                h.approve(incident, arg)
    elif kind == "kill":
        type_ = ev.KILL_SWITCH_ENGAGED if arg else ev.KILL_SWITCH_RELEASED
        h.control(type_, by="op", reason="drill")
    elif kind == "autonomy":
        h.control(ev.AUTONOMY_CHANGED, level=arg, environment="*", domain="*", by="op")
    elif kind == "wait":
        h.clock.advance(arg)
    else:
        h.tick(arg)


def check_invariants(h: Any) -> None:
    history = h.warden.store.read_all()
    controls = Controls()
    allowed: dict[str, set[str]] = {}
    approvals: set[tuple[str, str]] = set()
    proposers: dict[str, str] = {}
    agents = {a.name for a in h.warden.runtime.agents}
    intents = []
    steps_allowed: dict[tuple[str, int], str] = {}
    for item in history:
        if item.stream == ev.CONTROL_STREAM:
            controls = observe(controls, item)
        elif item.type == ev.PLAN_PROPOSED:
            proposers[item.stream] = item.data["plan"]["agent"]
        elif item.type == ev.DECISION_RECORDED:
            decision = item.data["decision"]
            if decision["outcome"] == "allow":
                allowed.setdefault(item.stream, set()).add(decision["step_hash"])
                for reason in decision["reasons"]:
                    if reason["policy_id"] == "approval":
                        approvers = set(reason["message"].removeprefix("approved by ").split(", "))
                        assert not approvers & agents, "an agent's approval was counted"
        elif item.type == ev.APPROVAL_GRANTED:
            key = (item.data["step_hash"], item.data["approver"])
            assert key not in approvals, "an approval was counted twice"
            assert item.data["approver"] != proposers[item.stream], "the proposer approved itself"
            approvals.add(key)
        elif item.type == ev.STEP_INTENDED:
            # 1. No step runs without an allow for its exact hash.
            assert item.data["step_hash"] in allowed.get(item.stream, set())
            # 2. The kill switch wins: no intent while it is engaged.
            assert not controls.kill_switch, "a step ran while the kill switch was engaged"
            steps_allowed[(item.stream, item.data["index"])] = item.data["step_hash"]
            intents.append(item)
        elif item.type == ev.COMPENSATION_INTENDED:
            # 1. An undo acts only on a step that was allowed (and ran) for its exact hash.
            hash_ = steps_allowed.get((item.stream, item.data["index"]))
            assert hash_ in allowed.get(item.stream, set()), "an undo of a step never allowed"
            # 2. The kill switch holds every side effect, compensations included.
            assert not controls.kill_switch, "a compensation ran while the kill switch was engaged"
            intents.append(item)
    # 3. The rate limit wins: never more than LIMIT.count steps per target per window.
    steps = [e for e in intents if e.type == ev.STEP_INTENDED]
    for intent in steps:
        window = [
            e
            for e in steps
            if e.data["target"] == intent.data["target"]
            and 0 <= (intent.moment - e.moment).total_seconds() < LIMIT.window_s
        ]
        assert len(window) <= LIMIT.count
    # 4. Every adapter call, of any kind, is an intent, one for one.
    assert len(h.adapter.calls) == len(intents)
    assert [(c[0], c[1]) for c in h.adapter.calls] == [
        (e.data["action"], e.data["target"]) for e in intents
    ]


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(operations)
# A compensation (close_circuit) once reached the adapter unaccounted for by this check.
@example(
    [
        ("fail", "payments"),
        ("wait", 30),
        ("fail", "payments"),
        ("approve", "alice"),
        ("wait", 30),
        ("fail", "payments"),
        ("fail", "payments"),
        ("fail", "orders"),
    ]
)
def test_safety_invariants_hold_under_random_operations(ops: list[tuple[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        h = make_harness(
            Path(tmp),
            guardrails=Guardrails(per_target=LIMIT),
            approvals=ApprovalSettings(timeout_s=60),
        )
        try:
            for op in ops:
                run(h, op)
                h.tick()
            h.settle(4)
            check_invariants(h)
            # Show in --hypothesis-show-statistics that the interesting paths are reached.
            decided = {d.outcome.value for i in h.incidents() for d in i.decisions}
            event(f"steps run: {min(len(h.adapter.calls), 3)}+")
            for outcome in sorted(decided):
                event(f"decision seen: {outcome}")
        finally:
            h.close()
