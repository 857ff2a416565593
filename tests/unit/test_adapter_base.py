"""What the action adapters share (adapters/base.py): counting, routes, closing, URLs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from warden.domain.errors import ConfigError
from warden.execution.adapters import base, registry, templates
from warden.execution.adapters.base import (
    ClosingContext,
    RoutedAdapter,
    RunStatistics,
    failed,
    without_userinfo,
)
from warden.ports import ActionResult


@dataclass(frozen=True)
class EchoRoute:
    outcome: str


class EchoAdapter(RoutedAdapter[EchoRoute], ClosingContext):
    def __init__(self, routes: dict[str, Any]) -> None:
        super().__init__(routes, EchoRoute, "an EchoRoute")
        self.closed = 0

    def _run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        route = self._routes.get(action)
        if route is None:
            return self._unknown_action(action)
        if route.outcome == "ok":
            return ActionResult(ok=True, detail=f"{action} on {target}", output={})
        return failed(f"{action} failed", retryable=route.outcome == "retry")

    def check(self, action: str, target: str, params: dict[str, Any] | None = None) -> None:
        self._tally.checked()

    def close(self) -> None:
        self.closed += 1


def make() -> EchoAdapter:
    return EchoAdapter(
        {"good": EchoRoute("ok"), "flaky": EchoRoute("retry"), "broken": EchoRoute("no")}
    )


def test_runs_and_checks_are_counted_by_outcome() -> None:
    adapter = make()
    adapter.run("good", "svc", {})
    adapter.run("flaky", "svc", {})
    adapter.run("broken", "svc", {})
    adapter.run("nope", "svc", {})
    adapter.check("good", "svc")
    assert adapter.statistics() == RunStatistics(
        runs=4, succeeded=1, retryable_failures=1, permanent_failures=2, checks=1
    )


def test_an_unknown_action_is_a_permanent_failure_naming_the_known_ones() -> None:
    result = make().run("nope", "svc", {})
    assert not result.ok
    assert result.detail == "unknown action 'nope' (known: good, flaky, broken)"
    assert result.output == {"retryable": False, "retry_after_s": None}
    assert "known: none" in EchoAdapter({}).run("nope", "svc", {}).detail


def test_actions_and_repr_list_the_routes_in_order() -> None:
    adapter = make()
    assert adapter.actions() == ["good", "flaky", "broken"]
    assert repr(adapter) == "EchoAdapter(actions=['good', 'flaky', 'broken'])"


def test_a_route_of_the_wrong_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^config error: bad: expected an EchoRoute$"):
        EchoAdapter({"good": EchoRoute("ok"), "bad": {"outcome": "ok"}})


def test_the_routes_are_a_copy() -> None:
    routes = {"good": EchoRoute("ok")}
    adapter = EchoAdapter(routes)
    routes["later"] = EchoRoute("ok")
    assert adapter.actions() == ["good"]


def test_a_with_block_closes_even_when_it_raises() -> None:
    adapter = make()
    with adapter as entered:
        assert entered is adapter
    assert adapter.closed == 1
    with pytest.raises(RuntimeError), adapter:
        raise RuntimeError("boom")
    assert adapter.closed == 2


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://host/api/x", "https://host/api/x"),
        ("https://user:pw@host:8443/api?q=1", "https://host:8443/api?q=1"),
        ("nats://token@127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("nats://a@b@host", "nats://host"),
    ],
)
def test_without_userinfo_hides_credentials(url: str, shown: str) -> None:
    assert without_userinfo(url) == shown


def test_the_registry_still_exports_the_shared_names() -> None:
    for name in ("RunStatistics", "RunTally", "failed", "retry_hint"):
        assert getattr(registry, name) is getattr(base, name)
    for name in ("template_names", "json_template_names", "render_text", "render_json"):
        assert getattr(registry, name) is getattr(templates, name)
