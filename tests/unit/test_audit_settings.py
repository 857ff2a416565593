"""The ``audit`` section of warden.yaml: key path, witnesses, publication store."""

from __future__ import annotations

from pathlib import Path

import pytest

from warden.audit.cosign import Cosigner
from warden.audit.settings import AuditSettings, parse_audit
from warden.domain.errors import ConfigError

WITNESS = Cosigner.generate("witness.example/w1").verifier.encode()


def test_an_empty_section_keeps_the_defaults() -> None:
    assert parse_audit({}, Path("/etc/warden")) == AuditSettings()


def test_a_full_section() -> None:
    settings = parse_audit(
        {
            "key_path": "keys/audit.key",
            "witnesses": [{"url": "http://127.0.0.1:7380/", "public_key": WITNESS}],
            "publish": " postgresql://db/warden ",
            "publish_schema": "audit",
        },
        Path("/etc/warden"),
    )
    assert settings.key_path == Path("/etc/warden/keys/audit.key")
    assert settings.witnesses[0].url == "http://127.0.0.1:7380"
    assert settings.witnesses[0].key.encode() == WITNESS
    assert (settings.publish_dsn, settings.publish_schema) == ("postgresql://db/warden", "audit")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"keypath": "x"}, "unknown key 'keypath'"),
        ({"key_path": ""}, "audit.key_path: give a file path"),
        ({"witnesses": {"url": "x"}}, "expected a list"),
        ({"witnesses": [{"url": "http://w"}]}, r"audit.witnesses\[0\]: expected"),
        ({"witnesses": [{"url": "ftp://w", "public_key": WITNESS}]}, "not an http"),
        ({"witnesses": [{"url": "http://w", "public_key": "x+y+z"}]}, "public_key: witness key"),
        ({"publish": 5}, "audit.publish: give a PostgreSQL DSN"),
        ({"publish_schema": "Bad-Name"}, "not a plain lower-case name"),
    ],
)
def test_mistakes_get_one_line_with_the_fix(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_audit(raw, Path("."))
