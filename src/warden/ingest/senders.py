"""Webhook senders and their secrets, from configuration. Data plane (shell).

A sender is a name, a scheme (``bearer``, ``basic``, or ``hmac`` for Standard Webhooks
signatures), its secret and the Warden event types it is granted. Secrets come from an
environment variable (``secret_env``) or a file (``secret_file``); an inline ``secret``
is taken with a warning. :mod:`warden.ingest.auth` checks requests against senders.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warden.domain.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "SCHEMES",
    "SECRET_PREFIX",
    "Sender",
    "check_sender",
    "hmac_key",
    "read_secret",
    "sender_from_options",
    "senders_from_options",
    "type_list",
]

log = logging.getLogger(__name__)

SCHEMES = ("bearer", "basic", "hmac")
SECRET_PREFIX = "whsec_"
_SENDER_KEYS = {"scheme", "username", "secret", "secret_env", "secret_file", "allow_types"}


@dataclass(frozen=True, slots=True)
class Sender:
    """One authenticated sender.

    Attributes:
        name: Its name in configuration; recorded with every event it sends.
        scheme: ``bearer``, ``basic`` or ``hmac``.
        secret: The token, the password, or the HMAC key (decoded from ``whsec_``).
        username: The basic-auth user name.
        allow_types: Warden's own event types (``warden.*``) it may send.
    """

    name: str
    scheme: str
    secret: bytes = field(repr=False)
    username: str = ""
    allow_types: frozenset[str] = frozenset()


def hmac_key(text: str, where: str) -> bytes:
    """The key of a ``whsec_<base64>`` secret.

    Raises:
        ConfigError: When it is not base64 of at least 16 bytes.
    """
    encoded = text.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < 16:
        raise ConfigError(
            f"{where}: an hmac secret is whsec_ followed by base64 of at least 16 random bytes;"
            ' make one with: python -c "import base64,os;'
            " print('whsec_'+base64.b64encode(os.urandom(32)).decode())\""
        )
    return key


def read_secret(where: str, options: Mapping[str, Any], key: str = "secret") -> str:
    """The secret named by ``<key>_env`` (a variable), ``<key>_file`` or inline ``<key>``.

    Returns:
        The secret, stripped; empty when none of the three is given.

    Raises:
        ConfigError: When more than one is given, the variable is unset, or the file is
            unreadable or empty. An inline secret is taken with a warning.
    """
    given = [k for k in (key, f"{key}_env", f"{key}_file") if options.get(k) is not None]
    if not given:
        return ""
    if len(given) > 1:
        raise ConfigError(f"{where}: give {key} once, as {key}_env: VAR or {key}_file: PATH")
    if given[0] == f"{key}_env":
        name = str(options[given[0]])
        value = os.environ.get(name, "").strip()
        if not value:
            raise ConfigError(f"{where}.{given[0]}: ${name} is not set; export the secret")
        return value
    if given[0] == f"{key}_file":
        path = Path(str(options[given[0]])).expanduser()
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}.{given[0]}: cannot read {path}: {exc}") from None
        if not value:
            raise ConfigError(f"{where}.{given[0]}: {path} is empty")
        return value
    log.warning(
        "%s.%s is written in the configuration file; move it to %s_env or %s_file",
        where,
        key,
        key,
        key,
    )
    return str(options[key]).strip()


def type_list(where: str, value: object) -> frozenset[str]:
    """An ``allow_types`` option as a set of event types."""
    if value is None:
        return frozenset()
    if not isinstance(value, list | tuple) or not all(isinstance(t, str) and t for t in value):
        raise ConfigError(f"{where}: a list of event types, e.g. [warden.deploy.completed]")
    return frozenset(value)


def check_sender(where: str, options: Mapping[str, Any]) -> str:
    """Check a sender's options without reading its secret; returns its scheme.

    An inline ``secret`` is checked in full; one named by ``secret_env`` or ``secret_file``
    is read (and checked) only when the sender is made.

    Raises:
        ConfigError: When an option is unknown, missing or unusable.
    """
    unknown = sorted(set(options) - _SENDER_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown option {unknown[0]!r} (known: {sorted(_SENDER_KEYS)})")
    scheme = str(options.get("scheme", "")).lower()
    if scheme not in SCHEMES:
        raise ConfigError(f"{where}.scheme: one of {', '.join(SCHEMES)}, not {scheme or 'nothing'}")
    username = str(options.get("username", ""))
    if scheme == "basic" and (not username or ":" in username):
        raise ConfigError(f"{where}.username: scheme basic needs a user name (without ':')")
    if scheme != "basic" and username:
        raise ConfigError(f"{where}.username: only scheme basic has a user name")
    given = [k for k in ("secret", "secret_env", "secret_file") if options.get(k) is not None]
    if not given:
        raise ConfigError(f"{where}: no secret; add secret_env: VAR or secret_file: PATH")
    if len(given) > 1:
        raise ConfigError(f"{where}: give secret once, as secret_env: VAR or secret_file: PATH")
    if given == ["secret"]:
        _secret_bytes(where, scheme, str(options["secret"]).strip())
    type_list(f"{where}.allow_types", options.get("allow_types"))
    return scheme


def _secret_bytes(where: str, scheme: str, text: str) -> bytes:
    if scheme == "hmac":
        return hmac_key(text, where)
    if len(text) < 16:
        raise ConfigError(f"{where}: the secret is shorter than 16 characters; use a random one")
    return text.encode("utf-8")


def sender_from_options(name: str, options: Mapping[str, Any], where: str = "") -> Sender:
    """A sender from its configuration (``scheme``, the secret, ``username``, ``allow_types``).

    Raises:
        ConfigError: When an option is unknown or missing, or the secret is unusable.
    """
    where = where or f"senders.{name}"
    scheme = check_sender(where, options)
    text = read_secret(where, options)
    if not text:
        raise ConfigError(f"{where}: no secret; add secret_env: VAR or secret_file: PATH")
    secret = _secret_bytes(where, scheme, text)
    allow = type_list(f"{where}.allow_types", options.get("allow_types"))
    return Sender(name, scheme, secret, str(options.get("username", "")), allow)


def senders_from_options(where: str, options: object) -> list[Sender]:
    """Senders from a ``senders:`` mapping of name to options."""
    if options is None:
        return []
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: a mapping of sender name to its scheme and secret")
    made = []
    for name, sender in options.items():
        if not isinstance(sender, dict):
            raise ConfigError(f"{where}.{name}: a mapping (scheme, secret_env, ...)")
        made.append(sender_from_options(str(name), sender, f"{where}.{name}"))
    return made
