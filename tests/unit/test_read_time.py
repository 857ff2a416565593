"""read_time: the gate's one read of a stamp answers as format_time(parse_time(text))."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from warden.domain.events import _parse_time, format_time, parse_time, read_time


def outcome(read: object) -> tuple[object, ...]:
    """What a read gives: the moment and spelling, or the error's type and words."""
    try:
        moment, text = read()  # type: ignore[operator]
    except (ValueError, OverflowError, TypeError, AttributeError) as exc:
        return (type(exc), str(exc))
    return (moment, moment.utcoffset(), text)


def old(text: str) -> tuple[object, ...]:
    def both() -> tuple[datetime, str]:
        moment = parse_time(text)
        return moment, format_time(moment)

    return outcome(both)


def assert_same(text: str) -> None:
    assert outcome(lambda: read_time(text)) == old(text)


OFFSETS = st.one_of(
    st.just(UTC),
    st.integers(-24 * 60 + 1, 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m))),
    st.integers(-86399, 86399).map(lambda s: timezone(timedelta(seconds=s))),
)
SPECS = st.sampled_from(["auto", "hours", "minutes", "seconds", "milliseconds", "microseconds"])


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    OFFSETS,
    SPECS,
    st.sampled_from(["T", " ", "t"]),
    st.sampled_from(["", "Z", "-00:00"]),
)
@example(datetime(2026, 11, 25, 12), UTC, "microseconds", "T", "")
@example(datetime(2026, 11, 25, 12), UTC, "microseconds", "T", "Z")
def test_a_sent_time_reads_as_parse_and_format(
    naive: datetime, zone: timezone, spec: str, sep: str, utc_spelling: str
) -> None:
    text = naive.replace(tzinfo=zone).isoformat(sep=sep, timespec=spec)
    if utc_spelling and text.endswith("+00:00"):
        text = text[:-6] + utc_spelling
    assert_same(text)


# Characters that turn a stamp into another one or none: digits of other scripts, the
# other separators fromisoformat takes, a second zone, an hour past 23.
ODD = st.sampled_from([*"0123456789+-:.,TtZz W\u0663\uff11\u00b2\x00", "\ud800", "24"])


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.sampled_from(["Z", "+00:00"]),
    st.lists(st.tuples(st.integers(0, 31), ODD), min_size=1, max_size=3),
)
@example(datetime(2026, 2, 28, 12), "Z", [(8, "3"), (9, "0")])  # 30 February
@example(datetime(2026, 1, 1, 12), "+00:00", [(11, "24")])  # hour 24
@example(datetime(2026, 1, 1, 12), "Z", [(19, ",")])  # a comma before the fraction
def test_an_odd_time_reads_or_fails_as_parse_and_format(
    naive: datetime, zone: str, edits: list[tuple[int, str]]
) -> None:
    chars = list(naive.isoformat(timespec="microseconds") + zone)
    for at, new in edits:
        if at < len(chars):
            chars[at] = new
    assert_same("".join(chars))


@given(st.text(max_size=40))
@example("2026-11-25T12:00:00.000000ZZ")
@example("2026-11-25T12:00:00.000000+00:00\n")
def test_any_text_reads_or_fails_as_parse_and_format(text: str) -> None:
    assert_same(text)


class Stamp(str):
    """A str subclass, which the parse cache does not take."""


@pytest.mark.parametrize("text", [Stamp("2026-11-25T12:00:00.000000Z"), 20261125, None])
def test_what_is_not_a_str_reads_or_fails_as_parse_and_format(text: object) -> None:
    assert_same(text)  # type: ignore[arg-type]


def test_a_read_leaves_the_parse_cache_alone() -> None:
    before = _parse_time.cache_info().currsize
    read_time("2026-11-25T12:00:00.123456Z")
    read_time("2026-11-25T12:00:00.1+01:00")
    assert _parse_time.cache_info().currsize == before
