"""A service's signals as agents see them: the stored ones, or one shared empty object."""

from __future__ import annotations

from datetime import UTC, datetime

from warden.domain.evidence import symptom
from warden.domain.signals import Signals
from warden.domain.world import World

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_a_service_without_signals_gets_the_same_empty_ones_each_time() -> None:
    stored = Signals("api", metrics=(("error_rate", ()),))
    first, later = World(NOW, signals={"api": stored}), World(NOW)
    assert first.signals_of("api") is stored
    empty = first.signals_of("db")
    assert empty == Signals("db") and empty.service == "db"
    assert later.signals_of("db") is empty  # another round's world: the very same object
    assert later.signals_of("api") == Signals("api") and later.signals_of("api") is not stored
    assert symptom("db", later) is None and symptom("db", first) is None
