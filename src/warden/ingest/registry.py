"""Schema registry: a JSON Schema per event type and version, loaded from files. Data plane.

Files are named ``<event type>@<version>.json``; ``envelope.json`` checks the CloudEvents
attributes every event carries. Registering a version checks that it is backward
compatible with its neighbours (see :mod:`warden.ingest.compat`) and refuses a breaking
change with a readable diff: a breaking change needs a new event type.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from warden.domain.errors import ConfigError, ValidationError
from warden.ingest.compat import CompatibilityReport, compare_schemas

if TYPE_CHECKING:
    from collections.abc import Callable

BUILTIN_DIR = Path(__file__).parent / "schemas"

# Keywords the compiled validator (jsonschema-rs, draft 2020-12) checks as jsonschema does
# or more strictly; a schema using any other ($ref, which could reach for a remote
# document, $defs, prefixItems, unevaluated*, multipleOf, ...) is checked by jsonschema
# alone. Formats are checked by jsonschema's own functions in both.
_COMPILABLE = frozenset(
    {
        "$schema", "$id", "$comment", "title", "description", "examples",
        "deprecated", "readOnly", "writeOnly", "type", "enum", "const", "properties",
        "patternProperties", "additionalProperties", "required", "minProperties",
        "maxProperties", "items", "minItems", "maxItems", "uniqueItems", "minLength",
        "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "allOf", "anyOf", "oneOf", "not", "default",
    }
)  # fmt: skip
# Regular expressions both engines read alike, or the compiled one more strictly: no
# groups with options ((?i), look-arounds), no \b or the negated classes \D \W \S (its
# \d \w \s are ASCII, so their complements would match more), and inside [...] only
# literals and escaped punctuation (a [ there would start a nested or POSIX class).
# Python's $ also matches before a final newline, the compiled engine's does not: that
# is stricter. Anything else is left to jsonschema.
_PLAIN_PATTERN = re.compile(
    r"(?:[^\\\[(]|\\[-.\\/+*?()\[\]{}|^$dws]|\((?!\?)"
    r"|\[\^?(?:[^\\\]\[]|\\[-.\\/\]\[^])*\])*"
)
_SCHEMA_MAPS = frozenset({"properties", "patternProperties"})
_SCHEMA_VALUES = frozenset({"items", "additionalProperties", "not"})
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf"})


@dataclass(frozen=True, slots=True)
class SchemaKey:
    """Which schema: an event type at a version."""

    type: str
    version: int

    def __str__(self) -> str:
        return f"{self.type}@{self.version}"


def parse_schema_name(path: Path) -> SchemaKey:
    """The (type, version) a schema file's name declares.

    Args:
        path: A file named ``<event type>@<version>.json``.

    Returns:
        The key the name declares.

    Raises:
        ConfigError: When the name does not follow the pattern.
    """
    type_, _, version = path.stem.partition("@")
    if not type_ or not version.isdigit() or int(version) < 1:
        raise ConfigError(
            f"schema file {path}: name it <event type>@<version>.json, e.g. {type_ or 'x.y'}@1.json"
        )
    return SchemaKey(type_, int(version))


def read_schema(path: Path) -> dict[str, Any]:
    """Read a schema file and check that it is a valid JSON Schema (draft 2020-12).

    Raises:
        ConfigError: When the file cannot be read, is not JSON or not a valid schema.
    """
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"schema file {path}: {exc}") from exc
    if not isinstance(schema, dict):
        raise ConfigError(f"schema file {path}: a schema must be a JSON object")
    problem = _schema_problem(_canonical(schema))
    if problem:
        raise ConfigError(f"schema file {path}: not a valid JSON Schema: {problem}")
    return schema


@functools.lru_cache(maxsize=512)
def _schema_problem(canonical: str) -> str:
    """Why a schema (canonical JSON) is not valid draft 2020-12, or "" (cached: slow)."""
    try:
        Draft202012Validator.check_schema(json.loads(canonical))
    except SchemaError as exc:
        return str(exc.message)
    return ""


def _compilable(schema: Any) -> bool:
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict) or not schema.keys() <= _COMPILABLE:
        return False
    for key, value in schema.items():
        if key == "pattern" and not _plain_pattern(value):
            return False
        if key in _SCHEMA_MAPS:
            if not isinstance(value, dict):
                return False
            if key == "patternProperties" and not all(_plain_pattern(k) for k in value):
                return False
            subschemas = list(value.values())
        elif key in _SCHEMA_VALUES:
            subschemas = [value]
        elif key in _SCHEMA_LISTS:
            subschemas = value if isinstance(value, list) else [None]
        else:
            continue
        if not all(_compilable(sub) for sub in subschemas):
            return False
    return True


def _plain_pattern(pattern: Any) -> bool:
    return isinstance(pattern, str) and _PLAIN_PATTERN.fullmatch(pattern) is not None


def _formats(schema: Any) -> set[str]:
    """The formats a (compilable) schema and its subschemas name."""
    if not isinstance(schema, dict):
        return set()
    named = {schema["format"]} if isinstance(schema.get("format"), str) else set()
    for key, value in schema.items():
        if key in _SCHEMA_MAPS:
            named.update(*(_formats(sub) for sub in value.values()))
        elif key in _SCHEMA_VALUES:
            named |= _formats(value)
        elif key in _SCHEMA_LISTS:
            named.update(*(_formats(sub) for sub in value))
    return named


def _format_check(checker: FormatChecker, name: str) -> Callable[[str], bool]:
    return lambda value: checker.conforms(value, name)


@functools.lru_cache(maxsize=512)
def _compiled(canonical: str) -> Callable[[Any], bool] | None:
    """A compiled validator's yes/no of a schema (canonical JSON), or None (cached: slow).

    Formats are checked by jsonschema's own functions, so the compiled validator is
    never looser; where it is stricter (a format jsonschema cannot check here, say), the
    caller asks jsonschema, whose verdict stands.
    """
    schema = json.loads(canonical)
    if not isinstance(schema, dict) or not _compilable(schema):
        return None
    checker = FormatChecker()
    # Only the formats the schema names: each one given costs every check a little.
    formats = {
        name: _format_check(checker, name) for name in _formats(schema) & checker.checkers.keys()
    }
    try:
        validator = jsonschema_rs.Draft202012Validator(
            schema, validate_formats=True, formats=formats or None
        )
    except (jsonschema_rs.ValidationError, ValueError, TypeError):
        return None
    is_valid: Callable[[Any], bool] = validator.is_valid
    return is_valid


class _Check:
    """One schema's validator: compiled when it can be, jsonschema for every verdict of no.

    Input the compiled validator accepts is valid; anything it refuses goes to jsonschema,
    which decides and words the errors, so answers and messages are jsonschema's.
    """

    __slots__ = ("_compiled", "validator")

    def __init__(self, schema: dict[str, Any]) -> None:
        self.validator = Draft202012Validator(schema, format_checker=FormatChecker())
        # Compiled now (and cached per schema text), not on the first event it checks.
        self._compiled = _compiled(_canonical(schema))

    def errors(self, instance: Any) -> list[Any]:
        """The errors jsonschema finds in ``instance``, sorted by path (empty when valid)."""
        compiled = self._compiled
        if compiled is not None:
            try:
                if compiled(instance):
                    return []
            except (ValueError, TypeError, OverflowError):
                pass  # a value it cannot take (an int past 64 bits in some places, say)
        return sorted(self.validator.iter_errors(instance), key=lambda e: list(e.absolute_path))


def _describe(error: Any) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"


class SchemaRegistry:
    """Validators for the envelope and for each registered (type, version)."""

    def __init__(self, directories: list[Path] | None = None) -> None:
        # By (type, version) as a plain tuple: every event looks one up, and a tuple hashes
        # and compares in C, the dataclass key in Python.
        self._validators: dict[tuple[str, int], _Check] = {}
        self._schemas: dict[SchemaKey, dict[str, Any]] = {}
        self._origins: dict[SchemaKey, str] = {}
        self._envelope: _Check | None = None
        for directory in [BUILTIN_DIR, *(directories or [])]:
            self.load(directory)

    def load(self, directory: Path) -> None:
        """Load every schema file of a directory, oldest version of each type first.

        Raises:
            ConfigError: When a file is unreadable, misnamed, not a valid schema, or a
                version is not backward compatible with the one before it.
        """
        found: list[tuple[SchemaKey, Path]] = []
        for path in sorted(directory.glob("*.json")):
            if path.stem == "envelope":
                schema = read_schema(path)
                self._envelope = _Check(schema)
                continue
            found.append((parse_schema_name(path), path))
        for key, path in sorted(found, key=lambda item: (item[0].type, item[0].version)):
            try:
                self.register(key.type, key.version, read_schema(path), origin=str(path))
            except ValidationError as exc:
                raise ConfigError(f"schema file {path}: {exc}") from exc

    def register(
        self, type_: str, version: int, schema: dict[str, Any], *, origin: str = "(memory)"
    ) -> CompatibilityReport | None:
        """Add a schema version after checking it against its neighbours.

        Args:
            type_: The event type, e.g. ``warden.alert.firing``.
            version: The schema version, 1 or more.
            schema: A JSON Schema (draft 2020-12) of the event's ``data``.
            origin: Where the schema came from, shown by ``warden schema show``.

        Returns:
            The report against the previous version, or None for a type's first version
            (or when this exact schema is registered already).

        Raises:
            ValidationError: When the schema is invalid, differs from the one already
                registered at this version, or is not backward compatible.
        """
        key = SchemaKey(type_, version)
        problem = _schema_problem(_canonical(schema))
        if problem:
            raise ValidationError(f"not a valid JSON Schema: {problem}", field=str(key))
        known = self._schemas.get(key)
        if known is not None:
            if _canonical(known) == _canonical(schema):
                return None
            raise ValidationError(
                f"version {version} of {type_} is registered already with another schema",
                field=str(key),
                fix=f"never change a published version; register {type_}@{self._next(type_)}",
            )
        report = self.check_compatible(type_, version, schema)
        self._schemas[key] = schema
        self._origins[key] = origin
        self._validators[key.type, key.version] = _Check(schema)
        return report

    def check_compatible(
        self, type_: str, version: int, schema: dict[str, Any]
    ) -> CompatibilityReport | None:
        """Check a candidate version without registering it.

        Returns:
            The report against the closest older version; None when there is none.

        Raises:
            ValidationError: When the candidate breaks compatibility with the closest
                older version, or the closest newer one breaks compatibility with it.
        """
        older = [v for v in self.versions(type_) if v < version]
        newer = [v for v in self.versions(type_) if v > version]
        report = None
        if older:
            previous = SchemaKey(type_, older[-1])
            report = compare_schemas(
                self._schemas[previous],
                schema,
                old_name=str(previous),
                new_name=f"{type_}@{version}",
            )
            _refuse_breaking(report, type_)
        if newer:
            following = SchemaKey(type_, newer[0])
            _refuse_breaking(
                compare_schemas(
                    schema,
                    self._schemas[following],
                    old_name=f"{type_}@{version}",
                    new_name=str(following),
                ),
                type_,
            )
        return report

    def _next(self, type_: str) -> int:
        versions = self.versions(type_)
        return versions[-1] + 1 if versions else 1

    def keys(self) -> list[SchemaKey]:
        """Every registered (type, version), sorted."""
        return [SchemaKey(t, v) for t, v in sorted(self._validators)]

    def types(self) -> list[str]:
        """Every registered event type, sorted."""
        return sorted({t for t, _ in self._validators})

    def versions(self, type_: str) -> list[int]:
        """The registered versions of ``type_``, ascending (empty when unknown)."""
        return sorted(v for t, v in self._validators if t == type_)

    def schema(self, type_: str, version: int | None = None) -> dict[str, Any]:
        """The schema of ``type_`` at ``version`` (default: the latest).

        Raises:
            ValidationError: When no such schema is registered.
        """
        versions = self.versions(type_)
        chosen = versions[-1] if version is None and versions else version
        found = self._schemas.get(SchemaKey(type_, chosen or 0))
        if found is None:
            known = ", ".join(f"{type_}@{v}" for v in versions) or ", ".join(self.types())
            raise ValidationError(
                f"no schema registered for {type_}" + (f"@{version}" if version else ""),
                field="type",
                fix=f"known: {known}" if known else "register a schema",
            )
        return found

    def origin(self, type_: str, version: int) -> str:
        """Where the schema of (type, version) was loaded from."""
        return self._origins.get(SchemaKey(type_, version), "")

    def check_envelope(self, raw: dict[str, Any]) -> None:
        """Raise :class:`ValidationError` unless ``raw`` is a valid envelope."""
        assert self._envelope is not None, "the built-in envelope schema is missing"
        errors = self._envelope.errors(raw)
        if errors:
            raise ValidationError(
                "; ".join(_describe(e) for e in errors[:5]),
                field="envelope",
                fix="send a CloudEvents 1.0 JSON object with id, source, type, time and data",
            )

    def check_data(self, type_: str, version: int, data: dict[str, Any]) -> None:
        """Raise :class:`ValidationError` unless ``data`` fits its registered schema."""
        validator = self._validators.get((type_, version))
        if validator is None:
            known = sorted({f"{t}@{v}" for t, v in self._validators if t == type_})
            raise ValidationError(
                f"no schema registered for {type_}@{version}",
                field="type",
                fix=f"registered versions: {', '.join(known)}" if known else "register a schema",
            )
        errors = validator.errors(data)
        if errors:
            raise ValidationError(
                "; ".join(_describe(e) for e in errors[:5]),
                field="data",
                fix=f"make the data match the schema of {type_}@{version}",
            )


def _canonical(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def _refuse_breaking(report: CompatibilityReport, type_: str) -> None:
    if report.compatible:
        return
    raise ValidationError(
        "breaking change refused\n" + report.describe(),
        field=report.new,
        fix=f"keep the change backward compatible, or publish it as a new event type"
        f" (e.g. {type_}.v2)",
    )
