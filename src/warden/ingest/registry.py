"""Schema registry: a JSON Schema per event type and version, loaded from files. Data plane.

Files are named ``<event type>@<version>.json``; ``envelope.json`` checks the CloudEvents
attributes every event carries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from warden.domain.errors import ConfigError, ValidationError

BUILTIN_DIR = Path(__file__).parent / "schemas"


@dataclass(frozen=True, slots=True)
class SchemaKey:
    """Which schema: an event type at a version."""

    type: str
    version: int


def _describe(error: Any) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"


class SchemaRegistry:
    """Validators for the envelope and for each registered (type, version)."""

    def __init__(self, directories: list[Path] | None = None) -> None:
        self._validators: dict[SchemaKey, Draft202012Validator] = {}
        self._envelope: Draft202012Validator | None = None
        for directory in [BUILTIN_DIR, *(directories or [])]:
            self.load(directory)

    def load(self, directory: Path) -> None:
        """Load every schema file of a directory."""
        for path in sorted(directory.glob("*.json")):
            try:
                schema = json.loads(path.read_text(encoding="utf-8"))
                Draft202012Validator.check_schema(schema)
            except (json.JSONDecodeError, Exception) as exc:
                raise ConfigError(f"schema file {path}: {exc}") from exc
            validator = Draft202012Validator(schema, format_checker=FormatChecker())
            if path.stem == "envelope":
                self._envelope = validator
                continue
            type_, _, version = path.stem.partition("@")
            if not version.isdigit():
                raise ConfigError(
                    f"schema file {path}: name it <event type>@<version>.json, e.g. {type_}@1.json"
                )
            self._validators[SchemaKey(type_, int(version))] = validator

    def keys(self) -> list[SchemaKey]:
        """Every registered (type, version), sorted."""
        return sorted(self._validators, key=lambda k: (k.type, k.version))

    def check_envelope(self, raw: dict[str, Any]) -> None:
        """Raise :class:`ValidationError` unless ``raw`` is a valid envelope."""
        assert self._envelope is not None, "the built-in envelope schema is missing"
        errors = sorted(self._envelope.iter_errors(raw), key=lambda e: list(e.absolute_path))
        if errors:
            raise ValidationError(
                "; ".join(_describe(e) for e in errors[:5]),
                field="envelope",
                fix="send a CloudEvents 1.0 JSON object with id, source, type, time and data",
            )

    def check_data(self, type_: str, version: int, data: dict[str, Any]) -> None:
        """Raise :class:`ValidationError` unless ``data`` fits its registered schema."""
        validator = self._validators.get(SchemaKey(type_, version))
        if validator is None:
            known = sorted({f"{k.type}@{k.version}" for k in self._validators if k.type == type_})
            raise ValidationError(
                f"no schema registered for {type_}@{version}",
                field="type",
                fix=f"registered versions: {', '.join(known)}" if known else "register a schema",
            )
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        if errors:
            raise ValidationError(
                "; ".join(_describe(e) for e in errors[:5]),
                field="data",
                fix=f"make the data match the schema of {type_}@{version}",
            )
