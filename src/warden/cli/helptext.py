r"""Help text as the terminal shows it: prose reflowed to its width, examples kept. CLI edge.

Docstrings are wrapped at the source's line length; Rich keeps every line break it is
given, so at 80 columns a wrapped sentence would leave a word or two alone on a line.
``reflow`` joins the lines of each prose paragraph and lets Rich wrap them to the
terminal. Kept as written: blank lines between paragraphs; list items (``- ``, ``* ``),
shell lines (``$ ``) and indented lines, each on its own line; a paragraph that starts
with ``\b`` (Click's mark for "do not rewrap"); and everything after ``\f``, which
Click never shows. Help is plain text: ``[...]`` shows as written, not as Rich markup.
"""

from __future__ import annotations

import inspect
from typing import Any

from rich.markup import escape
from typer.core import TyperGroup

_KEPT_STARTS = ("- ", "* ", "$ ", " ", "\t")


def _kept(line: str) -> bool:
    """Whether ``line`` is laid out on purpose: a list item, a shell line, indented."""
    return line.startswith(_KEPT_STARTS) or line in ("-", "*", "$")


def _reflow_paragraph(paragraph: str) -> str:
    if paragraph.startswith("\b"):
        return paragraph
    lines: list[str] = []
    for line in paragraph.split("\n"):
        if lines and not _kept(line) and not _kept(lines[-1]):
            lines[-1] = f"{lines[-1]} {line.strip()}"
        else:
            lines.append(line.rstrip())
    return "\n".join(lines)


def reflow(text: str) -> str:
    """``text`` with the line breaks inside prose paragraphs removed (see the module)."""
    shown, cut, hidden = text.partition("\f")
    paragraphs = inspect.cleandoc(shown).split("\n\n")
    return escape("\n\n".join(_reflow_paragraph(p) for p in paragraphs)) + cut + hidden


def reflow_all(command: Any) -> None:
    """Reflow the help of ``command``, its parameters and every command under it."""
    if command.help:
        command.help = reflow(command.help)
    for param in command.params:
        if getattr(param, "help", None):
            param.help = reflow(param.help)
    for sub in getattr(command, "commands", {}).values():
        reflow_all(sub)


class HelpGroup(TyperGroup):
    """The ``warden`` group: every command's help under it is reflowed once, when built."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        reflow_all(self)
