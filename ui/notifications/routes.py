"""The bell (unread count, an htmx fragment in every page's header) and the notifications page.

Everything shown comes from ``engine.workflow.notifications.inbox``, which reads
the records through the reader's permissions: a notification about a record the
user can no longer read shows no title and no link (or is not shown at all).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.workflow.notifications import BELL_WINDOW, Shown, inbox, mark_read, unread_count
from ui import i18n
from ui.context import UIContext
from ui.i18n import N_
from ui.zones import format_instant

#: kind -> the sentence, with ``%(who)s`` the person who acted (or "the system")
SENTENCES = {
    "assigned": N_("%(who)s assigned a record to you"),
    "claimed": N_("%(who)s claimed a record you had returned"),
    "taken": N_("%(who)s took a record of yours back to the pool"),
    "warning": N_("A record of yours drops back to the pool on %(due)s"),
    "mention": N_("%(who)s mentioned you"),
}


@dataclass(frozen=True)
class Item:
    id: int
    kind: str
    sentence: str
    entity_label: str
    title: str | None
    url: str | None
    rule: str | None
    reason: str | None
    at: str
    at_iso: str
    read: bool


@dataclass(frozen=True)
class Page:
    title: str
    items: list[Item]
    unread: int
    older_url: str | None


@dataclass(frozen=True)
class Bell:
    count: int
    label: str
    shown: str  # "3", "99+", or "" when nothing is unread


def _rule_label(ui: UIContext, request: Request, rule: str | None) -> str | None:
    """``"customer_pool.no_visit"`` -> the rule's label in the reader's language."""
    if rule is None:
        return None
    pool_name, _, rule_name = rule.partition(".")
    pool = ui.runtime().registry.pools.get(pool_name)
    found = next((r for r in pool.rules if r.name == rule_name), None) if pool else None
    label = found.label.get(ui.locale(request)) if found is not None and found.label else None
    return label or rule


def _digest(ui: UIContext, request: Request, note: Shown, who: str) -> tuple[str, str, str]:
    """A batch's digest: (sentence, "12 records", the list that shows them to the reader).

    The list is filtered to where the records went (the pool) or to what the reader
    now holds, and read through the reader's scope like any list."""
    locale = ui.locale(request)
    pool = ui.runtime().registry.pools.get(note.pool or "")
    pool_label = (pool.label.get(locale) or pool.name) if pool is not None else (note.pool or "")
    title = i18n.tn(locale, "%(n)s record", "%(n)s records", note.count)
    if note.kind == "taken":
        sentence = i18n.tn(locale, "%(who)s took %(n)s record of yours back to %(pool)s",
                           "%(who)s took %(n)s records of yours back to %(pool)s",
                           note.count, who=who, pool=pool_label)
        where = {"f.pool_id.eq": note.pool} if note.pool else {"f.pool_id.not_empty": 1}
        return sentence, title, f"/e/{note.entity}?{urlencode(where)}"
    sentence = i18n.tn(locale, "%(who)s assigned %(n)s record to you",
                       "%(who)s assigned %(n)s records to you", note.count, who=who)
    mine = urlencode({"f.owner_id.eq": ui.actor(request).user_id})
    return sentence, title, f"/e/{note.entity}?{mine}"


def _item(ui: UIContext, request: Request, note: Shown) -> Item:
    registry = ui.runtime().registry
    entity = registry.entities.get(note.entity)
    locale = ui.locale(request)
    who = note.actor_name or ui.t(request, "The system")
    # in the reader's zone (the request runs inside ui.zones.viewing_in)
    due = format_instant(note.due_at, locale) if note.due_at is not None else ""
    readable = note.title is not None
    sentence = ui.t(request, SENTENCES.get(note.kind, SENTENCES["assigned"]), who=who, due=due)
    title, url = note.title, f"/e/{note.entity}/{note.record_id}" if readable else None
    if note.count > 1:
        sentence, title, url = _digest(ui, request, note, who)
    return Item(id=note.id, kind=note.kind, sentence=sentence,
                entity_label=entity.label.get(locale) if entity is not None else note.entity,
                title=title, url=url,
                rule=_rule_label(ui, request, note.rule), reason=note.reason,
                at=format_instant(note.at, locale), at_iso=note.at.isoformat(),
                read=note.read)


def _ids(form: FormData | None) -> list[int]:
    values = form.getlist("id") if form is not None else []
    return [int(v) for v in values if isinstance(v, str) and v.isdigit() and len(v) < 19][:200]


def routes(ui: UIContext) -> list[BaseRoute]:
    def page(request: Request, form: FormData | None) -> Response:
        actor = ui.actor(request)
        raw = request.query_params.get("before", "")
        before = int(raw) if raw.isdigit() and len(raw) < 19 else None
        notes = inbox(ui.runtime().records, actor, before_id=before)
        items = [_item(ui, request, n) for n in notes]
        older = f"/notifications?before={notes[-1].id}" if len(notes) >= 50 else None
        view = Page(title=ui.t(request, "Notifications"), items=items,
                    unread=unread_count(ui.runtime().records, actor), older_url=older)
        return ui.render(request, "notifications/page.html", view)

    def bell(request: Request, form: FormData | None) -> Response:
        count = unread_count(ui.runtime().records, ui.actor(request))
        shown = "" if count == 0 else (f"{BELL_WINDOW - 1}+" if count >= BELL_WINDOW
                                       else str(count))
        label = ui.t(request, "Notifications") if count == 0 else \
            ui.t(request, "Notifications: %(n)s unread", n=shown)
        response = ui.render(request, "notifications/_bell.html",
                             Bell(count=count, label=label, shown=shown),
                             fragment="notifications/_bell.html")
        response.headers["Cache-Control"] = "no-store"
        return response

    def read(request: Request, form: FormData | None) -> Response:
        actor = ui.actor(request)
        records = ui.runtime().records
        if form is not None and form.get("all") == "1":
            mark_read(records, actor, at=records.clock())
        else:
            mark_read(records, actor, _ids(form), at=records.clock())
        return ui.redirect(request, "/notifications")

    return [Route("/notifications", ui.endpoint(page), name="notifications"),
            Route("/notifications/bell", ui.endpoint(bell), name="notifications_bell"),
            Route("/notifications/read", ui.endpoint(read), methods=["POST"],
                  name="notifications_read")]
