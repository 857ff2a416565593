"""Every command's --help reads well at 80 columns and wide: prose reflowed, examples whole."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from tests.cli import commands
from warden.cli.helptext import reflow
from warden.cli.main import app

EVERY = [("", typer.main.get_group(app)), *commands(typer.main.get_group(app), groups=True)]
NAMES = [n or "warden" for n, _ in EVERY]
WITH_EXAMPLE = [
    "run", "demo", "approve", "simulate", "evaluate", "promote", "rollback", "replay",
    "audit verify", "report",
]  # fmt: skip
# What the reflow keeps on its own line: list items, shell lines, indented lines.
KEPT = ("- ", "* ", "$ ", " ")


def help_of(name: str, columns: int) -> str:
    result = CliRunner().invoke(app, [*name.split(), "--help"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


def description(shown: str) -> list[str]:
    """The lines between ``Usage:`` and the first panel, without Rich's one-space margin."""
    lines = shown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Usage:"))
    end = next((i for i, line in enumerate(lines) if "╭" in line), len(lines))
    return [line.rstrip()[1:] for line in lines[start + 1 : end]]


def test_the_walk_sees_every_command_and_group() -> None:
    names = set(NAMES)
    assert {"warden", "run", "simulate", "audit", "audit verify", "runbook", "user add"} <= names
    assert len(names) >= 60


@pytest.mark.parametrize(("name", "command"), EVERY, ids=NAMES)
def test_every_command_and_option_has_help(name: str, command: Any) -> None:
    assert (command.help or "").strip(), f"`warden {name}` has no help text"
    for param in command.params:
        assert (getattr(param, "help", None) or "").strip(), f"`warden {name}` {param.name}"


@pytest.mark.parametrize("columns", [80, 200])
@pytest.mark.parametrize("name", NAMES)
def test_no_help_line_ends_where_the_next_word_would_fit(name: str, columns: int) -> None:
    # A prose line Rich wrapped is full: the next word did not fit. A shorter one, with
    # the sentence going on below, is a line break of the source left in: at 80 columns
    # that is a lone word or two between two full lines.
    shown = help_of("" if name == "warden" else name, columns)
    lines = description(shown)
    assert any(lines), shown
    width = columns - 2  # Rich's margin of one column either side
    for line, following in itertools.pairwise(lines):
        if not line or not following or line.startswith(KEPT) or following.startswith(KEPT):
            continue
        word = following.split()[0]
        assert len(line) + 1 + len(word) > width, f"`{line}` / `{following}`\n{shown}"


@pytest.mark.parametrize("name", WITH_EXAMPLE)
def test_the_main_commands_teach_by_an_example_that_fits_on_one_line(name: str) -> None:
    lines = description(help_of(name, 80))
    examples = [line for line in lines if line.startswith("Example: ")]
    assert examples, f"`warden {name} --help` gives no example"
    for example in examples:
        assert example.startswith(f"Example: warden {name} "), example
        assert lines[lines.index(example) + 1] == "", f"the example is wrapped: {example}"


@pytest.mark.parametrize(
    ("name", "written"),
    [
        ("runbook", "events: [warden.alert.firing]"),
        ("ingest serve", "TYPE[@VERSION][:SUBJECT_KEY]"),
    ],
)
def test_help_shows_brackets_as_written_not_as_rich_markup(name: str, written: str) -> None:
    assert written in help_of(name, 200)


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("One line\n    wrapped here.\n\n    Next paragraph.", "One line wrapped here.\n\nNext paragraph."),
        ("Options:\n- one\n- two\nafter", "Options:\n- one\n- two\nafter"),
        ("Run it:\n$ warden demo\n\nDone.", "Run it:\n$ warden demo\n\nDone."),
        ("A runbook:\n\n        name: x\n          plan: []\n\n    After.", "A runbook:\n\n    name: x\n      plan: []\n\nAfter."),
        ("without\n--config, it reads", "without --config, it reads"),
        ("\b\nkept\nas is", "\b\nkept\nas is"),
        ("Shown\nhere.\f\nhidden\nlines", "Shown here.\f\nhidden\nlines"),
        ("events: [warden.alert.firing]", "events: \\[warden.alert.firing]"),
    ],
    ids=["prose", "list", "shell", "indented", "option-at-line-start", "click-b", "click-f", "brackets"],
)  # fmt: skip
def test_reflow_joins_prose_and_keeps_what_is_laid_out(source: str, shown: str) -> None:
    assert reflow(source) == shown
