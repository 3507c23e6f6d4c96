"""Pickers: choose a user or a record by typing part of a name, instead of an id.

A picker is a search box and a ``<select>``: typing asks the server (htmx, 300 ms
after the last key) for the matching options, which replace the select's. The
select carries the value the form posts, so without scripts it still works with
the options it was drawn with. One partial, ``partials/_picker.html``, draws it;
any screen builds a ``Picker`` (``user_picker`` / ``reference_picker``) and
includes the partial with ``p`` set.

- ``GET /people/lookup?for=<name>&find.<name>=<text>``: active people matching
  the text (name or login), as ``<option>``s; signed-in users only.
- Records: ``GET /e/<entity>/lookup`` (ui/screens/records/lists.py), which only
  lists records the user may read.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.actor import Actor
from engine.metadata.model import Entity, FieldType
from engine.permissions.directory import people_by_id, search_people
from engine.runtime import Runtime
from ui.context import UIContext
from ui.screens.records.display import titles
from ui.screens.records.listing import Choice, FilterWidget

#: Options a lookup answers with (type more to narrow them).
LOOKUP_LIMIT = 20


@dataclass(frozen=True)
class Picker:
    """What ``partials/_picker.html`` draws.

    Parameters:
        name: the select's form name (``owner_id``, ``f.customer.eq``...).
        label: the visible label (also names the search box for screen readers).
        search_url: the lookup URL; the box's text is sent as ``find.<key>``.
        key: the id stem of the inputs (unique on the page).
        options: the choices drawn with the page (at least the current value).
    """

    name: str
    label: str
    search_url: str
    key: str
    options: list[Choice] = field(default_factory=list)


def _url(base: str, key: str) -> str:
    return f"{base}?{urlencode({'for': key})}"


def user_picker(runtime: Runtime, *, name: str, label: str, key: str,
                value: str = "") -> Picker:
    """A picker of active users; ``value`` (a user id) is shown by name."""
    options = []
    if value.isdigit():
        person = people_by_id(runtime.engine, [int(value)]).get(int(value))
        options.append(Choice(value, person.display_name if person else f"#{value}", True))
    return Picker(name=name, label=label, search_url=_url("/people/lookup", key), key=key,
                  options=options)


def reference_picker(runtime: Runtime, actor: Actor, *, entity: str, name: str, label: str,
                     key: str, value: str = "") -> Picker:
    """A picker of ``entity`` records the actor may read; ``value`` is shown by title."""
    options = []
    if value.isdigit():
        found = titles(runtime, actor, entity, [int(value)])
        options.append(Choice(value, found.get((entity, int(value)), f"#{value}"), True))
    return Picker(name=name, label=label, search_url=_url(f"/e/{entity}/lookup", key),
                  key=key, options=options)


def with_pickers(runtime: Runtime, actor: Actor, entity: Entity,
                 widgets: list[FilterWidget]) -> list[FilterWidget]:
    """Filters on reference and user fields as pickers instead of id boxes."""
    out = []
    for w in widgets:
        f = entity.field(w.field) if w.kind == "id" and entity.has_field(w.field) else None
        if f is not None and f.type is FieldType.REFERENCE and f.target:
            w = replace(w, kind="picker", picker=reference_picker(
                runtime, actor, entity=f.target, name=f"f.{f.name}.eq", label=w.label,
                key=f"filter-{f.name}", value=w.value))
        elif f is not None and f.type is FieldType.USER:
            w = replace(w, kind="picker", picker=user_picker(
                runtime, name=f"f.{f.name}.eq", label=w.label, key=f"filter-{f.name}",
                value=w.value))
        out.append(w)
    return out


def routes(ui: UIContext) -> list[BaseRoute]:
    def people(request: Request, form: FormData | None) -> Response:
        ui.actor(request)  # signed in, or off to the sign-in page
        key = request.query_params.get("for", "")[:100]
        text = request.query_params.get(f"find.{key}", "").strip()[:100]
        found = search_people(ui.runtime().engine, text, limit=LOOKUP_LIMIT)
        options = [Choice(str(p.id), f"{p.display_name} ({p.login})") for p in found]
        return ui.render(request, "records/_options.html", options,
                         context={"blank": True})

    return [Route("/people/lookup", ui.endpoint(people), name="people_lookup")]
