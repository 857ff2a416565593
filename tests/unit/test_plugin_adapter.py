"""The Python plugin adapter, the result convention, and the adapter registry's config."""

from __future__ import annotations

import textwrap
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from warden.domain.errors import ConfigError, PermanentError, TemporaryError
from warden.execution.adapters.http import HttpActionAdapter
from warden.execution.adapters.plugin import ENTRY_POINT_GROUP, Plugin, PluginActionAdapter
from warden.execution.adapters.registry import (
    ActionAdapters,
    RunStatistics,
    build_adapters,
    failed,
    render_json,
    render_text,
    retry_hint,
    template_names,
)
from warden.ports import ActionResult

if TYPE_CHECKING:
    from pathlib import Path


def scale(target: str, params: dict[str, Any]) -> ActionResult:
    return ActionResult(True, f"scaled {target} to {params['replicas']}", {"replicas": 3})


def test_registered_function_runs_with_target_and_a_copy_of_params() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def record(target: str, params: dict[str, Any]) -> dict[str, Any]:
        seen.append((target, params))
        params["mutated"] = True
        return {"done": target}

    adapter = PluginActionAdapter()
    adapter.register("record", record)
    adapter.register("scale_out", scale)
    params = {"replicas": 3, "idempotency_key": "k1"}
    result = adapter.run("record", "payments", params)
    assert result == ActionResult(True, "record on payments done", {"done": "payments"})
    assert seen == [("payments", {"replicas": 3, "idempotency_key": "k1", "mutated": True})]
    assert params == {"replicas": 3, "idempotency_key": "k1"}
    assert adapter.run("scale_out", "payments", params).detail == "scaled payments to 3"
    assert adapter.actions() == ["record", "scale_out"]
    assert adapter.statistics() == RunStatistics(runs=2, succeeded=2)


def test_temporary_error_is_retryable_with_its_delay() -> None:
    def flaky(target: str, params: dict[str, Any]) -> dict[str, Any]:
        raise TemporaryError("deploy API is rate limiting", delay=12.5)

    adapter = PluginActionAdapter([Plugin("deploy", flaky)])
    result = adapter.run("deploy", "payments", {})
    assert not result.ok
    assert result.output == {"retryable": True, "retry_after_s": 12.5}
    assert "rate limiting" in result.detail
    hint = retry_hint(result)
    assert isinstance(hint, TemporaryError) and hint.delay == 12.5
    assert adapter.statistics().retryable_failures == 1


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (PermanentError("no such deployment"), "no such deployment"),
        (KeyError("replicas"), "the plugin raised KeyError: 'replicas'"),
        (RuntimeError("boom"), "the plugin raised RuntimeError: boom"),
    ],
)
def test_other_exceptions_are_permanent(error: Exception, expected: str) -> None:
    def broken(target: str, params: dict[str, Any]) -> dict[str, Any]:
        raise error

    adapter = PluginActionAdapter()
    adapter.register("deploy", broken)
    result = adapter.run("deploy", "payments", {})
    assert not result.ok
    assert result.output["retryable"] is False
    assert result.output["retry_after_s"] is None
    assert expected in result.detail
    assert isinstance(retry_hint(result), PermanentError)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (None, "returned NoneType"),
        ("done", "returned str"),
        (ActionResult(True, "ok", {"when": object()}), "cannot be recorded as JSON"),
        ({"bad": {1, 2}}, "cannot be recorded as JSON"),
    ],
)
def test_odd_answers_are_permanent_failures(answer: Any, expected: str) -> None:
    adapter = PluginActionAdapter()
    adapter.register("odd", lambda target, params: answer)
    result = adapter.run("odd", "payments", {})
    assert not result.ok
    assert result.output["retryable"] is False
    assert expected in result.detail


def test_failed_results_are_completed_to_the_convention() -> None:
    adapter = PluginActionAdapter()
    adapter.register("bare", lambda t, p: ActionResult(False, "nope", {"code": 7}))
    adapter.register("retry", lambda t, p: failed("later", retryable=True, retry_after_s=3))
    bare = adapter.run("bare", "x", {})
    assert bare == ActionResult(
        False, "nope", {"code": 7, "retryable": False, "retry_after_s": None}
    )
    assert adapter.run("retry", "x", {}).output == {"retryable": True, "retry_after_s": 3}


def test_unknown_action_names_the_known_ones() -> None:
    adapter = PluginActionAdapter()
    adapter.register("scale_out", scale)
    result = adapter.run("scale_in", "payments", {})
    assert not result.ok and "scale_out" in result.detail
    assert result.output["retryable"] is False


def test_check_answers_true_false_or_none() -> None:
    state = {"payments": 3}

    def scaled(target: str, params: dict[str, Any]) -> bool:
        return bool(state[target] == params["replicas"])

    def confused(target: str, params: dict[str, Any]) -> Any:
        return "yes"

    adapter = PluginActionAdapter()
    adapter.register("scale_out", scale, check=scaled)
    adapter.register("odd", scale, check=confused)
    adapter.register("blind", scale)
    assert adapter.check("scale_out", "payments", {"replicas": 3}) is True
    assert adapter.check("scale_out", "payments", {"replicas": 4}) is False
    assert adapter.check("scale_out", "orders", {"replicas": 3}) is None  # it raised
    assert adapter.check("odd", "payments") is None
    assert adapter.check("blind", "payments") is None
    assert adapter.check("nothing", "payments") is None


def test_registration_mistakes_are_config_errors() -> None:
    adapter = PluginActionAdapter()
    adapter.register("scale_out", scale)
    with pytest.raises(ConfigError, match=r"scale_out: already implemented by registered"):
        adapter.register("scale_out", scale)
    adapter.register("scale_out", lambda t, p: {}, replace=True)
    with pytest.raises(ConfigError, match="not callable"):
        adapter.register("x", "scale")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="action name"):
        adapter.register("bad name", scale)


# -- entry points ----------------------------------------------------------------------------


@pytest.fixture
def plugin_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An installed distribution (on sys.path) with actions in the warden.actions group."""
    module = f"warden_test_plugins_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent(
            """
            from warden.domain.errors import TemporaryError

            CALLS = []

            def restart_cache(target, params):
                CALLS.append((target, params))
                return {"restarted": target}

            def cache_up(target, params):
                return target == "cache-1"

            class Flush:
                def run(self, target, params):
                    raise TemporaryError("cache busy", delay=2)

                def check(self, target, params):
                    return False

            flush = Flush()
            """
        )
    )
    dist = tmp_path / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n"
        f"restart_cache_{module} = {module}:restart_cache\n"
        f"flush_cache_{module} = {module}:flush\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return module


def test_entry_points_are_discovered(plugin_package: str) -> None:
    restart, flush = f"restart_cache_{plugin_package}", f"flush_cache_{plugin_package}"
    adapter = PluginActionAdapter()
    loaded = adapter.load_entry_points(names=[restart, flush])
    assert loaded == [restart, flush]
    assert adapter.run(restart, "cache-1", {}).output == {"restarted": "cache-1"}
    busy = adapter.run(flush, "cache-1", {})
    assert busy.output == {"retryable": True, "retry_after_s": 2.0}
    assert adapter.check(flush, "cache-1") is False
    assert adapter.check(restart, "cache-1") is None
    with pytest.raises(ConfigError, match=r"no entry point 'nope' in group warden\.actions"):
        PluginActionAdapter().load_entry_points(names=["nope"])


def test_registry_loads_python_actions(plugin_package: str) -> None:
    config = {
        "actions": {
            "restart_cache": {
                "adapter": "python",
                "entry_point": f"{plugin_package}:restart_cache",
                "check": f"{plugin_package}:cache_up",
            },
            "flush_cache": {"adapter": "python", "entry_point": f"flush_cache_{plugin_package}"},
        }
    }
    with build_adapters(config) as adapters:
        assert isinstance(adapters, ActionAdapters)
        assert list(adapters) == ["restart_cache", "flush_cache"]
        assert adapters["restart_cache"] is adapters["flush_cache"]
        assert adapters["restart_cache"].run("restart_cache", "cache-1", {}).ok
        assert adapters.check("restart_cache", "cache-1") is True
        assert adapters.check("restart_cache", "cache-2") is False
        assert adapters.check("flush_cache", "cache-1") is False
        assert adapters.check("unknown", "cache-1") is None


# -- registry configuration ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, r"^config error: actions: missing or empty; give a mapping"),
        ({"actions": []}, r"^config error: actions: missing or empty"),
        ({"actions": {"a": "http"}}, r"^config error: actions\.a: expected a mapping"),
        (
            {"actions": {"bad name": {}}},
            r"^config error: actions\.bad name: 'bad name' is not an action name",
        ),
        (
            {"actions": {"a": {}}},
            r"actions\.a\.adapter: None is not an adapter kind; use one of http, nats, python",
        ),
        (
            {"actions": {"a": {"adapter": "shell"}}},
            r"actions\.a\.adapter: 'shell' .*http, nats, python",
        ),
        ({"actions": {"a": {"adapter": "python"}}}, r"actions\.a\.entry_point: required"),
        (
            {"actions": {"a": {"adapter": "python", "entry_point": "no_such_module_xyz:fn"}}},
            r"actions\.a\.entry_point: cannot load 'no_such_module_xyz:fn' \(ModuleNotFoundError.*install",
        ),
        (
            {"actions": {"a": {"adapter": "python", "entry_point": "not-installed"}}},
            r"actions\.a\.entry_point: no entry point 'not-installed' in group warden\.actions",
        ),
        (
            {"actions": {"a": {"adapter": "python", "entry_point": "json:dumps", "check": "x"}}},
            r"actions\.a\.check: 'x' is not module:function",
        ),
        (
            {"actions": {"a": {"adapter": "python", "entry_point": "json:dumps", "url": "x"}}},
            r"actions\.a\.url: unknown key; known: adapter, check, entry_point",
        ),
    ],
)
def test_registry_config_errors_name_the_key_and_the_fix(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_adapters(config)


def test_registry_maps_each_action_to_one_adapter_per_kind() -> None:
    config = {
        "actions": {
            "a": {"adapter": "http", "url": "https://x.example/{target}"},
            "b": {"adapter": "python", "entry_point": "json:dumps"},
            "c": {"adapter": "http", "url": "https://y.example/{target}", "method": "DELETE"},
        }
    }
    adapters = build_adapters(config)
    assert list(adapters) == ["a", "b", "c"]
    assert adapters["a"] is adapters["c"]
    assert isinstance(adapters["a"], HttpActionAdapter)
    assert isinstance(adapters["b"], PluginActionAdapter)
    assert len(adapters.adapters()) == 2
    assert "HttpActionAdapter" in repr(adapters)
    adapters.close()


# -- templates and the convention -------------------------------------------------------------


def test_templates() -> None:
    values = {"target": "a b", "n": 3, "flag": True, "tags": ["x"]}
    assert template_names("/{target}/{n}/{{literal}}") == {"target", "n"}
    assert render_text("/{target}/{n}/{{literal}}", values) == "/a b/3/{literal}"
    assert render_text("{flag}-{tags}", values) == 'true-["x"]'
    assert render_json({"n": "{n}", "s": "n={n}", "l": ["{flag}"]}, values) == {
        "n": 3,
        "s": "n=3",
        "l": [True],
    }
    with pytest.raises(KeyError, match="missing"):
        render_text("{missing}", values)
    for bad in ("{", "a}", "{a.b}", "{0}", "{target.__class__}"):
        with pytest.raises(ConfigError, match="stray brace"):
            template_names(bad)


def test_retry_hint_reads_any_result() -> None:
    assert retry_hint(ActionResult(True, "ok", {})) is None
    assert isinstance(retry_hint(ActionResult(False, "old style", {})), PermanentError)
    default = retry_hint(failed("x", retryable=True))
    assert isinstance(default, TemporaryError) and default.delay == 1.0
