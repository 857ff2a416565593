"""Python plugin adapter: actions implemented by user functions. Action plane.

Plugins come from the entry-point group ``warden.actions`` (the entry point's name is the
action) or are registered explicitly. Results follow `warden.execution.adapters.base`.

Every call has a timeout (``timeout_s`` per action, 60 s by default). A plugin loaded by
name (configuration, entry points) runs in a child process of its own, in a process group
of its own; when it overruns, the group is killed with SIGKILL and the run is a failure
with ``timed_out`` in its output and ``retryable`` None: the effect is unknown, so the
executor retries it only when the catalog says the action is idempotent (a
`TemporaryError`), and otherwise gives it up (a `PermanentError`: compensate, escalate).
A function registered in this process (``register``) cannot be sent to another process
(a closure or a lambda cannot be pickled), and Python has no way to stop a thread from
outside: it runs on a daemon thread that the caller stops waiting for at the timeout.
That thread is isolated: until it ends, the same action on the same target is refused
(retryable), so no two copies run at once, and ``abandoned()`` lists it. Load plugins
by name for a hard limit.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import queue
import re
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TypeAlias

from warden.domain.errors import ConfigError, PermanentError, TemporaryError
from warden.execution.adapters.base import TalliedAdapter, failed
from warden.ports import ActionResult

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ENTRY_POINT_GROUP",
    "CheckFn",
    "Plugin",
    "PluginActionAdapter",
    "RunFn",
]

ENTRY_POINT_GROUP = "warden.actions"
DEFAULT_TIMEOUT_S = 60.0
# A fresh interpreter per call: nothing of the parent's threads or locks is inherited.
_CHILDREN = multiprocessing.get_context("spawn")

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
        timeout_s: How long one call (run or check) may take.
        reference: ``module:attribute`` a child process loads it from; empty for a
            function registered in this process (it then runs on a thread).
        check_reference: ``module:function`` of the check, when it has its own.
    """

    action: str
    run: RunFn
    check: CheckFn | None = None
    origin: str = "registered"
    timeout_s: float = DEFAULT_TIMEOUT_S
    reference: str = ""
    check_reference: str = ""


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
        # Threads of registered plugins that overran, by (action, target): still running.
        self._abandoned: dict[tuple[str, str], threading.Thread] = {}
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
        self,
        action: str,
        fn: RunFn,
        check: CheckFn | None = None,
        *,
        replace: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Plugin:
        """Make ``fn`` run ``action``, in this process (see the module's note on timeouts).

        Args:
            action: The catalog action name.
            fn: Called as ``fn(target, params)``.
            check: Called as ``check(target, params)`` to reconcile after a crash.
            replace: Allow replacing a plugin already registered for ``action``.
            timeout_s: How long one call may take before it is reported timed out.

        Raises:
            ConfigError: For a bad name, something not callable, or a second plugin for
                one action without ``replace``.
        """
        plugin = Plugin(action=action, run=fn, check=check, timeout_s=_timeout(action, timeout_s))
        self._add(plugin, replace=replace)
        return plugin

    def load(
        self,
        action: str,
        reference: str,
        check: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Plugin:
        """Register a plugin named in configuration; each call runs in a child process.

        Args:
            action: The catalog action name.
            reference: ``module:function``, or the name of an entry point in the group
                ``warden.actions``.
            check: ``module:function`` of its check, if any.
            timeout_s: How long one call may take; then its process group is killed.

        Raises:
            ConfigError: Naming ``entry_point`` or ``check`` when it cannot be loaded.
        """
        if not isinstance(reference, str) or not reference:
            raise ConfigError(
                "config error: entry_point: give module:function or an entry point name"
            )
        value = reference
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
            value = found[0].value
        run_fn, check_fn = _split(target)
        if check is not None:
            if not isinstance(check, str) or not _REFERENCE.fullmatch(check):
                raise ConfigError(f"config error: check: {check!r} is not module:function")
            check_fn = _load_reference("check", action, check)
        plugin = Plugin(
            action=action,
            run=run_fn,
            check=check_fn,
            origin=reference,
            timeout_s=_timeout(action, timeout_s),
            reference=value,
            check_reference=check or "",
        )
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
            value = available[name].value
            self._add(Plugin(name, run_fn, check_fn, origin=value, reference=value), replace=False)
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
        kind, value = self._call(plugin, "check", target, dict(params or {}))
        return value if kind == "ok" and isinstance(value, bool) else None

    def abandoned(self) -> list[tuple[str, str]]:
        """(action, target) of registered plugins still running past their timeout."""
        with self._lock:
            for key, thread in list(self._abandoned.items()):
                if not thread.is_alive():
                    del self._abandoned[key]
            return list(self._abandoned)

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
        kind, value = self._call(plugin, "run", target, dict(params))
        if kind == "ok":
            return _normalized(action, target, value)
        if kind == "temporary":
            detail, delay = value
            return failed(
                f"{action} on {target}: {detail} (retry in {delay:g} s)",
                retryable=True,
                retry_after_s=delay,
            )
        if kind == "permanent":
            return failed(f"{action} on {target}: {value}", retryable=False)
        if kind == "timeout":
            return ActionResult(
                ok=False,
                detail=f"{action} on {target}: no answer within {plugin.timeout_s:g} s; {value}",
                # The effect is unknown: the catalog's idempotence decides a retry.
                output={"retryable": None, "retry_after_s": None, "timed_out": True},
            )
        if kind == "busy":
            return failed(f"{action} on {target}: {value}", retryable=True, retry_after_s=5.0)
        name, text = value
        return failed(
            f"{action} on {target}: the plugin raised {name}: {text}",
            retryable=False,
            output={"error": name},
        )

    def _call(
        self, plugin: Plugin, which: str, target: str, params: dict[str, Any]
    ) -> tuple[str, Any]:
        """Call the plugin's ``run`` or ``check`` within its timeout: (kind, value)."""
        if plugin.reference:
            reference = plugin.check_reference if which == "check" else ""
            return _in_child(plugin, which, reference, target, params)
        fn = plugin.check if which == "check" else plugin.run
        assert fn is not None
        key = (plugin.action, target)
        with self._lock:
            running = self._abandoned.get(key)
            if running is not None and running.is_alive():
                return "busy", (
                    f"a call that overran its {plugin.timeout_s:g} s timeout is still running"
                    " in this process; not starting a second one"
                )
        answers: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        thread = threading.Thread(
            target=lambda: answers.put(_outcome(fn, target, params)),
            name=f"warden-plugin-{plugin.action}",
            daemon=True,
        )
        thread.start()
        thread.join(plugin.timeout_s)
        if thread.is_alive():
            with self._lock:
                self._abandoned[key] = thread
            return "timeout", (
                "the function runs in this process and a thread cannot be stopped; it is"
                " left running, and this action on this target is refused until it ends"
                " (load the plugin by entry_point to have it killed instead)"
            )
        return answers.get()


def _outcome(
    fn: Callable[[str, dict[str, Any]], Any], target: str, params: dict[str, Any]
) -> tuple[str, Any]:
    """Call ``fn``; its answer or error as (kind, value), as a child process sends it."""
    try:
        return "ok", fn(target, params)
    except TemporaryError as exc:
        return "temporary", (str(exc), exc.delay)
    except PermanentError as exc:
        return "permanent", str(exc)
    except Exception as exc:
        return "raised", (type(exc).__name__, str(exc))


def _child(
    answer: Any,
    reference: str,
    which: str,
    check_reference: str,
    target: str,
    params: dict[str, Any],
) -> None:
    """The body of a plugin's child process: load, call, send the outcome back."""
    os.setpgrp()  # its own group: a timeout kills whatever it started too
    try:
        if which == "check" and check_reference:
            fn = _load_reference("check", "plugin", check_reference)
        else:
            run, check = _split(_load_reference("entry_point", "plugin", reference))
            fn = check if which == "check" else run
        outcome = _outcome(fn, target, params)
    except Exception as exc:
        outcome = "raised", (type(exc).__name__, str(exc))
    try:
        answer.send(outcome)
    except Exception as exc:  # an answer that cannot be pickled
        answer.send(("raised", (type(exc).__name__, f"its answer cannot be sent back: {exc}")))
    answer.close()


def _in_child(
    plugin: Plugin, which: str, check_reference: str, target: str, params: dict[str, Any]
) -> tuple[str, Any]:
    """Run the plugin in a child process; kill its process group when it overruns."""
    receive, send = _CHILDREN.Pipe(duplex=False)
    process = _CHILDREN.Process(
        target=_child,
        args=(send, plugin.reference, which, check_reference, target, params),
        name=f"warden-plugin-{plugin.action}",
        daemon=True,
    )
    process.start()
    send.close()
    try:
        if receive.poll(plugin.timeout_s):
            try:
                return receive.recv()  # type: ignore[no-any-return]
            except EOFError:
                process.join(5)
                return "raised", (
                    "ChildDied",
                    f"its process ended ({process.exitcode}) without an answer",
                )
        _kill(process)
        return "timeout", f"its process (pid {process.pid}) and process group were killed"
    finally:
        receive.close()
        process.join(5)
        if process.is_alive():
            _kill(process)


def _kill(process: Any) -> None:
    """SIGKILL to the child's process group (and to the child, if it had no group yet)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    process.join(5)


def _timeout(action: str, timeout_s: object) -> float:
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float):
        raise ConfigError(
            f"config error: {action}: timeout_s: {timeout_s!r} is not a number of seconds"
        )
    if not 0 < timeout_s < float("inf"):
        raise ConfigError(
            f"config error: {action}: timeout_s: {timeout_s!r} must be a positive number of seconds"
        )
    return float(timeout_s)


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
