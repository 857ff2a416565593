"""Quality gates in front of the store: size, envelope, schema, clock skew. Data plane.

Input either becomes an accepted :class:`Event` in the store or lands in quarantine with
its reason; it is never dropped and never passed on unchecked.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from warden.domain.errors import ValidationError
from warden.domain.events import Event, format_time, read_time
from warden.domain.plain_json import printable, scan_event, valid_text
from warden.domain.redact import (
    STORED_SETTINGS,
    might_hold_secrets,
    redact,
    redact_text,
    strings_might_hold_secrets,
)
from warden.store.records import filled_event

if TYPE_CHECKING:
    from collections.abc import Iterable

    from warden.domain.redact import RedactionSettings
    from warden.ingest.originals import OriginalsStore
    from warden.ingest.registry import SchemaRegistry
    from warden.ports import Clock, EventStore

MAX_EVENT_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Admission:
    """The gate's answer: the stored event, or the quarantine id and reason."""

    event: Event | None
    quarantine_id: int = 0
    reason: str = ""


_KNOWN = frozenset({
    "specversion", "id", "source", "type", "time", "data", "subject",
    "datacontenttype", "schemaversion", "traceparent", "correlationid",
})  # fmt: skip


def event_from_cloudevent(raw: dict[str, Any], time: str | None = None) -> Event:
    """Build an Event from a structured-mode CloudEvents JSON object (already validated).

    ``time`` is ``raw["time"]`` already spelled as events spell it, when the caller has it.
    """
    # The subset test is the cheap one, and an event seldom carries extensions.
    unknown = () if _KNOWN.issuperset(raw) else raw.keys() - _KNOWN
    # Through the slot setters (as the store reads records): half the frozen constructor.
    return filled_event(
        raw["id"],
        raw["source"],
        raw["type"],
        read_time(raw["time"])[1] if time is None else time,
        raw["data"],
        raw.get("subject", ""),
        int(raw.get("schemaversion", 1)),
        raw.get("traceparent", ""),
        raw.get("correlationid", ""),
        "",
        0,
        {k: str(v) for k, v in raw.items() if k in unknown} if unknown else {},
    )


def quarantined_text(text: str, redaction: RedactionSettings) -> str:
    """What quarantine keeps of refused input: as received, less secrets and named fields.

    JSON is redacted as a value (so named fields go too) and written back; anything else,
    or JSON too deep or odd to take apart, is redacted as text. Always valid Unicode.
    """
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict | list):
            redacted = redact(parsed, redaction)
            if not redacted.total:
                return valid_text(text)
            return json.dumps(redacted.value, sort_keys=True)
    except (ValueError, TypeError, RecursionError):
        pass
    return redact_text(valid_text(text), redaction)


class IngestGate:
    """Checks input and stores it as accepted, or quarantines it with the reason."""

    def __init__(
        self,
        store: EventStore,
        registry: SchemaRegistry,
        clock: Clock,
        *,
        max_bytes: int = MAX_EVENT_BYTES,
        max_skew: timedelta = timedelta(minutes=5),
        redact_fields: Iterable[str] = (),
        originals: OriginalsStore | None = None,
    ) -> None:
        """Gate appends to ``store``; ``originals`` keeps what redaction replaced, sealed."""
        self.store = store
        self.originals = originals
        self.registry = registry
        self.clock = clock
        self.max_bytes = max_bytes
        self.max_skew = max_skew
        fields = frozenset(f.lower() for f in redact_fields)
        self.redaction = dataclasses.replace(STORED_SETTINGS, fields=fields)

    def check(self, raw: dict[str, Any]) -> Event:
        """Validate one CloudEvents object; raise :class:`ValidationError` with the reason."""
        # First: every later step (reasons quoting the input, the store, the audit log's
        # canonical UTF-8) needs plain JSON, and what is taken must be audited as it came.
        problem, strings = scan_event(raw)
        if problem is not None:
            raise ValidationError(problem[1], field=problem[0])
        self.registry.check_envelope(raw)
        try:
            moment, time = read_time(raw["time"])
        except ValueError as exc:
            raise ValidationError(
                str(exc), field="time", fix="use RFC 3339 with an offset"
            ) from exc
        skew = moment - self.clock.now()
        if skew > self.max_skew:
            raise ValidationError(
                f"time {raw['time']} is {skew.total_seconds():.0f} s in the future",
                field="time",
                fix=f"fix the sender's clock; at most {self.max_skew.total_seconds():.0f} s ahead",
            )
        self.registry.check_data(raw["type"], int(raw.get("schemaversion", 1)), raw["data"])
        event = event_from_cloudevent(raw, time)
        # Secrets and named fields never reach the store (nor the audit log, logs or a
        # model, which all read from it). Redaction is idempotent, so replay agrees.
        # The data's strings, gathered by the first check, answer for a clean event with no
        # extensions (the usual case) without a second walk.
        if strings is not None and not event.extensions:
            maybe = strings_might_hold_secrets(*strings, self.redaction)
        else:
            maybe = might_hold_secrets((event.data, event.extensions), self.redaction)
        if maybe:
            redacted = redact(event.data, self.redaction)
            extensions = redact(event.extensions, self.redaction)
            if redacted.total or extensions.total:
                if self.originals is not None:  # sealed, for admins only; never stored
                    kept = {"data": event.data, "extensions": dict(event.extensions)}
                    self.originals.keep(event.id, kept)
                event = dataclasses.replace(event, data=redacted.value, extensions=extensions.value)
        return event

    def admit(self, payload: bytes | str | dict[str, Any], stream: str, source: str) -> Admission:
        """Store ``payload`` in ``stream`` if it passes every gate; otherwise quarantine it."""
        if isinstance(payload, dict):
            try:
                text = json.dumps(payload, sort_keys=True, default=str)
            except (ValueError, RecursionError) as exc:  # circular, or an int too long
                text = f"(an object that cannot be written as JSON: {exc!s:.200})"
        elif isinstance(payload, bytes):
            text = payload.decode("utf-8", errors="replace")
        else:
            text = payload
        try:
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > self.max_bytes:
                raise ValidationError(
                    f"event is {size} bytes, the limit is {self.max_bytes}",
                    field="size",
                    fix="send smaller events or raise the limit",
                )
            raw = payload if isinstance(payload, dict) else json.loads(text)
            if not isinstance(raw, dict):
                raise ValidationError("the event is not a JSON object", field="(root)")
            event = self.check(raw)
        except (ValidationError, json.JSONDecodeError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, ValidationError) else f"not JSON: {exc!s:.200}"
            qid = self.store.quarantine(  # as received, less secrets (see Pipeline)
                source,
                redact_text(printable(reason, 4000), self.redaction),
                quarantined_text(text, self.redaction),
                format_time(self.clock.now()),
            )
            return Admission(None, qid, reason)
        (stored,) = self.store.append(stream, [event])
        return Admission(stored)
