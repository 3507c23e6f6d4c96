"""View models: what a page shows, built from metadata and service results.

Templates receive plain data (labels already localised, values already
formatted as text) so that they stay free of logic; the route handlers call one
service function and hand its result here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from engine.metadata.model import Entity, Field, FieldType, Registry
from engine.records.activity import ActivityEntry
from engine.records.coerce import CoercionError, coerce, to_string
from engine.records.query import Page
from engine.records.record import Record

#: How many columns a list shows when the entity does not say otherwise.
LIST_COLUMNS = 6

_TEXTS = {
    "en": {"home": "Objects", "search": "Search", "more": "Next page", "empty": "No records",
           "feed": "Activity", "feed_empty": "No activity yet", "id": "ID"},
    "zh-CN": {"home": "对象", "search": "搜索", "more": "下一页", "empty": "没有记录",
              "feed": "动态", "feed_empty": "暂无动态", "id": "编号"},
}


def text(locale: str, key: str) -> str:
    return _TEXTS.get(locale, _TEXTS["en"])[key]


def display(f: Field, value: Any, locale: str) -> str:
    """A field value as the user reads it: option labels, not stored codes."""
    if value is None:
        return ""
    if f.type is FieldType.SELECT:
        return _option_label(f, value, locale)
    if f.type is FieldType.MULTI_SELECT:
        return ", ".join(_option_label(f, v, locale) for v in value)
    return to_string(f, value)


def _option_label(f: Field, value: Any, locale: str) -> str:
    for option in f.options:
        if option.value == value:
            return option.label.get(locale) or str(value)
    return str(value)


def list_fields(entity: Entity, hidden: frozenset[str] = frozenset()) -> list[Field]:
    """The title field first, then the next visible short fields."""
    title = entity.field(entity.title_field)
    chosen = [title] if title.name not in hidden else []
    for f in entity.fields:
        if len(chosen) >= LIST_COLUMNS:
            break
        if f is title or f.name in hidden or f.type in (FieldType.LONG_TEXT, FieldType.RICH_TEXT,
                                                          FieldType.FILE, FieldType.ADDRESS):
            continue
        chosen.append(f)
    return chosen


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class HomeView:
    title: str
    entities: list[Link]


def home_view(registry: Registry, *, locale: str) -> HomeView:
    links = [Link(e.plural_label.get(locale) or e.label.get(locale), f"/e/{e.name}?lang={locale}")
             for e in registry.entities.values()]
    return HomeView(title=text(locale, "home"), entities=links)


@dataclass(frozen=True)
class Row:
    url: str
    cells: list[str]


@dataclass(frozen=True)
class ListView:
    title: str
    url: str
    search: str
    search_placeholder: str
    search_button: str
    columns: list[str]
    rows: list[Row]
    empty_text: str
    next_url: str | None
    next_text: str


def list_view(entity: Entity, page: Page, *, locale: str, search: str = "") -> ListView:
    fields = list_fields(entity)
    rows = [Row(url=f"/e/{entity.name}/{record.id}?lang={locale}",
                cells=[display(f, record.get(f.name), locale) or f"#{record.id}" if i == 0
                       else display(f, record.get(f.name), locale)
                       for i, f in enumerate(fields)])
            for record in page.rows]
    next_url = None
    if page.has_more and page.next_token:
        params = {"lang": locale, "after": page.next_token}
        if search:
            params["q"] = search
        next_url = f"/e/{entity.name}?{urlencode(params)}"
    return ListView(
        title=entity.plural_label.get(locale) or entity.label.get(locale),
        url=f"/e/{entity.name}", search=search, search_placeholder=text(locale, "search"),
        search_button=text(locale, "search"), columns=[f.label.get(locale) for f in fields],
        rows=rows, empty_text=text(locale, "empty"), next_url=next_url,
        next_text=text(locale, "more"))


@dataclass(frozen=True)
class FeedEntry:
    at: str
    at_iso: str
    actor: str
    kind: str
    changes: list[tuple[str, str, str]]
    body: str | None


@dataclass(frozen=True)
class DetailView:
    title: str
    list_url: str
    list_label: str
    fields: list[tuple[str, str]]
    feed: list[FeedEntry] = field(default_factory=list)
    feed_title: str = ""
    feed_empty: str = ""


def _feed_entry(entity: Entity, entry: ActivityEntry, locale: str) -> FeedEntry:
    changes = []
    for change in entry.changes:
        if entity.has_field(change.field):
            f = entity.field(change.field)
            changes.append((f.label.get(locale), _logged(f, change.old, locale),
                            _logged(f, change.new, locale)))
        else:  # system columns (owner, stage...) are logged under their own names
            changes.append((change.field, _plain(change.old), _plain(change.new)))
    return FeedEntry(at=entry.at.strftime("%Y-%m-%d %H:%M"), at_iso=entry.at.isoformat(),
                     actor="system" if entry.actor_id is None else f"user {entry.actor_id}",
                     kind=entry.kind, changes=changes, body=entry.body)


def _logged(f: Field, value: Any, locale: str) -> str:
    """A value as the feed stored it (its JSON form), displayed like a live one."""
    try:
        return display(f, coerce(f, value), locale)
    except CoercionError:  # the field changed type since: show what was written
        return _plain(value)


def _plain(value: Any) -> str:
    return "" if value is None else str(value)


def detail_view(entity: Entity, record: Record, feed: Sequence[ActivityEntry], *,
                locale: str) -> DetailView:
    shown = [(f.label.get(locale), display(f, record.get(f.name), locale))
             for f in entity.fields if f.name in record]
    title = display(entity.field(entity.title_field), record.get(entity.title_field), locale)
    return DetailView(
        title=title or f"#{record.id}", list_url=f"/e/{entity.name}?lang={locale}",
        list_label=entity.plural_label.get(locale) or entity.label.get(locale), fields=shown,
        feed=[_feed_entry(entity, e, locale) for e in feed], feed_title=text(locale, "feed"),
        feed_empty=text(locale, "feed_empty"))
