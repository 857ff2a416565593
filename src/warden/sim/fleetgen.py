"""A generated fleet: topology, resources with their history, and a fault schedule. Simulation.

:func:`generate` builds, from a seed alone, a fleet of services in domains (a gateway, a
datastore, a queue, APIs, workers and pipelines per domain; a platform domain with the
flag and config servers), their dependency DAG, replicas and versions, the resources
faults live in (deployments with their revisions, configurations, feature flags, quotas,
credentials, network rules, routes, scheduled jobs), and a schedule of fault instances.
Each instance is a small :class:`~warden.sim.format.Scenario` on fleet services (faults,
signals, the response model, what a good answer is), written after the library's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from warden.sim.fleet_faults import DATASTORE, ROLES, TEMPLATES, Spot
from warden.sim.format import (
    BaselineHints,
    Expect,
    Fault,
    Resource,
    Response,
    Scenario,
    Service,
    Settings,
    Signal,
    Topology,
)

DOMAINS = (
    "platform",
    "payments",
    "orders",
    "catalog",
    "search",
    "identity",
    "billing",
    "shipping",
    "inventory",
    "messaging",
    "analytics",
    "ads",
    "reviews",
    "pricing",
    "checkout",
    "accounts",
    "media",
    "recommendations",
    "fraud",
    "loyalty",
    "support",
    "notifications",
    "reporting",
    "ledger",
    "storefront",
    "returns",
    "tax",
    "warehouse",
    "partners",
    "mobile",
)
PER_DOMAIN = 10  # services per domain, about: one Warden runs one domain (a cell)
WINDOW_S = 7200.0  # a fault instance keeps its services to itself this long
WARMUP_S = 600.0  # no fault before this: the fleet's first probes settle


@dataclass(frozen=True, slots=True)
class Instance:
    """One fault instance: a small scenario on fleet services, in one domain."""

    scenario: Scenario
    domain: str
    start: float  # its first fault
    end: float  # the end of its window (or of the run)

    @property
    def name(self) -> str:
        """The instance's name (``f00042-process_crash``)."""
        return self.scenario.name

    @property
    def fault_class(self) -> str:
        """Its fault class."""
        return self.scenario.fault_class

    def services(self) -> set[str]:
        """The services it involves."""
        return set(self.scenario.service_names())

    def targets(self) -> set[str]:
        """Its services and resources: what an action on it names."""
        return self.services() | {r.id for r in self.scenario.topology.resources}


@dataclass(frozen=True, slots=True)
class Fleet:
    """The whole generated fleet."""

    seed: int
    days: float
    services: tuple[Service, ...]
    resources: tuple[Resource, ...]
    instances: tuple[Instance, ...]

    @property
    def duration_s(self) -> float:
        """How long the run lasts."""
        return self.days * 86400.0

    def domains(self) -> list[str]:
        """Domain names, in generation order."""
        return list(dict.fromkeys(s.domain for s in self.services))

    def shard(self, domain: str) -> Scenario:
        """One domain as a scenario: its services, resources and every instance's schedule.

        Dependencies on other domains stay in :attr:`services`; the domain's Warden knows
        only its own services (one Warden per domain, as a cell-based fleet runs).
        """
        mine = [s for s in self.services if s.domain == domain]
        names = {s.name for s in mine}
        services = [
            s.model_copy(update={"depends_on": [d for d in s.depends_on if d in names]})
            for s in mine
        ]
        instances = [i.scenario for i in self.instances if i.domain == domain]
        return Scenario.model_construct(
            version=1,
            name=f"fleet-{domain}",
            title=f"fleet domain {domain}",
            fault_class="fleet",
            duration_s=self.duration_s,
            settings=Settings(),
            topology=Topology.model_construct(
                services=services,
                resources=[r for r in self.resources if r.owner in names],
            ),
            faults=[f for s in instances for f in s.faults],
            signals=[g for s in instances for g in s.signals],
            responses=[r for s in instances for r in s.responses],
            expect=None,
        )

    def counts(self) -> dict[str, int]:
        """How big it is: services, domains, dependency edges, resources, revisions, faults."""
        domain_of = {s.name: s.domain for s in self.services}
        return {
            "services": len(self.services),
            "domains": len(self.domains()),
            "dependencies": sum(len(s.depends_on) for s in self.services),
            "cross_domain_dependencies": sum(
                1 for s in self.services for d in s.depends_on if domain_of.get(d) != s.domain
            ),
            "resources": len(self.resources),
            "revisions": sum(len(r.history) for r in self.resources),
            "faults": len(self.instances),
        }


# -- topology --------------------------------------------------------------------------


def _version(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randint(1, 9), rng.randint(0, 40), rng.randint(0, 20))


def _text(v: tuple[int, int, int]) -> str:
    return f"v{v[0]}.{v[1]}.{v[2]}"


def _roles(count: int, platform: bool) -> list[tuple[str, str, str]]:
    """(suffix, kind, role) for ``count`` services of one domain."""
    fixed = [
        ("gateway", "proxy", "gateway"),
        ("db", "datastore", "db"),
        ("queue", "queue", "queue"),
    ]
    if platform:
        fixed += [("flags", "flag_server", "flags"), ("config", "config_server", "config")]
    roles = fixed[:count]
    cycle = (("api", "api"), ("worker", "worker"), ("api", "api"), ("etl", "etl"))
    n = 0
    numbered: dict[str, int] = {}
    while len(roles) < count:
        suffix, role = cycle[n % len(cycle)]
        numbered[suffix] = numbered.get(suffix, 0) + 1
        roles.append((f"{suffix}-{numbered[suffix]}", "stateless", role))
        n += 1
    if count >= 12:
        roles[-1] = ("loadgen", "load_generator", "loadgen")
    return roles


def _topology(count: int, rng: random.Random) -> tuple[list[Service], list[Resource]]:
    domains = max(1, round(count / PER_DOMAIN))
    sizes = [count // domains + (1 if d < count % domains else 0) for d in range(domains)]
    services: list[Service] = []
    resources: list[Resource] = []
    by_role: dict[str, list[str]] = {}
    for d, size in enumerate(sizes):
        base = DOMAINS[d % len(DOMAINS)]
        domain = base if d < len(DOMAINS) else f"{base}{d // len(DOMAINS) + 1}"
        roles = _roles(size, platform=d == 0)
        names = [f"{domain}-{suffix}" for suffix, _, _ in roles]
        role_of = {n: r for n, (_, _, r) in zip(names, roles, strict=True)}
        for name, (_, kind, role) in zip(names, roles, strict=True):
            deps: list[str] = []
            peers = [n for n in names if n != name]
            if role == "gateway":
                deps = [n for n in peers if role_of[n] == "api"][:4]
            elif role == "api":
                deps = [n for n in peers if role_of[n] in ("db", "queue")]
                earlier = [n for n in names[: names.index(name)] if role_of[n] == "api"]
                if earlier and rng.random() < 0.5:
                    deps.append(rng.choice(earlier))
            elif role in ("worker", "etl"):
                deps = [n for n in peers if role_of[n] in ("db", "queue")]
            if role == "api" and d > 0 and rng.random() < 0.3:
                # Cross-domain: the platform's flag and config servers, an earlier gateway.
                shared = by_role.get("flags", []) + by_role.get("config", [])
                shared += [g for g in by_role.get("gateway", []) if rng.random() < 0.2]
                if shared:
                    deps.append(rng.choice(shared))
            version = _version(rng)
            tier = "critical" if role in ("gateway", "db") or rng.random() < 0.2 else "standard"
            replicas = {"db": rng.randint(1, 3), "queue": 3, "gateway": rng.randint(3, 8)}.get(
                role, rng.randint(2, 6)
            )
            services.append(
                Service(
                    name=name,
                    kind=kind,  # type: ignore[arg-type]
                    domain=domain,
                    tier=tier,
                    depends_on=sorted(set(deps)),
                    replicas=replicas,
                    version=_text(version),
                    # A queue consumer's autoscaling bound, as a deployment declares it:
                    # without one no consumer count is known safe to scale to.
                    limits={"max_consumers": str(replicas * 3)} if role == "worker" else {},
                )
            )
            resources += _resources(name, role, domain, version, replicas, rng)
        for name in names:
            by_role.setdefault(role_of[name], []).append(name)
    return services, resources


def _history(values: list[Any], field: str, rng: random.Random) -> list[dict[str, Any]]:
    """Past revisions, oldest first, the last one current."""
    at = -float(rng.randint(20, 60)) * 86400.0
    out = []
    for value in values:
        out.append({"at": at, "field": field, "value": value, "by": rng.choice(_PEOPLE)})
        at = min(-3600.0, at + rng.randint(2, 15) * 86400.0)
    return out


_PEOPLE = ("ci", "ci", "ci", "alice", "bob", "carol", "dave", "platform-bot")


def _resources(
    name: str,
    role: str,
    domain: str,
    version: tuple[int, int, int],
    replicas: int,
    rng: random.Random,
) -> list[Resource]:
    major, minor, patch = version
    past = [(major, max(0, minor - k), patch) for k in range(rng.randint(2, 4), 0, -1)]
    revisions = [_text(v) for v in [*past, version]]
    found = [
        Resource.model_validate(
            {
                "id": f"deployment/{name}",
                "kind": "deployment",
                "owner": name,
                "fields": {"image": revisions[-1], "replicas": replicas},
                "history": _history(revisions, "image", rng),
            }
        )
    ]
    if role in ("api", "worker", "etl"):
        pool = rng.choice((10, 20, 32, 50))
        found.append(
            Resource.model_validate(
                {
                    "id": f"config/{name}",
                    "kind": "config",
                    "owner": name,
                    "fields": {"db_pool_size": pool},
                    "history": _history([pool // 2, pool], "db_pool_size", rng),
                }
            )
        )
        found.append(
            Resource.model_validate(
                {
                    "id": f"credential/{name}-db",
                    "kind": "credential",
                    "owner": name,
                    "fields": {"expires": "2026-12-31"},
                }
            )
        )
    if role == "api":
        found.append(
            Resource.model_validate(
                {
                    "id": f"feature_flag/{name}-new-path",
                    "kind": "feature_flag",
                    "owner": name,
                    "fields": {"enabled": False},
                    "history": _history([False], "enabled", rng),
                }
            )
        )
    if role == "db":
        found.append(
            Resource.model_validate(
                {
                    "id": f"quota/{name}-connections",
                    "kind": "quota",
                    "owner": name,
                    "fields": {"limit": 500},
                }
            )
        )
    if role == "gateway":
        found.append(
            Resource.model_validate(
                {
                    "id": f"route/{name}",
                    "kind": "route",
                    "owner": name,
                    "fields": {"backend": f"{domain}-api-1"},
                }
            )
        )
        found.append(
            Resource.model_validate(
                {
                    "id": f"network_rule/{domain}-ingress",
                    "kind": "network_rule",
                    "owner": name,
                    "fields": {"allow": "10.0.0.0/8"},
                }
            )
        )
    if role == "etl":
        found.append(
            Resource.model_validate(
                {
                    "id": f"scheduled_job/{name}-nightly",
                    "kind": "scheduled_job",
                    "owner": name,
                    "fields": {"schedule": "0 2 * * *"},
                }
            )
        )
    return found


def _role(service: Service) -> str:
    suffix = service.name.removeprefix(f"{service.domain}-")
    return suffix.split("-")[0] if suffix not in ("flags", "config") else suffix


def generate(services: int = 500, days: float = 30.0, faults: int = 10_000, seed: int = 0) -> Fleet:
    """A fleet and its fault schedule; the same arguments give the same fleet.

    Raises:
        ValueError: a size the fleet cannot hold (too few services, no time for faults).
    """
    if services < 5:
        raise ValueError(f"--services {services}: a fleet needs at least 5 services")
    if days <= 0 or faults < 0:
        raise ValueError("--days must be positive and --faults at least 0")
    span = days * 86400.0 - WARMUP_S - WINDOW_S
    if faults and span <= 0:
        raise ValueError(
            f"--days {days:g}: too short for a fault window; use at least"
            f" {(WARMUP_S + WINDOW_S) / 86400 + 0.01:.2f} days"
        )
    rng = random.Random(f"fleet:{seed}")
    fleet_services, resources = _topology(services, rng)
    capacity = sum(1 for s in fleet_services if _role(s) in ROLES)
    most = int(capacity * (span / WINDOW_S))
    if faults > most:
        raise ValueError(
            f"--faults {faults}: {services} services over {days:g} days hold at most {most}"
            f" faults (each keeps its service for {WINDOW_S / 3600:g} h); add services or days"
        )
    by_role: dict[str, list[Service]] = {}
    for s in fleet_services:
        by_role.setdefault(_role(s), []).append(s)
    domain_of = {s.name: s.domain for s in fleet_services}
    callers: dict[str, list[str]] = {}
    for s in fleet_services:
        for d in s.depends_on:
            if domain_of.get(d) == s.domain:
                callers.setdefault(d, []).append(s.name)
    owned: dict[str, list[Resource]] = {}
    for r in resources:
        owned.setdefault(r.owner, []).append(r)
    versions = {s.name: s.version for s in fleet_services}
    previous = {r.owner: str(r.history[-2].value) for r in resources if r.kind == "deployment"}
    busy: dict[str, float] = {}
    times = sorted(WARMUP_S + rng.random() * span for _ in range(faults))
    weights = [w for _, _, w in TEMPLATES]
    pools = [[s for r in roles for s in by_role.get(r, [])] for _, roles, _ in TEMPLATES]
    by_name = {s.name: s for s in fleet_services}
    instances: list[Instance] = []
    for n, at in enumerate(times):
        at = round(at, 1)
        choice = rng.choices(range(len(TEMPLATES)), weights)[0]
        template = TEMPLATES[choice][0]

        service = _pick(rng, pools[choice], busy, at, callers if template is DATASTORE else {})
        if service is None:  # every service this class fits is busy: a crash on a free one
            template = TEMPLATES[0][0]
            service = _pick(rng, pools[0], busy, at, {})
        if service is None:
            raise ValueError(f"--faults {faults}: too many at once; add services or days")
        spot = Spot(
            service,
            tuple(sorted(callers.get(service.name, ()))),
            versions[service.name],
            previous.get(service.name, versions[service.name]),
            n,
            at,
        )
        body = template(spot)
        names = (service.name, *(spot.callers if template is DATASTORE else ()))
        for name in names:
            busy[name] = at + WINDOW_S
        scenario = _instance(n, body, service.domain, [by_name[x] for x in names], owned)
        instances.append(Instance(scenario, service.domain, at, min(at + WINDOW_S, days * 86400)))
    return Fleet(seed, days, tuple(fleet_services), tuple(resources), tuple(instances))


def _pick(
    rng: random.Random,
    pool: list[Service],
    busy: dict[str, float],
    at: float,
    along: dict[str, list[str]],
) -> Service | None:
    """A service of ``pool`` free at ``at``, with what comes ``along``: draws, then a scan."""

    def free(service: Service) -> bool:
        names = (service.name, *along.get(service.name, ()))
        return all(busy.get(name, -1.0) <= at for name in names)

    if not pool:
        return None
    for _ in range(20):
        service = pool[rng.randrange(len(pool))]
        if free(service):
            return service
    left = [s for s in pool if free(s)]
    return rng.choice(left) if left else None


def _instance(
    n: int,
    body: dict[str, Any],
    domain: str,
    mine: list[Service],
    owned: dict[str, list[Resource]],
) -> Scenario:
    """The instance as a scenario: its parts checked, the fleet's services reused as they are."""
    names = {s.name for s in mine}
    services = [
        s
        if all(d in names for d in s.depends_on)
        else s.model_copy(update={"depends_on": [d for d in s.depends_on if d in names]})
        for s in mine
    ]
    return Scenario.model_construct(
        version=1,
        name=f"f{n:05d}-{body['fault_class'].replace('_', '-')}",
        title=f"{body['fault_class']} on {body['faults'][0]['target']}",
        description="",
        fault_class=body["fault_class"],
        tags=[domain],
        source="warden simulate --fleet",
        duration_s=round(body["faults"][0]["at"] + WINDOW_S, 1),  # times are the fleet's
        settings=Settings(),
        topology=Topology.model_construct(
            services=services, resources=[r for x in sorted(names) for r in owned.get(x, ())]
        ),
        faults=[Fault.model_validate(f) for f in body["faults"]],
        signals=[Signal.model_validate(g) for g in body.get("signals", [])],
        responses=[Response.model_validate(r) for r in body.get("responses", [])],
        expect=Expect.model_validate(body["expect"]),
        baseline=BaselineHints.model_validate(body.get("baseline", {})),
    )


__all__ = ["Fleet", "Instance", "generate"]
