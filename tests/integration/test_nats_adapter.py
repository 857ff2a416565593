"""The NATS publish adapter against a real JetStream server: acks, de-duplication, check."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import nats
import pytest
from nats.js.api import StreamConfig

from warden.domain.errors import ConfigError
from warden.execution.adapters.nats_publish import (
    MSG_ID_HEADER,
    NatsPublishAdapter,
    NatsRoute,
    derived_key,
)
from warden.execution.adapters.registry import RunStatistics, build_adapters

if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterator

    from nats.js.api import RawStreamMsg


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await asyncio.wait_for(coro, timeout=10)

    return asyncio.run(main())


class Stream:
    """A JetStream stream made for one test, capturing ``<prefix>.>``."""

    def __init__(self, url: str) -> None:
        tag = uuid.uuid4().hex[:10]
        self.url = url
        self.name = f"WARDEN_TEST_ACTIONS_{tag}"
        self.prefix = f"warden.test.actions.{tag}"

    async def _with_js(self, work: Any) -> Any:
        nc = await nats.connect(self.url)
        try:
            return await work(nc.jetstream())
        finally:
            await nc.close()

    def create(self) -> None:
        config = StreamConfig(name=self.name, subjects=[f"{self.prefix}.>"], duplicate_window=60.0)
        run(self._with_js(lambda js: js.add_stream(config)))

    def delete(self) -> None:
        run(self._with_js(lambda js: js.delete_stream(self.name)))

    def messages(self) -> list[RawStreamMsg]:
        async def read(js: Any) -> list[RawStreamMsg]:
            info = await js.stream_info(self.name)
            first, last = info.state.first_seq, info.state.last_seq
            if info.state.messages == 0:
                return []
            return [await js.get_msg(self.name, seq) for seq in range(first, last + 1)]

        result: list[RawStreamMsg] = run(self._with_js(read))
        return result


@pytest.fixture
def stream(nats_url: str) -> Iterator[Stream]:
    created = Stream(nats_url)
    created.create()
    yield created
    created.delete()


@pytest.fixture
def adapter(stream: Stream) -> Iterator[NatsPublishAdapter]:
    routes = {
        "notify": NatsRoute(subject=stream.prefix + ".notify.{target}", stream=stream.name),
        "page": NatsRoute(
            subject=stream.prefix + ".page.{team}",
            body={"text": "{target} is down", "severity": "{severity}"},
            headers={"Warden-Action": "page"},
            timeout_s=2.0,
        ),
    }
    with NatsPublishAdapter(stream.url, routes, connect_timeout_s=2.0) as built:
        yield built


@pytest.mark.nats
def test_same_idempotency_key_is_stored_once(adapter: NatsPublishAdapter, stream: Stream) -> None:
    params = {"idempotency_key": "inc-1/step-0", "reason": "probe failed"}
    first = adapter.run("notify", "payments", params)
    again = adapter.run("notify", "payments", params)
    assert first.ok, first.detail
    assert again.ok, again.detail
    assert first.output["duplicate"] is False
    assert again.output["duplicate"] is True
    assert again.output["seq"] == first.output["seq"]
    assert "already stored" in again.detail
    (stored,) = stream.messages()
    assert stored.subject == f"{stream.prefix}.notify.payments"
    assert stored.headers is not None and stored.headers[MSG_ID_HEADER] == "inc-1/step-0"
    assert json.loads(stored.data or b"") == {
        "action": "notify",
        "target": "payments",
        "params": {"reason": "probe failed"},
        "idempotency_key": "inc-1/step-0",
    }
    assert adapter.statistics() == RunStatistics(runs=2, succeeded=2)


@pytest.mark.nats
def test_different_keys_are_stored_apart(adapter: NatsPublishAdapter, stream: Stream) -> None:
    assert adapter.run("notify", "payments", {"idempotency_key": "a"}).ok
    assert adapter.run("notify", "payments", {"idempotency_key": "b"}).ok
    assert [m.headers and m.headers[MSG_ID_HEADER] for m in stream.messages()] == ["a", "b"]


@pytest.mark.nats
def test_without_a_key_equal_arguments_are_stored_once(
    adapter: NatsPublishAdapter, stream: Stream
) -> None:
    params = {"team": "payments-oncall", "severity": "high"}
    first = adapter.run("page", "payments", params)
    again = adapter.run("page", "payments", dict(params))
    other = adapter.run("page", "payments", {**params, "severity": "low"})
    assert first.ok and again.ok and other.ok
    assert first.output["msg_id"] == derived_key("page", "payments", params)
    assert again.output["duplicate"] is True and other.output["duplicate"] is False
    stored = stream.messages()
    assert len(stored) == 2
    assert stored[0].subject == f"{stream.prefix}.page.payments-oncall"
    assert json.loads(stored[0].data or b"") == {"text": "payments is down", "severity": "high"}
    assert stored[0].headers is not None and stored[0].headers["Warden-Action"] == "page"


@pytest.mark.nats
def test_check_finds_the_published_message(adapter: NatsPublishAdapter, stream: Stream) -> None:
    params = {"idempotency_key": "k-42"}
    assert adapter.check("notify", "payments", params) is False
    assert adapter.run("notify", "payments", params).ok
    assert adapter.check("notify", "payments", params) is True
    assert adapter.run("notify", "payments", {"idempotency_key": "k-43"}).ok
    assert adapter.check("notify", "payments", params) is None  # a later message came
    assert adapter.check("page", "payments", params) is None  # no stream on the route
    assert adapter.statistics().checks == 4


@pytest.mark.nats
def test_subject_without_a_stream_is_retryable(nats_url: str) -> None:
    subject = f"warden.test.nostream.{uuid.uuid4().hex[:10]}"
    with NatsPublishAdapter(nats_url, {"notify": NatsRoute(subject=subject)}) as adapter:
        started = time.monotonic()
        result = adapter.run("notify", "payments", {"idempotency_key": "k"})
    assert time.monotonic() - started < 3
    assert not result.ok
    assert result.output["retryable"] is True
    assert "no JetStream stream" in result.detail


@pytest.mark.nats
def test_wrong_expected_stream_is_permanent(nats_url: str, stream: Stream) -> None:
    route = NatsRoute(subject=stream.prefix + ".x", stream="SOME_OTHER_STREAM")
    with NatsPublishAdapter(nats_url, {"notify": route}) as adapter:
        result = adapter.run("notify", "payments", {})
    assert not result.ok
    assert result.output["retryable"] is False
    assert "JetStream refused" in result.detail
    assert stream.messages() == []


@pytest.mark.nats
def test_bad_subject_values_are_refused_before_publishing(
    adapter: NatsPublishAdapter, stream: Stream
) -> None:
    for target in ("pay.ments", "pay ments", "*", ">"):
        result = adapter.run("notify", target, {})
        assert not result.ok
        assert result.output["retryable"] is False
        assert "subject token" in result.detail
    missing = adapter.run("page", "payments", {"team": "x"})
    assert not missing.ok and "'severity'" in missing.detail
    assert stream.messages() == []


@pytest.mark.nats
def test_concurrent_runs_share_one_connection(adapter: NatsPublishAdapter, stream: Stream) -> None:
    results: list[Any] = []

    def publish(n: int) -> None:
        results.append(adapter.run("notify", "payments", {"idempotency_key": f"k{n % 5}"}))

    threads = [threading.Thread(target=publish, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 20 and all(r.ok for r in results)
    assert len(stream.messages()) == 5


@pytest.mark.nats
def test_registry_builds_nats_actions(nats_url: str, stream: Stream) -> None:
    config = {
        "nats": {"servers": [nats_url], "connect_timeout_s": 2},
        "actions": {
            "notify": {
                "adapter": "nats",
                "subject": stream.prefix + ".notify.{target}",
                "stream": stream.name,
                "timeout_s": 2,
            }
        },
    }
    with build_adapters(config) as adapters:
        result = adapters["notify"].run("notify", "payments", {"idempotency_key": "r1"})
        assert result.ok, result.detail
        assert adapters.check("notify", "payments", {"idempotency_key": "r1"}) is True
    assert len(stream.messages()) == 1


# -- without a server ----------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_server_is_retryable_and_close_is_clean() -> None:
    url = f"nats://warden:hunter2@127.0.0.1:{closed_port()}"
    adapter = NatsPublishAdapter(
        url, {"notify": NatsRoute(subject="a.{target}")}, connect_timeout_s=0.3
    )
    before = {t.name for t in threading.enumerate()}
    started = time.monotonic()
    result = adapter.run("notify", "payments", {"idempotency_key": "k"})
    assert time.monotonic() - started < 2
    assert not result.ok
    assert result.output["retryable"] is True
    assert "cannot connect" in result.detail
    assert "hunter2" not in result.detail and "hunter2" not in repr(adapter)
    assert adapter.check("notify", "payments", {"idempotency_key": "k"}) is None
    assert "warden-nats-actions" in {t.name for t in threading.enumerate()} - before
    adapter.close()
    adapter.close()
    assert "warden-nats-actions" not in {t.name for t in threading.enumerate()}
    after = adapter.run("notify", "payments", {})
    assert not after.ok and after.output["retryable"] is False and "closed" in after.detail


def test_close_without_any_run_starts_nothing() -> None:
    before = threading.active_count()
    adapter = NatsPublishAdapter("nats://127.0.0.1:4222", {"n": NatsRoute(subject="a.b")})
    assert threading.active_count() == before
    adapter.close()


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"subject": "a.*.b"}, r"subject: .*wildcards"),
        ({"subject": "a..b"}, r"subject: .*empty token"),
        ({"subject": "a.{target"}, r"subject: .*stray brace"),
        ({"subject": "a", "body": {"x": "{"}}, r"body: .*stray brace"),
        ({"subject": "a", "headers": {"Nats-Msg-Id": "x"}}, r"headers: Nats-Msg-Id"),
        ({"subject": "a", "stream": "bad.name"}, r"stream: "),
        ({"subject": "a", "timeout_s": -1}, r"timeout_s: "),
        ({"subject": "a", "body": {"x": object()}}, r"body: not a JSON template"),
    ],
)
def test_route_config_errors(route: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        NatsRoute(**route)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"actions": {"n": {"adapter": "nats"}}}, r"actions\.n\.subject: required"),
        ({"actions": {"n": {"adapter": "nats", "subject": "a.*"}}}, r"actions\.n\.subject: "),
        (
            {"actions": {"n": {"adapter": "nats", "subject": "a", "url": "x"}}},
            r"actions\.n\.url: unknown key; known: adapter, body, headers, stream, subject",
        ),
        (
            {
                "nats": {"servers": "localhost"},
                "actions": {"n": {"adapter": "nats", "subject": "a"}},
            },
            r"nats\.servers: .*nats://host:4222",
        ),
    ],
)
def test_registry_nats_config_errors(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_adapters(config)
