"""Source plugins: the connector protocol, built-in sources and entry-point discovery. Data plane.

A source turns outside signals into events by handing jobs to a :class:`Pipeline` until
it is told to stop (or runs out of input). Third-party packages add sources through the
``warden.sources`` entry-point group; the entry point names a factory (usually the class)
called with the source's options as keyword arguments::

    [project.entry-points."warden.sources"]
    kafka = "acme_warden.kafka:KafkaSource"
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from warden.domain.errors import ConfigError

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterable

    from warden.ingest.pipeline import Pipeline, Tally

__all__ = [
    "BUILTIN_SOURCES",
    "ENTRY_POINT_GROUP",
    "Source",
    "SourceSpec",
    "create_source",
    "discover_sources",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "warden.sources"
BUILTIN_SOURCES: dict[str, str] = {
    "webhook": "warden.ingest.webhook_server:WebhookSource",
    "jsonl": "warden.ingest.jsonl:JsonlSource",
    "nats": "warden.ingest.nats_source:NatsSource",
}


@runtime_checkable
class Source(Protocol):
    """A connector: reads signals from outside and feeds them through the pipeline.

    ``run`` returns when ``stop`` is set or the input is exhausted; every job it handed
    to the pipeline is stored or quarantined by then. It acknowledges its input (an HTTP
    answer, a message ack) only after the pipeline returned for it.
    """

    name: str

    def run(self, pipeline: Pipeline, stop: threading.Event) -> Tally:
        """Ingest until stopped or done; returns what this run accepted and refused."""
        ...


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A source that can be created by name.

    Attributes:
        name: The name in configuration, e.g. ``webhook``.
        target: ``module:attribute`` of its factory.
        origin: ``built-in``, or the distribution that declared the entry point.
    """

    name: str
    target: str
    origin: str

    def load(self) -> Callable[..., Source]:
        """Import the factory.

        Raises:
            ConfigError: When the module or attribute cannot be imported.
        """
        module_name, _, attribute = self.target.partition(":")
        try:
            found: Any = importlib.import_module(module_name)
            for part in attribute.split(".") if attribute else []:
                found = getattr(found, part)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"source {self.name!r} ({self.origin}): cannot import {self.target}: {exc}"
            ) from exc
        if not callable(found):
            raise ConfigError(f"source {self.name!r}: {self.target} is not callable")
        factory: Callable[..., Source] = found
        return factory


def discover_sources(found: Iterable[EntryPoint] | None = None) -> dict[str, SourceSpec]:
    """Built-in sources plus those installed packages declare, by name.

    Args:
        found: Entry points to use instead of the installed ones (for tests).

    Returns:
        Every source by name. A third-party source may not shadow a built-in name;
        such an entry point is skipped with a warning.
    """
    specs = {name: SourceSpec(name, target, "built-in") for name, target in BUILTIN_SOURCES.items()}
    points = entry_points(group=ENTRY_POINT_GROUP) if found is None else found
    for point in points:
        if point.group != ENTRY_POINT_GROUP:
            continue
        origin = point.dist.name if point.dist is not None else "entry point"
        if point.name in specs:
            log.warning(
                "source %r from %s ignored: the name is taken by %s",
                point.name,
                origin,
                specs[point.name].origin,
            )
            continue
        specs[point.name] = SourceSpec(point.name, point.value, origin)
    return specs


def create_source(
    name: str, options: dict[str, Any] | None = None, *, found: Iterable[EntryPoint] | None = None
) -> Source:
    """Create the source called ``name`` with ``options``.

    Raises:
        ConfigError: When no source has that name, it cannot be imported, the options
            do not fit its factory, or what it makes is not a :class:`Source`.
    """
    specs = discover_sources(found)
    spec = specs.get(name)
    if spec is None:
        raise ConfigError(f"unknown source {name!r} (known: {', '.join(sorted(specs))})")
    factory = spec.load()
    try:
        source = factory(**(options or {}))
    except TypeError as exc:
        raise ConfigError(f"source {name!r}: bad options: {exc}") from exc
    if not isinstance(source, Source):
        raise ConfigError(f"source {name!r}: {spec.target} did not make a Source (name and run)")
    return source
