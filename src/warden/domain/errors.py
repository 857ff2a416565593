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
