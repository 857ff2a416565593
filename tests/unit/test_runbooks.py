"""Runbooks: loading refuses what cannot run (file, line, fix), cases give the expected plans."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from warden.domain import events as ev
from warden.domain.catalog import Catalog
from warden.domain.errors import ConfigError, WardenError
from warden.ingest.registry import SchemaRegistry
from warden.runbooks.cases import case_files, load_cases, run_case
from warden.runbooks.loader import EXAMPLE, load_runbook, load_runbooks
from warden.runbooks.model import evaluate

if TYPE_CHECKING:
    from collections.abc import Callable

EXAMPLES = Path(__file__).parents[2] / "examples" / "runbooks"
CATALOG = Catalog()
REGISTRY = SchemaRegistry()

# The documented example, throttled per host over a few seconds (the tests step by seconds).
GOOD = (
    EXAMPLE.replace(
        'throttle: {once_within: 10m, group_by: "{{ event.data.service }}"}',
        'throttle: {once_within: 5s, group_by: "{{ event.data.labels.host }}"}',
    )
    + "\n"
)
assert GOOD != EXAMPLE + "\n", "the example's throttle line changed: update GOOD"


def load(text: str) -> object:
    return load_runbook(text.encode(), "rb/x.yaml", CATALOG, REGISTRY)


def alert(n: int, *, host: str = "h1", namespace: str = "prod", second: int = 0) -> ev.Event:
    return ev.Event(
        f"e{n}",
        "test",
        ev.ALERT_FIRING,
        f"2026-01-01T10:00:{second:02d}.000000Z",
        {
            "alertname": "KubePodOOMKilled",
            "service": "api",
            "labels": {"namespace": namespace, "host": host},
        },
        subject="api",
    )


def test_every_example_case_passes_including_a_denial_and_an_approval() -> None:
    runbooks = load_runbooks(EXAMPLES)
    results = [run_case(runbooks, c) for f in case_files(EXAMPLES) for c in load_cases(f)]
    assert results, "the examples hold cases"
    assert all(r.passed for r in results), [(r.case.name, r.why) for r in results if not r.passed]
    decisions = {r.decision for r in results}
    assert {"allow", "deny", "needs_approval(1)"} <= decisions


def test_a_case_that_expects_the_wrong_decision_fails() -> None:
    runbooks = load_runbooks(EXAMPLES)
    case = next(c for c in load_cases(EXAMPLES / "restart-on-oom.cases.yaml"))
    wrong = dataclasses.replace(case, expect={**case.expect, "decision": "deny"})
    result = run_case(runbooks, wrong)
    assert not result.passed
    assert "expected decision deny, got allow" in result.why


def test_a_good_runbook_loads_with_a_content_version() -> None:
    runbook = load(GOOD)
    again = load(GOOD + "\n# a comment changes the content\n")
    assert runbook.version != again.version  # type: ignore[attr-defined]
    assert runbook.name == "restart-on-oom"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (("restart_service", "restart_servce"), 9, ["unknown action", "restart_service"]),
        (("labels.namespace ==", "alertnme =="), 5, ["no field 'alertnme'", "'alertname'?"]),
        (("labels.namespace ==", "service.name =="), 5, ["event.data.service is a string"]),
        (("labels.host", "nope"), 6, ["event type warden.alert.firing has no field 'nope'"]),
        (("warden.alert.firing", "warden.alert.fired"), 3, ["unknown event type", "firing"]),
        (('== "prod"', "== "), 5, ["CEL syntax error"]),
        (("confidence: 0.8", "confidence: 2"), 12, ["from 0 to 1"]),
        (("once_within: 5s", "once_within: soon"), 6, ["duration like 30s"]),
        (("plan:", "plan:\n  priorty: 3"), 8, ["unknown key 'priorty'"]),
    ],
)
def test_load_errors_name_the_file_the_line_and_the_fix(
    change: tuple[str, str], line: int, words: list[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(GOOD.replace(*change))
    message = str(caught.value)
    assert message.startswith(f"config error: rb/x.yaml line {line}:"), message
    for word in words:
        assert word in message, message


def test_a_parameter_outside_the_actions_schema_is_refused() -> None:
    text = GOOD.replace(
        'target: "{{ event.data.service }}"',
        'target: "{{ event.data.service }}"\n      params: {replicas: 3}',
    )
    with pytest.raises(ConfigError, match="restart_service has no parameter 'replicas'"):
        load(text)
    scale = text.replace("restart_service", "scale_consumers").replace("3}", "0}")
    with pytest.raises(ConfigError, match=r"line 11: plan.steps\[0\].params.replicas"):
        load(scale)


def test_two_runbooks_with_one_name_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    with pytest.raises(ConfigError, match="also the name of"):
        load_runbooks(tmp_path)


def test_a_storm_gives_one_plan_per_group_key_within_the_window() -> None:
    runbook = load(GOOD)
    fired: dict[str, str] = {}
    plans = []
    for n in range(30):
        event = alert(n, host=f"h{n % 2}", second=n % 4)
        verdict = evaluate(runbook, event, None, lambda _r, key: fired.get(key, ""))  # type: ignore[arg-type]
        if verdict.matched:
            fired[verdict.key] = event.time
            plans.append(verdict)
    assert [v.key for v in plans] == ["h0", "h1"]
    later = alert(99, host="h0", second=6)
    verdict = evaluate(runbook, later, None, lambda _r, key: fired.get(key, ""))  # type: ignore[arg-type]
    assert verdict.matched, verdict.reason  # 6 s after the first: outside the 5 s window


def test_a_field_absent_from_an_event_is_no_match_and_is_explained() -> None:
    runbook = load(GOOD)
    event = alert(1)
    bare = ev.Event("e", "t", ev.ALERT_FIRING, event.time, {"alertname": "KubePodOOMKilled"})
    verdict = evaluate(runbook, bare, None)  # type: ignore[arg-type]
    assert not verdict.matched
    assert "no field" in verdict.reason


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(
    ["name", "trigger", "plan", "condition", "throttle", "steps", "events", "action",
     "target", "params", "confidence", "rationale", "service", "mode", "priority", "x"]
)  # fmt: skip
_documents = st.recursive(
    _values,
    lambda inner: st.dictionaries(_keys, inner, max_size=6) | st.lists(inner, max_size=3),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        _documents.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
        st.text(),
        st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
    )
)
@example("name: [unclosed")
@example("\x07")
@example("a: b\n\x00")
@example("- 1\n- 2")
@example("{{ }}")
@example("name: a\ntrigger: {events: [warden.alert.firing]}\ncondition: '{{'\nplan: 1")
def test_the_loader_never_crashes_on_random_yaml(text: str) -> None:
    message = ""
    try:
        load(text)
    except WardenError as exc:
        message = str(exc)
    assert not message or re.match(r"config error: rb/x\.yaml line \d+: ", message), message


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
@example('event.data.labels["a"] ==')
@example("world.")
def test_random_conditions_load_or_are_refused_with_the_line(condition: str) -> None:
    text = GOOD.replace('condition: event.data.labels.namespace == "prod"', "condition: x")
    document = yaml.safe_load(text)
    document["condition"] = condition
    message = ""
    try:
        load(yaml.safe_dump(document))
    except WardenError as exc:
        message = str(exc)
    assert not message or re.match(r"config error: rb/x\.yaml line \d+: ", message), message


_CONDITIONS = [
    'event.data.labels.namespace == "prod"',
    'event.data.alertname.startsWith("Kube") && event.data.labels["host"] != "h9"',
    'event.data.labels.exists(k, k == "host") || event.type == "x"',
    "size(event.data.labels) > 1",
    'has(event.data.labels.host) && event.data.labels.host == "h1"',
]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(_CONDITIONS),
    st.dictionaries(st.sampled_from(["namespace", "host", "x"]), st.text(max_size=3), max_size=3),
    st.sampled_from(["KubePodOOMKilled", "Other"]),
)
def test_fast_evaluation_gives_cels_own_answer(
    condition: str, labels: dict[str, str], alertname: str
) -> None:
    import cel

    from warden.runbooks.expr import compile_expression

    schemas = {ev.ALERT_FIRING: REGISTRY.schema(ev.ALERT_FIRING)}
    fast = compile_expression(condition, schemas)
    variables = {
        "event": {"type": ev.ALERT_FIRING, "data": {"alertname": alertname, "labels": labels}}
    }
    expected = _answer(lambda v: cel.compile(condition).execute(v), variables)
    assert _answer(fast.evaluate, variables) == expected


def _answer(evaluate: Callable[[Any], object], variables: dict[str, Any]) -> object:
    """What an evaluation gives, or "error" for any error (both sides must agree)."""
    try:
        return evaluate(variables)
    except Exception:
        return "error"


_COMPARISONS = [
    'event.data.metric == "severity" && event.data.value >= 2.0',
    "event.data.value < 0.5 || event.data.metric != 'x'",
    '(event.data.value > 1 || event.data.value <= 0) && event.data.metric == ""',
    "event.data.value != 3 && event.data.metric < 'x'",
    "event.data.value == true || event.data.metric > false",
]
_VALUES = [
    None, True, False, 0, 1, 2, 3, 2**63 - 1, 2**63, -(2**63) - 1, 0.0, 0.5, 2.0,
    float("nan"), "", "x", "severity", "é", "X", [1], {"a": 1}, "missing",
]  # fmt: skip


@pytest.mark.parametrize("condition", _COMPARISONS)
def test_comparisons_decided_in_python_give_cels_own_answer(condition: str) -> None:
    import cel

    from warden.runbooks.expr import compile_expression

    fast = compile_expression(condition, {ev.METRIC_SAMPLED: {"type": "object"}})
    assert fast.comparisons is not None  # decided in Python where the types allow
    program = cel.compile(condition)
    for metric in _VALUES:
        for value in _VALUES:
            given = {"metric": metric, "value": value}
            data = {k: v for k, v in given.items() if v != "missing"}
            variables = {"event": {"type": ev.METRIC_SAMPLED, "data": data}}
            expected = _answer(program.execute, variables)
            assert _answer(fast.evaluate, variables) == expected, (condition, data)


@pytest.mark.parametrize(
    "condition",
    [
        'event.type == "warden.metric.sampled" && event.data.labels.host != "h1"',
        "event.data.labels.host >= 'h' || event.type < 'a'",
        "event.data.labels.port == 80 && event.data.labels.host == event.type",
    ],
)
def test_comparisons_of_paths_of_every_length_give_cels_own_answer(condition: str) -> None:
    import cel

    from warden.runbooks.expr import compile_expression

    fast = compile_expression(condition, {ev.METRIC_SAMPLED: {"type": "object"}})
    program = cel.compile(condition)
    assert (fast.comparisons is not None) is ("== event.type" not in condition)
    for type_ in [ev.METRIC_SAMPLED, "", 1, None, "missing"]:
        for labels in [{}, [], "h1", None, *({"host": v, "port": v} for v in _VALUES)]:
            event = {"data": {"labels": labels}} | ({} if type_ == "missing" else {"type": type_})
            variables = {"event": event}
            expected = _answer(program.execute, variables)
            assert _answer(fast.evaluate, variables) == expected, (condition, event)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=80))
@example(b"name: ok\n\xff\xfe")
def test_any_bytes_are_refused_with_the_file_and_a_line(raw: bytes) -> None:
    message = ""
    try:
        load_runbook(raw, "rb/x.yaml", CATALOG, REGISTRY)
    except WardenError as exc:
        message = str(exc)
    assert re.match(r"config error: rb/x\.yaml line \d+: ", message), message


def test_cel_command_line_is_loaded_only_when_used() -> None:
    """The runbooks compile CEL without cel's command line (typer, prompt_toolkit)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from warden.runbooks.expr import compile_expression\n"
        "import cel\n"
        "assert cel.compile('1 + 2').execute({}) == 3\n"
        "print(any(m.startswith(('typer', 'prompt_toolkit')) for m in sys.modules))\n"
        "app = cel.cli.app\n"  # first use: the real module, loaded then
        "print(any(m.startswith('typer') for m in sys.modules), app is cel.cli.app)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["False", "True", "True"]


_stamps = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).map(ev.format_time)


@settings(max_examples=200, deadline=None)
@given(_stamps | st.text(max_size=40) | _stamps.map(lambda s: s.replace("Z", "+05:30")))
@example("2026-01-01T10:00:00")
@example("2026-13-01T10:00:00.000000Z")
def test_a_stamp_parsed_once_reads_as_a_remembered_one(text: str) -> None:
    assert _answer(ev.parse_time_once, text) == _answer(ev.parse_time, text)


@settings(max_examples=200, deadline=None)
@given(_stamps, st.integers(-10_000_000, 10_000_000))
@example("2026-01-01T10:00:00.000000Z", 5_000_000)
@example("2026-01-01T10:00:00.000000Z", 4_999_999)
def test_a_match_is_throttled_exactly_within_the_window(previous: str, after_us: int) -> None:
    runbook = load(GOOD)  # once within 5 s per host
    moment = ev.parse_time(previous) + timedelta(microseconds=after_us)
    event = dataclasses.replace(alert(1), time=ev.format_time(moment))
    verdict = evaluate(runbook, event, None, lambda _r, key: previous if key == "h1" else "")  # type: ignore[arg-type]
    assert verdict.matched is (after_us >= 5_000_000), verdict.reason
    assert verdict.throttled_by == ("" if verdict.matched else previous)
