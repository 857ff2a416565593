"""Every golden history replays to the decisions it recorded; any change fails, readably.

When a change of behaviour is intended, re-record them (``make golden``) and review the
diff of tests/golden/*.jsonl.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.golden.history import RECORD_COMMAND, dump, explain, load, replay_golden
from tests.golden.scenarios import SCENARIOS
from warden.replay import is_input

BY_NAME = {s.name: s for s in SCENARIOS}


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_golden_history_replays_to_the_recorded_decisions(name: str, tmp_path: Path) -> None:
    scenario = BY_NAME[name]
    path = Path(__file__).parent / f"{name}.jsonl"
    if not path.exists():
        pytest.fail(f"no golden history {path.name}: record it with {RECORD_COMMAND}")
    golden = load(path)
    assert golden.config == scenario.config, (
        f"{path.name} was recorded with another configuration than the scenario's now;"
        f" re-record with {RECORD_COMMAND}"
    )
    assert golden.incidents, f"{path.name} recorded no incident"
    assert any(v.decisions or v.state == "escalated" for v in golden.incidents)
    report = replay_golden(golden, tmp_path)
    if report.differences:
        pytest.fail(explain(golden, report), pytrace=False)
    assert report.inputs == sum(1 for e in golden.events if is_input(e))


def test_every_golden_file_belongs_to_a_scenario() -> None:
    files = {p.stem for p in Path(__file__).parent.glob("*.jsonl")}
    assert files == set(BY_NAME), f"stray or missing golden files; re-record with {RECORD_COMMAND}"


def test_a_recording_is_the_same_every_time() -> None:
    # No wall-clock time and no random id reaches a golden file.
    texts = []
    for _ in range(2):
        with tempfile.TemporaryDirectory(prefix="warden-golden-") as directory:
            texts.append(dump(BY_NAME["drift"].record(Path(directory))))
    assert texts[0] == texts[1]
