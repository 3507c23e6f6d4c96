"""Cached partials (ui/partials.py): rendered once per (template, locale, value), escaped
as any template, and never shared between values or locales."""

from __future__ import annotations

import pytest
from jinja2 import DictLoader, Environment

from ui.context import build_templates
from ui.partials import PartialCache, ShellCache, slot
from ui.screens.records.listing import Choice


def _env() -> Environment:
    env = build_templates()
    env.loader = DictLoader({
        "page.html": '<p>{{ cached("part.html", view) }}</p>',
        "part.html": '{% for c in view %}<b title="{{ c.value }}">{{ c.label }}</b>'
                     '{% endfor %}{{ _("Apply") }}',
    })
    return env


def test_a_partial_is_escaped_and_kept_per_value_and_locale() -> None:
    env = _env()
    hostile = (Choice('"><script>x()</script>', "<i>&"),)
    html = env.get_template("page.html").render(view=hostile, locale="en")
    assert '<b title="&#34;&gt;&lt;script&gt;x()&lt;/script&gt;">&lt;i&gt;&amp;</b>' in html
    assert "<script>" not in html and html.endswith("Apply</p>")
    zh = env.get_template("page.html").render(view=hostile, locale="zh-CN")
    assert zh != html and "应用" in zh  # another locale: its own rendering
    other = (Choice("a", "Other"),)
    assert "Other" in env.get_template("page.html").render(view=other, locale="en")
    # the same value again: the kept markup, identical
    assert env.get_template("page.html").render(view=hostile, locale="en") == html


def test_the_cache_is_bounded_and_refuses_unhashable_values() -> None:
    env = _env()
    cache = PartialCache(env, limit=2)
    for n in range(5):
        cache.render("part.html", "en", (Choice(str(n), str(n)),))
    assert len(cache._rendered) <= 2
    with pytest.raises(TypeError):  # a list could change after it was kept
        cache.render("part.html", "en", [Choice("a", "a")])


def test_a_shell_is_kept_per_key_and_its_slots_filled_each_time() -> None:
    cache = ShellCache(limit=2)
    rows = slot("rows")
    drawn: list[str] = []

    def shell() -> str:
        drawn.append("shell")
        return f"<table>{rows}</table><p>after</p>"

    def page() -> str:  # pragma: no cover - the placeholder is found here
        raise AssertionError("the shell had its placeholder")

    first = cache.render("k", shell, page, [(rows, "<tr>1</tr>")])
    second = cache.render("k", shell, page, [(rows, "<tr>2</tr>")])
    assert (first, second) == (b"<table><tr>1</tr></table><p>after</p>",
                               b"<table><tr>2</tr></table><p>after</p>")
    # kept in UTF-8, the slots encoded as they are put in
    assert cache.render("k", shell, page, [(rows, "<tr>陈</tr>")]) == \
        "<table><tr>陈</tr></table><p>after</p>".encode()
    assert drawn == ["shell"]  # kept after the first drawing; the rows are not
    for n in range(4):
        cache.render(n, shell, page, [(rows, "")])
    assert len(cache._kept) <= 2


def test_a_shell_without_its_placeholder_exactly_once_is_drawn_as_a_page() -> None:
    cache = ShellCache()
    rows = slot("rows")
    for text in ("<p>no slot</p>", f"{rows}<p>twice</p>{rows}"):
        found = cache.render(text, lambda t=text: t, lambda: "<p>the page</p>",  # type: ignore[misc]
                             [(rows, "<tr></tr>")])
        assert found == b"<p>the page</p>"
    assert not cache._kept
    # a value holding a placeholder's text cannot make one: the token is per process
    assert slot("rows") == rows and "\x00rows\x00" not in rows
