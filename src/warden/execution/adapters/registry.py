"""Action adapters built from configuration, and the configuration format. Action plane.

Configuration (a mapping, usually the ``actions:`` section of ``warden.yaml``)::

    nats:                                  # only needed by `adapter: nats` actions
      servers: [nats://127.0.0.1:4222]     # a URL or a list; this is the default
      connect_timeout_s: 2
    actions:
      rollback_deploy:
        adapter: http
        method: POST                       # GET, POST, PUT, PATCH or DELETE; POST by default
        url: https://deploy.internal/api/services/{target}/rollback?to={version}
        headers: {Authorization: "Bearer ${DEPLOY_TOKEN}"}   # ${ENV} read at call time
        body: {service: "{target}", version: "{version}"}    # JSON template; optional
        timeout_s: 10
        expect_status: [200, 202]          # optional; any 2xx by default
        check:                             # optional GET telling whether the effect holds
          url: https://deploy.internal/api/services/{target}
          expect: {version: "{version}"}   # optional subset of the JSON response
          statuses: [200]                  # the effect may hold (then `expect` decides)
          absent_statuses: [404, 410]      # the effect does not hold
      notify:
        adapter: nats
        subject: warden.notify.{target}    # JetStream subject template
        stream: NOTIFY                     # optional; required for check()
        body: {text: "{message}"}          # optional; default: action, target, params, key
        timeout_s: 5
      my_action:
        adapter: python
        entry_point: mypkg.actions:scale   # module:function, or an entry point name in
                                           # the group `warden.actions`
        check: mypkg.actions:scaled        # optional module:function
        timeout_s: 60                      # a child process runs each call; killed
                                           # (its process group) when it overruns

``{name}`` placeholders take the step's target (``{target}``), action (``{action}``) and
params (``{idempotency_key}`` too when the executor passes it); ``{{`` and ``}}`` are
literal braces. In URLs and subjects values are quoted; in a JSON body a string that is
exactly one placeholder keeps the value's JSON type. ``${ENV_NAME}`` references to
secrets are allowed in HTTP header values only; they are resolved at call time and never
appear in a result, an error, a log line or a repr.

Failed runs follow the result convention in `warden.execution.adapters.base` (see
`failed`). That module's names and the template functions are re-exported from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from warden.domain.errors import ConfigError, WardenError
from warden.execution.adapters.base import (
    ClosingContext,
    RunStatistics,
    RunTally,
    failed,
    retry_hint,
)
from warden.execution.adapters.templates import (
    json_template_names,
    render_json,
    render_text,
    template_names,
)
from warden.ports import ActionAdapter, ActionChecker, Closeable

if TYPE_CHECKING:
    from collections.abc import Callable

    from warden.execution.adapters.http_routes import HttpRoute
    from warden.execution.adapters.nats_routes import NatsRoute
    from warden.ports import Clock

__all__ = [
    "ADAPTER_KINDS",
    "ActionAdapters",
    "RunStatistics",
    "RunTally",
    "build_adapters",
    "check_action",
    "failed",
    "json_template_names",
    "render_json",
    "render_text",
    "retry_hint",
    "template_names",
]

ADAPTER_KINDS = ("http", "nats", "python")
"""The values ``adapter:`` takes in an action's configuration."""


class ActionAdapters(Mapping[str, ActionAdapter], ClosingContext):
    """Action name -> the adapter that runs it; closes what it built.

    Use it as a context manager, or call `close` when done, so NATS connections and their
    event loop thread end cleanly.
    """

    def __init__(self, by_action: Mapping[str, ActionAdapter]) -> None:
        self._by_action = dict(by_action)

    def __getitem__(self, action: str) -> ActionAdapter:
        return self._by_action[action]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_action)

    def __len__(self) -> int:
        return len(self._by_action)

    def __repr__(self) -> str:
        kinds = {a: type(ad).__name__ for a, ad in self._by_action.items()}
        return f"ActionAdapters({kinds!r})"

    def adapters(self) -> list[ActionAdapter]:
        """Each distinct adapter once, in order of first use."""
        seen: dict[int, ActionAdapter] = {}
        for adapter in self._by_action.values():
            seen.setdefault(id(adapter), adapter)
        return list(seen.values())

    def check(
        self, action: str, target: str, params: Mapping[str, Any] | None = None
    ) -> bool | None:
        """Whether an action's effect holds, through its adapter's ``check``; None if unknown."""
        adapter = self._by_action.get(action)
        if not isinstance(adapter, ActionChecker):
            return None
        result = adapter.check(action, target, params)
        return result if isinstance(result, bool) else None

    def close(self) -> None:
        """Close every adapter that holds a connection; safe to call twice."""
        for adapter in self.adapters():
            if isinstance(adapter, Closeable):
                adapter.close()


_ACTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_COMMON_KEYS = {"adapter"}
_HTTP_KEYS = {"method", "url", "headers", "body", "timeout_s", "expect_status", "check"}
_CHECK_KEYS = {"url", "headers", "timeout_s", "statuses", "absent_statuses", "expect"}
_NATS_KEYS = {"subject", "stream", "body", "headers", "timeout_s"}
_PYTHON_KEYS = {"entry_point", "check", "timeout_s"}
_NATS_SECTION_KEYS = {"servers", "connect_timeout_s"}
DEFAULT_NATS_SERVERS = ("nats://127.0.0.1:4222",)


def build_adapters(
    config: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> ActionAdapters:
    """Build one adapter per kind and map each configured action to it.

    Only the ``actions`` and ``nats`` keys are read; other sections are left alone. Only
    the configured actions are reachable: entry points in ``warden.actions`` that the
    configuration does not name are never loaded.

    Args:
        config: The configuration mapping (format in this module's docstring).
        env: Where ``${ENV}`` secrets are read at call time; ``os.environ`` by default.
        clock: For HTTP ``Retry-After`` dates; the system clock by default.

    Raises:
        ConfigError: Naming the key at fault and the fix.
    """
    # Imported here, so that importing this module does not load the NATS client.
    from warden.execution.adapters.http import HttpActionAdapter
    from warden.execution.adapters.nats_publish import NatsPublishAdapter
    from warden.execution.adapters.plugin import DEFAULT_TIMEOUT_S, PluginActionAdapter

    actions = config.get("actions") if isinstance(config, Mapping) else None
    if not isinstance(actions, Mapping) or not actions:
        raise ConfigError(
            "config error: actions: missing or empty; give a mapping of action names to"
            " their adapter, e.g. actions: {notify: {adapter: nats, subject: alerts.{target}}}"
        )
    http_routes: dict[str, HttpRoute] = {}
    nats_routes: dict[str, NatsRoute] = {}
    plugins = PluginActionAdapter()
    for name, raw in actions.items():
        where = f"actions.{name}"
        if not isinstance(name, str) or not _ACTION_NAME.fullmatch(name):
            raise ConfigError(
                f"config error: {where}: {name!r} is not an action name; use letters, digits,"
                " '.', '_' or '-', starting with a letter or digit"
            )
        if not isinstance(raw, Mapping):
            raise ConfigError(
                f"config error: {where}: expected a mapping with `adapter:` and its keys"
            )
        kind = raw.get("adapter")
        if kind not in ADAPTER_KINDS:
            raise ConfigError(
                f"config error: {where}.adapter: {kind!r} is not an adapter kind;"
                f" use one of {', '.join(ADAPTER_KINDS)}"
            )
        try:
            if kind == "http":
                http_routes[name] = _route(where, kind, raw)
            elif kind == "nats":
                nats_routes[name] = _route(where, kind, raw)
            else:
                _check_keys(where, raw, _PYTHON_KEYS | _COMMON_KEYS, required=("entry_point",))
                plugins.load(
                    name,
                    raw["entry_point"],
                    raw.get("check"),
                    timeout_s=raw.get("timeout_s", DEFAULT_TIMEOUT_S),
                )
        except ConfigError as exc:
            raise _placed(where, exc) from exc
    by_action: dict[str, ActionAdapter] = {}
    if http_routes:
        http = HttpActionAdapter(http_routes, env=env, clock=clock)
        by_action.update(dict.fromkeys(http_routes, http))
    if nats_routes:
        servers, connect_timeout_s = _nats_section(config.get("nats"))
        nats = NatsPublishAdapter(servers, nats_routes, connect_timeout_s=connect_timeout_s)
        by_action.update(dict.fromkeys(nats_routes, nats))
    if plugins.actions():
        by_action.update(dict.fromkeys(plugins.actions(), plugins))
    return ActionAdapters({name: by_action[name] for name in actions})


def check_action(kind: str, raw: Mapping[str, Any], where: str = "action") -> None:
    """Check an ``http`` or ``nats`` action's options as `build_adapters` does, building nothing.

    Raises:
        ConfigError: Naming the key at fault (under ``where``) and the fix.
    """
    if kind in ("http", "nats"):
        _route(where, kind, raw)


def _route(where: str, kind: str, raw: Mapping[str, Any]) -> Any:
    """The HttpRoute or NatsRoute of an action's options."""
    from warden.execution.adapters.http_routes import HttpCheck, HttpRoute
    from warden.execution.adapters.nats_routes import NatsRoute

    if kind == "nats":
        _check_keys(where, raw, _NATS_KEYS | _COMMON_KEYS, required=("subject",))
        return _build(where, NatsRoute, {k: v for k, v in raw.items() if k in _NATS_KEYS})
    _check_keys(where, raw, _HTTP_KEYS | _COMMON_KEYS, required=("url",))
    fields = {k: v for k, v in raw.items() if k in _HTTP_KEYS - {"check"}}
    check = raw.get("check")
    if check is not None:
        if not isinstance(check, Mapping):
            raise ConfigError(
                "check: expected a mapping with url: and optionally"
                " expect:, statuses:, absent_statuses:, headers:, timeout_s:"
            )
        _check_keys(f"{where}.check", check, _CHECK_KEYS, required=("url",))
        fields["check"] = _build(f"{where}.check", HttpCheck, check)
    return _build(where, HttpRoute, fields)


def _check_keys(
    where: str, raw: Mapping[str, Any], allowed: set[str], required: tuple[str, ...]
) -> None:
    for key in raw:
        if key not in allowed:
            raise ConfigError(
                f"config error: {where}.{key}: unknown key; known: {', '.join(sorted(allowed))}"
            )
    for key in required:
        if raw.get(key) in (None, ""):
            raise ConfigError(f"config error: {where}.{key}: required; add it")


def _build(where: str, cls: Callable[..., Any], fields: Mapping[str, Any]) -> Any:
    try:
        return cls(**fields)
    except ConfigError as exc:
        raise _placed(where, exc) from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config error: {where}: {exc}") from exc


def _placed(where: str, exc: WardenError) -> ConfigError:
    """An adapter's ``config error: field: ...`` re-said with the key path in front."""
    text = str(exc).removeprefix("config error: ")
    if text.startswith(where):
        return ConfigError(f"config error: {text}")
    return ConfigError(f"config error: {where}.{text}")


def _nats_section(raw: Any) -> tuple[tuple[str, ...], float]:
    if raw is None:
        return DEFAULT_NATS_SERVERS, 2.0
    if not isinstance(raw, Mapping):
        raise ConfigError("config error: nats: expected a mapping with servers: [nats://host:4222]")
    _check_keys("nats", raw, _NATS_SECTION_KEYS, required=())
    servers = raw.get("servers", DEFAULT_NATS_SERVERS)
    if isinstance(servers, str):
        servers = (servers,)
    if (
        not isinstance(servers, list | tuple)
        or not servers
        or not all(isinstance(s, str) and "://" in s for s in servers)
    ):
        raise ConfigError(
            "config error: nats.servers: expected a URL or a list of URLs like nats://host:4222"
        )
    timeout = raw.get("connect_timeout_s", 2.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(
            f"config error: nats.connect_timeout_s: {timeout!r} is not a positive number of seconds"
        )
    return tuple(servers), float(timeout)
