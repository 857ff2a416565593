"""The wall between the pure core and the shell, read from the source of every module.

The domain imports the standard library and itself only: an allowlist, so a new
dependency is refused before anyone thinks of adding it to a list of forbidden ones.
Agents do no I/O, keep no time and start no threads; the model endpoint is the one
module of the decisioning plane that talks to the network. The web framework (FastAPI,
Starlette, Jinja2) is used by the edges that serve HTTP requests to people, the API and
the console, and nowhere else: one HTTP stack, kept at the edge.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import warden

if TYPE_CHECKING:
    from collections.abc import Callable

SRC = Path(warden.__file__).parent
AGENT_SHELL = "warden.agents.model_endpoint"
AGENTS_MAY_NOT_IMPORT = frozenset(
    {"socket", "http", "threading", "time", "urllib", "asyncio", "subprocess"}
)
DYNAMIC_IMPORTS = frozenset({"__import__", "import_module"})
WEB_FRAMEWORK = frozenset({"fastapi", "starlette", "jinja2", "multipart", "python_multipart"})
WEB_EDGES = ("warden.api", "warden.web")


def modules_of(package: str) -> list[tuple[str, Path]]:
    """Every module of ``package``, by dotted name, with its file."""
    root = SRC.joinpath(*package.split(".")[1:])
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path))
    return found


def imports_of(module: str, path: Path) -> list[tuple[int, str]]:
    """``(line, module imported)`` for every import, at any depth (TYPE_CHECKING too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the importing package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
        elif isinstance(node, ast.Call):
            func = node.func
            called = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if called in DYNAMIC_IMPORTS:
                found.append((node.lineno, f"<{called}(...)>"))
    return found


def domain_may_import(name: str) -> bool:
    top = name.split(".")[0]
    return (
        name == "warden.domain"
        or name.startswith("warden.domain.")
        or (top == "__future__" or top in sys.stdlib_module_names)
    )


def agent_may_import(module: str, name: str) -> bool:
    return module == AGENT_SHELL or name.split(".")[0] not in AGENTS_MAY_NOT_IMPORT


def breaches(package: str, allowed: Callable[[str, str], bool]) -> list[str]:
    """``file:line imports name`` for every import of ``package`` that ``allowed`` refuses."""
    return [
        f"{path.relative_to(SRC.parent)}:{line} imports {name}"
        for module, path in modules_of(package)
        for line, name in imports_of(module, path)
        if not allowed(module, name)
    ]


def test_the_domain_imports_only_the_standard_library_and_itself() -> None:
    assert len(modules_of("warden.domain")) > 10  # the walk found the package
    assert breaches("warden.domain", lambda _, name: domain_may_import(name)) == []


def test_agents_do_no_io_except_the_model_endpoint() -> None:
    assert any(m == AGENT_SHELL for m, _ in modules_of("warden.agents"))
    assert breaches("warden.agents", agent_may_import) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import psycopg\n", ["psycopg"]),
        ("from yaml import safe_load\n", ["yaml"]),
        ("if TYPE_CHECKING:\n    from warden.store.sqlite import X\n", ["warden.store.sqlite"]),
        ("from ..ports import Clock\n", ["warden.ports"]),
        ("import importlib\nimportlib.import_module('nats')\n", ["<import_module(...)>"]),
        ("import json, re\nfrom . import events\nfrom .ids import x\n", []),
    ],
)
def test_the_domain_rule_catches_what_it_must(
    tmp_path: Path, source: str, expected: list[str]
) -> None:
    path = tmp_path / "probe.py"
    path.write_text(source)
    names = [n for _, n in imports_of("warden.domain.probe", path)]
    assert [n for n in names if not domain_may_import(n)] == expected


def test_the_agent_rule_catches_what_it_must(tmp_path: Path) -> None:
    path = tmp_path / "probe.py"
    path.write_text("import threading\nfrom time import monotonic\nimport json\n")
    names = [n for _, n in imports_of("warden.agents.probe", path)]
    assert [n for n in names if not agent_may_import("warden.agents.probe", n)] == [
        "threading",
        "time",
    ]
    assert all(agent_may_import(AGENT_SHELL, n) for n in names)


def web_framework_allowed(module: str, name: str) -> bool:
    at_edge = any(module == e or module.startswith(f"{e}.") for e in WEB_EDGES)
    return at_edge or name.split(".")[0] not in WEB_FRAMEWORK


def test_the_web_framework_stays_in_the_api_and_the_console() -> None:
    assert any(m == "warden.api.app" for m, _ in modules_of("warden.api"))
    assert any(m == "warden.web.console" for m, _ in modules_of("warden.web"))
    assert breaches("warden", web_framework_allowed) == []


def test_the_web_rule_catches_what_it_must(tmp_path: Path) -> None:
    path = tmp_path / "probe.py"
    path.write_text("from fastapi import FastAPI\nimport starlette.routing\nimport uvicorn\n")
    names = [n for _, n in imports_of("warden.ingest.probe", path)]
    assert [n for n in names if not web_framework_allowed("warden.ingest.probe", n)] == [
        "fastapi",
        "starlette.routing",
    ]
    assert all(web_framework_allowed("warden.api.probe", n) for n in names)


TESTS = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted(TESTS.rglob("test_*.py")), ids=lambda p: p.name)
def test_no_test_module_imports_from_another(path: Path) -> None:
    # Shared helpers live in tests/builders.py, tests/cli.py, the conftest files and the
    # integration harness: a test module changed or deleted breaks no other.
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom) or node.module is None:
            continue
        if node.module.rsplit(".", 1)[-1].startswith("test_"):
            found.append(("." * node.level) + node.module)
    assert found == [], f"{path.relative_to(TESTS)} imports from test modules {found}"
