"""Snapshots of folded stream state, so a long stream folds from its latest one. Store adapter.

A snapshot is the JSON of a state folded from the first ``version`` events of a stream.
Both backends keep them in a table ``snapshots(stream, version, state)``, one per stream
(the newest); :func:`fold_stream` starts from it and reads only the events after it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypeVar

from warden.domain.errors import ValidationError
from warden.ports import Snapshot, SnapshotStore
from warden.store.records import decode_json

if TYPE_CHECKING:
    from collections.abc import Callable

    from warden.domain.events import Event

S = TypeVar("S")


def encode_state(stream: str, version: int, state: Any) -> str:
    """The JSON text of a snapshot state; refuses what JSON cannot hold exactly.

    Raises:
        ValidationError: the state is not JSON (sets, objects, NaN, ...) or ``version``
            is negative.
    """
    if version < 0:
        raise ValidationError(
            f"snapshot version {version} of stream {stream!r} is negative",
            field="version",
            fix="pass the number of events folded into the state",
        )
    try:
        return json.dumps(state, separators=(",", ":"), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"snapshot of stream {stream!r} is not JSON: {exc}",
            field="state",
            fix="convert the folded state to dicts, lists, strings, numbers, bools and None",
        ) from exc


def decode_state(text: str) -> Any:
    """The JSON values a stored snapshot state holds."""
    return decode_json(text)  # orjson, several times faster on the megabytes a fold keeps


def check_version(stream: str, version: int, stream_version: int) -> None:
    """Refuse a snapshot of events the stream does not have.

    Raises:
        ValidationError: ``version`` is past the end of the stream.
    """
    if version > stream_version:
        raise ValidationError(
            f"snapshot at version {version} of stream {stream!r}, which has only"
            f" {stream_version} events",
            field="version",
            fix="snapshot a state folded from events the store returned",
        )


def fold_stream(
    store: SnapshotStore,
    stream: str,
    initial: S,
    apply: Callable[[S, Event], S],
    *,
    to_json: Callable[[S], Any] | None = None,
    from_json: Callable[[Any], S] | None = None,
    snapshot_every: int = 100,
) -> tuple[S, int]:
    """Fold ``stream`` from its newest snapshot, and snapshot again when it grew enough.

    Args:
        store: where the events and snapshots are.
        stream: the stream to fold.
        initial: the state before the first event.
        apply: the fold step, a pure function of the state and the next event.
        to_json: the state as JSON values (default: the state is JSON already).
        from_json: the state from those JSON values (default: as they are).
        snapshot_every: save a snapshot when at least this many events were folded
            beyond the one loaded; 0 never saves.

    Returns:
        The folded state and the stream version it reflects.
    """
    snapshot = store.load_snapshot(stream)
    state, version = initial, 0
    if snapshot is not None:
        state = snapshot.state if from_json is None else from_json(snapshot.state)
        version = snapshot.version
    folded = 0
    for event in store.read_stream(stream, version):
        state = apply(state, event)
        folded += 1
    version += folded
    if snapshot_every and folded >= snapshot_every:
        store.save_snapshot(stream, version, state if to_json is None else to_json(state))
    return state, version


__all__ = [
    "Snapshot",
    "SnapshotStore",
    "check_version",
    "decode_state",
    "encode_state",
    "fold_stream",
]
