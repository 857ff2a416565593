"""The scenario loader: every library scenario loads; each kind of mistake gets a precise error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.builders import LIBRARY
from warden.sim.format import json_schema
from warden.sim.loader import ScenarioError, dotted, find, load, parse

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "src/warden/sim/scenario.schema.json"

MINIMAL = """
version: 1
name: tiny
title: a tiny scenario
fault_class: process_crash
topology:
  services: [{name: api}, {name: db, kind: datastore}]
faults:
  - {id: boom, at: 10, kind: crash, target: api}
responses:
  - {action: restart_service, target: api, effect: fixes}
expect:
  decision: act
  actions: [{action: restart_service, target: api}]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse(text, "s.yaml")
    return [str(p) for p in caught.value.problems]


def test_every_library_scenario_loads_and_there_are_enough() -> None:
    files = find(LIBRARY)
    assert len(files) >= 30
    loaded = [load(f) for f in files]
    assert len({s.name for s in loaded}) == len(loaded)
    decoys = [s for s in loaded if "decoy" in s.tags]
    assert len(decoys) * 3 >= len(loaded)
    assert any(s.expect.decision == "no_action" for s in loaded)


def test_the_shipped_schema_is_the_generated_one() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema()


def test_a_minimal_scenario_loads() -> None:
    scenario = parse(MINIMAL)
    assert scenario.root_causes() == ["boom"]
    assert scenario.owner_of("api") == "api"


def test_yaml_syntax_errors_name_the_line() -> None:
    (found,) = problems("version: 1\nname: [unclosed\n")
    assert found.startswith("s.yaml: line ")
    assert "not valid YAML" in found


def test_a_document_that_is_not_a_mapping() -> None:
    (found,) = problems("- just\n- a list\n")
    assert "not a mapping" in found and "version: 1" in found


def test_an_unsupported_version() -> None:
    (found,) = problems(MINIMAL.replace("version: 1", "version: 2"))
    assert found.startswith("s.yaml: version: unsupported version 2")


def test_a_missing_field_names_its_path() -> None:
    (found,) = problems(MINIMAL.replace("  - {id: boom, at: 10,", "  - {id: boom,"))
    assert found == "s.yaml: faults[0].at: a required field is missing; fix: add it"


def test_an_unknown_field_names_its_path() -> None:
    (found,) = problems(MINIMAL.replace("kind: crash,", "kind: crash, colour: red,"))
    assert found.startswith("s.yaml: faults[0].colour: unknown field; fix: remove it")


def test_a_wrong_type_says_what_was_expected() -> None:
    (found,) = problems(MINIMAL.replace("at: 10", "at: soon"))
    assert found.startswith("s.yaml: faults[0].at: ")
    assert "number" in found and "'soon'" in found


def test_a_value_outside_its_choices_lists_them() -> None:
    (found,) = problems(MINIMAL.replace("kind: crash", "kind: explode"))
    assert found.startswith("s.yaml: faults[0].kind: ")
    assert "'crash'" in found and "use one of the values listed" in found


def test_an_incomplete_effect_says_what_it_needs() -> None:
    text = MINIMAL.replace(
        "target: api}\nresponses", "target: api, effects: [{service: api, probe: http}]}\nresponses"
    )
    (found,) = problems(text)
    assert found.startswith("s.yaml: faults[0].effects[0]: probe 'http' needs a code")


def test_a_signal_holds_exactly_one_kind() -> None:
    text = MINIMAL + "signals:\n  - {at: 5}\n"
    (found,) = problems(text)
    assert found.startswith("s.yaml: signals[0]: a signal holds exactly one of")


def test_cross_references_are_checked() -> None:
    text = MINIMAL.replace("target: api}\nresponses", "target: apl}\nresponses").replace(
        "effect: fixes}", "effect: fixes, faults: [bang]}"
    )
    found = problems(text)
    assert "s.yaml: faults[0].target: unknown target 'apl'" in found[0]
    assert any("responses[0].faults[0]: unknown fault 'bang'" in p for p in found)


def test_unknown_actions_and_patterns() -> None:
    text = MINIMAL.replace(
        "action: restart_service, target: api, effect", "action: reboot, target: api, effect"
    )
    text += "  forbidden: [nuke_*]\n"
    found = problems(text)
    assert any(p.startswith("s.yaml: responses[0].action: unknown action 'reboot'") for p in found)
    assert any("expect.forbidden[0]: pattern 'nuke_*' matches no action" in p for p in found)


def test_an_alert_needs_the_labels_warden_reads() -> None:
    text = MINIMAL + "signals:\n  - {at: 5, alert: {labels: {severity: page}}}\n"
    found = problems(text)
    assert any("signals[0].alert.labels: no alertname label" in p for p in found)
    assert any("no service, job or instance label" in p for p in found)


def test_a_fault_after_the_end() -> None:
    (found,) = problems(MINIMAL.replace("at: 10", "at: 5000"))
    assert "faults[0].at: 5000 s is after the end of the scenario (900 s)" in found


def test_missing_files_and_empty_directories(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such file"):
        find(tmp_path / "nope.yaml")
    with pytest.raises(ScenarioError, match=r"no \*.yaml scenario"):
        find(tmp_path)


def test_dotted_paths() -> None:
    assert dotted(("faults", 2, "at")) == "faults[2].at"
    assert dotted(("expect", "alternatives", 0, 1, "action")) == "expect.alternatives[0][1].action"


def test_the_documented_example_loads() -> None:
    text = (LIBRARY.parent / "docs" / "scenarios.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    example = next(b for b in blocks if "\nname: " in b)  # the scenario, not a baseline file
    scenario = parse(example, "docs/scenarios.md")
    assert scenario.name == "feature-flag-change"
    assert {s.kind for s in scenario.topology.services} == {"stateless", "proxy"}
