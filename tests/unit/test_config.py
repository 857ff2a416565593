"""warden.yaml: the example stays valid, and every mistake is named with its fix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from warden.config import load_config, parse_config
from warden.config_schema import WardenFile
from warden.domain.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "examples" / "warden.yaml"


def test_the_example_shows_every_section_of_the_configuration() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    shown = {m.group(1) for m in re.finditer(r"^(?:# ?)?([a-z_]+):", text, flags=re.MULTILINE)}
    missing = sorted(set(WardenFile.model_fields) - shown)
    assert missing == [], f"examples/warden.yaml lacks {missing} (set or commented out)"


def test_the_example_configuration_is_valid() -> None:
    config = load_config(EXAMPLE)
    assert [s.name for s in config.services] == ["gateway", "orders", "payments", "orders-db"]
    assert config.service("orders-db").health_url == "tcp://127.0.0.1:5432"
    assert config.autonomy == "supervised"
    assert config.autonomy_rules[0].domain == "edge"
    assert config.guardrails.per_target is not None
    assert config.guardrails.per_target.count == 3
    assert dict(config.approvals.approvers)["bob"] == ("sre", "lead")
    assert config.service("orders").desired == (("running", "true"), ("version", "1.4.2"))
    assert dict(config.agent_caps) == {"drift": "recommend"}
    assert (config.api_host, config.api_port) == ("127.0.0.1", 8400)
    assert config.relapse_window_s == 1800
    targets = config.notifications["targets"]
    assert {t["format"] for t in targets.values()} == {"slack", "teams", "webhook"}
    assert config.adapters["actions"]["rollback_deploy"]["adapter"] == "http"
    assert config.topology.domain_of("orders") == "shop"
    senders = config.sources["webhook"]["senders"]
    assert senders["deployer"]["allow_types"] == [
        "warden.deploy.completed",
        "warden.metric.sampled",
    ]


def base(**extra: Any) -> dict[str, Any]:
    return {"services": [{"name": "a", "health": "http://x/health", "argv": ["run"]}], **extra}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "services: list at least one service"),
        (base(autonomy="yolo"), "'yolo' is not one of observe, recommend"),
        ({"services": [{"name": "a", "health": "http://x", "argv": "python -m x"}]}, "not a shell string"),
        ({"services": [{"name": "a", "health": "ftp://x"}]}, "ftp:// is not a health check"),
        (base(servics=[]), "unknown key 'servics'"),
        (base(guardrails={"rate_limits": {"per_target": {"count": 0}}}), "expected a whole number >= 1"),
        (base(approvals={"fallback": "panic"}), "'panic' is not one of escalate, do_nothing"),
        (base(change_freezes=[{"start": "tomorrow", "end": "later"}]), "RFC 3339"),
        ({"services": [{"name": "a", "health": "http://x", "managed": False, "depends_on": ["b"]}]}, "unknown service 'b'"),
        (base(agents={"max_autonomy": {"x": "god"}}), "'god' is not one of"),
        (base(api={"port": 99999}), "api.port: expected a whole number <= 65535"),
        (base(api={"listen": 8400}), "unknown key 'listen'"),
        (base(relapse_window_s=-1), "relapse_window_s: -1 is out of range; use a value at least 0"),
    ],
)  # fmt: skip
def test_mistakes_are_named(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, Path("."))
    assert message in str(caught.value)


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("services: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    assert yaml.safe_load(EXAMPLE.read_text())["environment"] == "production"


def test_a_shadow_bundle_is_resolved_beside_the_config() -> None:
    raw = {
        "services": [{"name": "a", "health": "http://127.0.0.1:1/h", "managed": False}],
        "policy_dir": "policies",
        "shadow_policy_dir": "policies-next",
    }
    config = parse_config(raw, Path("/etc/warden"))
    assert config.policy_dir == Path("/etc/warden/policies")
    assert config.shadow_policy_dir == Path("/etc/warden/policies-next")
    assert parse_config({**raw, "shadow_policy_dir": None}, Path(".")).shadow_policy_dir is None


def test_the_store_section() -> None:
    base = {"services": [{"name": "a", "health": "http://127.0.0.1:1/h", "managed": False}]}
    assert parse_config(base, Path(".")).store_dsn == ""
    shared = parse_config(
        {**base, "store": {"postgres": "postgresql://w@db/warden", "schema": "prod"}}, Path(".")
    )
    assert (shared.store_dsn, shared.store_schema) == ("postgresql://w@db/warden", "prod")
    for bad, message in (
        ("postgresql://db", "expected a mapping"),
        ({"postgres": ""}, "give the PostgreSQL DSN"),
        ({"postgres": "postgresql://db", "schema": "Bad-Name"}, "not a plain lower-case name"),
        ({"postgres": "postgresql://db", "pool": 3}, "pool"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_config({**base, "store": bad}, Path("."))


def test_the_api_is_off_unless_a_port_is_given() -> None:
    assert parse_config(base(), Path(".")).api_port == 0
    served = parse_config(base(api={"host": "0.0.0.0", "port": 9000}), Path("."))
    assert (served.api_host, served.api_port) == ("0.0.0.0", 9000)
