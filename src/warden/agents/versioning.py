"""An agent's version: its own when it states one, else its code's hash. Decisioning plane.

A runbook states its version (the hash of its file); a built-in or plugin agent is
versioned by the source of the module its class is defined in, so a changed rule is a
new version. A model agent's settings (endpoint, model, prompt) carry a version of their
own (``settings_version``).
"""

from __future__ import annotations

import functools
import inspect
import sys
from typing import TYPE_CHECKING

from warden.domain.versions import fingerprint

if TYPE_CHECKING:
    from warden.agents.protocol import Agent


def version_of(agent: Agent) -> str:
    """The version of ``agent``: its ``version`` attribute, else its code's content hash."""
    own = getattr(agent, "version", None)
    if isinstance(own, str) and own:
        return own
    return _code_version(agent)


def settings_version(agent: Agent) -> str:
    """The version of the model settings behind ``agent`` ("" for an agent without any)."""
    found = getattr(agent, "settings_version", "")
    return found if isinstance(found, str) else ""


def versions_of(agent: Agent) -> dict[str, str]:
    """What a plan of ``agent`` records: its version, and its model settings' if any."""
    found = {"agent": version_of(agent)}
    model = settings_version(agent)
    if model:
        found["model"] = model
    return found


def _code_version(agent: Agent) -> str:
    """``name@hash`` of the module the agent's class is defined in (as `warden evaluate`)."""
    return f"{agent.name}@{_module_hash(type(agent).__module__)}"


@functools.cache
def _module_hash(name: str) -> str:
    module = sys.modules.get(name)
    try:
        source = inspect.getsource(module) if module is not None else ""
    except (OSError, TypeError):
        source = ""
    return fingerprint({name: source})


__all__ = ["settings_version", "version_of", "versions_of"]
