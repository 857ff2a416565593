"""Isolations in force: opened by a step, lifted by the matching step or by compensation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from warden.domain.isolation import LIFTED_BY, Isolation, after_step, after_undo
from warden.domain.plans import Step

ACTIONS = ["open_circuit", "close_circuit", "drain_service", "restore_service", "restart_service"]


def test_a_circuit_opened_then_closed() -> None:
    opened = after_step({}, Step("open_circuit", "payments"), "t1", "inc-1")
    assert opened == {"payments": Isolation("payments", "open_circuit", "t1", "inc-1")}
    assert opened["payments"].lifted_by == "close_circuit"
    assert after_step(opened, Step("restore_service", "payments"), "t2", "inc-2") == opened
    assert after_step(opened, Step("close_circuit", "payments"), "t2", "inc-2") == {}
    assert after_undo(opened, Step("open_circuit", "payments")) == {}
    assert after_undo(opened, Step("drain_service", "payments")) == opened


def test_isolating_again_keeps_the_first_time() -> None:
    first = after_step({}, Step("drain_service", "db"), "t1", "inc-1")
    assert after_step(first, Step("drain_service", "db"), "t2", "inc-2") == first


@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from(ACTIONS), st.sampled_from(["a", "b"])),
        max_size=30,
    )
)
def test_a_service_is_isolated_until_the_matching_lift_or_undo(
    moves: list[tuple[bool, str, str]],
) -> None:
    isolated: dict[str, Isolation] = {}
    model: dict[str, str] = {}  # target -> isolating action in force
    for n, (undo, action, target) in enumerate(moves):
        step = Step(action, target)
        if undo:
            isolated = after_undo(isolated, step)
            if model.get(target) == action:
                del model[target]
        else:
            isolated = after_step(isolated, step, f"t{n}", f"inc-{n}")
            if action in LIFTED_BY:
                model.setdefault(target, action)
            elif target in model and LIFTED_BY[model[target]] == action:
                del model[target]
    assert {t: i.action for t, i in isolated.items()} == model
