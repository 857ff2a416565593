"""Which services an Alertmanager alert is about: rules over its labels. Data plane (pure).

In order: explicit rules (every label of ``match`` equal) name their services; else the
first service label present (``service``, ``service_name``, ``app``, ``job``, ``instance``
by default; an instance's ``:port`` is dropped) whose value is a known service; else the
namespace label, mapped to the services of that namespace. An alert no rule maps is
*unmapped*: it is still accepted, and pages a human once, with its labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DEFAULT_SERVICE_LABELS", "UNMAPPED_PREFIX", "AlertRouting", "AlertRule", "Route"]

DEFAULT_SERVICE_LABELS = ("service", "service_name", "app", "job", "instance")
UNMAPPED_PREFIX = "unmapped/"


@dataclass(frozen=True, slots=True)
class AlertRule:
    """Alerts whose labels hold every pair of ``match`` are about ``services``."""

    match: tuple[tuple[str, str], ...]
    services: tuple[str, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether every label of the rule is on the alert, with that value."""
        return all(labels.get(k) == v for k, v in self.match)

    def describe(self) -> str:
        """The rule as a person wrote it: ``rule alertname=X, namespace=shop``."""
        return "rule " + ", ".join(f"{k}={v}" for k, v in self.match)


@dataclass(frozen=True, slots=True)
class Route:
    """Where an alert goes: its services (empty: unmapped) and the rule that said so."""

    services: tuple[str, ...]
    mapped_by: str

    @property
    def unmapped(self) -> bool:
        """True when no rule named a service."""
        return not self.services


def _instance_host(value: str) -> str:
    """``cart:8080`` -> ``cart``; ``[::1]:9100`` -> ``[::1]``; anything else unchanged."""
    host, _, port = value.rpartition(":")
    return host if host and port.isdigit() else value


@dataclass(frozen=True, slots=True)
class AlertRouting:
    """The rules from alert labels to services (``alerts:`` in warden.yaml).

    ``known`` is the fleet: with it, a label whose value names no service is passed over
    (a ``job: node-exporter`` says nothing about which service suffers); empty, any value
    of a service label is taken as the service.
    """

    service_labels: tuple[str, ...] = DEFAULT_SERVICE_LABELS
    namespace_label: str = "namespace"
    namespaces: tuple[tuple[str, tuple[str, ...]], ...] = ()
    rules: tuple[AlertRule, ...] = ()
    known: frozenset[str] = field(default_factory=frozenset)

    def route(self, labels: Mapping[str, str]) -> Route:
        """The services an alert with these labels is about, and which rule said so."""
        for rule in self.rules:
            if rule.matches(labels):
                return Route(rule.services, rule.describe())
        for label in self.service_labels:
            value = labels.get(label, "")
            service = _instance_host(value) if label == "instance" else value
            if service and (not self.known or service in self.known):
                return Route((service,), f"label {label}={value}")
        namespace = labels.get(self.namespace_label, "")
        services = dict(self.namespaces).get(namespace, ()) if namespace else ()
        if services:
            return Route(services, f"{self.namespace_label} {namespace}")
        return Route((), "no rule")

    def with_fleet(self, services: Mapping[str, str]) -> AlertRouting:
        """These rules, knowing the fleet: ``services`` maps each name to its domain.

        A namespace that is not configured defaults to the services of the domain of
        that name.
        """
        by_domain: dict[str, list[str]] = {}
        for name, domain in sorted(services.items()):
            by_domain.setdefault(domain, []).append(name)
        configured = dict(self.namespaces)
        merged = {d: tuple(n) for d, n in by_domain.items()} | configured
        return AlertRouting(
            service_labels=self.service_labels,
            namespace_label=self.namespace_label,
            namespaces=tuple(sorted(merged.items())),
            rules=self.rules,
            known=frozenset(services),
        )


def unmapped_service(alertname: str, fingerprint: str) -> str:
    """The name an unmapped alert is kept under: one per alert, never a real service."""
    return f"{UNMAPPED_PREFIX}{alertname[:200] or 'alert'}/{fingerprint}"
