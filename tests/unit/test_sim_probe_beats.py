"""The fleet's probe schedule always moves simulated time forward."""

from __future__ import annotations

import math

from hypothesis import assume, example, given
from hypothesis import strategies as st

from warden.sim.fleet import until_next_beat


def test_the_next_beat_is_on_the_schedule() -> None:
    assert until_next_beat(12.0, 1.0, 5.0) == 4.0  # beats at 1, 6, 11, 16
    assert until_next_beat(11.0, 1.0, 5.0) == 5.0  # on a beat: the next one


@given(
    now=st.floats(min_value=0, max_value=60 * 86_400, allow_nan=False),
    start=st.floats(min_value=0, max_value=30, exclude_max=True),
    interval=st.sampled_from([1.0, 2.5, 5.0, 10.0, 15.0, 30.0]),
)
# Rounding put this instant on a beat: the delay came out 0.0 and the probe of a
# 100-service fleet repeated at one instant forever.
@example(now=65537.54667312001, start=2.5466731200200448, interval=5.0)
def test_time_always_moves_forward(now: float, start: float, interval: float) -> None:
    assume(start < interval)
    delay = until_next_beat(now, start, interval)
    assert now + delay > now
    assert delay <= interval * (1 + 1e-9) + 1e-9
    beats = (now + delay - start) / interval
    assert math.isclose(beats, round(beats), abs_tol=1e-6)
