"""Start-up from snapshots: the runtime's fold resumes from its newest snapshot. Runtime.

The runtime folds the whole log, in global order, into one state (health, controls,
incidents, ...). Every ``every`` events it keeps that state, with the global position it
reflects, as a snapshot; a restart loads it and folds only the events after it, to the
very same state a fold from position 0 gives. The snapshot of a log-wide fold is kept
under a name no stream has, at stream version 0, with its position inside; the name
holds a digest of the state before any event (the configured autonomy rules), so a
changed configuration starts from the log, not from a state its old one folded.
A snapshot the code cannot read (another version kept it) is ignored with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from warden.domain.errors import WardenError
from warden.domain.jsonstate import Memo, from_json, to_json
from warden.ports import SnapshotStore

if TYPE_CHECKING:
    from warden.ports import EventStore

log = logging.getLogger(__name__)

SNAPSHOT_PREFIX = "$runtime-fold:"
# Bump when what the fold makes of the same events changes: a snapshot kept by the older
# code would then differ from a fold from position 0 (a changed set of fields is caught).
FORMAT = 2
# Keeping one costs about 0.1 s per 1,000 incidents in the state (the JSON of the unchanged
# ones is reused, but written again); every 50,000 events keeps that well below the fold's
# own cost, and a restart folds at most that many events after the snapshot.
DEFAULT_SNAPSHOT_EVERY = 50_000


class Positioned(Protocol):
    """A state folded from the log up to a global position."""

    position: int


S = TypeVar("S", bound=Positioned)


def snapshot_stream(initial: Any) -> str:
    """The name the snapshots of a fold that starts from ``initial`` are kept under."""
    text = json.dumps(to_json(initial), sort_keys=True, separators=(",", ":"))
    return SNAPSHOT_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:16]


class FoldSnapshots(Generic[S]):
    """Where a log-wide fold resumes from, and when its state is kept again."""

    def __init__(self, store: EventStore, initial: S, every: int = DEFAULT_SNAPSHOT_EVERY) -> None:
        """Snapshots of folds of ``store`` that start from ``initial``.

        Args:
            store: the event log; a store without snapshots always folds from the start.
            initial: the state before the first event (not changed here).
            every: keep a snapshot each time this many events were folded since the
                last one kept or loaded; 0 never keeps one (a kept one is still loaded).
        """
        self.store = store
        self.every = every
        self.stream = snapshot_stream(initial)
        self._initial = initial
        self._kept_at = 0
        self._memo = Memo()

    def resume(self) -> S:
        """The state of the newest usable snapshot, or ``initial`` when there is none."""
        store = self.store
        if not isinstance(store, SnapshotStore):
            return self._initial
        kept = store.load_snapshot(self.stream)
        if kept is None:
            return self._initial
        try:
            state = self._read(kept.state)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning(
                "snapshot %s not used, folding the log from the start: %s", self.stream, exc
            )
            return self._initial
        self._kept_at = state.position
        return state

    def _read(self, body: Any) -> S:
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            found = body.get("format") if isinstance(body, dict) else body
            raise ValueError(f"format {found!r}, this version reads format {FORMAT}")
        state = from_json(body["state"], memo=self._memo)  # the next keep reuses it
        if type(state) is not type(self._initial):
            raise ValueError(f"it holds a {type(state).__name__}")
        if not 0 <= state.position <= self.store.head() or state.position != body["position"]:
            raise ValueError(
                f"its position {state.position} is not in the log (head {self.store.head()})"
            )
        return state

    def keep_if_due(self, state: S) -> bool:
        """Keep ``state`` when ``every`` events were folded since the last one; True if kept.

        Call it only where ``state`` is the fold of the log up to ``state.position`` and
        nothing folded waits for the loop to act on it. A failure to keep one is logged,
        never raised: the loop goes on, and tries again ``every`` events later.
        """
        store = self.store
        if self.every <= 0 or state.position - self._kept_at < self.every:
            return False
        if not isinstance(store, SnapshotStore):
            return False
        self._kept_at = state.position
        try:
            body = {
                "format": FORMAT,
                "position": state.position,
                "state": to_json(state, self._memo),
            }
            store.save_snapshot(self.stream, 0, body)
        except (WardenError, TypeError) as exc:
            log.warning("snapshot at position %d not kept: %s", state.position, exc)
            return False
        return True


__all__ = [
    "DEFAULT_SNAPSHOT_EVERY",
    "FORMAT",
    "SNAPSHOT_PREFIX",
    "FoldSnapshots",
    "snapshot_stream",
]
