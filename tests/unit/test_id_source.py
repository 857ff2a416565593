"""The id sources: random in production, a fixed sequence for tests and recorded scenarios."""

from __future__ import annotations

import re

from warden.ports import IdSource, UuidIds
from warden.testing import CountingIds


def take(ids: IdSource, n: int) -> list[str]:
    return [ids.new_id() for _ in range(n)]


def test_counting_ids_repeat_per_seed_and_differ_between_seeds() -> None:
    first = take(CountingIds("golden"), 5)
    assert first == take(CountingIds("golden"), 5)
    assert len(set(first)) == 5
    assert not set(first) & set(take(CountingIds("other"), 5))
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in first)


def test_uuid_ids_are_fresh_32_hex_digits() -> None:
    drawn = take(UuidIds(), 50)
    assert len(set(drawn)) == 50
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in drawn)
