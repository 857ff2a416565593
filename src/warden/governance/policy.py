"""Cedar policy bundles: load, validate against the schema, decide. Control plane.

Cedar answers permit or forbid; Warden's outcome comes from the annotations of the
policies that matched: ``@outcome("needs_approval")`` with ``@approvers("n")`` asks for
approval, a matching ``forbid`` denies, nothing permitted denies, and any evaluation error
denies.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cedarpy

from warden.domain.decisions import Outcome, Reason
from warden.domain.errors import ConfigError

BUILTIN_BUNDLE = Path(__file__).parent / "bundle"
SCHEMA_SUFFIX = ".cedarschema"


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    """One question to the policy: may this principal do this action on this resource?"""

    principal: str
    action: str
    resource: str
    context: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The bundle's answer with the policies that decided it."""

    outcome: Outcome
    reasons: tuple[Reason, ...]
    approvers: int = 0


@dataclass(frozen=True, slots=True)
class _PolicyMeta:
    id: str
    effect: str
    outcome: str
    approvers: int
    message: str


class PolicyBundle:
    """A validated set of Cedar policies with its schema and version."""

    def __init__(self, directory: Path, name: str = "") -> None:
        self.directory = directory
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
        digest = hashlib.sha256()
        for file_name in sorted(texts):
            digest.update(file_name.encode() + b"\0" + texts[file_name].encode() + b"\0")
        self.name = name or directory.name
        self.version = f"{self.name}@{digest.hexdigest()[:16]}"
        self.source = "\n".join(texts[p.name] for p in policy_files)
        schema_text = texts[schema_files[0].name]
        try:
            self._schema = cedarpy.Schema.from_str(schema_text)
        except ValueError as exc:
            raise ConfigError(f"policy bundle {directory}: schema does not parse: {exc}") from exc
        try:
            self._policies = cedarpy.PolicySet.from_str(self.source)
        except ValueError as exc:
            raise ConfigError(f"policy bundle {directory}: policies do not parse: {exc}") from exc
        result = cedarpy.validate_policies(self.source, self._schema)
        if not result.validation_passed:
            errors = "; ".join(str(e) for e in result.errors)
            raise ConfigError(f"policy bundle {directory}: does not validate: {errors}")
        self._meta = self._read_annotations()

    def _read_annotations(self) -> dict[str, _PolicyMeta]:
        parsed = json.loads(cedarpy.policies_to_json_str(self.source))
        meta: dict[str, _PolicyMeta] = {}
        seen: set[str] = set()
        for cedar_id, policy in parsed["staticPolicies"].items():
            notes = policy.get("annotations") or {}
            policy_id = notes.get("id") or cedar_id
            if policy_id in seen:
                raise ConfigError(f"policy bundle {self.directory}: duplicate @id({policy_id!r})")
            seen.add(policy_id)
            outcome = notes.get("outcome", "allow")
            if policy["effect"] == "permit" and outcome not in ("allow", "needs_approval"):
                raise ConfigError(
                    f"policy {policy_id}: @outcome must be allow or needs_approval, not {outcome!r}"
                )
            approvers_text = notes.get("approvers", "1" if outcome == "needs_approval" else "0")
            if not approvers_text.isdigit():
                raise ConfigError(f"policy {policy_id}: @approvers must be a number")
            meta[cedar_id] = _PolicyMeta(
                id=policy_id,
                effect=policy["effect"],
                outcome=outcome if policy["effect"] == "permit" else "deny",
                approvers=int(approvers_text),
                message=notes.get("message", ""),
            )
        return meta

    def evaluate(self, request: PolicyRequest) -> Verdict:
        """Decide one request; an evaluation error is a deny."""
        query = {
            "principal": {"type": "Agent", "id": request.principal},
            "action": {"type": "Action", "id": request.action},
            "resource": {"type": "Service", "id": request.resource},
            "context": request.context,
        }
        try:
            result = cedarpy.is_authorized(query, self._policies, [], self._schema)
        except Exception as exc:  # the engine's own failure must still end in a deny
            return Verdict(Outcome.DENY, (Reason("policy-error", f"evaluation failed: {exc}"),))
        errors = list(result.diagnostics.errors)
        if errors:
            return Verdict(
                Outcome.DENY,
                tuple(Reason("policy-error", str(e)) for e in errors),
            )
        matched = [self._meta[cid] for cid in result.diagnostics.reasons if cid in self._meta]
        reasons = tuple(Reason(m.id, m.message) for m in matched)
        if result.decision != cedarpy.Decision.Allow:
            if not reasons:
                reasons = (Reason("default-deny", "no policy permits this step"),)
            return Verdict(Outcome.DENY, reasons)
        approvals = [m.approvers for m in matched if m.outcome == "needs_approval"]
        if approvals:
            return Verdict(Outcome.NEEDS_APPROVAL, reasons, max(approvals))
        return Verdict(Outcome.ALLOW, reasons)
