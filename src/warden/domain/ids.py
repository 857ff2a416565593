"""Deterministic identifiers derived from content, so replay yields the same ids. Pure core."""

from __future__ import annotations

import hashlib


def derived_id(*parts: str) -> str:
    """A stable 32-hex-digit id from the parts that make a thing unique."""
    # surrogatepass: a part may come from hostile input holding a lone surrogate, and an id
    # must still be derived (the input is refused later, with its reason, not crashed on).
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:32]


def incident_stream(incident_id: str) -> str:
    """The event stream that holds one incident's lifecycle."""
    return f"incident-{incident_id}"


def service_stream(service: str) -> str:
    """The event stream that holds one service's observations."""
    return f"service-{service}"


def traceparent_for(incident_id: str) -> str:
    """A W3C traceparent whose trace id is derived from the incident id."""
    span = derived_id("span", incident_id)[:16]
    return f"00-{derived_id('trace', incident_id)}-{span}-01"
