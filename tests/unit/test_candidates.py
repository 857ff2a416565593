"""What a candidate is: its kind, name and the version it already carries, and how it goes live."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.builders import frozen_restarts_bundle
from warden.config import ServiceConfig, WardenConfig
from warden.domain.errors import ValidationError
from warden.governance.policy import PolicyBundle
from warden.runbooks.loader import load_runbooks
from warden.sim.candidate import STAGED, find_candidates

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "runbooks"
AGENT = """\
class Watcher:
    name = "{name}"
    handles = frozenset()
    priority = 0

    def detect(self, world):
        return []

    def propose(self, incident, world):
        return None
"""


def config(tmp_path: Path, runbooks: Path | None = None) -> WardenConfig:
    service = ServiceConfig(name="api", health_url="http://127.0.0.1:9/health", managed=False)
    return WardenConfig(services=(service,), state_dir=tmp_path / "state", runbooks_dir=runbooks)


def test_a_runbook_directory_gives_one_candidate_per_runbook_with_its_own_version() -> None:
    found = find_candidates(str(EXAMPLES))
    loaded = {r.name: r.version for r in load_runbooks(EXAMPLES).runbooks}
    assert {(c.kind, c.name, c.version) for c in found} == {
        ("runbook", name, version) for name, version in loaded.items()
    }
    (one,) = find_candidates(str(EXAMPLES / "restart-on-oom.yaml"))
    assert one.version == loaded["restart-on-oom"]


def test_a_runbook_joins_the_live_ones_in_place_of_its_namesake(tmp_path: Path) -> None:
    live = tmp_path / "live"
    live.mkdir()
    for name in ("restart-on-oom.yaml", "rollback-on-errors.yaml"):
        (live / name).write_bytes((EXAMPLES / name).read_bytes())
    (candidate,) = find_candidates(str(EXAMPLES / "restart-on-oom.yaml"))
    changed = candidate.configure(config(tmp_path, live), tmp_path / "scratch")
    assert changed.runbooks_dir == tmp_path / "scratch" / STAGED
    serving = load_runbooks(changed.runbooks_dir)
    assert sorted(r.name for r in serving.runbooks) == ["restart-on-oom", "rollback-on-errors"]
    assert candidate.agents(changed) is None


def test_a_bundle_carries_the_bundles_version_and_replaces_the_policy_dir(tmp_path: Path) -> None:
    bundle = frozen_restarts_bundle(tmp_path / "frozen")
    (candidate,) = find_candidates(str(bundle))
    assert (candidate.kind, candidate.name) == ("bundle", "frozen")
    assert candidate.version == PolicyBundle(bundle).version
    assert candidate.configure(config(tmp_path), tmp_path).policy_dir == bundle


def test_an_agent_version_is_its_name_and_a_hash_of_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    versions = []
    for module, name in (("watch_a", "watcher"), ("watch_b", "watcher"), ("watch_c", "other")):
        (tmp_path / f"{module}.py").write_text(AGENT.format(name=name) + f"# {module}\n")
        (candidate,) = find_candidates(f"{module}:Watcher")
        assert (candidate.kind, candidate.name) == ("agent", name)
        versions.append(candidate.version)
        monkeypatch.delitem(sys.modules, module)
    assert versions[0].startswith("watcher@") and versions[2].startswith("other@")
    assert len(set(versions)) == 3  # another source, another version
    (candidate,) = find_candidates("watch_a:Watcher")
    agents = candidate.agents(config(tmp_path))
    assert agents is not None
    names = [a.name for a in agents]
    assert names[-2:] == ["watcher", "escalation"]  # a new agent goes before escalation
    assert agents[-2] is not candidate.agents(config(tmp_path))[-2]  # type: ignore[index]


def test_what_is_not_a_candidate_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="holds no runbook"):
        find_candidates(str(tmp_path))
    with pytest.raises(ValidationError, match="no runbook, policy bundle or agent"):
        find_candidates(str(tmp_path / "nothing"))
    with pytest.raises(ValidationError, match="is not an agent"):
        find_candidates("warden.sim.candidate:KINDS")
