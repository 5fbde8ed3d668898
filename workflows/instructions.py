"""A step's instructions (`instructionsForEndUser`): a Jinja template over the case data, written by a
process owner, shown on the task page.

What it renders is text, never HTML: the whole output is escaped, then a small Markdown-like formatting is
applied (**bold**, lines starting with "- " as a list, line breaks). It renders in Jinja's immutable
sandbox (no attribute games, no I/O), stops at a bounded length, and runs under the runtime limits of all
code in diagrams (`engine.sandbox`). A template that fails shows its own text, escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape

from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import registry

MAX_CHARS = 20_000  # instructions are a paragraph or two; anything longer is cut, with a mark
_sandbox = ImmutableSandboxedEnvironment(autoescape=False)
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def render(template: str | None, data: Mapping) -> str:
    """The instructions as safe HTML (escaped text with light formatting); "" when there are none."""
    if not template:
        return ""
    try:
        text = registry.engine().sandbox.run_limited(
            lambda: _bounded(_sandbox.from_string(template).generate(**_context(data)))
        )
    except Exception:  # noqa: BLE001 - a broken or runaway template must not break the task page
        text = template
    return _format(text)


def _context(data: Mapping) -> dict:
    return {key: value for key, value in data.items() if isinstance(key, str) and key.isidentifier()}


def _bounded(chunks) -> str:
    out, size = [], 0
    for chunk in chunks:
        out.append(chunk)
        size += len(chunk)
        if size > MAX_CHARS:
            return "".join(out)[:MAX_CHARS] + "……"
    return "".join(out)


def _bold(line: str) -> str:
    return _BOLD.sub(r"<strong>\1</strong>", line)


def _format(text: str) -> str:
    """Escaped text; **bold**; runs of lines starting with "- " as a list; other lines kept apart."""
    parts: list[str] = []
    items: list[str] = []
    for line in escape(text).split("\n"):
        if line.lstrip().startswith("- "):
            items.append("<li>" + _bold(line.lstrip()[2:]) + "</li>")
            continue
        if items:
            parts.append("<ul>" + "".join(items) + "</ul>")
            items = []
        if line.strip():
            parts.append(_bold(line))
    if items:
        parts.append("<ul>" + "".join(items) + "</ul>")
    return "<br>".join(parts)
