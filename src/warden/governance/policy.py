"""Cedar policy bundles: load, validate against the schema, decide, explain. Control plane.

Cedar answers permit or forbid; Warden's outcome comes from the annotations of the
policies that matched: ``@outcome("needs_approval")`` with ``@approvers("n")`` (and
optionally ``@approver_roles("sre,lead")``) asks for approval, a matching ``forbid``
denies, nothing permitted denies, and any evaluation error denies. Every policy that
matched is listed in the reasons, also the permits that a forbid overrode, the deciding
ones first (forbids, then approvals, most approvers first, then allows; by id within each):
Cedar reports matches in no fixed order, and the first reason labels the decision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cedarpy

from warden.domain.decisions import Outcome, Reason
from warden.domain.errors import ConfigError
from warden.domain.versions import fingerprint

BUILTIN_BUNDLE = Path(__file__).parent / "bundle"
SCHEMA_SUFFIX = ".cedarschema"
_NO_ENTITIES = cedarpy.Entities.from_json_str("[]")


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    """One question to the policy: may this principal do this action on this resource?"""

    principal: str
    action: str
    resource: str
    context: dict[str, Any]

    def to_cedar(self) -> dict[str, Any]:
        """The request in cedarpy's form (entity ids as type/id pairs, never parsed text)."""
        return {
            "principal": {"type": "Agent", "id": self.principal},
            "action": {"type": "Action", "id": self.action},
            "resource": {"type": "Service", "id": self.resource},
            "context": self.context,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The bundle's answer with the policies that decided it."""

    outcome: Outcome
    reasons: tuple[Reason, ...]
    approvers: int = 0
    approver_roles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """One policy of a bundle, with its Warden annotations and its source."""

    cedar_id: str
    id: str
    effect: str
    outcome: str
    approvers: int
    approver_roles: tuple[str, ...]
    message: str
    source: str


@dataclass(frozen=True, slots=True)
class Explanation:
    """For one request: every policy, whether it matched, and the resulting verdict."""

    verdict: Verdict
    matched: tuple[PolicyInfo, ...]
    not_matched: tuple[PolicyInfo, ...]
    errors: tuple[str, ...]


def _annotations(cedar_id: str, policy: dict[str, Any], source: str) -> PolicyInfo:
    notes = policy.get("annotations") or {}
    policy_id = notes.get("id") or cedar_id
    effect = policy["effect"]
    outcome = notes.get("outcome", "allow") if effect == "permit" else "deny"
    if outcome not in ("allow", "needs_approval", "deny"):
        raise ConfigError(
            f"policy {policy_id}: @outcome must be allow or needs_approval, not {outcome!r}"
        )
    approvers_text = notes.get("approvers", "1" if outcome == "needs_approval" else "0")
    if not approvers_text.isdigit():
        raise ConfigError(f"policy {policy_id}: @approvers must be a whole number")
    roles = tuple(r.strip() for r in notes.get("approver_roles", "").split(",") if r.strip())
    return PolicyInfo(
        cedar_id=cedar_id,
        id=policy_id,
        effect=effect,
        outcome=outcome,
        approvers=int(approvers_text),
        approver_roles=roles,
        message=notes.get("message", ""),
        source=source,
    )


_RANK = {"deny": 0, "needs_approval": 1, "allow": 2}


def _deciding_first(info: PolicyInfo) -> tuple[int, int, str]:
    """Sort key of a matched policy: the ones that decide the outcome come first."""
    return (_RANK[info.outcome], -info.approvers, info.id)


def _policy_set(policies: dict[str, Any]) -> Any:
    return cedarpy.PolicySet.from_json_str(
        json.dumps({"templates": {}, "staticPolicies": policies, "templateLinks": []})
    )


class PolicyBundle:
    """A validated set of Cedar policies with its schema and version."""

    def __init__(self, directory: Path, name: str = "") -> None:
        self.directory = directory
        if not directory.is_dir():
            raise ConfigError(f"policy bundle {directory}: not a directory")
        policy_files = sorted(directory.glob("*.cedar"))
        schema_files = sorted(directory.glob(f"*{SCHEMA_SUFFIX}"))
        if not policy_files:
            raise ConfigError(f"policy bundle {directory}: no *.cedar files found")
        if len(schema_files) != 1:
            raise ConfigError(
                f"policy bundle {directory}: expected one {SCHEMA_SUFFIX} file,"
                f" found {len(schema_files)}"
            )
        texts = {p.name: p.read_text(encoding="utf-8") for p in [*policy_files, *schema_files]}
        builtin = directory.resolve() == BUILTIN_BUNDLE.resolve()
        self.name = name or ("default" if builtin else directory.name)
        self.version = f"{self.name}@{fingerprint(texts)}"
        self.source = "\n".join(texts[p.name] for p in policy_files)
        self.schema_text = texts[schema_files[0].name]
        try:
            self.schema = cedarpy.Schema.from_str(self.schema_text)
        except ValueError as exc:
            raise ConfigError(f"policy bundle {directory}: schema does not parse: {exc}") from exc
        try:
            parsed = json.loads(cedarpy.policies_to_json_str(self.source))
        except ValueError as exc:
            raise ConfigError(f"policy bundle {directory}: policies do not parse: {exc}") from exc
        result = cedarpy.validate_policies(self.source, self.schema)
        if not result.validation_passed:
            errors = "; ".join(str(e) for e in result.errors)
            raise ConfigError(f"policy bundle {directory}: does not validate: {errors}")
        # Cedar names policies policy0, policy1, ... in source order; keep that order.
        statics: dict[str, Any] = dict(
            sorted(parsed["staticPolicies"].items(), key=lambda kv: (len(kv[0]), kv[0]))
        )
        if parsed.get("templates"):
            raise ConfigError(f"policy bundle {directory}: templates are not supported")
        self.policies: dict[str, PolicyInfo] = {}
        seen: set[str] = set()
        for cedar_id, policy in statics.items():
            single = {"templates": {}, "staticPolicies": {cedar_id: policy}, "templateLinks": []}
            info = _annotations(
                cedar_id, policy, cedarpy.policies_from_json_str(json.dumps(single))
            )
            if info.id in seen:
                raise ConfigError(f"policy bundle {directory}: duplicate @id({info.id!r})")
            seen.add(info.id)
            self.policies[cedar_id] = info
        self._all = _policy_set(statics)
        self._permits = _policy_set({k: v for k, v in statics.items() if v["effect"] == "permit"})
        self._singles = {k: _policy_set({k: v}) for k, v in statics.items()}

    def _authorize(self, policies: Any, request: PolicyRequest, entities: Any, strict: bool) -> Any:
        # The schema checks the request's types in strict mode (policy tests, explain); at
        # run time the context builder guarantees them, and skipping it is 5x faster.
        schema = self.schema if strict else None
        return cedarpy.is_authorized(request.to_cedar(), policies, entities, schema)

    def evaluate(
        self, request: PolicyRequest, entities: Any = None, *, strict: bool = False
    ) -> Verdict:
        """Decide one request; an evaluation error is a deny."""
        entities = entities if entities is not None else _NO_ENTITIES
        try:
            result = self._authorize(self._all, request, entities, strict)
        except Exception as exc:  # the engine's own failure must still end in a deny
            return Verdict(Outcome.DENY, (Reason("policy-error", f"evaluation failed: {exc}"),))
        errors = sorted(str(e) for e in result.diagnostics.errors)
        if errors:
            return Verdict(Outcome.DENY, tuple(Reason("policy-error", e) for e in errors))
        matched = [self.policies[c] for c in result.diagnostics.reasons if c in self.policies]
        if result.decision != cedarpy.Decision.Allow:
            if not matched:
                return Verdict(
                    Outcome.DENY, (Reason("default-deny", "no policy permits this step"),)
                )
            overridden = self._authorize(self._permits, request, entities, strict)
            matched += [
                self.policies[c] for c in overridden.diagnostics.reasons if c in self.policies
            ]
            matched.sort(key=_deciding_first)
            return Verdict(Outcome.DENY, tuple(Reason(m.id, m.message) for m in matched))
        matched.sort(key=_deciding_first)
        reasons = tuple(Reason(m.id, m.message) for m in matched)
        asking = [m for m in matched if m.outcome == "needs_approval"]
        if asking:
            roles = sorted({r for m in asking for r in m.approver_roles})
            return Verdict(
                Outcome.NEEDS_APPROVAL, reasons, max(m.approvers for m in asking), tuple(roles)
            )
        return Verdict(Outcome.ALLOW, reasons)

    def explain(self, request: PolicyRequest, entities: Any = None) -> Explanation:
        """Evaluate every policy on its own to show which matched, then the verdict."""
        entities = entities if entities is not None else _NO_ENTITIES
        verdict = self.evaluate(request, entities, strict=True)
        matched: list[PolicyInfo] = []
        missed: list[PolicyInfo] = []
        errors: list[str] = []
        for cedar_id, info in self.policies.items():
            try:
                result = self._authorize(self._singles[cedar_id], request, entities, True)
            except Exception as exc:
                errors.append(f"{info.id}: {exc}")
                continue
            errors += [f"{info.id}: {e}" for e in result.diagnostics.errors]
            (matched if cedar_id in result.diagnostics.reasons else missed).append(info)
        return Explanation(verdict, tuple(matched), tuple(missed), tuple(errors))
