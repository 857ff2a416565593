"""Folded state survives JSON exactly: what a snapshot keeps comes back equal."""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from warden.domain.control import AutonomyRule, Controls
from warden.domain.decisions import Decision, Outcome, Reason
from warden.domain.health import Health
from warden.domain.incident import Incident, State
from warden.domain.jsonstate import Memo, from_json, to_json
from warden.domain.plans import Plan, Step
from warden.governance.context import ActionRecord
from warden.remediation import Folded


def through_text(value: Any, memo: Memo | None = None) -> Any:
    """Encode, write as JSON text as a store does, read back, decode."""
    text = json.dumps(to_json(value, memo), sort_keys=True, allow_nan=False)
    return from_json(json.loads(text))


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(), st.floats(allow_nan=False))
VALUES = st.recursive(
    SCALARS | st.sampled_from(list(State)) | st.datetimes(timezones=st.just(UTC)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.lists(inner, max_size=4).map(deque),
        st.dictionaries(st.text(max_size=4), inner, max_size=4),
        st.dictionaries(st.tuples(st.text(max_size=2), st.integers()), inner, max_size=3),
        st.builds(
            Health, st.text(max_size=5), st.integers(0, 9), evidence=st.lists(st.text()).map(tuple)
        ),
    ),
    max_leaves=20,
)


@given(VALUES)
@example({"0": None, "": None})  # a store writes keys sorted; the fold iterates in order
@example(datetime(2000, 1, 1, fold=1, tzinfo=UTC))
def test_any_state_comes_back_equal_and_of_the_same_types(value: Any) -> None:
    back = through_text(value)
    assert back == value
    assert type(back) is type(value)
    assert repr(back) == repr(value)  # tuples stay tuples, deques deques, enums enums


def incident() -> Incident:
    plan = Plan(
        "service-down",
        (Step("restart_service", "payments", (("grace_s", 5),)),),
        "down",
        ("e1",),
        0.9,
    )
    decision = Decision(
        Outcome.ALLOW, "h0", (Reason("autonomous-low-risk", "ok"),), bundle_version="b1"
    )
    return Incident(
        "i1", "payments", State.EXECUTING, "2026-11-25T12:00:00Z", "2026-11-25T11:59:58Z", "down",
        plan=plan, step_hashes=("h0",), decisions=(decision,), intended=((0, 1),),
        outputs=((0, (("pid", 7), ("undo_params", {"version": "v1"}))),),
        history=(("2026-11-25T12:00:00Z", "warden.incident.opened", "open"),),
    )  # fmt: skip


def test_the_runtime_fold_comes_back_equal() -> None:
    state = Folded(
        health={"payments": Health("payments", 3, evidence=("e1", "e2"))},
        controls=Controls(killed_domains=(("payments", "drill"),), autonomy=(AutonomyRule("*", "payments", "supervised"),)),
        incidents={"i1": incident()},
        actions=deque([ActionRecord(datetime(2026, 11, 25, 12, tzinfo=UTC), "restart_service", "payments")]),
        open_drift={("orders", "replicas"): "2"},
        position=42,
    )  # fmt: skip
    back = through_text(state)
    assert back == state
    assert back.incidents["i1"].state is State.EXECUTING
    assert back.open_drift == {("orders", "replicas"): "2"}


def test_unchanged_frozen_parts_are_encoded_once_and_reused() -> None:
    memo = Memo()
    kept = incident()
    first = to_json((kept, incident()), memo)
    second = to_json((kept, incident()), memo)
    assert second[0] is first[0]  # the same object: looked up, not encoded again
    assert second[1] is not first[1] and second[1] == first[1]
    assert from_json(second) == (kept, incident())


def test_what_was_decoded_with_a_memo_is_not_encoded_again() -> None:
    memo = Memo()
    kept = json.loads(json.dumps(to_json({"a": incident()})))
    state = from_json(kept, memo=memo)
    state["b"] = incident()
    again = to_json(state, memo)
    assert again["v"][0][1] is kept["v"][0][1]  # incident "a": its JSON as it was read
    assert from_json(again) == {"a": incident(), "b": incident()}


def test_floats_json_cannot_spell_are_tagged() -> None:
    back = through_text((math.inf, -math.inf, math.nan, timedelta(days=1, microseconds=3)))
    assert back[:2] == (math.inf, -math.inf) and math.isnan(back[2])
    assert back[3] == timedelta(days=1, microseconds=3)


def test_sets_come_back_as_sets() -> None:
    back = through_text((frozenset({"a", "b"}), {1, 2}))
    assert back == (frozenset({"a", "b"}), {1, 2})
    assert [type(v) for v in back] == [frozenset, set]


@dataclass
class Plain:
    x: int


class NotAState:
    pass


def test_what_cannot_be_kept_is_refused_on_the_way_in() -> None:
    with pytest.raises(TypeError, match="NotAState cannot be kept"):
        to_json({"x": NotAState()})


@pytest.mark.parametrize(
    ("kept", "why"),
    [
        ({"~": "dc", "c": "os:stat_result", "v": {}}, r"only from warden\."),
        ({"~": "dc", "c": "warden.not_loaded:X", "v": {}}, "not imported"),
        ({"~": "dc", "c": "warden.domain.health:Nothing", "v": {}}, "no such class"),
        ({"~": "dc", "c": "warden.domain.health:observe", "v": {}}, "not a dataclass"),
        ({"~": "dc", "c": "warden.domain.health:Health", "v": {"service": "a"}}, "has the fields"),
        ({"~": "enum", "c": "warden.domain.health:Health", "v": "x"}, "not a Enum"),
        ({"~": "what", "v": 1}, "unknown tag"),
    ],
)
def test_a_state_another_version_kept_is_refused_with_why(kept: Any, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        from_json(kept)


def test_classes_come_only_from_allowed_modules() -> None:
    kept = to_json(Plain(1))
    assert kept["c"] == f"{__name__}:Plain"
    with pytest.raises(ValueError, match=r"only from warden\."):
        from_json(kept)
    assert from_json(kept, modules=("tests.",)) == Plain(1)
