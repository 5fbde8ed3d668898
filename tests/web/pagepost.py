"""What a task page would send: render a step's form filled with some data exactly as the task page does,
collect the controls a browser submits, and read them back as the page's POST handler does.

The diagram tests (tests/processes) pass every answer they give through this, so an answer the JSON API accepts
but the page cannot express (an empty list, say) fails a test instead of a user."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from html.parser import HTMLParser

from webapp import forms

_TEMPLATE = '{% from "macros/form.html" import render_fields %}{{ render_fields(fields, false) }}'


@cache
def _app():
    from webapp import create_app

    return create_app({"DATABASE_URL": "sqlite://", "SECRET_KEY": "page-post", "TESTING": True})


class _Submitted(HTMLParser):
    """The name/value pairs a browser sends for a form's controls (row templates are not sent)."""

    def __init__(self):
        super().__init__()
        self.pairs: list[tuple[str, str]] = []
        self._select: list | None = None  # [name, selected value, first option's value]
        self._textarea: list | None = None  # [name, text]
        self._in_template = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "template":
            self._in_template += 1
        if self._in_template or "disabled" in a:
            return
        if tag == "option" and self._select is not None:
            if self._select[2] is None:
                self._select[2] = a.get("value", "")
            if "selected" in a:
                self._select[1] = a.get("value", "")
            return
        name = a.get("name")
        if not name:
            return
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.pairs.append((name, a.get("value", "on")))
            elif kind != "file":
                self.pairs.append((name, a.get("value") or ""))
        elif tag == "select":
            self._select = [name, None, None]
        elif tag == "textarea":
            self._textarea = [name, ""]

    def handle_endtag(self, tag):
        if tag == "template":
            self._in_template -= 1
        elif tag == "select" and self._select is not None:
            name, chosen, first = self._select
            self.pairs.append((name, chosen if chosen is not None else first or ""))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.pairs.append((self._textarea[0], self._textarea[1]))
            self._textarea = None

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data


def page_round_trip(schema: dict, ui: dict | None, data: dict) -> tuple[dict, dict]:
    """(what the page's POST reads back, field errors) for `data` shown on the step's form and sent."""
    fields = forms.build_fields(schema, ui, forms.flatten(schema, data), {})
    with _app().test_request_context():
        from flask import render_template_string

        html = render_template_string(_TEMPLATE, fields=fields)
    browser = _Submitted()
    browser.feed(html)
    posted: dict[str, list[str]] = {}
    for name, value in browser.pairs:
        if name.startswith(forms.PREFIX):
            posted.setdefault(name, []).append(value)
    return forms.parse(schema, forms.compact(schema, posted))


def _same(value):
    """Values as the page and JSON may each spell them: numbers compared as numbers."""
    if isinstance(value, dict):
        return {k: _same(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_same(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return Decimal(value)
        except ArithmeticError:
            return value
    return value


def assert_the_page_can_send(schema: dict | None, ui: dict | None, data: dict) -> None:
    """Fail unless the step's page can send `data` (the keys its form has; a decision and its comment are
    chosen afresh on every page, so they are not shown filled in)."""
    if not schema:
        return
    keys = set(schema.get("properties") or {}) - forms.ACT_FIELDS
    expected = {k: v for k, v in data.items() if k in keys}
    sent, errors = page_round_trip(schema, ui, data)
    sent = {k: v for k, v in sent.items() if k in keys}
    assert not errors and _same(sent) == _same(expected), (
        f"the task page cannot send this answer: sent {sent!r}, errors {errors!r}, wanted {expected!r}"
    )
