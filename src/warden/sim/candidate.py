"""A candidate to evaluate: a runbook, an agent plugin or a policy bundle, with its version.

Found from what a user types (a runbook file or directory, a bundle directory, or
``module:Class``); it changes a configuration and its agents the way going live would:
beside the built-in agents, or in place of the live version of the same name.
Simulation (edge).
"""

from __future__ import annotations

import copy
import importlib
import inspect
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warden.agents.builtin import not_an_agent
from warden.agents.model import ModelAgent
from warden.agents.protocol import is_slow
from warden.assembly import default_agents
from warden.domain.catalog import Catalog
from warden.domain.errors import ConfigError, ValidationError
from warden.domain.versions import fingerprint
from warden.governance.policy import PolicyBundle
from warden.ingest.registry import SchemaRegistry
from warden.runbooks.loader import SUFFIXES, load_runbook, load_runbooks, runbook_files

if TYPE_CHECKING:
    from collections.abc import Callable

    from warden.agents.protocol import Agent
    from warden.config import WardenConfig

KINDS = ("runbook", "agent", "bundle")
STAGED = "candidate-runbooks"  # the directory a runbook candidate is served from


@dataclass(frozen=True, slots=True)
class Candidate:
    """What is evaluated: its kind, name and content version, and how it goes live."""

    kind: str  # one of KINDS
    name: str
    version: str
    source: str  # the file, directory or module:Class it came from
    runbook: bytes = b""  # a runbook's file, as written
    policy_dir: Path | None = None
    make_agent: Callable[[], Agent] | None = None

    def configure(self, config: WardenConfig, scratch: Path) -> WardenConfig:
        """``config`` with the candidate live; a runbook is staged under ``scratch``.

        A runbook joins the configured runbooks, replacing the one of its name.
        """
        if self.policy_dir is not None:
            return replace(config, policy_dir=self.policy_dir)
        if not self.runbook:
            return config
        staged = scratch / STAGED
        staged.mkdir(parents=True, exist_ok=True)
        if config.runbooks_dir is not None:
            live = load_runbooks(config.runbooks_dir)
            for kept in live.runbooks:
                if kept.name != self.name:
                    path = Path(kept.path)
                    (staged / path.name).write_bytes(path.read_bytes())
        (staged / f"{self.name}.candidate.yaml").write_bytes(self.runbook)
        return replace(config, runbooks_dir=staged)

    def agents(self, config: WardenConfig) -> list[Agent] | None:
        """The configured agents with this one among them (None: not an agent candidate).

        A configured model agent is left out, as replay leaves it out.
        """
        if self.make_agent is None:
            return None
        agent = self.make_agent()
        chosen = default_agents(replace(config, model={}))  # no endpoint is ever asked
        names = [a.name for a in chosen]
        if agent.name in names:
            chosen[names.index(agent.name)] = agent
        else:  # before the escalation agent, which summarizes for the others
            last = len(chosen) - 1 if names and names[-1] == "escalation" else len(chosen)
            chosen.insert(last, agent)
        return chosen


def find_candidates(target: str) -> list[Candidate]:
    """The candidates ``target`` names: one per runbook of a directory, else one.

    Raises:
        ConfigError: A runbook or bundle is refused (file, line and fix).
        ValidationError: ``target`` names nothing evaluable, or a model agent.
    """
    path = Path(target)
    if path.is_dir():
        if any(path.glob("*.cedar")):
            bundle = PolicyBundle(path)
            return [Candidate("bundle", bundle.name, bundle.version, target, policy_dir=path)]
        if not runbook_files(path):
            raise ValidationError(
                f"{target}/ holds no runbook (*.yaml) and no policy bundle (*.cedar)",
                field="candidate",
                fix="give a runbook file, a directory of runbooks or a policy bundle",
            )
        found = load_runbooks(path)
        return [
            Candidate("runbook", r.name, r.version, r.path, runbook=Path(r.path).read_bytes())
            for r in found.runbooks
        ]
    if path.is_file() and path.suffix in SUFFIXES:
        raw = path.read_bytes()
        runbook = load_runbook(raw, target, Catalog(), SchemaRegistry())
        return [Candidate("runbook", runbook.name, runbook.version, target, runbook=raw)]
    if ":" in target and not path.exists():
        return [agent_candidate(target)]
    raise ValidationError(
        f"no runbook, policy bundle or agent at {target!r}",
        field="candidate",
        fix="give a runbook file, a directory of runbooks, a bundle directory or module:Class",
    )


def agent_candidate(spec: str) -> Candidate:
    """An agent plugin named ``module:attribute`` (an agent, or a class or factory of one).

    Its version is its name and a content hash of its module's source. A model agent is
    refused: evaluation never calls an endpoint.
    """
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
        loaded = getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise ValidationError(
            f"agent {spec}: cannot be loaded: {type(exc).__name__}: {exc}",
            field="candidate",
            fix="give module:Class of an importable agent (the module on PYTHONPATH)",
        ) from None
    make = _maker(loaded)
    try:
        sample = make()
    except Exception as exc:  # the plugin's own constructor failing is the user's to fix
        raise ConfigError(f"agent {spec}: building it failed: {type(exc).__name__}: {exc}") from exc
    problem = not_an_agent(sample)
    if problem:
        raise ValidationError(f"agent {spec} is not an agent: {problem}", field="candidate")
    if isinstance(sample, ModelAgent) or is_slow(sample):
        raise ValidationError(
            f"agent {spec} ({sample.name}) asks a model endpoint; evaluation never calls one",
            field="candidate",
            fix="evaluate it with a scripted endpoint (warden.testing.chat_double) in a test",
        )
    source = inspect.getsource(module)
    version = f"{sample.name}@{fingerprint({module_name: source})}"
    return Candidate("agent", sample.name, version, spec, make_agent=make)


def _maker(loaded: Any) -> Callable[[], Agent]:
    """A way to get a fresh agent for every run: call a class or factory, else copy."""
    if isinstance(loaded, type) or (callable(loaded) and not_an_agent(loaded)):
        return lambda: loaded()
    return lambda: copy.deepcopy(loaded)


__all__ = ["KINDS", "Candidate", "agent_candidate", "find_candidates"]
