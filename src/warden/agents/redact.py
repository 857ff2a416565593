"""Redaction for model context: the pure one in warden.domain.redact. Decisioning plane."""

from warden.domain.redact import (
    DEFAULT_SETTINGS,
    PLACEHOLDER_PREFIX,
    Redaction,
    RedactionSettings,
    is_secret_key,
    luhn_valid,
    placeholder,
    redact,
    redact_text,
    shannon_entropy,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "PLACEHOLDER_PREFIX",
    "Redaction",
    "RedactionSettings",
    "is_secret_key",
    "luhn_valid",
    "placeholder",
    "redact",
    "redact_text",
    "shannon_entropy",
]
