"""Partials rendered once per value: ``{{ cached("records/_columns.html", view.x) }}``.

Parts of a page repeat unchanged from request to request (a list's column chooser,
its bulk-action form, the menu): Jinja drew them again every time, a loop, an
attribute lookup and an escape per item, about half of a list page's template time
(issue 13). A cached partial is a template that reads only ``view`` (the value
passed, an immutable hashable value such as a frozen dataclass or a tuple of them)
and ``locale``, so its output is a pure function of the two, and
``PartialCache`` keeps the rendered markup per (template, locale, value).

What may not go in one: anything a request carries besides the value -- the CSRF
token, the viewer's time zone (``zone_name``), the path. Escaping is Jinja's, as for
any template: the cached text is the autoescaped output itself.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from markupsafe import Markup

#: Renderings kept before the cache starts over (a bound on memory, not an LRU).
MAX_PARTIALS = 2_000


class PartialCache:
    """Rendered partials of one Jinja environment, by (template, locale, value).

    Parameters:
        env: the environment the partials' templates come from (``auto_reload`` off:
            templates do not change while the process runs).
        limit: renderings kept before starting over.
    """

    def __init__(self, env: Environment, *, limit: int = MAX_PARTIALS) -> None:
        self.env = env
        self.limit = limit
        self._rendered: dict[tuple[str, str, Hashable], Markup] = {}

    def render(self, name: str, locale: str, view: Hashable) -> Markup:
        """``name`` rendered with ``view`` and ``locale`` (from the cache when seen)."""
        key = (name, locale, view)
        found = self._rendered.get(key)
        if found is None:
            found = Markup(self.env.get_template(name).render(view=view, locale=locale))
            if len(self._rendered) >= self.limit:
                self._rendered.clear()
            self._rendered[key] = found
        return found


def install(env: Environment, *, limit: int = MAX_PARTIALS) -> PartialCache:
    """Give ``env``'s templates ``cached(name, value)`` (see the module docstring)."""
    cache = PartialCache(env, limit=limit)

    @pass_context
    def cached(context: Context, name: str, view: Any) -> Markup:
        return cache.render(name, context.get("locale", "en"), view)

    env.globals["cached"] = cached
    return cache


#: Page shells kept before the cache starts over (a few kilobytes each).
MAX_SHELLS = 500


class ShellCache:
    """Whole pages kept as the text around their slots, by a key standing for every
    value the template reads.

    A list page is its rows (different on every request, drawn in Python) inside
    markup that repeats for the same viewer, list state and locale: the head, the
    controls, the column headers, the bulk form, the chrome. Jinja drew it again on
    every request (a tenth of the page's CPU, issue 13). The caller renders the page
    once with a placeholder (``slot``) where each slot's markup goes; the text
    around the placeholders is kept under ``key``, and later requests with an equal
    key only join the kept text and their slots' markup. The key must stand for
    everything the template reads (the view with its placeholders, the locale, the
    CSRF token, the chrome, the viewer's zone): escaping is Jinja's, as for any
    template, since the kept text is its autoescaped output.
    """

    def __init__(self, *, limit: int = MAX_SHELLS) -> None:
        self.limit = limit
        self._kept: dict[Hashable, tuple[bytes, ...]] = {}

    def render(self, key: Hashable, shell: Callable[[], str], page: Callable[[], str],
               slots: Sequence[tuple[str, str]]) -> bytes:
        """The page of ``key`` in UTF-8: the kept text with ``slots``' markup put in,
        after ``shell()`` (the page with each slot's placeholder in its place) the
        first time.

        The kept text is kept encoded: a page naming its viewer in Chinese is a
        two-byte string end to end, and encoding all of it again on every request
        cost as much as drawing the rows. ``slots`` are (placeholder, markup) pairs
        in page order. When a placeholder is not found exactly once, in order,
        nothing is kept and ``page()`` (the page drawn as usual) is the answer."""
        parts = self._kept.get(key)
        if parts is None:
            found = _split(shell(), [mark for mark, _ in slots])
            if found is None:
                return page().encode()
            if len(self._kept) >= self.limit:
                self._kept.clear()
            parts = self._kept[key] = tuple(part.encode() for part in found)
        return _fill(parts, [markup.encode() for _, markup in slots])


#: Makes placeholders no page text contains: a value would have to hold this
#: process's random token between NUL characters.
_SLOT_TOKEN = secrets.token_hex(8)


def slot(name: str) -> Markup:
    """The placeholder of slot ``name`` (a ``Markup``: the template writes it as is)."""
    return Markup(f"\x00{name}-{_SLOT_TOKEN}\x00")


def _split(text: str, marks: Sequence[str]) -> tuple[str, ...] | None:
    parts = []
    rest = text
    for mark in marks:
        before, found, rest = rest.partition(mark)
        if not found:
            return None
        parts.append(before)
    if any(mark in rest for mark in marks):
        return None
    parts.append(rest)
    return tuple(parts)


def _fill(parts: tuple[bytes, ...], markups: Sequence[bytes]) -> bytes:
    out = [parts[0]]
    for markup, part in zip(markups, parts[1:], strict=True):
        out.append(markup)
        out.append(part)
    return b"".join(out)
