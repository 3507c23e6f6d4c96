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

from collections.abc import Hashable
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
