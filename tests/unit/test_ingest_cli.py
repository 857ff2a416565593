"""`warden schema`, `warden quarantine` and `warden ingest jsonl` as a user types them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from tests.builders import probe_cloudevent, register
from warden.cli.ingest_cmd import ingest_app, parse_route
from warden.cli.quarantine_cmd import quarantine_app
from warden.cli.schema_cmd import schema_app
from warden.domain.errors import ConfigError
from warden.ingest.cloudevents import GenericRoute
from warden.store.sqlite import SQLiteEventStore

CAPTURE = Path(__file__).parents[1] / "fixtures" / "jsonl" / "capture.jsonl"
SCHEMA: dict[str, Any] = {
    "title": "A deploy finished",
    "type": "object",
    "required": ["service"],
    "properties": {"service": {"type": "string"}, "ok": {"type": "boolean"}},
}


def run(app: Any, *args: str, stdin: str | None = None, token: str = "") -> Result:
    return CliRunner().invoke(app, list(args), input=stdin, env={"WARDEN_TOKEN": token})


def person(state: Path, name: str, role: str) -> str:
    """Register ``name`` in the state's user registry; their token."""
    store = SQLiteEventStore(state / "events.db")
    try:
        return register(store, name, role).token
    finally:
        store.close()


def write_schema(directory: Path, name: str, schema: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(schema), encoding="utf-8")
    return path


# -- schema ---------------------------------------------------------------------------------


def test_schema_list_and_show(tmp_path: Path) -> None:
    write_schema(tmp_path, "acme.deploy@1.json", SCHEMA)
    result = run(schema_app, "list", "--schemas", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "warden.alert.firing" in result.output
    assert "acme.deploy" in result.output
    result = run(schema_app, "show", "warden.alert.resolved")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["properties"]["status"] == {"const": "resolved"}
    result = run(schema_app, "show", "acme.deploy", "--version", "1", "--schemas", str(tmp_path))
    assert json.loads(result.stdout)["title"] == "A deploy finished"
    result = run(schema_app, "show", "acme.nothing")
    assert result.exit_code == 2
    assert "no schema registered for acme.nothing" in result.output


def test_schema_check_accepts_a_compatible_version(tmp_path: Path) -> None:
    registered = tmp_path / "registered"
    write_schema(registered, "acme.deploy@1.json", SCHEMA)
    widened = {**SCHEMA, "required": []}
    candidate = write_schema(tmp_path / "new", "acme.deploy@2.json", widened)
    result = run(schema_app, "check", str(candidate), "--schemas", str(registered))
    assert result.exit_code == 0, result.output
    assert "acme.deploy@2 is backward compatible with acme.deploy@1" in result.output
    assert "[ok] /service: no longer required" in result.output
    first = write_schema(tmp_path / "new", "acme.other@1.json", SCHEMA)
    assert "the first version of acme.other" in run(schema_app, "check", str(first)).output
    same = write_schema(tmp_path / "same", "acme.deploy@1.json", SCHEMA)
    result = run(schema_app, "check", str(same), "--schemas", str(registered))
    assert "identical to the registered version" in result.output


def test_schema_check_refuses_a_breaking_change_with_a_diff(tmp_path: Path) -> None:
    registered = tmp_path / "registered"
    write_schema(registered, "acme.deploy@1.json", SCHEMA)
    narrowed = {**SCHEMA, "required": ["service", "ok"], "additionalProperties": False}
    candidate = write_schema(tmp_path / "new", "acme.deploy@2.json", narrowed)
    result = run(schema_app, "check", str(candidate), "--schemas", str(registered))
    assert result.exit_code == 1
    assert "acme.deploy@2 is NOT backward compatible with acme.deploy@1" in result.output
    assert "[breaking] /ok: newly required" in result.output
    assert "additionalProperties is now false" in result.output
    assert "[ok]" not in result.output  # only what the refusal rests on
    changed = write_schema(tmp_path / "changed", "acme.deploy@1.json", narrowed)
    result = run(schema_app, "check", str(changed), "--schemas", str(registered))
    assert result.exit_code == 1
    assert "name the file acme.deploy@2.json" in result.output


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad-name.json", "{}", "name it <event type>@<version>.json"),
        ("a.b@1.json", "{", "schema file"),
    ],
)
def test_schema_check_reports_unusable_files(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    result = run(schema_app, "check", str(path))
    assert result.exit_code == 2
    assert message in result.output


def test_a_broken_schema_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "x@1.json").write_text("{")
    result = run(schema_app, "list", "--schemas", str(tmp_path))
    assert result.exit_code == 2
    assert "x@1.json" in result.output


# -- ingest jsonl + quarantine ------------------------------------------------------------------


def test_jsonl_then_quarantine_list_show_and_replay(tmp_path: Path) -> None:
    state = tmp_path / ".warden"
    result = run(ingest_app, "jsonl", str(CAPTURE), "--state-dir", str(state), "--no-progress")
    assert result.exit_code == 0, result.output
    assert "3 accepted, 1 duplicate, 2 quarantined" in result.stdout
    assert "warden quarantine list" in result.output

    listed = run(quarantine_app, "list", "--state-dir", str(state))
    assert listed.exit_code == 0, listed.output
    assert "not JSON" in listed.output
    assert "jsonl:capture.jsonl:5" in listed.output

    store = SQLiteEventStore(state / "events.db")
    bad_json, unknown_type = store.quarantined()
    store.close()
    shown = run(quarantine_app, "show", str(unknown_type.id), "--state-dir", str(state))
    assert shown.exit_code == 0
    assert "warden.probe.unknown@1" in shown.output
    assert unknown_type.payload in shown.stdout

    # The fix: a schema for the unknown type; replay releases that item only.
    schemas = tmp_path / "schemas"
    write_schema(schemas, "warden.probe.unknown@1.json", {"type": "object"})
    replay = ("replay", "--all", "--state-dir", str(state), "--schemas", str(schemas))
    operator = person(state, "olga", "operator")
    viewer = person(state, "vic", "viewer")
    refused = run(quarantine_app, *replay)  # replay changes the log: who does it counts
    assert refused.exit_code == 2
    assert "no credential given" in refused.output
    refused = run(quarantine_app, *replay, token=viewer)
    assert refused.exit_code == 2
    assert "vic has the role viewer; quarantine.replay needs the role operator" in (
        " ".join(refused.output.split())
    )
    replayed = run(quarantine_app, *replay, token=operator)
    assert replayed.exit_code == 1
    assert f"{unknown_type.id}: accepted (cap-3); released" in replayed.output
    assert f"{bad_json.id}: still refused: not JSON" in replayed.output
    assert "replayed 2: 1 released, 1 still refused" in replayed.output
    store = SQLiteEventStore(state / "events.db")
    assert [q.id for q in store.quarantined()] == [bad_json.id]
    assert "cap-3" in [e.id for e in store.read_all()]
    store.close()
    single = run(
        quarantine_app, "replay", str(bad_json.id), "--state-dir", str(state), token=operator
    )
    assert single.exit_code == 1


def test_ingested_and_replayed_input_pass_the_configured_redaction(tmp_path: Path) -> None:
    # `warden ingest` and quarantine replay use the gate of the running Warden: the
    # configuration's redact.fields are redacted before anything is stored.
    state = tmp_path / "state"
    config = tmp_path / "warden.yaml"
    config.write_text(
        f"state_dir: {state}\nredact: {{fields: [customer_id]}}\n"
        "services:\n  - {name: payments, health: 'http://127.0.0.1:9/'}\n",
        encoding="utf-8",
    )
    secret = "cust-8f3a9c1d"
    data = {"service": "payments", "customer_id": secret}
    good = probe_cloudevent(id="r-1", type="acme.refund.done", data=data)
    late = probe_cloudevent(id="r-2", type="acme.refund.late", data=data)
    capture = tmp_path / "capture.jsonl"
    capture.write_text(json.dumps(good) + "\n" + json.dumps(late) + "\n", encoding="utf-8")
    schemas = tmp_path / "schemas"
    write_schema(schemas, "acme.refund.done@1.json", {"type": "object"})
    ingest = ("jsonl", str(capture), "-c", str(config), "--schemas", str(schemas))
    result = run(ingest_app, *ingest, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "1 accepted, 0 duplicate, 1 quarantined" in result.stdout
    write_schema(schemas, "acme.refund.late@1.json", {"type": "object"})
    operator = person(state, "olga", "operator")
    replay = ("replay", "--all", "-c", str(config), "--schemas", str(schemas))
    replayed = run(quarantine_app, *replay, token=operator)
    assert replayed.exit_code == 0, replayed.output
    store = SQLiteEventStore(state / "events.db")
    try:
        stored = {e.id: e.data for e in store.read_all()}
    finally:
        store.close()
    assert set(stored) >= {"r-1", "r-2"}
    for event_id in ("r-1", "r-2"):
        assert secret not in json.dumps(stored[event_id])
        assert str(stored[event_id]["customer_id"]).startswith("[REDACTED")


def test_jsonl_from_stdin(tmp_path: Path) -> None:
    state = tmp_path / ".warden"
    result = run(ingest_app, "jsonl", "-", "--state-dir", str(state), stdin=CAPTURE.read_text())
    assert result.exit_code == 0, result.output
    assert "-: 3 accepted, 1 duplicate, 2 quarantined" in result.stdout


def test_cli_argument_errors(tmp_path: Path) -> None:
    state = tmp_path / ".warden"
    assert "no such file" in run(ingest_app, "jsonl", str(tmp_path / "x")).output
    assert "no Warden state" in run(quarantine_app, "list", "--state-dir", str(state)).output
    run(ingest_app, "jsonl", "-", "--state-dir", str(state), stdin="")
    result = run(quarantine_app, "list", "--state-dir", str(state))
    assert "is empty" in result.output
    assert (
        "give one quarantine ID, or --all"
        in run(quarantine_app, "replay", "--state-dir", str(state)).output
    )
    assert (
        "no quarantined item 9"
        in run(quarantine_app, "show", "9", "--state-dir", str(state)).output
    )


def test_parse_route() -> None:
    assert parse_route("deploys=acme.deploy@2:service") == (
        "deploys",
        GenericRoute("acme.deploy", 2, "service"),
    )
    assert parse_route("x=acme.y") == ("x", GenericRoute("acme.y", 1, ""))
    for bad in ("nope", "=a.b", "x=a.b@two"):
        with pytest.raises(ConfigError, match="NAME=TYPE"):
            parse_route(bad)
