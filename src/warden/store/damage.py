"""Turns SQLite's "not a database" and "malformed" faults into one error naming the file. Store.

A damaged, truncated or foreign ``events.db`` shows itself on whichever call first reads
the bad page; :func:`names_damage` wraps every public method of a store class so each
such fault reaches the user as :class:`StoreDamaged` with the file and what to do.
"""

from __future__ import annotations

import functools
import sqlite3
from typing import TYPE_CHECKING, Any, TypeVar

from warden.domain.errors import StoreDamaged

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


def damaged(path: object, exc: sqlite3.DatabaseError) -> StoreDamaged:
    """The error for ``exc`` raised while reading or writing the database at ``path``."""
    return StoreDamaged(
        f"{path} cannot be read as a Warden store ({exc}); restore it from a backup, or"
        " move it aside to start a new one"
    )


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    # A busy or locked database is contention, not damage; those keep their own handling.
    text = str(exc).lower()
    return not ("locked" in text or "busy" in text)


def _wrap(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise
            raise damaged(getattr(self, "path", "the store"), exc) from None

    return call


def names_damage(cls: type[T]) -> type[T]:
    """Class decorator: public methods (and ``__init__``) raise :class:`StoreDamaged`."""
    for name, member in list(vars(cls).items()):
        if callable(member) and (name == "__init__" or not name.startswith("_")):
            setattr(cls, name, _wrap(member))
    return cls
