"""Posts a demo process's own signals (deploys, error rates, failed batches) to Warden. Edge (demo).

A demo service plays the part of its deploy pipeline and its monitoring: it sends
CloudEvents to Warden's webhook with a bearer token taken from ``WARDEN_REPORT_TOKEN``.
A report that cannot be delivered is dropped with one line on stderr; the service goes on.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

__all__ = ["TOKEN_ENV", "Reporter"]

TOKEN_ENV = "WARDEN_REPORT_TOKEN"
"""The variable holding the bearer token a demo process sends its reports with."""


class Reporter:
    """Sends one CloudEvent per call to ``url`` (Warden's ``/v1/events``)."""

    def __init__(self, url: str | None, name: str, token: str | None = None) -> None:
        """Report as ``demo/<name>``; with no ``url`` every report is dropped silently."""
        self.url = url
        self.name = name
        self.token = token if token is not None else os.environ.get(TOKEN_ENV, "")
        self.sent = 0
        self.dropped = 0

    def send(self, type_: str, data: dict[str, Any]) -> bool:
        """Post one event; True when Warden took it (2xx)."""
        if not self.url:
            return False
        event = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": f"demo/{self.name}",
            "type": type_,
            "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "data": data,
        }
        request = urllib.request.Request(
            self.url,
            data=json.dumps(event).encode(),
            method="POST",
            headers={
                "Content-Type": "application/cloudevents+json",
                "Authorization": f"Bearer {self.token}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=2.0) as reply:
                ok = bool(200 <= reply.status < 300)
        except (urllib.error.URLError, OSError) as exc:
            sys.stderr.write(f"{self.name}: report {type_} not delivered: {exc}\n")
            ok = False
        if ok:
            self.sent += 1
        else:
            self.dropped += 1
        return ok
