"""The ``audit`` section of warden.yaml: key path, witnesses, publication store. Audit plane.

```yaml
audit:
  key_path: ~/.config/warden/audit.key         # default; outside the state directory
  witnesses:                                    # C2SP tlog-witness servers
    - {url: "http://127.0.0.1:7380", public_key: "witness.example/w1+1a2b3c4d+BA..."}
  publish: "postgresql://warden@db:5432/warden" # a second store for signed checkpoints
  publish_schema: warden
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warden.audit.cosign import CosignatureVerifier
from warden.domain.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

KEYS = {"key_path", "witnesses", "publish", "publish_schema"}


@dataclass(frozen=True, slots=True)
class WitnessConfig:
    """One witness: where to submit checkpoints, and its cosignature key."""

    url: str
    key: CosignatureVerifier


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """Where the signing key is, which witnesses cosign, where checkpoints are published."""

    key_path: Path | None = None
    witnesses: tuple[WitnessConfig, ...] = ()
    publish_dsn: str = ""
    publish_schema: str = "warden"


def parse_audit(raw: Mapping[str, Any], base: Path) -> AuditSettings:
    """Check the ``audit`` section; ``base`` resolves a relative key path.

    Raises:
        ConfigError: an unknown key or a malformed value, with the fix.
    """
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise ConfigError(f"audit: unknown key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})")
    key_path = raw.get("key_path")
    if key_path is not None and (not isinstance(key_path, str) or not key_path.strip()):
        raise ConfigError("audit.key_path: give a file path, e.g. ~/.config/warden/audit.key")
    witnesses = []
    listed = raw.get("witnesses") or []
    if not isinstance(listed, list):
        raise ConfigError("audit.witnesses: expected a list of {url, public_key}")
    for n, item in enumerate(listed):
        where = f"audit.witnesses[{n}]"
        if not isinstance(item, dict) or set(item) != {"url", "public_key"}:
            raise ConfigError(f"{where}: expected {{url: http://host:port, public_key: KEY}}")
        url = str(item["url"]).rstrip("/")
        if not re.match(r"https?://[^/\s]+", url):
            raise ConfigError(f"{where}.url: {url!r} is not an http(s) URL")
        try:
            key = CosignatureVerifier.parse(str(item["public_key"]))
        except ConfigError as exc:
            raise ConfigError(f"{where}.public_key: {exc}") from None
        witnesses.append(WitnessConfig(url, key))
    dsn = raw.get("publish", "")
    if not isinstance(dsn, str):
        raise ConfigError("audit.publish: give a PostgreSQL DSN, e.g. 'postgresql://db/warden'")
    schema = raw.get("publish_schema", "warden")
    if not isinstance(schema, str) or not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
        raise ConfigError(f"audit.publish_schema: {schema!r} is not a plain lower-case name")
    return AuditSettings(
        key_path=(base / Path(key_path).expanduser()) if key_path else None,
        witnesses=tuple(witnesses),
        publish_dsn=dsn.strip(),
        publish_schema=schema,
    )
