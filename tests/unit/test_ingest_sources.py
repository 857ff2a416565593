"""Source plugins: the protocol, built-ins, and discovery through entry points."""

from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint
from typing import TYPE_CHECKING

import pytest

from warden.domain.errors import ConfigError
from warden.ingest.jsonl import JsonlSource
from warden.ingest.nats_source import NatsSource
from warden.ingest.pipeline import Pipeline, Tally
from warden.ingest.sources import (
    BUILTIN_SOURCES,
    ENTRY_POINT_GROUP,
    Source,
    create_source,
    discover_sources,
)
from warden.ingest.webhook_server import WebhookSource

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator


class EchoSource:
    """A third-party source: ingests nothing, says so."""

    name = "echo"

    def __init__(self, greeting: str = "hi") -> None:
        self.greeting = greeting

    def run(self, pipeline: Pipeline, stop: threading.Event) -> Tally:
        return Tally()


@pytest.fixture
def plugin_module() -> Iterator[str]:
    module = types.ModuleType("warden_test_plugin")
    module.EchoSource = EchoSource  # type: ignore[attr-defined]
    module.not_a_factory = 42  # type: ignore[attr-defined]
    module.makes_junk = lambda: object()  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield module.__name__
    del sys.modules[module.__name__]


def point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def test_builtin_sources_satisfy_the_protocol() -> None:
    assert set(BUILTIN_SOURCES) == {"webhook", "jsonl", "nats"}
    assert isinstance(create_source("webhook", {"port": 0, "insecure": True}), WebhookSource)
    tuned = create_source(
        "webhook", {"port": 0, "max_in_flight": 7, "capacity": 3, "insecure": True}
    )
    assert isinstance(tuned, WebhookSource)
    assert (tuned.max_in_flight, tuned.capacity) == (7, 3)
    assert isinstance(create_source("jsonl", {"path": "-"}), JsonlSource)
    nats = create_source("nats", {"servers": "nats://127.0.0.1:1", "durable": "d"})
    assert isinstance(nats, NatsSource)
    assert nats.settings.durable == "d"
    for source in (WebhookSource(insecure=True), JsonlSource(), nats):
        assert isinstance(source, Source)


def test_third_party_sources_are_discovered_from_entry_points(plugin_module: str) -> None:
    found = [point("echo", f"{plugin_module}:EchoSource"), point("other", "x:y")]
    specs = discover_sources(found)
    assert specs["echo"].target == f"{plugin_module}:EchoSource"
    assert specs["webhook"].origin == "built-in"
    source = create_source("echo", {"greeting": "hello"}, found=found)
    assert isinstance(source, EchoSource)
    assert source.greeting == "hello"


def test_installed_entry_points_are_read_by_default() -> None:
    assert set(BUILTIN_SOURCES) <= set(discover_sources())


def test_a_plugin_cannot_shadow_a_builtin(
    plugin_module: str, caplog: pytest.LogCaptureFixture
) -> None:
    specs = discover_sources([point("webhook", f"{plugin_module}:EchoSource")])
    assert specs["webhook"].origin == "built-in"
    assert "ignored: the name is taken by built-in" in caplog.text


@pytest.mark.parametrize(
    ("name", "value", "options", "message"),
    [
        ("nope", "", {}, "unknown source 'nope' (known: jsonl, nats, webhook)"),
        ("gone", "warden_missing_module:X", {}, "cannot import warden_missing_module:X"),
        ("attr", "{module}:Missing", {}, "cannot import"),
        ("num", "{module}:not_a_factory", {}, "is not callable"),
        ("junk", "{module}:makes_junk", {}, "did not make a Source"),
        ("echo", "{module}:EchoSource", {"colour": "red"}, "bad options"),
    ],
)
def test_errors_say_what_is_wrong(
    plugin_module: str, name: str, value: str, options: dict[str, str], message: str
) -> None:
    found = [point(name, value.format(module=plugin_module))] if value else []
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        create_source(name, options, found=found)
