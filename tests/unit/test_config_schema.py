"""warden.yaml's schema: every refusal names its line, path and fix; the JSON Schema agrees."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from warden.agents.model import ModelAgent
from warden.assembly import default_agents
from warden.audit.cosign import Cosigner
from warden.cli.main import app
from warden.config import WardenConfig, load_config, parse_config
from warden.config_errors import MAX_SHOWN
from warden.domain.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "examples" / "warden.yaml"
SERVICE = "services:\n  - {name: a, health: 'http://127.0.0.1:1/h', argv: [run]}\n"


def refused(tmp_path: Path, text: str | bytes) -> str:
    """The error a file with ``text`` gets."""
    path = tmp_path / "warden.yaml"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def test_the_example_has_the_documented_model_section_and_it_makes_the_agent() -> None:
    config = load_config(EXAMPLE)
    assert config.model["model"] == "gpt-4o-mini"
    assert not any(isinstance(a, ModelAgent) for a in default_agents(config))
    on = parse_config(
        {**yaml.safe_load(EXAMPLE.read_text()), "model": {**config.model, "enabled": True}},
        EXAMPLE.parent,
    )
    agents = default_agents(on)
    model = next(a for a in agents if isinstance(a, ModelAgent))
    assert (model.model, model.endpoint_url) == (
        "gpt-4o-mini",
        "http://127.0.0.1:8000/v1/chat/completions",
    )


def test_the_printed_json_schema_validates_the_example_and_refuses_a_typo() -> None:
    result = CliRunner().invoke(app, ["config", "schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    example_data = yaml.safe_load(EXAMPLE.read_text())
    assert list(validator.iter_errors(example_data)) == []
    typo = {**example_data, "servics": []}
    assert [e.message for e in validator.iter_errors(typo)] != []
    no_services = {k: v for k, v in example_data.items() if k != "services"}
    assert not validator.is_valid(no_services)


def test_config_check_prints_a_summary_or_every_error(tmp_path: Path) -> None:
    ok = CliRunner().invoke(app, ["config", "check", "-c", str(EXAMPLE)])
    assert ok.exit_code == 0
    assert "valid; 4 services, 3 configured actions" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(SERVICE + "probe: {jitter: 2}\nfailure_threshold: 0\n")
    result = CliRunner().invoke(app, ["config", "check", "-c", str(bad)])
    assert result.exit_code == 2
    assert "line 3: probe.jitter: 2 is out of range; use a value at most 0.5" in result.output
    assert "line 4: failure_threshold: expected a whole number >= 1, got 0" in result.output
    assert "Traceback" not in result.output


def test_errors_carry_the_yaml_line_the_path_and_the_fix(tmp_path: Path) -> None:
    text = "environment: prod\nservices:\n  - name: api\n    health: http://x/h\n    argv: python -m api\n"
    message = refused(tmp_path, text)
    assert message == (
        f"config error: {tmp_path / 'warden.yaml'} line 5: services[0].argv: give a list of"
        " arguments, not a shell string (e.g. [python, -m, myservice] instead of 'python -m api')"
    )


def test_every_error_is_listed_one_per_line_and_capped(tmp_path: Path) -> None:
    two = refused(tmp_path, SERVICE + "probe: {jitter: 2, timeout_s: 0}\n")
    assert len(two.splitlines()) == 2
    assert all(line.startswith("config error: ") for line in two.splitlines())
    many = SERVICE + "".join(f"unknown_{n}: 1\n" for n in range(MAX_SHOWN + 5))
    lines = refused(tmp_path, many).splitlines()
    assert len(lines) == MAX_SHOWN + 1
    assert lines[-1] == "config error: ... and 5 more"


@pytest.mark.parametrize(
    "text",
    [
        SERVICE + "probe: {interval_s: .nan}\n",
        SERVICE + "verification_timeout_s: .inf\n",
        SERVICE.replace("argv: [run]", "argv: [run], limits: {cpu: -.inf}"),
        SERVICE + "actions: {a: {adapter: nats, subject: x, body: {n: .nan}}}\n",
        SERVICE + "agents: {settings: {backlog: {threshold: .inf}}}\n",
    ],
)
def test_nan_and_infinity_are_refused_anywhere(tmp_path: Path, text: str) -> None:
    assert "NaN and infinite numbers are not allowed" in refused(tmp_path, text)


def test_nan_in_parsed_data_is_refused_too() -> None:
    raw = yaml.safe_load(SERVICE)
    with pytest.raises(ConfigError, match=r"services\[0\].desired.x: NaN"):
        parse_config({"services": [{**raw["services"][0], "desired": {"x": math.nan}}]}, Path("."))


def test_a_managed_service_needs_a_command(tmp_path: Path) -> None:
    empty = refused(tmp_path, SERVICE.replace("argv: [run]", "argv: []"))
    assert "line 2: services[0].argv: an empty command runs nothing" in empty
    blank = refused(tmp_path, SERVICE.replace("argv: [run]", "argv: ['']"))
    assert "services[0].argv: an empty command runs nothing" in blank
    managed = refused(tmp_path, SERVICE.replace("argv: [run]", "managed: true"))
    assert "services[0]: a managed service needs argv (or set managed: false)" in managed


def test_self_dependencies_and_cycles_are_refused(tmp_path: Path) -> None:
    itself = refused(tmp_path, SERVICE.replace("argv: [run]", "argv: [run], depends_on: [a]"))
    assert "services[0].depends_on[0]: 'a' depends on itself; remove it" in itself
    ring = "services:\n" + "".join(
        f"  - {{name: {n}, health: 'http://x/h', managed: false, depends_on: [{d}]}}\n"
        for n, d in (("a", "b"), ("b", "c"), ("c", "a"))
    )
    assert "line 2: services[0].depends_on: dependency cycle a -> b -> c -> a; break it" in (
        refused(tmp_path, ring)
    )
    chain = ring.replace("depends_on: [a]", "depends_on: []")
    assert load_config(_write(tmp_path, chain)).service("a").depends_on == ("b",)


def test_service_errors_point_at_the_right_entry_past_a_broken_one() -> None:
    entry = {"health": "http://x/h", "managed": False}
    raw = {"services": [7, {"name": "a", **entry}, {"name": "a", **entry, "depends_on": ["b"]}]}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, Path("."))
    lines = str(caught.value).splitlines()
    assert "config error: services[0]: expected a mapping of keys to values, got 7" in lines
    assert "config error: services[2].name: the name 'a' is used twice" in lines
    assert "config error: services[2].depends_on[0]: unknown service 'b' (known: a)" in lines


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ok.yaml"
    path.write_text(text)
    return path


def test_variables_are_interpolated_and_an_unset_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARDEN_TEST_ENV", "staging")
    monkeypatch.delenv("WARDEN_TEST_UNSET", raising=False)
    text = (
        SERVICE
        + "environment: ${WARDEN_TEST_ENV}\n"
        + "state_dir: ${WARDEN_TEST_UNSET:-state}/$$x\n"
        + "actions: {a: {adapter: http, url: 'https://h/{target}',"
        + " headers: {Authorization: 'Bearer ${WARDEN_TEST_UNSET}'}}}\n"
    )
    config = load_config(_write(tmp_path, text))
    assert config.environment == "staging"
    assert config.state_dir == tmp_path / "state" / "$x"
    # Header secrets stay references: the HTTP adapter reads them at each call.
    headers = config.adapters["actions"]["a"]["headers"]
    assert headers == {"Authorization": "Bearer ${WARDEN_TEST_UNSET}"}
    message = refused(tmp_path, SERVICE + "environment: ${WARDEN_TEST_UNSET}\n")
    assert "line 3: environment: ${WARDEN_TEST_UNSET} is not set; export it, or give a default" in (
        message
    )


def test_a_file_that_is_not_utf8_is_refused_with_the_byte_offset(tmp_path: Path) -> None:
    message = refused(tmp_path, SERVICE.encode() + b"environment: caf\xe9\n")
    offset = len(SERVICE.encode()) + len(b"environment: caf")
    assert f"not UTF-8 text (byte {offset}: b'\\xe9'); save the file as UTF-8" in message


def test_unknown_keys_suggest_the_closest_known_one(tmp_path: Path) -> None:
    message = refused(
        tmp_path, SERVICE.replace("argv: [run]", "argv: [run], tiers: gold") + "servics: []\n"
    )
    assert "line 2: services[0].tiers: unknown key 'tiers' (did you mean 'tier'?); known:" in (
        message
    )
    assert "line 3: servics: unknown key 'servics' (did you mean 'services'?)" in message
    nested = refused(tmp_path, SERVICE + "sources: {webhook: {insecure: true, prot: 1}}\n")
    assert "sources.webhook.prot: unknown key 'prot' (did you mean 'port'?)" in nested


@pytest.mark.parametrize("key", ["command", "comand", "timeout_s"])
def test_a_key_of_an_inner_section_typed_beside_it_names_that_section(
    tmp_path: Path, key: str
) -> None:
    # ``command`` belongs to a service's health, not to the service; ``domain`` only looks
    # alike.
    message = refused(tmp_path, SERVICE.replace("argv: [run]", f"argv: [run], {key}: [x]"))
    assert f"unknown key {key!r} (did you mean 'health.{key.replace('comand', 'command')}'?)" in (
        message
    )
    assert "did you mean 'domain'" not in message


def test_duplicate_keys_are_refused_with_both_lines(tmp_path: Path) -> None:
    message = refused(tmp_path, SERVICE + "environment: a\nprobe: {}\nenvironment: b\n")
    assert "environment: the key 'environment' is given twice (lines 3 and 5); keep one" in (
        message
    )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "sources: {webhook: {senders: {ci: {scheme: basic, secret_env: X}}}}",
            "sources.webhook.senders.ci.username: scheme basic needs a user name",
        ),
        (
            "sources: {webhook: {senders: {d: {scheme: hmac, secret: nope}}}}",
            "an hmac secret is whsec_ followed by base64",
        ),
        ("sources: {webhook: {port: 8088}}", "sources.webhook: no senders, so nobody could send"),
        ("sources: {nats: {user: u}}", "sources.nats: user and password go together"),
        ("sources: {kafak: {}}", "unknown source 'kafak'"),
        ("model: {endpoint: 'http://h', model: m, api_key: k}", "never put the API key"),
        ("model: {endpoint: 'ftp://h', model: m}", "model.endpoint: model endpoint 'ftp://h'"),
        ("model: {endpoint: 'http://h', model: m, max_steps: 50}", "model.max_steps: expected a"),
        (
            "actions: {a: {adapter: http, url: 'https://h/${X}'}}",
            "actions.a.url: ${...} secret references are allowed in header values only",
        ),
        ("actions: {a: {adapter: smtp}}", "actions.a.adapter: not an adapter kind"),
        ("actions: {a: {adapter: nats}}", "actions.a.subject: required; add it"),
        ("nats: {servers: [localhost]}", "nats.servers[0]: a URL like nats://host:4222"),
        ("agents: {settings: {drift: {grace: 1}}}", "agents.settings.drift: unknown setting"),
        ("agents: {settings: {mystery: {}}}", "agents.settings.mystery: unknown agent"),
        ("redact: {keep_original: [1]}", "redact.keep_original: expected true or false"),
        ("redact: {key_path: ' '}", "redact.key_path: must not be blank"),
        ("redact: {fields: [email, '']}", "redact.fields[1]: must not be empty"),
        ("audit: {witnesses: [{url: w, public_key: k}]}", "audit.witnesses[0].url: an http(s)"),
        ("audit: {publish_schema: Bad}", "audit.publish_schema: not a plain lower-case name"),
        ("store: {postgres: ''}", "store.postgres: give the PostgreSQL DSN"),
    ],
)
def test_every_section_is_checked_at_load(tmp_path: Path, section: str, message: str) -> None:
    assert message in refused(tmp_path, SERVICE + section + "\n")


WITNESS_KEY = Cosigner.generate("witness.example/w1").verifier.encode()


def test_the_sections_other_branches_add_are_accepted(tmp_path: Path) -> None:
    text = (
        SERVICE.replace("argv: [run]", "argv: [run], env: {MODE: fast, WORKERS: 4}")
        + "redact: {fields: [email, ssn], keep_original: false}\n"
        + "audit: {key_path: ~/.config/warden/audit.key, publish: 'postgresql://db/w',"
        + f" witnesses: [{{url: 'http://127.0.0.1:7380', public_key: '{WITNESS_KEY}'}}]}}\n"
    )
    config = load_config(_write(tmp_path, text))
    assert config.service("a").env == (("MODE", "fast"), ("WORKERS", "4"))
    assert config.redact_fields == ("email", "ssn")
    assert [w.url for w in config.audit.witnesses] == ["http://127.0.0.1:7380"]


# -- property: a mutated valid file loads or is refused, never anything else ---------------

LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [here]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*here, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*here, index)))
    return found


def _mutate(data: Any, path: tuple[Any, ...], action: str, leaf: Any, key: str) -> Any:
    if not path:
        return {**data, key: leaf} if isinstance(data, dict) and action == "add" else data
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        copy = dict(data)
        if not rest and action == "delete":
            copy.pop(head, None)
        elif not rest:
            copy[head] = leaf if action == "replace" else _mutate(copy[head], (), action, leaf, key)
        else:
            copy[head] = _mutate(copy[head], rest, action, leaf, key)
        return copy
    items = list(data)
    if not rest and action == "delete":
        del items[head]
    elif not rest:
        items[head] = leaf if action == "replace" else _mutate(items[head], (), action, leaf, key)
    else:
        items[head] = _mutate(items[head], rest, action, leaf, key)
    return items


VALID = yaml.safe_load(EXAMPLE.read_text())
PATHS = _paths(VALID)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(PATHS),
            st.sampled_from(["replace", "delete", "add"]),
            LEAVES,
            st.sampled_from(["extra", "services", "name", "argv", "${X}", "model"]),
        ),
        min_size=1,
        max_size=3,
    )
)
@example([((), "add", math.nan, "lease_ttl_s")])
@example([(("services", 0, "depends_on"), "replace", ["gateway"], "x")])
@example(
    [(("services", 0), "replace", 7, "x"), (("services", 2, "name"), "replace", "orders", "x")]
)
def test_a_mutated_valid_config_loads_or_raises_config_error(
    mutations: list[tuple[tuple[Any, ...], str, Any, str]],
) -> None:
    data: Any = VALID
    for path, action, leaf, key in mutations:
        try:
            data = _mutate(data, path, action, leaf, key)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed the place
    outcome: WardenConfig | ConfigError
    try:
        outcome = parse_config(data, Path("."))
    except ConfigError as exc:
        outcome = exc
    assert isinstance(outcome, WardenConfig) or str(outcome).startswith("config error: ")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0), st.binary(min_size=1, max_size=4))
@example(at=0, junk=b"\x00")  # the YAML reader refused it while being made
def test_a_corrupted_file_loads_or_raises_config_error(at: int, junk: bytes) -> None:
    text = EXAMPLE.read_bytes()
    at %= len(text)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "warden.yaml"
        path.write_bytes(text[:at] + junk + text[at:])
        outcome: WardenConfig | ConfigError
        try:
            outcome = load_config(path)
        except ConfigError as exc:
            outcome = exc
    assert isinstance(outcome, WardenConfig) or str(outcome).startswith("config error: ")


def test_the_promotion_section_is_typed_and_read(tmp_path: Path) -> None:
    path = tmp_path / "warden.yaml"
    path.write_text(
        SERVICE
        + "promotion:\n"
        + "  default: {min_shadow_proposals: 5, min_agreement_pct: 95}\n"
        + "  classes: {high: {max_wrong: 0, min_shadow_proposals: 40}, restart_service: {}}\n"
        + "  canary: {fraction: 0.25, services: [a]}\n"
        + "agents: {shadow: [capacity]}\n",
        encoding="utf-8",
    )
    config = load_config(path)
    policy = config.promotion
    assert (policy.default.min_shadow_proposals, policy.default.min_agreement_pct) == (5, 95.0)
    assert dict(policy.classes)["high"].min_shadow_proposals == 40
    assert (policy.canary.fraction, policy.canary.services) == (0.25, ("a",))
    assert config.shadow_agents == ("capacity",)


@pytest.mark.parametrize(
    ("section", "said"),
    [
        (
            "{canary: {services: [b]}}",
            "line 4: promotion.canary.services: unknown service 'b'; known: a",
        ),
        (
            "{default: {min_agreement_pct: 120}}",
            "line 4: promotion.default.min_agreement_pct:",
        ),
        (
            "{classes: {'not an action': {}}}",
            "an action class is a risk (low, medium, high) or an action name",
        ),
        ("{default: {max_wrongs: 0}}", "promotion.default.max_wrongs: unknown key"),
    ],
)
def test_a_bad_promotion_section_says_where_and_why(
    tmp_path: Path, section: str, said: str
) -> None:
    message = refused(tmp_path, SERVICE + "environment: prod\npromotion: " + section + "\n")
    assert said in message, message
