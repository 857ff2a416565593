"""Answers remembered for the very same immutable inputs, by identity. Pure core.

Agents ask the same questions of every service every round, yet a fold replaces only what
an event touches: a service's :class:`~warden.domain.signals.Signals` or the change
timeline stays the very same object until something about it arrives. A function of such
frozen values alone (not of the time) is answered once per object, not once per round.
The inputs are kept alive beside the answer, so an id is never reused while it is
remembered; equal but distinct inputs are simply asked again.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

P = ParamSpec("P")
R = TypeVar("R")


def by_identity(maxsize: int = 4096) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Remember a pure function's answers for the very same positional arguments.

    The answer is shared between callers: it must be immutable (a tuple, a frozen
    dataclass, None). At ``maxsize`` answers the memory starts afresh.
    """

    def wrap(func: Callable[P, R]) -> Callable[P, R]:
        found: dict[tuple[int, ...], tuple[tuple[Any, ...], R]] = {}

        @functools.wraps(func)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            if kwargs:
                return func(*args, **kwargs)
            key = tuple(map(id, args))
            hit = found.get(key)
            # The remembered inputs are alive, so no other live object has their ids: the
            # same ids are the very same objects, and need no check one by one.
            if hit is not None:
                return hit[1]
            answer = func(*args, **kwargs)
            if len(found) >= maxsize:
                found.clear()
            found[key] = (args, answer)
            return answer

        return call

    return wrap


__all__ = ["by_identity"]
