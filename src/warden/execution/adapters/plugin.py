"""Python plugin adapter: actions implemented by user functions. Action plane.

Plugins come from the entry-point group ``warden.actions`` (the entry point's name is the
action) or are registered explicitly. Results follow `warden.execution.adapters.base`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TypeAlias

from warden.domain.errors import ConfigError, PermanentError, TemporaryError
from warden.execution.adapters.base import TalliedAdapter, failed
from warden.ports import ActionResult

__all__ = ["ENTRY_POINT_GROUP", "CheckFn", "Plugin", "PluginActionAdapter", "RunFn"]

ENTRY_POINT_GROUP = "warden.actions"

RunFn: TypeAlias = Callable[[str, dict[str, Any]], ActionResult | Mapping[str, Any]]
"""``fn(target, params)``: returns an `ActionResult`, or a dict that is a success's output."""
CheckFn: TypeAlias = Callable[[str, dict[str, Any]], bool | None]
"""``check(target, params)``: whether the action's effect holds; None when unknown."""

_ACTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


@dataclass(frozen=True, slots=True)
class Plugin:
    """One action implemented in Python.

    Attributes:
        action: The catalog action it runs.
        run: ``fn(target, params)``.
        check: ``check(target, params)``, or None when the effect cannot be checked.
        origin: Where it came from (``module:function`` or "registered"), for messages.
    """

    action: str
    run: RunFn
    check: CheckFn | None = None
    origin: str = "registered"


class PluginActionAdapter(TalliedAdapter):
    """Runs actions by calling Python functions; exceptions become failed results.

    `TemporaryError` gives a retryable failure with its delay, `PermanentError` and
    any other exception a permanent one. A plugin must be safe to call again with the
    same arguments; ``params`` holds the step's ``idempotency_key`` when the executor
    passes one.
    """

    def __init__(self, plugins: Iterable[Plugin] = ()) -> None:
        """Create an adapter with some plugins; more may be registered or loaded later.

        Raises:
            ConfigError: When two plugins claim one action.
        """
        super().__init__()
        self._lock = threading.Lock()
        self._plugins: dict[str, Plugin] = {}
        for plugin in plugins:
            self._add(plugin, replace=False)

    def actions(self) -> list[str]:
        """The action names this adapter runs, in registration order."""
        with self._lock:
            return list(self._plugins)

    def plugin(self, action: str) -> Plugin | None:
        """The plugin registered for an action, if any."""
        with self._lock:
            return self._plugins.get(action)

    # -- registration ----------------------------------------------------------------

    def register(
        self, action: str, fn: RunFn, check: CheckFn | None = None, *, replace: bool = False
    ) -> Plugin:
        """Make ``fn`` run ``action``.

        Args:
            action: The catalog action name.
            fn: Called as ``fn(target, params)``.
            check: Called as ``check(target, params)`` to reconcile after a crash.
            replace: Allow replacing a plugin already registered for ``action``.

        Raises:
            ConfigError: For a bad name, something not callable, or a second plugin for
                one action without ``replace``.
        """
        plugin = Plugin(action=action, run=fn, check=check)
        self._add(plugin, replace=replace)
        return plugin

    def load(self, action: str, reference: str, check: str | None = None) -> Plugin:
        """Register a plugin named in configuration.

        Args:
            action: The catalog action name.
            reference: ``module:function``, or the name of an entry point in the group
                ``warden.actions``.
            check: ``module:function`` of its check, if any.

        Raises:
            ConfigError: Naming ``entry_point`` or ``check`` when it cannot be loaded.
        """
        if not isinstance(reference, str) or not reference:
            raise ConfigError(
                "config error: entry_point: give module:function or an entry point name"
            )
        if _REFERENCE.fullmatch(reference):
            target = _load_reference("entry_point", action, reference)
        else:
            found = [ep for ep in _group(ENTRY_POINT_GROUP) if ep.name == reference]
            if not found:
                names = sorted({ep.name for ep in _group(ENTRY_POINT_GROUP)})
                raise ConfigError(
                    f"config error: entry_point: no entry point {reference!r} in group"
                    f" {ENTRY_POINT_GROUP} (installed: {', '.join(names) or 'none'});"
                    " write module:function, or install the package that provides it"
                )
            target = _load_entry_point("entry_point", found[0])
        run_fn, check_fn = _split(target)
        if check is not None:
            if not isinstance(check, str) or not _REFERENCE.fullmatch(check):
                raise ConfigError(f"config error: check: {check!r} is not module:function")
            check_fn = _load_reference("check", action, check)
        plugin = Plugin(action=action, run=run_fn, check=check_fn, origin=reference)
        self._add(plugin, replace=False)
        return plugin

    def load_entry_points(
        self,
        group: str = ENTRY_POINT_GROUP,
        *,
        names: Iterable[str] | None = None,
    ) -> list[str]:
        """Register the plugins installed in an entry-point group.

        The entry point's name is the action; its object is a function ``fn(target,
        params)``, or an object with a ``run`` method and optionally a ``check`` method.

        Args:
            group: The entry-point group.
            names: Load only these actions (all of the group when None). Naming one that
                is not installed is an error.

        Returns:
            The actions registered.

        Raises:
            ConfigError: For a missing or broken entry point, or an action taken twice.
        """
        available = {ep.name: ep for ep in _group(group)}
        wanted = list(available) if names is None else list(names)
        missing = [n for n in wanted if n not in available]
        if missing:
            raise ConfigError(
                f"config error: no entry point {missing[0]!r} in group {group}"
                f" (installed: {', '.join(sorted(available)) or 'none'})"
            )
        loaded: list[str] = []
        for name in wanted:
            run_fn, check_fn = _split(_load_entry_point(name, available[name]))
            self._add(Plugin(name, run_fn, check_fn, origin=available[name].value), replace=False)
            loaded.append(name)
        return loaded

    # -- the ActionAdapter port (`run` is TalliedAdapter's: it counts `_run`) ----------

    def check(
        self, action: str, target: str, params: Mapping[str, Any] | None = None
    ) -> bool | None:
        """The plugin's check; None without one, or when it raises or answers oddly."""
        self._tally.checked()
        plugin = self.plugin(action)
        if plugin is None or plugin.check is None:
            return None
        try:
            answer = plugin.check(target, dict(params or {}))
        except Exception:
            return None
        return answer if isinstance(answer, bool) else None

    # -- internals -------------------------------------------------------------------

    def _add(self, plugin: Plugin, *, replace: bool) -> None:
        if not isinstance(plugin.action, str) or not _ACTION.fullmatch(plugin.action):
            raise ConfigError(
                f"config error: action name {plugin.action!r} is not valid"
                " (letters, digits, '.', '_' or '-', starting with a letter or digit)"
            )
        if not callable(plugin.run):
            raise ConfigError(
                f"config error: {plugin.action}: the plugin is not callable"
                f" ({type(plugin.run).__name__}); give a function fn(target, params)"
            )
        if plugin.check is not None and not callable(plugin.check):
            raise ConfigError(f"config error: {plugin.action}: check is not callable")
        with self._lock:
            if plugin.action in self._plugins and not replace:
                raise ConfigError(
                    f"config error: {plugin.action}: already implemented by"
                    f" {self._plugins[plugin.action].origin}; keep one, or pass replace=True"
                )
            self._plugins[plugin.action] = plugin

    def _run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        """Call the action's function with a copy of the params.

        Returns:
            Its result (a dict becomes a success's output); a failed result with
            ``retryable`` and ``retry_after_s`` when it raised or returned a failure.
        """
        plugin = self.plugin(action)
        if plugin is None:
            return self._unknown_action(action)
        try:
            answer = plugin.run(target, dict(params))
        except TemporaryError as exc:
            return failed(
                f"{action} on {target}: {exc} (retry in {exc.delay:g} s)",
                retryable=True,
                retry_after_s=exc.delay,
            )
        except PermanentError as exc:
            return failed(f"{action} on {target}: {exc}", retryable=False)
        except Exception as exc:
            return failed(
                f"{action} on {target}: the plugin raised {type(exc).__name__}: {exc}",
                retryable=False,
                output={"error": type(exc).__name__},
            )
        return _normalized(action, target, answer)


def _normalized(action: str, target: str, answer: object) -> ActionResult:
    if isinstance(answer, Mapping):
        result = ActionResult(ok=True, detail=f"{action} on {target} done", output=dict(answer))
    elif isinstance(answer, ActionResult):
        result = answer
    else:
        return failed(
            f"{action}: the plugin returned {type(answer).__name__};"
            " return an ActionResult or a dict (the output of a success)",
            retryable=False,
        )
    try:
        json.dumps(result.output)
    except (TypeError, ValueError) as exc:
        return failed(
            f"{action}: the plugin's output cannot be recorded as JSON ({exc})", retryable=False
        )
    if result.ok:
        return result
    output = dict(result.output)
    output["retryable"] = output.get("retryable") is True
    output.setdefault("retry_after_s", None)
    return ActionResult(ok=False, detail=result.detail, output=output)


def _group(group: str) -> list[metadata.EntryPoint]:
    return list(metadata.entry_points(group=group))


def _load_reference(key: str, action: str, reference: str) -> Any:
    return _load_entry_point(
        key, metadata.EntryPoint(name=action, value=reference, group=ENTRY_POINT_GROUP)
    )


def _load_entry_point(key: str, entry_point: metadata.EntryPoint) -> Any:
    try:
        return entry_point.load()
    except Exception as exc:
        raise ConfigError(
            f"config error: {key}: cannot load {entry_point.value!r}"
            f" ({type(exc).__name__}: {exc}); install the package or fix module:function"
        ) from exc


def _split(target: Any) -> tuple[Any, Any]:
    """The run and check functions of a loaded object: a function, or one with run/check."""
    run = getattr(target, "run", None)
    if callable(run) and not isinstance(target, type):
        return run, getattr(target, "check", None)
    return target, None
