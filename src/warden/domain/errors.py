"""The one error tree of Warden. Pure core (domain).

```
WardenError
├── ValidationError       bad input; carries the field and the fix
├── ConfigError           a configuration or policy file is wrong; says where and how to fix
├── PolicyDenied          carries the reasons
├── ConcurrencyConflict   optimistic write lost; caller re-reads
├── InvalidTransition     an event does not apply to an incident in its current state
├── AuditVerificationError the audit log does not verify; names the first bad entry
├── StoreDamaged          a store file is not a readable database; names the file
├── SourceStopped         a connector stopped (could not listen, lost its input); says why
├── TemporaryError(delay) retry later
└── PermanentError        do not retry; compensate and escalate
```
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


class WardenError(Exception):
    """Root of every error Warden raises on purpose."""


class ValidationError(WardenError):
    """Input did not validate; ``field`` says where and ``fix`` what to do."""

    def __init__(self, message: str, *, field: str = "", fix: str = "") -> None:
        self.field = field
        self.fix = fix
        text = message if not field else f"{field}: {message}"
        super().__init__(f"{text} ({fix})" if fix else text)


class ConfigError(WardenError):
    """A configuration or policy file is wrong."""


class PolicyDenied(WardenError):
    """The control plane refused a step; ``reasons`` says which policies decided."""

    def __init__(self, message: str, reasons: tuple[str, ...] = ()) -> None:
        self.reasons = reasons
        super().__init__(message)


class ConcurrencyConflict(WardenError):
    """An optimistic append lost against another writer: re-read the stream and retry."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        self.stream = stream
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream!r} is at version {actual}, the append expected {expected}"
        )


class InvalidTransition(WardenError):
    """An event does not apply to an incident in its current state."""


class AuditVerificationError(WardenError):
    """The audit log does not verify; ``index`` is the first bad entry (or -1)."""

    def __init__(self, message: str, index: int = -1) -> None:
        self.index = index
        super().__init__(message)


class StoreDamaged(WardenError):
    """A store file is not a database, or is truncated or damaged; the message names it."""


class SourceStopped(WardenError):
    """A connector stopped while Warden runs, so input would go unheard; says which and why."""


class TemporaryError(WardenError):
    """A failure worth retrying after ``delay`` seconds."""

    def __init__(self, message: str, delay: float = 1.0) -> None:
        self.delay = delay
        super().__init__(message)


class PermanentError(WardenError):
    """A failure not worth retrying: compensate and escalate."""


def closest(word: str, known: Iterable[str]) -> str | None:
    """The known name a mistyped ``word`` most likely meant, or None when none is close.

    Case is ignored; a candidate must share most of its letters with ``word`` (difflib's
    ratio of at least 0.6) and, of two equally close, the one of nearer length wins.
    """
    names = sorted(set(known))
    lowered = {n.lower(): n for n in names}
    if word.lower() in lowered:
        return lowered[word.lower()]
    scored = [(difflib.SequenceMatcher(None, word.lower(), n.lower()).ratio(), n) for n in names]
    good = [(r, -abs(len(n) - len(word)), n) for r, n in scored if r >= _CLOSE]
    return max(good)[2] if good else None


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or ``""``: every hint says it so."""
    found = closest(word, known)
    return f" (did you mean {found!r}?)" if found is not None else ""


_CLOSE = 0.6
