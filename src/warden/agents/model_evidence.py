"""The evidence rules a model's plan passes, as any agent's plan does. Decisioning plane, pure.

A model reads text that outside systems wrote, so what it proposes is held to what Warden
itself observed: every cited event id is one Warden holds; every step acts on the incident's
service or on its dependency path (its dependencies, their dependencies, its callers); a
restart targets a service whose own probe fails; and the plan rests on some evidence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from warden.agents.model_prompt import evidence_of
from warden.domain.errors import ValidationError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from warden.domain.incident import Incident
    from warden.domain.plans import Step
    from warden.domain.world import World

# Actions that cure a process: they need evidence that the process itself is failing.
PROCESS_ACTIONS = frozenset({"restart_service", "start_service"})


def neighbourhood(incident: Incident, world: World) -> frozenset[str]:
    """The incident's service, every service it depends on (transitively), and its callers."""
    found = {incident.service}
    todo = [incident.service]
    while todo:
        for dep in world.depends_on.get(todo.pop(), ()):
            if dep not in found:
                found.add(dep)
                todo.append(dep)
    found.update(s for s, deps in world.depends_on.items() if incident.service in deps)
    return frozenset(found)


def check_evidence(
    steps: Sequence[Step], cited: Sequence[str], incident: Incident, world: World
) -> tuple[str, ...]:
    """The evidence ids the plan stands on, or a :class:`ValidationError` saying what is wrong.

    Cited ids must be ones Warden holds; with none cited, the plan stands on all the
    incident's evidence.
    """
    known = evidence_of(incident, world)
    unknown = [c for c in cited if c not in known]
    if unknown:
        raise ValidationError(
            f"cites evidence Warden does not hold: {', '.join(unknown[:5])}",
            field="evidence",
            fix="cite only ids listed under evidence",
        )
    near = neighbourhood(incident, world)
    for index, step in enumerate(steps):
        where = f"steps[{index}]"
        if step.target not in near:
            raise ValidationError(
                f"{step.action} on {step.target}, which is neither {incident.service} nor on"
                f" its dependency path ({', '.join(sorted(near))})",
                field=where,
            )
        health = world.health.get(step.target)
        if step.action in PROCESS_ACTIONS and (health is None or health.healthy):
            seen = "answers its probe" if health is not None else "was never probed"
            raise ValidationError(
                f"{step.action} on {step.target}, which {seen}: no evidence its process is"
                " at fault",
                field=where,
            )
    health = world.health.get(incident.service)
    own = (*incident.evidence_ids, *(health.evidence if health is not None else ()))
    evidence = tuple(cited) or tuple(dict.fromkeys(own)) or tuple(known)
    if not evidence:
        raise ValidationError(
            "no evidence: Warden observed nothing the plan could stand on", field="evidence"
        )
    return evidence


__all__ = ["PROCESS_ACTIONS", "check_evidence", "neighbourhood"]
