"""The fleet generator: seeded, a DAG of dependencies, one fault at a time per service."""

from __future__ import annotations

import itertools
from collections import defaultdict

import pytest

from warden.sim.fleetgen import WINDOW_S, generate
from warden.sim.loader import _reference_problems


def test_the_same_seed_gives_the_same_fleet() -> None:
    one, two = generate(40, 2, 60, seed=5), generate(40, 2, 60, seed=5)
    assert one == two
    assert generate(40, 2, 60, seed=6) != one


def test_a_fleet_has_the_size_asked_and_a_realistic_shape() -> None:
    fleet = generate(60, 3, 120, seed=1)
    counts = fleet.counts()
    assert counts["services"] == 60 and counts["faults"] == 120
    assert counts["domains"] == 6  # about ten services a domain
    kinds = {s.kind for s in fleet.services}
    assert {"proxy", "datastore", "queue", "stateless", "flag_server", "config_server"} <= kinds
    resources = {r.kind for r in fleet.resources}
    assert {"deployment", "config", "feature_flag", "quota", "credential", "route"} <= resources
    deployments = [r for r in fleet.resources if r.kind == "deployment"]
    assert all(len(r.history) >= 2 for r in deployments)  # a last good revision exists


def test_dependencies_form_a_dag() -> None:
    fleet = generate(100, 2, 10, seed=2)
    graph = {s.name: s.depends_on for s in fleet.services}
    assert all(d in graph for deps in graph.values() for d in deps)
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        assert state.get(name) != 1, f"a cycle through {name}"
        if state.get(name) == 2:
            return
        state[name] = 1
        for dep in graph[name]:
            visit(dep)
        state[name] = 2

    for name in graph:
        visit(name)


def test_faults_never_overlap_on_a_service_and_stay_in_their_domain() -> None:
    fleet = generate(40, 5, 300, seed=3)
    windows: dict[str, list[tuple[float, float]]] = defaultdict(list)
    domain_of = {s.name: s.domain for s in fleet.services}
    for instance in fleet.instances:
        assert {domain_of[s] for s in instance.services()} == {instance.domain}
        assert not _reference_problems(instance.name, instance.scenario)
        for service in instance.services():
            windows[service].append((instance.start, instance.start + WINDOW_S))
    for spans in windows.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_every_fault_class_of_the_templates_is_drawn() -> None:
    fleet = generate(100, 10, 600, seed=4)
    kinds = {f.kind for i in fleet.instances for f in i.scenario.faults}
    assert {"change", "crash", "hang", "slow", "exit_loop", "error", "partition"} <= kinds
    assert {"corruption", "saturation", "load"} <= kinds


@pytest.mark.parametrize(
    ("services", "days", "faults", "says"),
    [
        (3, 1, 1, "at least 5 services"),
        (20, 0.05, 1, "too short"),
        (20, 1, 5000, "hold at most"),
    ],
)
def test_impossible_sizes_say_what_to_change(
    services: int, days: float, faults: int, says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        generate(services, days, faults)


def test_a_backlog_lands_on_a_worker_that_declares_how_far_it_may_scale() -> None:
    """The backlog's answer is more consumers: Warden scales only within a declared bound."""
    fleet = generate(60, 3, 120, seed=1)
    backlogs = [i for i in fleet.instances if i.fault_class == "backlog"]
    assert backlogs
    for instance in backlogs:
        (service,) = (
            s for s in instance.scenario.topology.services if s.name in instance.services()
        )
        assert int(service.limits["max_consumers"]) > service.replicas
