"""The declarative schema of ``warden.yaml``: one pydantic model per section. Shell (config edge).

Used only to check a file and to print its JSON Schema; :mod:`warden.config` converts the
checked file into the frozen settings the rest of Warden reads. Tagged unions carry tags
in parentheses (``(text)``, ``(mapping)``); error paths leave them out.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    Tag,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from warden.agents.builtin import check_settings
from warden.agents.model import DEFAULT_API_KEY_ENV, check_model_section
from warden.domain.control import AUTONOMY_LEVELS
from warden.domain.errors import ConfigError
from warden.domain.events import parse_time
from warden.execution.adapters.registry import ADAPTER_KINDS, check_action
from warden.governance.approvals import FALLBACKS
from warden.ingest.probes import tcp_address
from warden.ingest.senders import SCHEMES, check_sender

__all__ = ["RELATIVE", "WardenFile", "json_schema"]

RELATIVE = "_"
"""The root a sub-parser's check is given: its paths are then said under the error's place."""

Level = Literal["observe", "recommend", "supervised", "autonomous"]
assert set(get_args(Level)) == set(AUTONOMY_LEVELS)  # the schema names the same levels


def _fail(kind: str, message: str, **ctx: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, message, ctx or None)


def _matching(regex: str, message: str) -> AfterValidator:
    """Refuse a string ``regex`` does not match in full, with ``message``."""
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if compiled.fullmatch(value) is None:
            raise _fail("pattern", message + " (got {given})", given=repr(value))
        return value

    return AfterValidator(check)


def _shown(regex: str) -> Any:
    """The pattern as editors see it (JSON Schema anchors nothing, so anchor it)."""
    return Field(json_schema_extra={"pattern": f"^(?:{regex})$"})


def _from_config_error(check: Any) -> Any:
    """Run ``check(value)``; its ConfigError becomes this place's error."""

    def run(value: Any) -> Any:
        try:
            check(value)
        except ConfigError as exc:
            raise _fail("invalid", "{reason}", reason=str(exc)) from None
        return value

    return AfterValidator(run)


def _by_shape(value: Any) -> str:
    return "(mapping)" if isinstance(value, dict) else "(text)"


class Section(BaseModel):
    """A mapping with known keys only; numbers finite; no type coercion."""

    # Built once, inside the whole file's validator, not one validator per section.
    model_config = ConfigDict(
        extra="forbid", strict=True, allow_inf_nan=False, frozen=True, defer_build=True
    )


class Checked(Section):
    """A section a lower layer checks too: its function sees the mapping as written."""

    @classmethod
    def check_written(cls, raw: dict[str, Any]) -> None:
        """Raise ConfigError for what the section's fields cannot say."""

    @model_validator(mode="wrap")
    @classmethod
    def _then_check(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        made = handler(data)  # the fields first: the check may assume their types
        try:
            cls.check_written(data)
        except ConfigError as exc:
            raise _fail("invalid", "{reason}", reason=str(exc)) from None
        return made


Seconds = Annotated[float, Field(gt=0)]


def _scalar(value: Any) -> Any:
    if isinstance(value, str | int | float):  # bool is an int
        return value
    raise _fail(
        "scalar", "expected a single value (text, number or bool), got {given}", given=repr(value)
    )


Scalar = Annotated[
    Any,
    AfterValidator(_scalar),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


_ONE_OR_MORE = WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
)
Texts = Annotated[list[str], BeforeValidator(_listed), _ONE_OR_MORE]
"""A list of strings, or one string alone."""


_NAME = r"[\w-]*[^\W_][\w-]*"
Name = Annotated[str, _shown(_NAME), _matching(_NAME, "use letters, digits, - and _")]
_PLAIN = r"[a-z_][a-z0-9_]{0,62}"
PlainName = Annotated[
    str, _shown(_PLAIN), _matching(_PLAIN, "not a plain lower-case name (use letters, digits, _)")
]
_HTTP = r"https?://[^/\s]+.*"
HttpUrl = Annotated[str, _shown(_HTTP), _matching(_HTTP, "an http(s) URL is required")]
_ENV = r"[A-Za-z_][A-Za-z0-9_]*"
_AGENT = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"
_ACTION = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_URL = r".+://.+"
EventTypes = list[Annotated[str, Field(min_length=1)]]


def _argv(value: Any) -> Any:
    if isinstance(value, str):
        raise _fail(
            "shell_string",
            "give a list of arguments, not a shell string"
            " (e.g. [python, -m, myservice] instead of {given})",
            given=repr(value),
        )
    return value


def _argv_not_empty(value: list[Any] | None) -> list[Any] | None:
    if value is not None and (not value or value[0] in ("", None)):
        raise _fail(
            "empty_argv",
            "an empty command runs nothing; give it (e.g. [python, -m, myservice]),"
            " or remove argv and set managed: false",
        )
    return value


_HEALTH_URL = r"(?:https?://[^/\s]+.*|tcp://\S+)"
_HEALTH_FORMS = (
    "use http(s)://host/path, tcp://host:port, or {command: [program, arg, ...]}"
    " (exit code 0 is healthy)"
)


def _health_url(value: str) -> str:
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme == "tcp":
        try:
            tcp_address(value)
        except ConfigError as exc:
            reason = str(exc).removeprefix("config error: ")
            raise _fail("tcp", "{reason}", reason=reason) from None
        return value
    if scheme in ("http", "https") and re.fullmatch(r"https?://[^/\s]+.*", value):
        return value
    if scheme:
        raise _fail(
            "health_scheme",
            "{scheme}:// is not a health check Warden runs; " + _HEALTH_FORMS,
            scheme=scheme,
        )
    raise _fail("health", "not a URL ({given}); " + _HEALTH_FORMS, given=repr(value))


def _check_command(value: list[Any]) -> list[Any]:
    if not value or value[0] in ("", None):
        raise _fail(
            "empty_command",
            "an empty check command runs nothing; give it, e.g. [pg_isready, -h, 127.0.0.1]",
        )
    return value


class HealthCommand(Section):
    """A check command: healthy when it exits 0 within ``timeout_s``."""

    command: Annotated[list[Scalar], BeforeValidator(_argv), AfterValidator(_check_command)]
    timeout_s: Annotated[float, Field(gt=0, le=300)] | None = None


HealthCheck = Annotated[
    Annotated[Annotated[str, _shown(_HEALTH_URL), AfterValidator(_health_url)], Tag("(text)")]
    | Annotated[HealthCommand, Tag("(mapping)")],
    Discriminator(_by_shape),
]


class Service(Section):
    """One service Warden watches and, when ``managed``, runs."""

    name: Name
    health: HealthCheck
    argv: Annotated[
        list[Scalar] | None, BeforeValidator(_argv), AfterValidator(_argv_not_empty)
    ] = None
    cwd: str | None = None
    env: dict[str, Scalar] | None = None
    depends_on: list[str] = []
    managed: bool | None = None
    domain: str = "default"
    tier: str = "standard"
    desired: dict[str, Scalar] | None = None
    limits: dict[str, Scalar] | None = None
    # How long a stop waits after SIGTERM before SIGKILL (a hung process ignores SIGTERM).
    stop_timeout_s: Annotated[float, Field(ge=0, le=600)] = 5.0

    @model_validator(mode="after")
    def _whole(self) -> Self:
        """A managed service needs a command."""
        if self.managed and not self.argv:
            raise _fail("needs_argv", "a managed service needs argv (or set managed: false)")
        return self


class Probe(Section):
    """How often and how patiently services are probed."""

    interval_s: Annotated[float, Field(ge=0.05)] = 1.0
    timeout_s: Annotated[float, Field(ge=0.01)] = 0.5
    jitter: Annotated[float, Field(ge=0.0, le=0.5)] = 0.1
    latency_threshold_ms: Annotated[float, Field(ge=1)] | None = None


class RateLimitSection(Section):
    """At most ``count`` actions per ``window_s``."""

    count: Annotated[int, Field(ge=1)]
    window_s: Annotated[float, Field(ge=1)] = 600


RateLimitOrOff = Annotated[
    Annotated[RateLimitSection, Tag("(mapping)")] | Annotated[Literal[False], Tag("(text)")],
    Discriminator(_by_shape),
]


class RateLimits(Section):
    """Rate limits by target, by action and overall; ``false`` turns one off."""

    per_target: RateLimitOrOff | None = None
    per_action: RateLimitOrOff | None = None
    total: RateLimitOrOff | None = None


class GuardrailsSection(Section):
    """Limits that hold whatever the policy says."""

    confidence_floor: Annotated[float, Field(ge=0.0, le=1.0)] = 0.6
    max_blast_radius_pct: Annotated[float, Field(ge=1, le=100)] = 100
    rate_limits: RateLimits | None = None


class AutonomyRuleSection(Section):
    """The level for an environment and domain (``*`` matches any)."""

    environment: str = "*"
    domain: str = "*"
    level: Level


class AutonomySection(Section):
    """A default level and more specific rules."""

    default: Level = "autonomous"
    rules: list[AutonomyRuleSection] | None = None


class ApprovalsSection(Section):
    """Who approves, how long a request waits, and what happens then."""

    timeout_s: Annotated[float, Field(ge=1)] = 900
    fallback: Literal["escalate", "do_nothing"] = "escalate"
    approvers: dict[str, list[str]] | None = None


assert set(get_args(ApprovalsSection.model_fields["fallback"].annotation)) == set(FALLBACKS)


def _time(value: Any) -> Any:
    text = value.isoformat() if isinstance(value, datetime | date) else value
    if not isinstance(text, str):
        return value
    try:
        parse_time(text)
    except ValueError as exc:
        raise _fail(
            "time",
            "an RFC 3339 time with an offset is required, e.g. 2026-12-24T00:00:00Z ({reason})",
            reason=str(exc),
        ) from None
    return text


Time = Annotated[str, BeforeValidator(_time)]


class Freeze(Section):
    """A change freeze: no action in ``domains`` between ``start`` and ``end``."""

    start: Time
    end: Time
    domains: list[str] = ["*"]
    reason: str = ""

    @model_validator(mode="after")
    def _whole(self) -> Self:
        """The window is not empty."""
        if parse_time(self.end) <= parse_time(self.start):
            raise _fail("freeze_order", "end must be after start")
        return self


class AgentsSection(Section):
    """Agent groups, autonomy caps and per-agent settings (format: agents/builtin.py)."""

    groups: dict[str, list[str]] | None = None
    max_autonomy: dict[str, Level] | None = None
    # Candidates: these agents propose beside the live ones, recorded and never acted on.
    shadow: Annotated[list[str], BeforeValidator(_listed)] | None = None
    settings: Annotated[dict[str, Any] | None, _from_config_error(check_settings)] = None


_LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
LabelName = Annotated[
    str,
    _shown(_LABEL),
    _matching(_LABEL, "a Prometheus label name is required (letters, digits, _; e.g. app)"),
]


def _unique_labels(value: list[str]) -> list[str]:
    twice = sorted({v for v in value if value.count(v) > 1})
    if twice:
        raise _fail(
            "duplicate", "{labels} listed twice; name each label once", labels=", ".join(twice)
        )
    return value


class AlertRuleSection(Section):
    """Alerts whose labels hold every pair of ``match`` are about ``services``."""

    match: Annotated[dict[LabelName, str], Field(min_length=1)]
    services: Annotated[list[str], Field(min_length=1)]


class AlertsSection(Section):
    """How an Alertmanager alert names the services it is about (first rule that maps).

    ``rules`` first; then the first of ``service_labels`` whose value is a service of the
    fleet (an ``instance``'s port is dropped); then ``namespace_label`` through
    ``namespaces`` (default: a namespace names the services of the domain of that name).
    An alert nothing maps still pages, once, with its labels.
    """

    service_labels: Annotated[
        list[LabelName], Field(min_length=1), AfterValidator(_unique_labels)
    ] = ["service", "service_name", "app", "job", "instance"]
    namespace_label: LabelName = "namespace"
    namespaces: dict[str, Annotated[list[str], Field(min_length=1)]] | None = None
    rules: list[AlertRuleSection] | None = None


class EscalationSection(Section):
    """Paging: one page per incident, again every ``repage_after_s`` while it lasts.

    A warning or info alert that nothing else backs pages only once it has fired for
    ``minor_alert_wait_s`` (one that resolves sooner closes without a page).
    """

    repage_after_s: Annotated[float, Field(ge=60)] = 1800
    minor_alert_wait_s: Annotated[float, Field(ge=0)] = 900


class Store(Section):
    """A shared PostgreSQL event log."""

    postgres: Annotated[
        str,
        _shown(r"\s*\S.*"),
        _matching(
            r"\s*\S.*",
            "give the PostgreSQL DSN, e.g. 'postgresql://warden@db:5432/warden'"
            " (the password from PGPASSWORD or ~/.pgpass)",
        ),
    ]
    schema_: Annotated[PlainName, Field(alias="schema")] = "warden"

    model_config = ConfigDict(populate_by_name=True)


class Redaction(Section):
    """What the model agent's requests keep of addresses and phone numbers."""

    ip_addresses: bool = True
    phone_numbers: bool = True


class ModelSection(Checked):
    """The optional model adapter agent (format: agents/model.py)."""

    endpoint: Annotated[str, Field(min_length=1)]
    model: Annotated[str, Field(min_length=1, pattern=r".*\S.*")]
    api_key_env: Annotated[
        str,
        _shown(_ENV),
        _matching(_ENV, f"the name of an environment variable, such as {DEFAULT_API_KEY_ENV}"),
    ] = DEFAULT_API_KEY_ENV
    timeout_s: Annotated[float, Field(ge=0.1, le=300)] = 10.0
    name: Annotated[
        str, _shown(_AGENT), _matching(_AGENT, "use letters, digits, '.', '-' and '_'")
    ] = "model-advisor"
    max_steps: Annotated[int, Field(ge=1, le=20)] = 5
    enabled: bool = True
    redact: Redaction | None = None

    @classmethod
    def check_written(cls, raw: dict[str, Any]) -> None:
        """The model agent's own check: the endpoint URL above all."""
        check_model_section(raw)


class Sender(Checked):
    """A webhook sender: its scheme, secret and granted Warden event types."""

    scheme: Literal["bearer", "basic", "hmac"]
    username: str | None = None
    secret: str | None = None
    secret_env: str | None = None
    secret_file: str | None = None
    allow_types: EventTypes | None = None

    @classmethod
    def check_written(cls, raw: dict[str, Any]) -> None:
        """Basic auth names a user; the secret is given exactly once and is usable."""
        check_sender(RELATIVE, raw)


assert set(get_args(Sender.model_fields["scheme"].annotation)) == set(SCHEMES)


class Webhook(Section):
    """The webhook source (format: ingest/webhook_server.py)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8088
    senders: dict[str, Sender] | None = None
    token_env: str | None = None
    token: str | None = None  # inline; better token_env (or senders)
    insecure: bool = False
    allow_types: EventTypes = []
    replay_tolerance_s: Seconds = 300
    capacity: Annotated[int, Field(ge=1)] = 64
    max_body_bytes: Annotated[int, Field(ge=1)] = 1024 * 1024
    max_in_flight: Annotated[int, Field(ge=1)] = 256
    max_pending: Annotated[int, Field(ge=1)] = 32
    header_timeout_s: Seconds = 10.0
    body_timeout_s: Seconds = 30.0

    @model_validator(mode="after")
    def _whole(self) -> Self:
        """Somebody can send, and anonymous grants need ``insecure``."""
        if not self.senders and not self.token_env and not self.token and not self.insecure:
            raise _fail(
                "nobody",
                "no senders, so nobody could send; name them (senders: {NAME: {scheme:"
                " bearer|basic|hmac, secret_env: VAR}}), or set insecure: true",
            )
        if self.allow_types and not self.insecure:
            raise _fail(
                "anonymous_grant",
                "allow_types grants types to anonymous senders, so it needs insecure: true;"
                " grant a named sender with senders.NAME.allow_types",
            )
        return self


class Jsonl(Section):
    """The JSON-lines source."""

    path: str = "-"


class NatsSource(Section):
    """The NATS JetStream source and its connection's credentials."""

    servers: Texts = ["nats://127.0.0.1:4222"]
    stream: str | None = None
    subject: str | None = None
    durable: str = "warden-ingest"
    batch: Annotated[int, Field(ge=1)] = 32
    fetch_timeout_s: Seconds = 1.0
    ack_wait_s: Seconds = 30.0
    max_deliver: Annotated[int, Field(ge=-1)] = -1
    user: str = ""
    password: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    token: str | None = None
    token_env: str | None = None
    token_file: str | None = None
    creds: str = ""
    allow_types: EventTypes = []

    @model_validator(mode="after")
    def _whole(self) -> Self:
        """One way to authenticate; a user comes with a password."""
        password = [p for p in (self.password, self.password_env, self.password_file) if p]
        token = [t for t in (self.token, self.token_env, self.token_file) if t]
        if len(password) > 1 or len(token) > 1:
            raise _fail("secret", "give each secret once, as ..._env: VAR or ..._file: PATH")
        if bool(self.user) != bool(password):
            raise _fail("user", "user and password go together (password_env: VAR)")
        if sum(map(bool, (self.user, token, self.creds))) > 1:
            raise _fail("auth", "authenticate one way: user/password, token or creds")
        return self


class Sources(Section):
    """Connectors feeding events in; other names are sources installed packages provide."""

    model_config = ConfigDict(extra="allow")

    webhook: Webhook | None = None
    jsonl: Jsonl | None = None
    nats: NatsSource | None = None
    __pydantic_extra__: dict[str, dict[str, Any] | None] = Field(init=False)


def _adapter_of(value: Any) -> str | None:
    kind = value.get("adapter") if isinstance(value, dict) else None
    return f"({kind})" if kind in ADAPTER_KINDS else None


class HttpCheckSection(Section):
    """A GET telling whether an HTTP action's effect holds."""

    url: Annotated[str, Field(min_length=1)]
    headers: dict[str, str] | None = None
    timeout_s: Seconds = 5.0
    statuses: list[Annotated[int, Field(ge=100, le=599)]] | None = None
    absent_statuses: list[Annotated[int, Field(ge=100, le=599)]] | None = None
    expect: Any = None


class HttpAction(Checked):
    """An action sent as an HTTP request (format: execution/adapters/registry.py)."""

    adapter: Literal["http"]
    url: Annotated[str, Field(min_length=1)]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] | None = None
    body: Any = None
    timeout_s: Seconds = 10.0
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] | None = None
    check: HttpCheckSection | None = None

    @classmethod
    def check_written(cls, raw: dict[str, Any]) -> None:
        """The action plane's own check of the route: templates, statuses, headers."""
        check_action("http", raw, RELATIVE)


class NatsAction(Checked):
    """An action published to a JetStream subject."""

    adapter: Literal["nats"]
    subject: Annotated[str, Field(min_length=1)]
    stream: str | None = None
    body: Any = None
    headers: dict[str, str] | None = None
    timeout_s: Seconds = 5.0

    @classmethod
    def check_written(cls, raw: dict[str, Any]) -> None:
        """The action plane's own check of the route: subject and body templates."""
        check_action("nats", raw, RELATIVE)


class PythonAction(Section):
    """An action run by a Python function."""

    adapter: Literal["python"]
    entry_point: Annotated[str, Field(min_length=1)]
    check: str | None = None
    timeout_s: Seconds = 60.0


Action = Annotated[
    Annotated[HttpAction, Tag("(http)")]
    | Annotated[NatsAction, Tag("(nats)")]
    | Annotated[PythonAction, Tag("(python)")],
    Discriminator(
        _adapter_of,
        custom_error_type="adapter",
        custom_error_message="adapter: not an adapter kind; use one of " + ", ".join(ADAPTER_KINDS),
    ),
]
ActionName = Annotated[
    str,
    _shown(_ACTION),
    _matching(_ACTION, "use letters, digits, '.', '_' or '-', starting with a letter or digit"),
]


class NatsConnection(Section):
    """The connection ``adapter: nats`` actions publish through."""

    servers: Annotated[
        list[Annotated[str, _matching(_URL, "a URL like nats://host:4222")]],
        BeforeValidator(_listed),
        _ONE_OR_MORE,
        Field(min_length=1),
    ] = ["nats://127.0.0.1:4222"]
    connect_timeout_s: Seconds = 2.0


class RedactSection(Section):
    """Keys of ingested event data redacted before they are stored."""

    fields: list[Annotated[str, Field(min_length=1)]] = []
    keep_original: Annotated[
        bool,
        Field(
            description="keep what redaction replaced, sealed (AES-256-GCM) in"
            " <state>/originals, readable only with `warden event original` by an admin"
        ),
    ] = False
    key_path: (
        Annotated[
            str,
            Field(
                pattern=r".*\S.*",
                description="the originals key, outside the state directory"
                " (default ~/.config/warden/originals.key)",
            ),
        ]
        | None
    ) = None


class Witness(Section):
    """A tlog witness that cosigns checkpoints."""

    url: HttpUrl
    public_key: Annotated[str, Field(min_length=1)]


class Audit(Section):
    """The audit signing key, witnesses and the publication store."""

    key_path: Annotated[str, Field(pattern=r".*\S.*")] | None = None
    witnesses: list[Witness] | None = None
    publish: str = ""
    publish_schema: PlainName = "warden"


class ApiSection(Section):
    """The HTTP API and web console that `warden run` serves (port 0: off)."""

    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 0


class NotifyTarget(Section):
    """One chat channel or signed webhook that hears of incidents and pending approvals."""

    format: Literal["slack", "teams", "mattermost", "webhook"]
    url: HttpUrl
    secret_env: str | None = None  # webhook: the whsec_ secret it is signed with
    secret_file: str | None = None
    events: list[Literal["incident", "approval"]] = ["incident", "approval"]


class Notifications(Section):
    """Outgoing notifications; links point at ``console_url`` (the console as people reach it)."""

    console_url: HttpUrl | None = None
    targets: dict[PlainName, NotifyTarget]


class PricesSection(Section):
    """What one unit of resilience costs, in any one currency: the cost KPI multiplies by these."""

    action: Annotated[float, Field(ge=0)] = 0.0
    approval: Annotated[float, Field(ge=0)] = 0.0
    page_minute: Annotated[float, Field(ge=0)] = 0.0


class KpisSection(Section):
    """How `warden report`, /metrics and /api/kpis price the cost of resilience.

    ``retain_days`` and ``retain_closed_incidents`` bound what the live /metrics of
    `warden run` keeps: days of hourly signal counts, and closed incidents kept whole.
    """

    prices: PricesSection | None = None
    retain_days: Annotated[int, Field(ge=1, le=3660)] = 7
    retain_closed_incidents: Annotated[int, Field(ge=0)] = 1000


class PromotionThresholds(Section):
    """What a candidate must show before it is promoted (see docs/agent-lifecycle.md)."""

    min_shadow_proposals: Annotated[int, Field(ge=0)] = 20
    min_agreement_pct: Annotated[float, Field(ge=0, le=100)] = 90.0
    max_wrong: Annotated[int, Field(ge=0)] = 0


class CanarySection(Section):
    """Where a version promoted to canary acts first; the rest keep the previous one."""

    fraction: Annotated[float, Field(ge=0, le=1)] = 0.1
    services: list[str] | None = None
    min_outcomes: Annotated[int, Field(ge=1)] = 1


_RISKS = ("low", "medium", "high")


def _action_class(value: str) -> str:
    if value in _RISKS or re.fullmatch(_ACTION, value):
        return value
    raise _fail(
        "action_class",
        "an action class is a risk (low, medium, high) or an action name (got {given})",
        given=repr(value),
    )


class PromotionSection(Section):
    """Promotion on evidence: thresholds by default and per action class, and the canary.

    ``classes`` keys are a risk (low, medium, high) or an action name; a candidate must
    meet the strictest thresholds of the actions its plans use.
    """

    default: PromotionThresholds | None = None
    classes: dict[Annotated[str, AfterValidator(_action_class)], PromotionThresholds] | None = None
    canary: CanarySection | None = None


class WardenFile(Section):
    """A whole ``warden.yaml``."""

    model_config = ConfigDict(title="warden.yaml")

    services: Annotated[list[Service], Field(min_length=1)]
    state_dir: str = ".warden"
    environment: str = "development"
    autonomy: (
        Annotated[
            Annotated[Level, Tag("(text)")] | Annotated[AutonomySection, Tag("(mapping)")],
            Discriminator(_by_shape),
        ]
        | None
    ) = None
    policy_dir: str | None = None
    shadow_policy_dir: str | None = None
    runbooks_dir: str | None = None
    store: Store | None = None
    probe: Probe | None = None
    failure_threshold: Annotated[int, Field(ge=1)] = 3
    # A failure this soon after a verified fix is a relapse: the fix counts as failed.
    relapse_window_s: Annotated[float, Field(ge=0)] = 1800.0
    guardrails: GuardrailsSection | None = None
    verification_timeout_s: Annotated[float, Field(ge=0.1)] = 15.0
    approvals: ApprovalsSection | None = None
    alerts: AlertsSection | None = None
    escalation: EscalationSection | None = None
    change_freezes: list[Freeze] | None = None
    agents: AgentsSection | None = None
    lease_ttl_s: Annotated[float, Field(ge=0.5)] = 30.0
    actions: dict[ActionName, Action] | None = None
    nats: NatsConnection | None = None
    sources: Sources | None = None
    model: ModelSection | None = None
    redact: RedactSection | None = None
    audit: Audit | None = None
    api: ApiSection | None = None
    notifications: Notifications | None = None
    kpis: KpisSection | None = None
    promotion: PromotionSection | None = None

    @model_validator(mode="after")
    def _canary_services(self) -> Self:
        """A canary names services of the fleet."""
        canary = self.promotion.canary if self.promotion else None
        known = {s.name for s in self.services}
        for name in (canary.services or []) if canary else []:
            if name not in known:
                raise _fail(
                    "canary_service",
                    "promotion.canary.services: unknown service {given}; known: {known}",
                    given=repr(name),
                    known=", ".join(sorted(known)),
                )
        return self


def json_schema() -> dict[str, Any]:
    """The JSON Schema of ``warden.yaml`` (draft 2020-12), for editors."""
    schema = WardenFile.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
