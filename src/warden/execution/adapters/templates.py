"""Templates in action configuration: ``{name}`` placeholders in text and JSON. Action plane.

The syntax is documented with the configuration format in `warden.execution.adapters.registry`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from warden.domain.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["json_template_names", "render_json", "render_text", "template_names"]

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_STRAY_BRACE = re.compile(r"[{}]")


def template_names(text: str) -> frozenset[str]:
    """The placeholder names in a text template.

    Raises:
        ConfigError: When a brace is neither a placeholder nor doubled (``{{``, ``}}``).
    """
    names = {m.group(1) for m in _TOKEN.finditer(text) if m.group(1)}
    if _STRAY_BRACE.search(_TOKEN.sub("", text)):
        raise ConfigError(
            f"template {text!r} has a stray brace; write {{name}} for a value"
            " (a name is letters, digits and _) or {{{{ and }}}} for a literal brace"
        )
    return frozenset(names)


def json_template_names(template: Any) -> frozenset[str]:
    """The placeholder names in every string of a JSON template (keys included)."""
    if isinstance(template, str):
        return template_names(template)
    if isinstance(template, Mapping):
        found: set[str] = set()
        for key, value in template.items():
            found |= template_names(str(key)) | json_template_names(value)
        return frozenset(found)
    if isinstance(template, list | tuple):
        return frozenset().union(*(json_template_names(v) for v in template))
    return frozenset()


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | Mapping | list | tuple):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return str(value)


def render_text(
    template: str, values: Mapping[str, Any], quote: Callable[[str], str] | None = None
) -> str:
    """Fill ``{name}`` placeholders from ``values``, each passed through ``quote``.

    Raises:
        KeyError: With the first placeholder name that ``values`` lacks.
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if not name:
            return match.group(0)[0]
        text = _as_text(values[name])
        return quote(text) if quote else text

    return _TOKEN.sub(fill, template)


def render_json(template: Any, values: Mapping[str, Any]) -> Any:
    """Fill a JSON template; a string that is exactly ``{name}`` keeps the value's type.

    Raises:
        KeyError: With the first placeholder name that ``values`` lacks.
    """
    if isinstance(template, str):
        whole = _TOKEN.fullmatch(template)
        if whole and whole.group(1):
            return values[whole.group(1)]
        return render_text(template, values)
    if isinstance(template, Mapping):
        return {render_text(str(k), values): render_json(v, values) for k, v in template.items()}
    if isinstance(template, list | tuple):
        return [render_json(v, values) for v in template]
    return template
